//! The `gateway` binary for real: `simulate` serves profiles, `read`, `points` and `profiles`
//! answer an installer as tables or JSON, and a device that is not there is a clear error with a
//! non-zero exit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use gridshare_testkit::Killed;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gateway");

fn hardware(file: &str) -> String {
    format!("{}/../hardware/{file}", env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn gateway(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts `gateway simulate` on a free port and waits until it listens; tries another port when
/// the simulator exits instead (a port picked free can be taken before the simulator binds it, and
/// a connect to a port nobody listens on can even reach itself on Linux, which looked like a
/// listener and made this test flaky).
fn simulator(extra: &[String]) -> (Killed, u16) {
    for _ in 0..5 {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["simulate".to_owned(), "--listen".to_owned(), listen.clone()];
        args.extend(extra.iter().cloned());
        let mut sim = Killed(
            Command::new(BIN)
                .args(&args)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if sim.0.try_wait().unwrap().is_some() {
                break; // it could not listen there: another port
            }
            if std::net::TcpStream::connect(&listen).is_ok() {
                // still running a moment later: it is the simulator that answered
                std::thread::sleep(Duration::from_millis(100));
                if sim.0.try_wait().unwrap().is_none() {
                    return (sim, port);
                }
                break;
            }
            assert!(Instant::now() < deadline, "simulator listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("the simulator did not start on any of 5 ports");
}

#[test]
fn installer_tools_against_the_simulator() {
    let meter = format!("1={}", hardware("eastron-sdm630.toml"));
    let pv = format!("2={}", hardware("sunspec-inverter-103.toml"));
    let (_sim, port) = simulator(&[
        "--device".into(),
        meter,
        "--device".into(),
        pv,
        "--exception-unit".into(),
        "3=4".into(),
    ]);
    let p = port.to_string();

    let (ok, out, err) = gateway(&[
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        &p,
        "--unit",
        "1",
        "--addr",
        "0",
        "--count",
        "2",
        "--type",
        "input",
        "--format",
        "f32",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("230"), "phase voltage: {out}");

    let (ok, out, err) = gateway(&[
        "points",
        "--host",
        "127.0.0.1",
        "--port",
        &p,
        "--unit",
        "1",
        "--profile",
        &hardware("eastron-sdm630.toml"),
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["point"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"total_power") && names.contains(&"import_energy"),
        "{out}"
    );
    assert!(v.as_array().unwrap().iter().all(|p| p["value"].is_number()), "{out}");

    let (ok, out, err) = gateway(&[
        "scan",
        "--host",
        "127.0.0.1",
        "--ports",
        &p,
        "--units",
        "1-4",
        "--profiles",
        &format!("{}/../hardware", env!("CARGO_MANIFEST_DIR")),
        "--json",
    ]);
    assert!(ok, "{err}");
    let found: serde_json::Value = serde_json::from_str(&out).unwrap();
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 3, "units 1 to 3, nothing at 4: {out}");
    // identified by a profile whose points all read: the Eastron meters share one register map,
    // so the scan names the first of them that fits (hardware/README.md) and lists the others
    // that fit too, the SDM630 (what unit 1 is) among them
    assert_eq!(found[0]["status"], "profile", "{out}");
    assert_eq!(found[0]["manufacturer"], "Eastron", "{out}");
    let mut fits = vec![found[0]["profile"].as_str().unwrap()];
    fits.extend(found[0]["also"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()));
    assert!(fits.iter().all(|f| f.starts_with("eastron-sdm")), "{out}");
    assert!(fits.contains(&"eastron-sdm630.toml"), "{out}");
    assert_eq!(
        (found[1]["sunspec"].as_bool(), found[1]["models"].clone()),
        (Some(true), serde_json::json!([1, 103]))
    );
    assert_eq!(
        (
            found[2]["unit"].as_u64(),
            found[2]["status"].as_str(),
            found[2]["exceptions"].clone()
        ),
        (
            Some(3),
            Some("exceptions-only"),
            serde_json::json!(["ServerDeviceFailure"])
        ),
        "{out}"
    );

    // the simulated inverter's SunSpec models, decoded by their layouts
    let (ok, out, err) = gateway(&["sunspec", "--host", "127.0.0.1", "--port", &p, "--unit", "2", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["chain"], serde_json::json!([1, 103]), "{out}");
    let inverter = &v["models"][1];
    assert_eq!(inverter["id"], 103, "{out}");
    let watts = inverter["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == "W")
        .unwrap();
    assert!(watts["value"].is_number() && watts["units"] == "W", "{watts}");
    let (ok, out, err) = gateway(&["sunspec", "--host", "127.0.0.1", "--port", &p, "--unit", "2"]);
    assert!(ok && out.contains("model 103") && out.contains("absent"), "{out}{err}");
    let (ok, _, err) = gateway(&["sunspec", "--host", "127.0.0.1", "--port", &p, "--unit", "1"]);
    assert!(!ok && err.contains("no SunSpec marker"), "{err}");
    // the meter refuses holding registers it does not have: the exception is named
    assert!(err.contains("Modbus exception: IllegalDataAddress"), "{err}");
    let (ok, _, err) = gateway(&[
        "sunspec",
        "--host",
        "127.0.0.1",
        "--port",
        &p,
        "--unit",
        "2",
        "--model",
        "802",
    ]);
    assert!(!ok && err.contains("model 802 is not on this device"), "{err}");

    let (ok, out, _) = gateway(&[
        "profiles",
        "--dir",
        &format!("{}/../hardware", env!("CARGO_MANIFEST_DIR")),
    ]);
    assert!(
        ok && out.contains("eastron-sdm630.toml") && out.contains("grid_meter"),
        "{out}"
    );

    // a unit that is not there, and a port nobody listens on
    let (ok, _, err) = gateway(&[
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        &p,
        "--unit",
        "9",
        "--addr",
        "0",
    ]);
    assert!(!ok && err.contains("unit 9") && err.contains("exception"), "{err}");
    let closed = free_port().to_string();
    let (ok, _, err) = gateway(&[
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        &closed,
        "--addr",
        "0",
        "--timeout-ms",
        "300",
    ]);
    assert!(!ok && err.contains("connect"), "{err}");
    let (ok, _, err) = gateway(&[
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        &p,
        "--addr",
        "0",
        "--count",
        "200",
    ]);
    assert!(!ok && err.contains("--count"), "{err}");
}

/// The README's supported-hardware table is what `gateway profiles --markdown` makes of
/// `hardware/`: change a profile, regenerate the table.
#[test]
fn the_readme_lists_every_profile() {
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    let (ok, table, err) = gateway(&["profiles", "--dir", &format!("{root}/hardware"), "--markdown"]);
    assert!(ok, "{err}");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let begin = readme.find("<!-- hardware table: begin -->\n").expect("begin marker") + 31;
    let end = readme.find("\n<!-- hardware table: end -->").expect("end marker");
    assert_eq!(
        readme[begin..end].trim(),
        table.trim(),
        "regenerate the README's table with `gateway profiles --markdown`"
    );
}
