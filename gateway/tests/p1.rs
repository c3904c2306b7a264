//! The smart meter's P1 port: DSMR 5 telegrams from the P1 Companion Standard's example and
//! others, through the shipped profile (`hardware/p1/dsmr5.toml`) into telemetry samples; a
//! byte changed, a telegram cut off, garbage on the line, each refused by name; a meter that
//! stops talking is unreachable. Over an in-memory stream and over a pseudo-terminal opened by
//! path as a P1 cable's `/dev/ttyUSB0` would be.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::time::Duration;

use gridshare_domain::wire::{DeviceStatus, Quality, TelemetrySample};
use gridshare_domain::{Timestamp, W, Wh};
use gridshare_gateway::config::PushDeviceConfig;
use gridshare_gateway::push::dsmr::{Framer, Telegram, TelegramError, crc16};
use gridshare_gateway::push::{Feed, PushDevice, PushProfile};
use tokio::io::AsyncWriteExt;

/// The example telegram of the DSMR 5.0.2 P1 Companion Standard (section 6.12), line by line as
/// printed there, up to and including the `!`. Lines end in CR LF on the wire.
const STANDARD_EXAMPLE: &[&str] = &[
    "/ISk5\\2MT382-1000",
    "",
    "1-3:0.2.8(50)",
    "0-0:1.0.0(101209113020W)",
    "0-0:96.1.1(4B384547303034303436333935353037)",
    "1-0:1.8.1(123456.789*kWh)",
    "1-0:1.8.2(123456.789*kWh)",
    "1-0:2.8.1(123456.789*kWh)",
    "1-0:2.8.2(123456.789*kWh)",
    "0-0:96.14.0(0002)",
    "1-0:1.7.0(01.193*kW)",
    "1-0:2.7.0(00.000*kW)",
    "0-0:96.7.21(00004)",
    "0-0:96.7.9(00002)",
    "1-0:99.97.0(2)(0-0:96.7.19)(101208152415W)(0000000240*s)(101208151004W)(0000000301*s)",
    "1-0:32.32.0(00002)",
    "1-0:52.32.0(00001)",
    "1-0:72.32.0(00000)",
    "1-0:32.36.0(00000)",
    "1-0:52.36.0(00003)",
    "1-0:72.36.0(00000)",
    "0-0:96.13.0(303132333435363738393A3B3C3D3E3F303132333435363738393A3B3C3D3E3F303132333435363738393A3B3C3D3E3F303132333435363738393A3B3C3D3E3F303132333435363738393A3B3C3D3E3F)",
    "1-0:32.7.0(220.1*V)",
    "1-0:52.7.0(220.2*V)",
    "1-0:72.7.0(220.3*V)",
    "1-0:31.7.0(001*A)",
    "1-0:51.7.0(002*A)",
    "1-0:71.7.0(003*A)",
    "1-0:21.7.0(01.111*kW)",
    "1-0:41.7.0(02.222*kW)",
    "1-0:61.7.0(03.333*kW)",
    "1-0:22.7.0(04.444*kW)",
    "1-0:42.7.0(05.555*kW)",
    "1-0:62.7.0(06.666*kW)",
    "0-1:24.1.0(003)",
    "0-1:96.1.0(3232323241424344313233343536373839)",
    "0-1:24.2.1(101209112500W)(12785.123*m3)",
    "!",
];

/// The CRC printed under the example in the standard. It is not the CRC of the example's
/// bytes (those give E47C): the example was edited after its CRC was computed. A gateway that
/// took it would take any telegram.
const PRINTED_CRC: &str = "EF2F";

fn example_body() -> String {
    STANDARD_EXAMPLE.join("\r\n")
}

fn sealed(body: &str, crc: &str) -> Vec<u8> {
    format!("{body}{crc}\r\n").into_bytes()
}

/// A single-phase meter feeding in 2.345 kW (a Belgian header, no gas meter).
const SINGLE_PHASE: &str = "/FLU5\\253769484_A\r\n\r\n0-0:96.1.4(50217)\r\n0-0:1.0.0(240611120000S)\r\n\
    1-0:1.8.1(000412.117*kWh)\r\n1-0:1.8.2(000318.904*kWh)\r\n1-0:2.8.1(001207.003*kWh)\r\n\
    1-0:2.8.2(000512.860*kWh)\r\n0-0:96.14.0(0001)\r\n1-0:1.7.0(00.000*kW)\r\n1-0:2.7.0(02.345*kW)\r\n\
    1-0:21.7.0(00.000*kW)\r\n1-0:22.7.0(02.345*kW)\r\n1-0:32.7.0(236.1*V)\r\n1-0:31.7.0(010*A)\r\n!";

/// A three-phase meter drawing 3.21 kW, its gas meter on M-Bus channel 2.
const THREE_PHASE: &str = "/XMX5LGBBFG1012463626\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(240101000005W)\r\n\
    1-0:1.8.1(004711.008*kWh)\r\n1-0:1.8.2(005120.250*kWh)\r\n1-0:2.8.1(000999.001*kWh)\r\n\
    1-0:2.8.2(001000.999*kWh)\r\n1-0:1.7.0(03.210*kW)\r\n1-0:2.7.0(00.000*kW)\r\n1-0:21.7.0(01.000*kW)\r\n\
    1-0:41.7.0(01.100*kW)\r\n1-0:61.7.0(01.110*kW)\r\n1-0:22.7.0(00.000*kW)\r\n1-0:42.7.0(00.000*kW)\r\n\
    1-0:62.7.0(00.000*kW)\r\n0-2:24.1.0(003)\r\n0-2:24.2.1(231231230000W)(01234.567*m3)\r\n!";

fn profile_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware/p1/dsmr5.toml")
}

fn meter(serial: Option<PathBuf>, stale_after: Duration) -> Feed {
    Feed::new(PushDevice {
        config: PushDeviceConfig {
            name: "grid".into(),
            profile: profile_path(),
            serial,
            baud: 115_200,
            broker: None,
            topic: None,
            stale_after,
        },
        profile: PushProfile::load(&profile_path()).unwrap(),
    })
}

fn value(feed: &Feed, point: &str) -> f64 {
    let values = feed.values();
    let (_, v) = values.iter().find(|(n, _)| n == point).unwrap();
    v.clone().unwrap_or_else(|e| panic!("{point}: {e}"))
}

fn sample(feed: &Feed) -> TelemetrySample {
    feed.sample(Timestamp(0)).unwrap()
}

#[test]
fn the_standards_example_is_refused_with_its_printed_crc_and_read_with_its_own() {
    let body = example_body();
    // CRC-16/ARC over everything from '/' through '!'
    assert_eq!(crc16(body.as_bytes()), 0xE47C);
    assert_eq!(
        Telegram::parse(&sealed(&body, PRINTED_CRC)),
        Err(TelegramError::Crc {
            sent: 0xEF2F,
            computed: 0xE47C
        })
    );
    let t = Telegram::parse(&sealed(&body, "E47C")).unwrap();
    assert_eq!(t.header, "ISk5\\2MT382-1000");
    assert_eq!(t.number("1-0:1.8.1", "kWh"), Ok(123_456.789));
    assert_eq!(t.number("1-0:1.7.0", "kW"), Ok(1.193));
    assert_eq!(t.number("0-1:24.2.1", "m3"), Ok(12_785.123));
    assert_eq!(t.number("1-0:32.7.0", "V"), Ok(220.1));
    assert_eq!(t.objects["1-0:99.97.0"].len(), 6, "the power failure log's six values");
}

#[tokio::test]
async fn the_standards_example_becomes_the_grid_meters_sample() {
    let feed = meter(None, Duration::from_secs(10));
    gridshare_gateway::push::p1::read(&sealed(&example_body(), "E47C")[..], &feed)
        .await
        .unwrap();
    let s = sample(&feed);
    // import and export: tariff 1 + tariff 2, 2 × 123456.789 kWh, exact to the Wh
    assert_eq!(s.energy_in_wh, Some(Wh(246_913_578)));
    assert_eq!(s.energy_out_wh, Some(Wh(246_913_578)));
    // drawn 1.193 kW, fed in 0: +1193 W (load convention)
    assert_eq!(s.power_w, Some(W(1_193)));
    assert_eq!((s.status, s.quality), (DeviceStatus::Ok, Quality::Good));
    assert_eq!(value(&feed, "power_drawn_l3"), 3_333.0);
    assert_eq!(value(&feed, "power_fed_in_l2"), 5_555.0);
    assert_eq!(value(&feed, "gas"), 12_785.123);
}

#[test]
fn one_byte_changed_anywhere_is_a_crc_error() {
    let good = sealed(&example_body(), "E47C");
    let end = good.iter().position(|&b| b == b'!').unwrap();
    for i in (1..end).step_by(7) {
        let mut bad = good.clone();
        bad[i] = if bad[i] == b'1' { b'2' } else { b'1' };
        match Telegram::parse(&bad) {
            Err(TelegramError::Crc { sent: 0xE47C, computed }) => assert_ne!(computed, 0xE47C),
            // a changed structural byte may be refused before the CRC: still never read
            Err(TelegramError::Truncated(_) | TelegramError::BadCrcDigits(_)) => {}
            other => panic!("byte {i}: {other:?}"),
        }
    }
}

/// CRCs of other telegrams, computed independently (a bitwise CRC-16/ARC in Python).
#[test]
fn the_crc_of_other_telegrams() {
    assert_eq!(crc16(SINGLE_PHASE.as_bytes()), 0x15A9);
    assert_eq!(crc16(THREE_PHASE.as_bytes()), 0x7410);
    assert!(Telegram::parse(&sealed(SINGLE_PHASE, "15A9")).is_ok());
    assert!(Telegram::parse(&sealed(THREE_PHASE, "7410")).is_ok());
}

#[tokio::test]
async fn a_feeding_in_single_phase_meter_reads_negative_power_and_no_missing_phase_is_a_fault() {
    let feed = meter(None, Duration::from_secs(10));
    gridshare_gateway::push::p1::read(&sealed(SINGLE_PHASE, "15A9")[..], &feed)
        .await
        .unwrap();
    let s = sample(&feed);
    assert_eq!(s.power_w, Some(W(-2_345)));
    assert_eq!(s.energy_in_wh, Some(Wh(412_117 + 318_904)));
    assert_eq!(s.energy_out_wh, Some(Wh(1_207_003 + 512_860)));
    // L2, L3 and the gas meter are absent from a single-phase meter without gas: not a fault
    assert_eq!((s.status, s.quality), (DeviceStatus::Ok, Quality::Good));
}

/// The line as a meter and a flaky cable give it: telegrams a second apart, noise between them,
/// one cut off by the next, one with a byte changed, one with a malformed value. Only the good
/// ones are read; each bad one is refused by name; the meter stays reachable.
#[tokio::test(start_paused = true)]
async fn a_stream_with_noise_cut_and_bad_telegrams_gives_only_the_good_ones_then_goes_stale() {
    let feed = meter(None, Duration::from_secs(10));
    let (mut line, stream) = tokio::io::duplex(64);
    let reader = {
        let feed = feed.clone();
        tokio::spawn(async move { gridshare_gateway::push::p1::read(stream, &feed).await })
    };
    let three = sealed(THREE_PHASE, "7410");
    let single = sealed(SINGLE_PHASE, "15A9");
    let mut changed = three.clone();
    changed[60] ^= 0x01;
    let malformed_body = THREE_PHASE.replace("(03.210*kW)", "(03.2x0*kW)");
    let malformed = sealed(&malformed_body, &format!("{:04X}", crc16(malformed_body.as_bytes())));
    let wrong_unit_body = THREE_PHASE.replace("(03.210*kW)", "(03.210*W)");
    let wrong_unit = sealed(&wrong_unit_body, &format!("{:04X}", crc16(wrong_unit_body.as_bytes())));

    async fn send(line: &mut tokio::io::DuplexStream, bytes: &[u8]) {
        line.write_all(bytes).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1_000)).await;
    }
    send(&mut line, b"\x00\xff noise from the cable being plugged in \r\n").await;
    send(&mut line, &three).await;
    let s = sample(&feed);
    assert_eq!((s.power_w, s.status), (Some(W(3_210)), DeviceStatus::Ok));
    assert_eq!(s.energy_in_wh, Some(Wh(4_711_008 + 5_120_250)));
    assert_eq!(feed.refused().0, 0);

    // cut off by the next telegram, which has a byte changed: both refused, the last good
    // values stand (they are a second old)
    send(&mut line, &single[..200]).await;
    send(&mut line, &changed).await;
    let (refused, last) = feed.refused();
    assert_eq!(refused, 2);
    assert!(last.unwrap().starts_with("CRC mismatch"));
    assert_eq!(sample(&feed).power_w, Some(W(3_210)));

    // a value that is not a number, then a unit that is not kW: the power is left out, never
    // zero, and the sample says so
    for bad in [&malformed, &wrong_unit] {
        send(&mut line, bad).await;
        let s = sample(&feed);
        assert_eq!(s.power_w, None);
        assert_eq!((s.status, s.quality), (DeviceStatus::Fault, Quality::Suspect));
        assert_eq!(
            s.energy_in_wh,
            Some(Wh(4_711_008 + 5_120_250)),
            "the other points still read"
        );
    }
    let why = feed.values().into_iter().find(|(n, _)| n == "power_drawn").unwrap().1;
    assert_eq!(
        why.unwrap_err().to_string(),
        "P1: 1-0:1.7.0: unit \"W\", expected \"kW\""
    );

    // good again
    send(&mut line, &noise_then(&single)).await;
    let s = sample(&feed);
    assert_eq!(
        (s.power_w, s.status, s.quality),
        (Some(W(-2_345)), DeviceStatus::Ok, Quality::Good)
    );

    // the meter stops: unreachable once its 10 s are up, while the reader waits on
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(sample(&feed).status, DeviceStatus::Unreachable);
    assert_eq!(sample(&feed).power_w, None);
    assert!(!reader.is_finished());
    drop(line);
    reader.await.unwrap().unwrap();
}

fn noise_then(telegram: &[u8]) -> Vec<u8> {
    let mut v = b"!!((\r\n0000".to_vec();
    v.extend_from_slice(telegram);
    v
}

#[test]
fn the_framer_reports_a_telegram_that_never_ends() {
    let mut f = Framer::default();
    let mut out = f.push(b"/XMX5LGBBFG1012463626\r\n\r\n");
    for _ in 0..400 {
        out.extend(f.push(b"1-0:1.8.1(004711.008*kWh)\r\n"));
    }
    assert!(out.iter().any(|r| matches!(r, Err(TelegramError::TooLong))), "{out:?}");
}

/// The P1 cable as the gateway opens it: a serial device by path, at 115200 8N1 (here the line
/// side of a pseudo-terminal whose other side the test writes as the meter would).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegrams_are_read_from_a_serial_line_opened_by_path() {
    use std::io::Write;
    let (mut meter_side, line) = serialport::TTYPort::pair().unwrap();
    let path = PathBuf::from(serialport::SerialPort::name(&line).unwrap());
    drop(line);
    let feed = meter(Some(path), Duration::from_secs(10));
    let readers = gridshare_gateway::push::start(vec![feed.device().clone()], "p1-test");
    let feed = readers.feeds[0].clone();
    let three = sealed(THREE_PHASE, "7410");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while sample(&feed).status != DeviceStatus::Ok {
        assert!(
            std::time::Instant::now() < deadline,
            "no telegram read: {:?}",
            feed.values()
        );
        // until the gateway has the line open, writes may fail or be lost: the meter goes on
        let _ = meter_side.write_all(&three);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(sample(&feed).power_w, Some(W(3_210)));
    assert_eq!(value(&feed, "power_drawn_l2"), 1_100.0);
}
