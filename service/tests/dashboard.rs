//! The dashboard end to end in headless Chromium: `gridshare demo` seeds a neighbourhood and
//! trades, then `e2e/dashboard.mjs` (playwright-core driving Debian's chromium) logs in as a
//! homeowner (server-rendered and hydrated page, phone layout, 403 for another home) and as a
//! trader (an order placed, seen in the book and cancelled; an API key made, its secret shown
//! once) and as the grid operator (a demand-response event called on a transformer, its homes
//! previewed, their gateways' acknowledgements seen) and as an installer (their gateways online
//! with their devices, a new one commissioned, a duplicate refused), and saves a screenshot of each page under
//! `test-output/dashboard/`.
//!
//! Needs the dashboard's browser part (`scripts/build-ui.sh`), Node with `e2e/node_modules`
//! (`npm ci` in `e2e/`) and chromium; `scripts/setup.sh` and `scripts/test.sh` provide them.
//! Outside CI a missing piece skips the test; with `CI=true` it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gridshare_testkit::Killed;

const BIN: &str = env!("CARGO_BIN_EXE_gridshare");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The pieces the browser test needs, or why it cannot run.
fn prerequisites() -> Result<PathBuf, String> {
    let root = root();
    if !root.join("ui/pkg/gridshare_ui_bg.wasm").exists() {
        return Err("the dashboard's browser part is not built (scripts/build-ui.sh)".into());
    }
    if !root.join("e2e/node_modules/playwright-core").exists() {
        return Err("playwright-core is not installed (npm ci in e2e/)".into());
    }
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.exists() {
        return Err(format!(
            "no chromium at {} (apt-get install chromium)",
            chromium.display()
        ));
    }
    Ok(chromium)
}

fn get(port: u16, path: &str, key: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

#[test]
fn the_dashboard_works_in_a_real_browser() {
    let chromium = match prerequisites() {
        Ok(c) => c,
        Err(why) if gridshare_testkit::in_ci() => panic!("{why}: required under CI=true"),
        Err(why) => {
            eprintln!("skipping: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let port = gridshare_testkit::free_port().unwrap();
    let _demo = Killed(
        Command::new(BIN)
            .arg("--data-dir")
            .arg(&data)
            .args(["demo", "--homes", "4", "--speed", "300", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    // wait until home 1 has traded
    let deadline = Instant::now() + Duration::from_secs(180);
    let key = loop {
        if let Ok(text) = std::fs::read_to_string(data.join("demo.json"))
            && TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            break v["homes"][0]["api_key"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "the demo comes up");
        std::thread::sleep(Duration::from_millis(100));
    };
    // and an hour of market time has passed, so the day's power chart has points
    while !get(port, "/api/v1/trades", &key).contains("trade_id")
        || get(port, "/api/v1/markets/1/results", &key)
            .matches("clearing_price")
            .count()
            < 4
    {
        assert!(Instant::now() < deadline, "home 1 trades within 3 minutes");
        std::thread::sleep(Duration::from_millis(250));
    }
    let out = root().join("test-output/dashboard");
    let status = Command::new("node")
        .arg(root().join("e2e/dashboard.mjs"))
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(&out)
        .env("CHROMIUM", &chromium)
        .status()
        .expect("node runs");
    assert!(
        status.success(),
        "browser checks failed (see above; screenshots in {})",
        out.display()
    );
    for png in [
        "homeowner.png",
        "homeowner-phone.png",
        "forbidden.png",
        "login.png",
        "trader.png",
        "trader-key.png",
        "operator.png",
        "operator-event.png",
        "installer.png",
    ] {
        assert!(out.join(png).exists(), "{png} saved");
    }
}
