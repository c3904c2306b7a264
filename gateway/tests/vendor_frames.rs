//! The vendor profiles in `hardware/` against register frames written out by hand from the
//! vendors' register maps: for each encoding family (word order, signed or unsigned, 16, 32 or
//! 64 bits, float32 and float64, scale and sign, SunSpec scale factors), the raw words a device
//! sends and the value the gateway must make of them. Each case also pins the point's address to
//! the document's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use gridshare_gateway::modbus::{Link, read_points, scaled};
use gridshare_gateway::profile::{Profile, Table, ValueType, WordOrder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A profile of `hardware/`, by file name.
fn load(file: &str) -> Profile {
    Profile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware").join(file)).unwrap()
}

/// The engineering value `point` of `file` makes of `words`, after checking that the point is at
/// `address` in `table` (the vendor's document).
fn read(file: &str, point: &str, table: Table, address: u16, words: &[u16]) -> f64 {
    let profile = load(file);
    let p = profile
        .point(point)
        .unwrap_or_else(|| panic!("{file}: no point {point}"));
    assert_eq!((p.table, p.address), (table, address), "{file} {point}: register");
    assert_eq!(
        words.len(),
        usize::from(p.ty.registers()),
        "{file} {point}: frame length"
    );
    let raw =
        p.ty.decode(words, profile.device.word_order)
            .unwrap_or_else(|| panic!("{file} {point}: undecodable"));
    scaled(raw, p.scale)
}

/// Checks that `point` of `file` is at `address` in the holding table with its scale factor at
/// `scale_factor_at` (the vendor's document).
fn pin(file: &str, point: &str, address: u16, scale_factor_at: Option<u16>) {
    let profile = load(file);
    let p = profile
        .point(point)
        .unwrap_or_else(|| panic!("{file}: no point {point}"));
    assert_eq!(
        (p.table, p.address, p.scale_factor_at),
        (Table::Holding, address, scale_factor_at),
        "{file} {point}: registers"
    );
}

/// A device answering reads of holding registers (function 03) with the words of `frame`
/// (address, word), 0 elsewhere: a frame of a SunSpec "int + SF" map, whose values and scale
/// factors are read together.
async fn device(frame: &[(u16, u16)]) -> std::net::SocketAddr {
    let words: HashMap<u16, u16> = frame.iter().copied().collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let words = words.clone();
            tokio::spawn(async move {
                // MBAP header (transaction, protocol, length, unit), then function 03, start, count
                let mut request = [0u8; 12];
                while stream.read_exact(&mut request).await.is_ok() {
                    if request[7] != 3 {
                        break; // only holding registers are read here
                    }
                    let start = u16::from_be_bytes([request[8], request[9]]);
                    let count = u16::from_be_bytes([request[10], request[11]]);
                    let data: Vec<u8> = (0..count)
                        .flat_map(|i| words.get(&start.wrapping_add(i)).copied().unwrap_or(0).to_be_bytes())
                        .collect();
                    let mut answer = vec![request[0], request[1], 0, 0];
                    answer.extend_from_slice(&(u16::try_from(data.len()).unwrap() + 3).to_be_bytes());
                    answer.extend_from_slice(&[request[6], 3, u8::try_from(data.len()).unwrap()]);
                    answer.extend_from_slice(&data);
                    if stream.write_all(&answer).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// What the gateway reads of every point of `file` (scale, scale factor and "not implemented"
/// applied, as in operation) from a device sending `frame`, by point name.
async fn read_from(file: &str, frame: &[(u16, u16)]) -> HashMap<String, Option<f64>> {
    let profile = load(file);
    let mut link = Link::new(
        device(frame).await,
        profile.device.default_unit,
        Duration::from_millis(500),
        Duration::ZERO,
    );
    read_points(&mut link, &profile)
        .await
        .into_iter()
        .map(|(name, value)| (name, value.unwrap()))
        .collect()
}

/// Eastron SDM120/220/72/630: IEEE 754 float32, high word first; energy in kWh read as Wh.
#[test]
fn eastron_float32_high_word_first() {
    // 1234.5 W is 0x449A5000; 12.5 kWh is 0x41480000
    for file in ["eastron-sdm120.toml", "eastron-sdm220.toml"] {
        assert_eq!(
            read(file, "active_power", Table::Input, 0x000C, &[0x449A, 0x5000]),
            1234.5
        );
        assert_eq!(
            read(file, "import_energy", Table::Input, 0x0048, &[0x4148, 0x0000]),
            12_500.0
        );
        assert_eq!(
            read(file, "export_energy", Table::Input, 0x004A, &[0x4148, 0x0000]),
            12_500.0
        );
    }
    // SDM72D-M v2: total system power at 30053; -523.25 W (exporting) is 0xC402D000
    assert_eq!(
        read(
            "eastron-sdm72d-m-v2.toml",
            "total_power",
            Table::Input,
            0x0034,
            &[0xC402, 0xD000]
        ),
        -523.25
    );
    assert_eq!(
        read(
            "eastron-sdm72d-m-v2.toml",
            "frequency",
            Table::Input,
            0x0046,
            &[0x4248, 0x0000]
        ),
        50.0
    );
}

/// Shelly Pro 3EM: float32 with the low word first (the documentation's "-B mixed").
#[test]
fn shelly_float32_low_word_first() {
    let f = "shelly-pro-3em-modbus.toml";
    // -523.25 W = 0xC402D000, sent as D000 C402
    assert_eq!(read(f, "total_power", Table::Input, 1013, &[0xD000, 0xC402]), -523.25);
    // 4711.5 Wh = 0x45933C00, sent as 3C00 4593
    assert_eq!(read(f, "import_energy", Table::Input, 1162, &[0x3C00, 0x4593]), 4711.5);
    assert_eq!(read(f, "export_energy", Table::Input, 1164, &[0x3C00, 0x4593]), 4711.5);
    // 230.5 V = 0x43668000
    assert_eq!(read(f, "voltage_l1", Table::Input, 1020, &[0x8000, 0x4366]), 230.5);
}

/// Carlo Gavazzi EM340 and EM24 Ethernet: INT32 with the least significant word first, W x10
/// and kWh x10.
#[test]
fn carlo_gavazzi_int32_low_word_first() {
    for f in ["carlo-gavazzi-em340.toml", "carlo-gavazzi-em24-e1.toml"] {
        // -12345 (= -1234.5 W) is 0xFFFFCFC7, sent as CFC7 FFFF
        assert_eq!(read(f, "total_power", Table::Input, 0x0028, &[0xCFC7, 0xFFFF]), -1234.5);
        // 12345 (= 1234.5 kWh) is 0x00003039, sent as 3039 0000
        assert_eq!(
            read(f, "import_energy", Table::Input, 0x0034, &[0x3039, 0x0000]),
            1_234_500.0
        );
        assert_eq!(
            read(f, "export_energy", Table::Input, 0x004E, &[0x3039, 0x0000]),
            1_234_500.0
        );
        // 2305 (= 230.5 V)
        assert_eq!(read(f, "voltage_l1", Table::Input, 0x0000, &[0x0901, 0x0000]), 230.5);
        // UINT16 Hz x10: 500 = 50.0 Hz
        assert_eq!(read(f, "frequency", Table::Input, 0x0033, &[500]), 50.0);
    }
}

/// Huawei SUN2000: I32/U32 high word first, gains 1 and 100; the power meter's sign turned
/// round (Huawei: > 0 feeding in) by a negative scale.
#[test]
fn huawei_int32_big_endian_with_gain_and_sign() {
    let inv = "huawei-sun2000.toml";
    // 4711 W
    assert_eq!(
        read(inv, "active_power", Table::Holding, 32080, &[0x0000, 0x1267]),
        4711.0
    );
    // 123456 (= 1234.56 kWh) is 0x0001E240
    assert_eq!(
        read(inv, "lifetime_energy", Table::Holding, 32106, &[0x0001, 0xE240]),
        1_234_560.0
    );
    // 0x0200: on-grid
    assert_eq!(read(inv, "device_status", Table::Holding, 32089, &[0x0200]), 512.0);
    // U16, gain 100: 5002 = 50.02 Hz
    assert_eq!(read(inv, "grid_frequency", Table::Holding, 32085, &[5002]), 50.02);

    let meter = "huawei-sun2000-power-meter.toml";
    // the meter says +1500 W (feeding in): the gateway's grid power is -1500 W
    assert_eq!(
        read(meter, "grid_power", Table::Holding, 37113, &[0x0000, 0x05DC]),
        -1500.0
    );
    // -800 (0xFFFFFCE0, drawing from the grid): +800 W
    assert_eq!(
        read(meter, "grid_power", Table::Holding, 37113, &[0xFFFF, 0xFCE0]),
        800.0
    );
    assert_eq!(
        read(meter, "imported_energy", Table::Holding, 37121, &[0x0001, 0xE240]),
        1_234_560.0
    );
    assert_eq!(
        read(meter, "exported_energy", Table::Holding, 37119, &[0x0000, 0x3039]),
        123_450.0
    );

    let battery = "huawei-luna2000.toml";
    // SOC gain 10: 825 = 82.5 % = 825 permille
    assert_eq!(read(battery, "soc", Table::Holding, 37760, &[825]), 825.0);
    // -1000 W: discharging
    assert_eq!(
        read(battery, "battery_power", Table::Holding, 37765, &[0xFFFF, 0xFC18]),
        -1000.0
    );
    assert_eq!(
        read(battery, "charged_energy", Table::Holding, 37780, &[0x0001, 0x81CD]),
        987_650.0
    );
}

/// KEBA P30: unsigned 32-bit, high word first, mW and 0.1 Wh.
#[test]
fn keba_uint32_milliwatts_and_tenth_watt_hours() {
    let f = "keba-p30.toml";
    // 11,040,000 mW is 0x00A87500
    assert_eq!(
        read(f, "charging_power", Table::Holding, 1020, &[0x00A8, 0x7500]),
        11_040.0
    );
    // 123456 x 0.1 Wh
    assert_eq!(
        read(f, "total_energy", Table::Holding, 1036, &[0x0001, 0xE240]),
        12_345.6
    );
    // 3: charging
    assert_eq!(read(f, "charging_state", Table::Holding, 1000, &[0x0000, 0x0003]), 3.0);
}

/// ABB B23/B24: unsigned 64-bit energy in 0.01 kWh, signed 32-bit power in 0.01 W, 16-bit
/// frequency in 0.01 Hz, all high word first.
#[test]
fn abb_uint64_energy_and_int32_power() {
    let f = "abb-b23-b24.toml";
    // 123456789 (= 1,234,567.89 kWh) is 0x00000000_075BCD15
    assert_eq!(
        read(f, "import_energy", Table::Holding, 0x5000, &[0, 0, 0x075B, 0xCD15]),
        1_234_567_890.0
    );
    assert_eq!(
        read(f, "export_energy", Table::Holding, 0x5004, &[0, 0, 0, 0x0064]),
        1_000.0
    );
    // -250000 (= -2500.00 W) is 0xFFFC2F70
    assert_eq!(
        read(f, "total_power", Table::Holding, 0x5B14, &[0xFFFC, 0x2F70]),
        -2_500.0
    );
    assert_eq!(read(f, "frequency", Table::Holding, 0x5B2C, &[5002]), 50.02);
    assert_eq!(read(f, "voltage_l1", Table::Holding, 0x5B00, &[0, 2305]), 230.5);
}

/// Alfen NG9xx: float32 power and current, float64 energy, high word first.
#[test]
fn alfen_float32_and_float64() {
    let f = "alfen-eve.toml";
    // 4711.5 W = 0x45933C00
    assert_eq!(
        read(f, "charging_power", Table::Holding, 344, &[0x4593, 0x3C00]),
        4711.5
    );
    // 8,421,337.5 Wh = 0x41600FFB_30000000
    assert_eq!(
        read(
            f,
            "delivered_energy",
            Table::Holding,
            374,
            &[0x4160, 0x0FFB, 0x3000, 0x0000]
        ),
        8_421_337.5
    );
    // 16 A = 0x41800000, and written back as the same words
    assert_eq!(read(f, "max_current", Table::Holding, 1210, &[0x4180, 0x0000]), 16.0);
    let profile = Profile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware").join(f)).unwrap();
    let p = profile.point("max_current").unwrap();
    assert_eq!(p.ty.encode(16.0, profile.device.word_order), Some(vec![0x4180, 0x0000]));
}

/// Victron GX: signed and unsigned 16-bit, battery power > 0 charging, SoC in %.
#[test]
fn victron_int16_and_percent() {
    let f = "victron-gx-battery.toml";
    // -1000 W (0xFC18): discharging
    assert_eq!(read(f, "battery_power", Table::Input, 842, &[0xFC18]), -1000.0);
    assert_eq!(read(f, "battery_power", Table::Input, 842, &[1500]), 1500.0);
    // 87 % = 870 permille
    assert_eq!(read(f, "soc", Table::Input, 843, &[87]), 870.0);
}

/// GoodWe ET/EH meter through the inverter: INT32 high word first with the sign turned round
/// (GoodWe: > 0 feeding in), frequency UINT16 in 0.01 Hz.
#[test]
fn goodwe_meter_int32_turned() {
    let f = "goodwe-et-meter.toml";
    assert_eq!(load(f).device.default_unit, 247);
    // the meter says +1500 W (feeding in): the gateway's grid power is -1500 W
    assert_eq!(read(f, "grid_power", Table::Holding, 36025, &[0x0000, 0x05DC]), -1500.0);
    // -800 (0xFFFFFCE0, drawing from the grid): +800 W
    assert_eq!(read(f, "grid_power", Table::Holding, 36025, &[0xFFFF, 0xFCE0]), 800.0);
    // 5002 = 50.02 Hz
    assert_eq!(read(f, "frequency", Table::Holding, 36014, &[5002]), 50.02);
    // 1: the inverter hears its meter
    assert_eq!(read(f, "meter_link", Table::Holding, 36004, &[1]), 1.0);
}

/// Growatt SPH: input registers, UINT32 high word first in 0.1 W and 0.1 kWh.
#[test]
fn growatt_uint32_tenths() {
    let f = "growatt-sph.toml";
    // Ppv 45678 (0x0000B26E) = 4567.8 W
    assert_eq!(read(f, "pv_power", Table::Input, 1, &[0x0000, 0xB26E]), 4567.8);
    // Pac 70000 (0x00011170) = 7000.0 W
    assert_eq!(read(f, "output_power", Table::Input, 35, &[0x0001, 0x1170]), 7000.0);
    // Epv_total 123456 (0x0001E240) = 12345.6 kWh
    assert_eq!(read(f, "pv_energy", Table::Input, 91, &[0x0001, 0xE240]), 12_345_600.0);
    assert_eq!(
        read(f, "output_energy", Table::Input, 55, &[0x0000, 0x3039]),
        1_234_500.0
    );
    // 1: normal
    assert_eq!(read(f, "inverter_status", Table::Input, 0, &[1]), 1.0);
}

/// KOSTAL PLENTICORE (its own map, port 1502, unit 71): float32 with the low word first (CDAB),
/// the inverter's default byte order.
#[test]
fn kostal_float32_low_word_first() {
    let f = "kostal-plenticore.toml";
    assert_eq!(load(f).device.default_unit, 71);
    // 4711.5 W = 0x45933C00, sent as 3C00 4593
    assert_eq!(read(f, "pv_power", Table::Holding, 1066, &[0x3C00, 0x4593]), 4711.5);
    // -523.25 W = 0xC402D000, sent as D000 C402
    assert_eq!(read(f, "ac_power", Table::Holding, 172, &[0xD000, 0xC402]), -523.25);
    // 1234567 Wh = 0x4996B438, sent as B438 4996
    assert_eq!(
        read(f, "pv_energy", Table::Holding, 1056, &[0xB438, 0x4996]),
        1_234_567.0
    );
    assert_eq!(read(f, "grid_frequency", Table::Holding, 152, &[0x0000, 0x4248]), 50.0);
    // 6: feed-in
    assert_eq!(read(f, "inverter_state", Table::Holding, 56, &[6]), 6.0);
}

/// The battery behind a KOSTAL PLENTICORE: SoC in %, power INT16 with the sign turned round
/// (KOSTAL: > 0 discharging), counters float32 CDAB in Wh.
#[test]
fn kostal_battery_int16_turned_and_float32() {
    let f = "kostal-plenticore-battery.toml";
    assert_eq!(load(f).device.default_unit, 71);
    // 87 % = 870 permille
    assert_eq!(read(f, "soc", Table::Holding, 514, &[87]), 870.0);
    // KOSTAL -1500 W (0xFA24, charging): +1500 W; 1000 W discharging: -1000 W
    assert_eq!(read(f, "battery_power", Table::Holding, 582, &[0xFA24]), 1500.0);
    assert_eq!(read(f, "battery_power", Table::Holding, 582, &[0x03E8]), -1000.0);
    // 4711.5 Wh = 0x45933C00 and 1234.5 Wh = 0x449A5000, low word first
    assert_eq!(
        read(f, "charged_energy", Table::Holding, 1046, &[0x3C00, 0x4593]),
        4711.5
    );
    assert_eq!(
        read(f, "discharged_energy", Table::Holding, 1048, &[0x5000, 0x449A]),
        1234.5
    );
}

/// SMA's own Modbus profile: S32 / U32 / U64 high word first, and SMA's "no value" (NaN) words,
/// which the gateway reads as absent, not as a number.
#[test]
fn sma_int32_uint64_and_nan() {
    let f = "sma-sunny-boy-tripower.toml";
    assert_eq!(load(f).device.default_unit, 3);
    assert_eq!(read(f, "ac_power", Table::Holding, 30775, &[0x0000, 0x1267]), 4711.0);
    assert_eq!(read(f, "dc_power_a", Table::Holding, 30773, &[0x0000, 0x0C80]), 3200.0);
    // 123456789 Wh = 0x00000000_075BCD15
    assert_eq!(
        read(f, "total_yield", Table::Holding, 30513, &[0, 0, 0x075B, 0xCD15]),
        123_456_789.0
    );
    // 307: ok
    assert_eq!(read(f, "condition", Table::Holding, 30201, &[0x0000, 0x0133]), 307.0);
    // NaN: S32 0x80000000 (the power at night), ENUM 0x00FFFFFD
    let profile = load(f);
    for (point, words) in [
        ("ac_power", [0x8000, 0x0000]),
        ("dc_power_a", [0x8000, 0x0000]),
        ("condition", [0x00FF, 0xFFFD]),
    ] {
        let raw = ValueType::U32.decode(&words, WordOrder::Big).unwrap() as u32;
        assert_eq!(profile.point(point).unwrap().absent_raw, Some(raw), "{point}");
    }
}

/// Phoenix Contact EV Charge Control: 32-bit values with the low word first, the status an ASCII
/// letter.
#[test]
fn phoenix_int32_low_word_first() {
    let f = "phoenix-ev-charge-control.toml";
    assert_eq!(load(f).device.default_unit, 255);
    // 11040 W = 0x00002B20, sent as 2B20 0000
    assert_eq!(
        read(f, "charging_power", Table::Input, 120, &[0x2B20, 0x0000]),
        11_040.0
    );
    // 123456 Wh = 0x0001E240, sent as E240 0001
    assert_eq!(
        read(f, "total_energy", Table::Holding, 904, &[0xE240, 0x0001]),
        123_456.0
    );
    // 'C': charging
    assert_eq!(read(f, "vehicle_status", Table::Input, 100, &[0x0043]), 67.0);
    assert_eq!(read(f, "charging_current", Table::Holding, 528, &[16]), 16.0);
}

/// go-e Charger: UINT32 high word first in 0.01 kW, 0.1 kWh and 0.1 A (the document's own
/// examples); the current limit a UINT16 in A, written with function 16.
#[test]
fn go_e_uint32_hundredths_of_kilowatts() {
    let f = "go-e-charger.toml";
    // 360 corresponds to 3.6 kW
    assert_eq!(read(f, "charging_power", Table::Input, 120, &[0, 360]), 3600.0);
    // 12345 x 0.1 kWh
    assert_eq!(
        read(f, "total_energy", Table::Input, 128, &[0x0000, 0x3039]),
        1_234_500.0
    );
    // 123 equals 12.3 A
    assert_eq!(read(f, "current_l1", Table::Input, 114, &[0, 123]), 12.3);
    assert_eq!(read(f, "voltage_l1", Table::Input, 108, &[0, 230]), 230.0);
    // 2: charging
    assert_eq!(read(f, "car_state", Table::Input, 100, &[2]), 2.0);
    assert_eq!(read(f, "max_current", Table::Holding, 299, &[16]), 16.0);
    let profile = load(f);
    let p = profile.point("max_current").unwrap();
    let w = p.writable.unwrap();
    assert_eq!((w.min, w.max), (6.0, 32.0));
    assert_eq!(p.ty.encode(16.0, profile.device.word_order), Some(vec![16]));
}

/// Inepro PRO380: float32 high word first in holding registers, power in kW and energy in kWh.
#[test]
fn inepro_float32_kilowatts() {
    let f = "inepro-pro380.toml";
    // -1.5 kW (exporting) = 0xBFC00000
    assert_eq!(
        read(f, "total_power", Table::Holding, 0x5012, &[0xBFC0, 0x0000]),
        -1500.0
    );
    // 1234.5 kWh = 0x449A5000, 12.5 kWh = 0x41480000
    assert_eq!(
        read(f, "import_energy", Table::Holding, 0x600C, &[0x449A, 0x5000]),
        1_234_500.0
    );
    assert_eq!(
        read(f, "export_energy", Table::Holding, 0x6018, &[0x4148, 0x0000]),
        12_500.0
    );
    assert_eq!(read(f, "frequency", Table::Holding, 0x5008, &[0x4248, 0x0000]), 50.0);
    assert_eq!(read(f, "voltage_l1", Table::Holding, 0x5002, &[0x4366, 0x8000]), 230.5);
}

/// SolarEdge inverter: SunSpec "int + SF" after a common block of 65 registers, so the inverter
/// model's id is at 40069, not 40070; each value with its power-of-ten scale factor, "not
/// implemented" read as absent.
#[tokio::test]
async fn solaredge_inverter_int_and_scale_factor() {
    let f = "solaredge-inverter.toml";
    assert_eq!(load(f).device.default_unit, 1);
    pin(f, "ac_current", 40071, Some(40075));
    pin(f, "ac_power", 40083, Some(40084));
    pin(f, "lifetime_energy", 40093, Some(40095));
    pin(f, "status", 40107, None);
    let frame = [
        (40069, 103), // model id: three-phase inverter
        (40070, 50),  // its length
        (40071, 1234),
        (40075, 0xFFFE), // A_SF -2: 12.34 A
        (40083, 23456),
        (40084, 0xFFFF), // W_SF -1: 2345.6 W
        (40093, 0x0001),
        (40094, 0xE240), // 123456
        (40095, 1),      // WH_SF 1: 1,234,560 Wh
        (40107, 4),      // producing (MPPT)
    ];
    let v = read_from(f, &frame).await;
    assert_eq!(v["ac_current"], Some(12.34));
    assert_eq!(v["ac_power"], Some(2345.6));
    assert_eq!(v["lifetime_energy"], Some(1_234_560.0));
    assert_eq!(v["status"], Some(4.0));
    // "not implemented": the power 0x8000, the current's scale factor 0x8000, the status 0xFFFF
    let mut absent = frame.to_vec();
    absent.extend([(40083, 0x8000), (40075, 0x8000), (40107, 0xFFFF)]);
    let v = read_from(f, &absent).await;
    assert_eq!(
        (v["ac_power"], v["ac_current"], v["status"]),
        (None, None, None),
        "read as absent, never as zero"
    );
}

/// SolarEdge meter through the inverter: SunSpec model 203 "int + SF" at 40188, the power's sign
/// turned round (SolarEdge: > 0 exporting) by scale -1, which combines with the scale factor:
/// raw × scale × 10^sf.
#[tokio::test]
async fn solaredge_meter_turned_with_scale_factor() {
    let f = "solaredge-meter.toml";
    pin(f, "grid_power", 40206, Some(40210));
    pin(f, "exported_energy", 40226, Some(40242));
    pin(f, "imported_energy", 40234, Some(40242));
    let frame = [
        (40188, 203),    // model id: wye three-phase meter
        (40189, 105),    // its length
        (40206, 0xF830), // -2000: drawing from the grid, to SolarEdge
        (40210, 0xFFFF), // W_SF -1: -200.0 W, the gateway's +200.0 W
        (40226, 0x0001),
        (40227, 0xE240), // exported 123456
        (40234, 0x0000),
        (40235, 0x3039), // imported 12345
        (40242, 1),      // TotWh_SF 1: x10 Wh
    ];
    let v = read_from(f, &frame).await;
    assert_eq!(v["grid_power"], Some(200.0));
    assert_eq!(v["exported_energy"], Some(1_234_560.0));
    assert_eq!(v["imported_energy"], Some(123_450.0));
    // +1500 W (0x05DC) with W_SF 0: feeding in, the gateway's -1500 W
    let mut exporting = frame.to_vec();
    exporting.extend([(40206, 0x05DC), (40210, 0)]);
    assert_eq!(read_from(f, &exporting).await["grid_power"], Some(-1500.0));
    let mut absent = frame.to_vec();
    absent.push((40206, 0x8000));
    assert_eq!(read_from(f, &absent).await["grid_power"], None);
}

/// The battery behind a SolarEdge StorEdge inverter: SolarEdge's own battery block, float32 with
/// the low word first, > 0 charging (the gateway's convention already), state of energy in %.
#[test]
fn solaredge_battery_float32_low_word_first() {
    let f = "solaredge-storedge-battery.toml";
    assert_eq!(load(f).device.default_unit, 1);
    // 2500.5 W (0x451C4800, charging), sent as 4800 451C
    assert_eq!(
        read(f, "battery_power", Table::Holding, 0xE174, &[0x4800, 0x451C]),
        2500.5
    );
    // -1234.5 W (0xC49A5000, discharging), sent as 5000 C49A
    assert_eq!(
        read(f, "battery_power", Table::Holding, 0xE174, &[0x5000, 0xC49A]),
        -1234.5
    );
    // 87.5 % (0x42AF0000) = 875 permille
    assert_eq!(read(f, "soc", Table::Holding, 0xE184, &[0x0000, 0x42AF]), 875.0);
    // no value: -3.4028235e38 (0xFF7FFFFF), sent as FFFF FF7F, read as absent
    let profile = load(f);
    let raw = ValueType::U32.decode(&[0xFFFF, 0xFF7F], WordOrder::Little).unwrap() as u32;
    assert_eq!(profile.point("battery_power").unwrap().absent_raw, Some(raw));
}

/// Fronius Smart Meter through the inverter: SunSpec model 213 (float) after a common block of 65
/// registers, float32 high word first, > 0 drawing from the grid (no turn).
#[test]
fn fronius_meter_float32() {
    let f = "fronius-smart-meter.toml";
    assert_eq!(load(f).device.default_unit, 200);
    // -523.25 W (0xC402D000): feeding in
    assert_eq!(read(f, "grid_power", Table::Holding, 40097, &[0xC402, 0xD000]), -523.25);
    // 230.0 W (0x43660000): drawing from the grid
    assert_eq!(read(f, "grid_power", Table::Holding, 40097, &[0x4366, 0x0000]), 230.0);
    // 1234567 Wh (0x4996B438) and 4711.5 Wh (0x45933C00)
    assert_eq!(
        read(f, "exported_energy", Table::Holding, 40129, &[0x4996, 0xB438]),
        1_234_567.0
    );
    assert_eq!(
        read(f, "imported_energy", Table::Holding, 40137, &[0x4593, 0x3C00]),
        4711.5
    );
    // SunSpec's "not implemented" float32, 0x7FC00000, is read as absent
    let profile = load(f);
    for point in ["grid_power", "exported_energy", "imported_energy"] {
        assert_eq!(profile.point(point).unwrap().absent_raw, Some(0x7FC0_0000), "{point}");
    }
}
