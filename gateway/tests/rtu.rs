//! Modbus RTU over a serial line: the simulator serves a multi-drop bus on one end of a
//! pseudo-terminal pair, and the gateway opens the other end by path as it would an RS-485
//! adapter. Two units share the line (their requests take turns on one bus), a unit that is not on
//! the line is a link failure (no answer), and the installer's `read` and `scan` work over it.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gridshare_gateway::modbus::{Bus, Endpoint, ModbusError, Parity, read_points};
use gridshare_gateway::profile::{Profile, Quantity, Table};
use gridshare_gateway::simulate::{Pty, Simulator};

fn hardware() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware")
}

fn profile(file: &str) -> Profile {
    Profile::load(&hardware().join(file)).unwrap()
}

/// 2025-06-21 12:00 UTC.
const NOON: f64 = 1_750_507_200.0;

/// A simulated RS-485 line with an SDM630 on unit 1 and a battery inverter on unit 2; returns
/// the path to open.
fn line(rt: &tokio::runtime::Handle) -> (Simulator, PathBuf) {
    let sim = Simulator::new(NOON);
    sim.add(1, profile("eastron-sdm630.toml"));
    sim.add(2, profile("generic-battery-inverter.toml"));
    sim.step(1.0);
    let _guard = rt.enter();
    let pty = Pty::open().unwrap();
    let path = pty.path().to_owned();
    let serving = sim.clone();
    rt.spawn(async move {
        serving
            .serve_pty(pty, Duration::from_millis(50), 1.0, std::future::pending())
            .await
            .unwrap();
    });
    (sim, path)
}

fn endpoint(path: &Path) -> Endpoint {
    Endpoint::Serial {
        path: path.to_owned(),
        baud: 19_200,
        parity: Parity::None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_units_share_one_rtu_line_and_a_missing_unit_is_a_link_failure() {
    let (sim, path) = line(&tokio::runtime::Handle::current());
    let bus = Bus::new(endpoint(&path), Duration::from_millis(5));
    let meter = profile("eastron-sdm630.toml");
    let battery = profile("generic-battery-inverter.toml");

    // both units polled at once: their requests take turns on the one line
    let (mut a, mut b) = (
        bus.link(1, Duration::from_millis(500)),
        bus.link(2, Duration::from_millis(500)),
    );
    let (m, bt) = tokio::join!(read_points(&mut a, &meter), read_points(&mut b, &battery));
    for (name, v) in m.iter().chain(&bt) {
        assert!(matches!(v, Ok(Some(_))), "{name}: {v:?}");
    }
    let soc_name = &battery.quantity(Quantity::SocPermille).unwrap().name;
    let soc = bt
        .iter()
        .find(|(n, _)| n == soc_name)
        .unwrap()
        .1
        .clone()
        .unwrap()
        .unwrap();
    assert!((0.0..=1000.0).contains(&soc), "soc {soc}");
    let power_name = &battery.quantity(Quantity::PowerW).unwrap().name;
    let power = bt
        .iter()
        .find(|(n, _)| n == power_name)
        .unwrap()
        .1
        .clone()
        .unwrap()
        .unwrap();
    let modelled = sim.power_w(2).unwrap();
    assert!(
        (power - modelled).abs() <= 50.0 + modelled.abs() * 0.05,
        "{power} vs {modelled}"
    );

    // a write over RTU, read back
    let setpoint = battery
        .points
        .iter()
        .find(|p| p.writable.is_some() && p.quantity == Some(Quantity::BatterySetpointW))
        .expect("the battery profile has a power setpoint");
    let words = [0xffff, (-1_500i32 as u32 & 0xffff) as u16]; // i32, high word first
    b.write(setpoint.address, &words).await.unwrap();
    assert_eq!(b.read(Table::Holding, setpoint.address, 2).await.unwrap(), words);

    // unit 9 is not on the line: silence, reported as the link's failure, not the device's
    let mut missing = bus.link(9, Duration::from_millis(200));
    let err = missing.read(Table::Holding, 0, 1).await.unwrap_err();
    assert!(matches!(err, ModbusError::Link { unit: 9, .. }), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    // and the line still works for the others afterwards
    assert!(read_points(&mut a, &meter).await.iter().all(|(_, v)| v.is_ok()));

    // a serial device that does not exist is named
    let mut none = Bus::new(endpoint(Path::new("/dev/ttyNOPE9")), Duration::ZERO).link(1, Duration::from_millis(200));
    let err = none.read(Table::Input, 0, 2).await.unwrap_err();
    assert!(err.is_link() && err.to_string().contains("/dev/ttyNOPE9"), "{err}");
}

#[test]
fn installer_tools_read_and_scan_over_a_serial_line() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (_sim, path) = line(rt.handle());
    let gateway = env!("CARGO_BIN_EXE_gateway");
    let serial = path.to_str().unwrap();

    let out = Command::new(gateway)
        .args(["read", "--serial", serial, "--baud", "19200", "--unit", "1"])
        .args([
            "--addr", "52", "--count", "2", "--type", "input", "--format", "f32", "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["address"], 52);

    let out = Command::new(gateway)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(["scan", "--serial", serial, "--baud", "19200", "--units", "1-3"])
        .args(["--timeout-ms", "200", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let units: Vec<u64> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["unit"].as_u64().unwrap())
        .collect();
    assert_eq!(units, vec![1, 2], "{found}");
    // an Eastron map: the models share one, so the scan cannot name the model (hardware/README.md)
    assert!(
        found[0]["profile"].as_str().unwrap().starts_with("eastron-sdm"),
        "{found}"
    );
    assert_eq!(found[1]["profile"], "generic-battery-inverter.toml", "{found}");

    // --host and --serial together are refused
    let out = Command::new(gateway)
        .args(["read", "--host", "127.0.0.1", "--serial", serial, "--addr", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--serial"));
}
