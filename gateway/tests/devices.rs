//! Device profiles and Modbus against the simulator over real TCP: every profile in `hardware/`
//! loads; a bad profile is named with its line and key; each profile's points read back as the
//! simulator's models have them, in batched requests; setpoints are written within limits and
//! refused outside them; link failures (timeouts, refused connections, silent peers) are kept
//! apart from device exceptions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::time::Duration;

use gridshare_domain::wire::DeviceKind;
use gridshare_gateway::config::{Device, DeviceConfig};
use gridshare_gateway::dr::write_value;
use gridshare_gateway::modbus::{Link, ModbusError, read_points};
use gridshare_gateway::profile::{Profile, ProfileError, Quantity, Table, WordOrder, WriteFunction, load_dir};
use gridshare_gateway::simulate::{Fault, Simulator};
use tokio_modbus::ExceptionCode;

fn hardware() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware")
}

fn profile(file: &str) -> Profile {
    Profile::load(&hardware().join(file)).unwrap()
}

#[test]
fn every_profile_in_hardware_loads() {
    let all = load_dir(&hardware()).unwrap();
    let kinds: Vec<DeviceKind> = all.iter().map(|(_, p)| p.device.kind).collect();
    for kind in [
        DeviceKind::GridMeter,
        DeviceKind::PvInverter,
        DeviceKind::Battery,
        DeviceKind::EvCharger,
    ] {
        assert!(kinds.contains(&kind), "a {kind:?} profile");
    }
    for (path, p) in &all {
        assert!(!p.points.is_empty(), "{}", path.display());
        assert!(
            p.quantity(Quantity::PowerW).is_some(),
            "{} reports power",
            path.display()
        );
    }
}

#[test]
fn a_bad_profile_is_named_with_its_line_and_key() {
    let path = Path::new("hardware/broken.toml");
    let text = "[device]\nname = \"x\"\nmanufacturer = \"y\"\nkind = \"grid_meter\"\n\n[[points]]\nname = \"p\"\ntable = \"input\"\naddress = 1\ntype = \"f16\"\nunit = \"W\"\n";
    let err = Profile::parse(path, text).unwrap_err().to_string();
    assert!(
        err.contains("hardware/broken.toml") && err.contains("line 10") && err.contains("f16"),
        "{err}"
    );
    let err = Profile::parse(path, &text.replace("f16", "f32").replace("unit =", "units ="))
        .unwrap_err()
        .to_string();
    assert!(err.contains("units") && err.contains("line 11"), "{err}");
    let writable_input = text.replace("f16", "f32") + "writable = { min = 0, max = 10 }\n";
    let err = Profile::parse(path, &writable_input).unwrap_err();
    assert!(
        matches!(err, ProfileError::Invalid { ref point, .. } if point == "p"),
        "{err}"
    );
    assert!(err.to_string().contains("only holding registers"), "{err}");
    let past_end = text.replace("f16", "f32").replace("address = 1", "address = 65535");
    assert!(
        Profile::parse(path, &past_end)
            .unwrap_err()
            .to_string()
            .contains("past register 65535")
    );
    // function 06 writes one register: a 32-bit setpoint cannot use it; 3 is no write function
    let holding = text.replace("f16", "f32").replace("\"input\"", "\"holding\"");
    let err = Profile::parse(
        path,
        &(holding.clone() + "writable = { min = 0, max = 10, function = 6 }\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("function 6 writes one register") && err.contains("takes 2"),
        "{err}"
    );
    let err = Profile::parse(path, &(holding + "writable = { min = 0, max = 10, function = 3 }\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("write function 3") && err.contains("line 12"), "{err}");
}

async fn start(sim: &Simulator) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sim = sim.clone();
    tokio::spawn(async move {
        sim.serve(listener, Duration::from_millis(50), 60.0, std::future::pending())
            .await
            .unwrap();
    });
    addr
}

fn link(addr: std::net::SocketAddr, unit: u8) -> Link {
    Link::new(addr, unit, Duration::from_millis(500), Duration::from_millis(5))
}

/// 2025-06-21 12:00 UTC: midsummer noon, the PV model at its peak.
const NOON: f64 = 1_750_507_200.0;

/// Every profile in `hardware/`, each at its own unit, is served by the simulator and read back
/// through the gateway: every point has a value and the power is the modelled one.
#[tokio::test]
async fn profiles_read_back_what_the_simulator_models() {
    let sim = Simulator::new(NOON);
    let all = load_dir(&hardware()).unwrap();
    assert!(all.len() >= 29, "{} profiles", all.len());
    let files: Vec<(u8, String, Profile)> = all
        .into_iter()
        .enumerate()
        .map(|(i, (path, p))| {
            let unit = u8::try_from(i + 1).unwrap();
            (unit, gridshare_gateway::profile::file_name(&path), p)
        })
        .collect();
    for (unit, _, p) in &files {
        sim.add(*unit, p.clone());
    }
    sim.step(1.0);
    let addr = start(&sim).await;
    for (unit, f, p) in &files {
        let values = read_points(&mut link(addr, *unit), p).await;
        assert_eq!(values.len(), p.points.len(), "{f}");
        for (name, v) in &values {
            assert!(matches!(v, Ok(Some(_))), "{f} {name}: {v:?}");
        }
        let get = |q: Quantity| {
            let name = &p.quantity(q).unwrap().name;
            values
                .iter()
                .find(|(n, _)| n == name)
                .unwrap()
                .1
                .clone()
                .unwrap()
                .unwrap()
        };
        let power = get(Quantity::PowerW);
        let modelled = sim.power_w(*unit).unwrap();
        // the model moves on while we read; within a few percent
        assert!(
            (power - modelled).abs() <= 0.05 * modelled.abs() + 50.0,
            "{f}: read {power} W, modelled {modelled} W"
        );
        if p.device.kind == DeviceKind::PvInverter {
            assert!(
                power > 2_000.0,
                "{f}: midsummer noon, the PV inverter produces {power} W"
            );
        }
        if p.device.kind == DeviceKind::GridMeter {
            // PV at its peak: the home exports, and a meter counting the other way round (a
            // negative scale) must still read it as negative
            assert!(power < 0.0, "{f}: the home exports at noon, read {power} W");
        }
    }
    let sunspec = files
        .iter()
        .find(|(_, f, _)| f == "sunspec-inverter-103.toml")
        .map(|(u, _, _)| *u)
        .unwrap();
    // SunSpec marker and model chain at 40000
    let mut l = link(addr, sunspec);
    let header = l.read(Table::Holding, 40_000, 4).await.unwrap();
    assert_eq!(header, vec![0x5375, 0x6e53, 1, 66]);
    assert_eq!(l.read(Table::Holding, 40_070, 1).await.unwrap(), vec![103]);
    // registers the SunSpec model leaves unimplemented read as the sentinel, never as zero
    assert_eq!(l.read(Table::Holding, 40_080, 1).await.unwrap(), vec![0x8000]);
}

#[tokio::test]
async fn setpoints_are_written_within_limits_and_refused_outside_them() {
    let sim = Simulator::new(NOON);
    sim.add(3, profile("generic-battery-inverter.toml"));
    sim.add(4, profile("generic-ev-charger.toml"));
    let addr = start(&sim).await;
    let battery = profile("generic-battery-inverter.toml");
    let setpoint = battery.quantity(Quantity::BatterySetpointW).unwrap();
    let mut l = link(addr, 3);
    let words = setpoint.ty.encode(-2_500.0, WordOrder::Big).unwrap();
    l.write(setpoint.address, &words).await.unwrap();
    let back = l.read(Table::Holding, setpoint.address, 2).await.unwrap();
    assert_eq!(setpoint.ty.decode(&back, WordOrder::Big), Some(-2_500.0), "read back");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sim.power_w(3), Some(-2_500.0), "the battery follows its setpoint");

    let too_much = setpoint.ty.encode(9_000.0, WordOrder::Big).unwrap();
    let err = l.write(setpoint.address, &too_much).await.unwrap_err();
    assert!(
        matches!(
            err,
            ModbusError::Exception {
                code: ExceptionCode::IllegalDataValue,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_link());
    let soc = battery.quantity(Quantity::SocPermille).unwrap();
    let err = l.write(soc.address, &[500]).await.unwrap_err();
    assert!(
        matches!(
            err,
            ModbusError::Exception {
                code: ExceptionCode::IllegalDataAddress,
                ..
            }
        ),
        "a measured value is not writable: {err}"
    );

    // the EV charger's current limit, 0.1 A per count
    let ev = profile("generic-ev-charger.toml");
    let limit = ev.quantity(Quantity::EvCurrentLimitA).unwrap();
    assert!(limit.writable.unwrap().trips_on_zero);
    let mut l = link(addr, 4);
    l.write(limit.address, &[100]).await.unwrap();
    assert_eq!(l.read(Table::Holding, limit.address, 1).await.unwrap(), vec![100]);
    assert!(l.write(limit.address, &[0]).await.is_err(), "below 6 A is refused");
}

/// A charger that takes its current only with function 06 (Phoenix Contact's controller; the
/// simulator refuses function 16 there as such a device would): the gateway's demand-response
/// write uses 06 and confirms by read-back; a write with 16 is the device's exception.
#[tokio::test]
async fn a_setpoint_written_with_function_06_is_written_and_read_back() {
    let sim = Simulator::new(NOON);
    sim.add(255, profile("phoenix-ev-charge-control.toml"));
    let addr = start(&sim).await;
    let phoenix = profile("phoenix-ev-charge-control.toml");
    let device = Device {
        config: DeviceConfig {
            name: "wallbox".into(),
            profile: "phoenix-ev-charge-control.toml".into(),
            host: Some(addr.ip().to_string()),
            port: addr.port(),
            serial: None,
            baud: 9_600,
            parity: Default::default(),
            unit: Some(255),
            timeout_ms: 500,
        },
        profile: phoenix.clone(),
    };
    let current = phoenix.quantity(Quantity::EvCurrentLimitA).unwrap();
    assert_eq!(current.writable.unwrap().function, WriteFunction::Single);
    let mut l = link(addr, 255);
    assert!(
        write_value(&mut l, &device, current, 10.0).await.unwrap(),
        "confirmed by read-back"
    );
    assert_eq!(l.read(Table::Holding, 528, 1).await.unwrap(), vec![10]);
    let err = l.write(528, &[12]).await.unwrap_err();
    assert!(
        matches!(
            err,
            ModbusError::Exception {
                code: ExceptionCode::IllegalFunction,
                ..
            }
        ),
        "function 16 refused: {err}"
    );
    assert_eq!(l.read(Table::Holding, 528, 1).await.unwrap(), vec![10], "unchanged");
    assert!(write_value(&mut l, &device, current, 16.0).await.unwrap());
    // below its limits the device refuses, with function 06 too
    let err = l.write_single(528, 3).await.unwrap_err();
    assert!(
        matches!(
            err,
            ModbusError::Exception {
                code: ExceptionCode::IllegalDataValue,
                ..
            }
        ),
        "below 6 A is refused: {err}"
    );
    assert_eq!(l.read(Table::Holding, 528, 1).await.unwrap(), vec![16]);
}

#[tokio::test]
async fn link_failures_are_kept_apart_from_device_exceptions() {
    let sim = Simulator::new(NOON);
    sim.add(1, profile("eastron-sdm630.toml"));
    let addr = start(&sim).await;
    let mut l = link(addr, 1);
    assert!(l.read(Table::Input, 0, 2).await.is_ok());

    // a register the device does not have, and a unit that is not there
    let err = l.read(Table::Input, 1_000, 2).await.unwrap_err();
    assert!(
        matches!(
            err,
            ModbusError::Exception {
                code: ExceptionCode::IllegalDataAddress,
                ..
            }
        ),
        "{err}"
    );
    let err = link(addr, 9).read(Table::Input, 0, 2).await.unwrap_err();
    assert!(!err.is_link(), "{err}");

    // a device that stops answering: a link error within the timeout, then it recovers
    sim.set_fault(Fault::Timeout);
    let started = std::time::Instant::now();
    let err = l.read(Table::Input, 0, 2).await.unwrap_err();
    assert!(err.is_link() && err.to_string().contains("no answer"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    sim.set_fault(Fault::None);
    assert!(l.read(Table::Input, 0, 2).await.is_ok(), "reconnects after a timeout");

    // a device failing every request
    sim.set_fault(Fault::Exception(ExceptionCode::ServerDeviceFailure));
    let err = l.read(Table::Input, 0, 2).await.unwrap_err();
    assert!(
        matches!(
            err,
            ModbusError::Exception {
                code: ExceptionCode::ServerDeviceFailure,
                ..
            }
        ),
        "{err}"
    );
    // stuck values: the registers stop changing while the model goes on
    sim.set_fault(Fault::Stuck);
    let before = l.read(Table::Input, 72, 2).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(l.read(Table::Input, 72, 2).await.unwrap(), before);
    sim.set_fault(Fault::None);

    // a peer that accepts and never answers, and a port nobody listens on
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let err = link(silent_addr, 1).read(Table::Input, 0, 2).await.unwrap_err();
    assert!(err.is_link(), "{err}");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = link(closed, 1).read(Table::Input, 0, 2).await.unwrap_err();
    assert!(err.is_link() && err.to_string().contains("connect"), "{err}");
}

#[tokio::test]
async fn sunspec_devices_are_discovered_and_read_with_their_scale_factors() {
    use gridshare_gateway::sunspec::{discover, read_inverter};
    let sim = Simulator::new(NOON);
    sim.add(1, profile("eastron-sdm630.toml"));
    sim.add(2, profile("sunspec-inverter-103.toml"));
    sim.step(1.0);
    let addr = start(&sim).await;
    let d = discover(&mut link(addr, 2)).await.unwrap().expect("a SunSpec device");
    assert_eq!(d.base, 40_000);
    assert_eq!(d.models.iter().map(|m| m.id).collect::<Vec<_>>(), vec![1, 103]);
    assert_eq!(d.manufacturer.as_deref(), Some("any SunSpec"));
    assert_eq!(d.serial.as_deref(), Some("SIM-002"));
    let v = read_inverter(&mut link(addr, 2), &d).await.unwrap().unwrap();
    let modelled = sim.power_w(2).unwrap();
    let power = v.power_w.unwrap();
    assert!(
        (power - modelled).abs() <= 0.05 * modelled + 50.0,
        "{power} vs {modelled}"
    );
    assert_eq!(v.state, Some(4), "producing: MPPT");
    assert_eq!(v.frequency_hz, None, "not implemented here: absent, not zero");
    // the meter is not SunSpec: it answers, with exceptions at the SunSpec bases
    assert_eq!(discover(&mut link(addr, 1)).await.unwrap(), None);
}

/// `gateway check`'s work: every configured point read once; a device that answers gives
/// values and no problem, a unit nobody answers for gives a problem on every point, a host that
/// does not resolve is one row naming it, and a value outside its limits is flagged.
#[tokio::test]
async fn the_installer_check_reads_every_point_and_names_what_failed() {
    use gridshare_gateway::check::{check_devices, out_of_range};
    use gridshare_gateway::config::{Device, DeviceConfig};
    let sim = Simulator::new(NOON);
    sim.add(1, profile("eastron-sdm630.toml"));
    sim.step(1.0);
    let addr = start(&sim).await;
    let device = |name: &str, host: &str, unit: u8| Device {
        config: DeviceConfig {
            name: name.into(),
            profile: "eastron-sdm630.toml".into(),
            host: Some(host.into()),
            port: addr.port(),
            serial: None,
            baud: 9_600,
            parity: Default::default(),
            unit: Some(unit),
            timeout_ms: 500,
        },
        profile: profile("eastron-sdm630.toml"),
    };
    let rows = check_devices(&[
        device("grid", "127.0.0.1", 1),
        device("absent", "127.0.0.1", 9),
        device("nowhere", "no-such-host.invalid", 1),
    ])
    .await;
    let points = profile("eastron-sdm630.toml").points.len();
    let of = |name: &str| rows.iter().filter(|r| r.device == name).collect::<Vec<_>>();
    assert_eq!(of("grid").len(), points, "{rows:?}");
    assert!(
        of("grid").iter().all(|r| r.problem.is_none() && r.value.is_some()),
        "{rows:?}"
    );
    assert_eq!(of("absent").len(), points, "{rows:?}");
    assert!(of("absent").iter().all(|r| r.problem.is_some()), "{rows:?}");
    let nowhere = of("nowhere");
    assert_eq!(nowhere.len(), 1, "{rows:?}");
    let problem = nowhere[0].problem.as_deref().unwrap_or("");
    assert!(
        problem.contains("device \"nowhere\"") && problem.contains("no-such-host.invalid"),
        "{problem}"
    );
    let setpoint = profile("generic-battery-inverter.toml");
    let p = setpoint.quantity(Quantity::BatterySetpointW).unwrap();
    assert!(out_of_range(p, 1e9).unwrap().contains("outside its limits"));
    assert_eq!(out_of_range(p, 0.0), None);
}
