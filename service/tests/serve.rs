//! The `gridshare` binary for real: administer participants and keys, serve the API, open books
//! ahead on its own, stop cleanly on SIGTERM and resume from its journal; clear errors for a
//! taken port and a bad config file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

mod common;
use common::{BIN, Server, admin, http, serve};

fn metrics_text(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    r
}

fn terminate(mut server: Server) {
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(status.success(), "clean exit on SIGTERM: {status}");
            return;
        }
        assert!(Instant::now() < deadline, "no exit within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serves_trades_stops_cleanly_and_resumes_from_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("gridshare.toml");
    std::fs::write(&config, "[market]\nzones = [1]\nhorizon = 4\n").unwrap();
    admin(
        &data,
        &[
            "participant",
            "--id",
            "1",
            "--name",
            "Ada's house",
            "--role",
            "homeowner",
            "--node",
            "1",
        ],
    );
    admin(
        &data,
        &[
            "participant",
            "--id",
            "2",
            "--name",
            "Bo's house",
            "--role",
            "homeowner",
            "--node",
            "2",
        ],
    );
    let seller = admin(&data, &["api-key", "--participant", "1", "--scopes", "read,trade"]);
    let mut user = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .args(["user", "--username", "ada", "--participant", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    user.stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    assert!(user.wait().unwrap().success());
    let buyer = admin(
        &data,
        &[
            "api-key",
            "--participant",
            "2",
            "--scopes",
            "read,trade",
            "--label",
            "bot",
        ],
    );
    assert!(seller.starts_with("gsk_"), "{seller}");

    let port = gridshare_testkit::free_port().unwrap();
    let server = serve(&data, &config, port);
    let (st, session) = http(
        port,
        "POST",
        "/api/v1/session",
        "",
        Some(json!({"username": "ada", "password": "a long enough password"})),
    );
    assert_eq!((st, session["role"].as_str()), (200, Some("homeowner")), "{session}");
    let (st, books) = http(port, "GET", "/api/v1/markets", &seller, None);
    assert_eq!(st, 200, "{books}");
    let books = books.as_array().unwrap();
    assert_eq!(books.len(), 4, "the scheduler keeps 4 intervals open: {books:?}");
    assert!(books.iter().all(|b| b["open"] == true));
    let interval = books[3]["interval"].as_str().unwrap().to_owned();
    let order = |side: &str, qty: i64| json!({"zone": 1, "interval": interval, "side": side, "quantity_wh": qty, "price": 110_000});
    let (st, ack) = http(port, "POST", "/api/v1/orders", &seller, Some(order("sell", 900)));
    assert_eq!(st, 201, "{ack}");
    let (st, ack) = http(port, "POST", "/api/v1/orders", &buyer, Some(order("buy", 300)));
    assert_eq!((st, ack["status"].as_str()), (201, Some("filled")), "{ack}");
    terminate(server);

    let server = serve(&data, &config, port);
    let (_, mine) = http(port, "GET", "/api/v1/orders", &seller, None);
    assert_eq!(mine[0]["filled_wh"], 300, "{mine}");
    let (_, depth) = http(
        port,
        "GET",
        &format!("/api/v1/markets/1/depth?interval={interval}"),
        &buyer,
        None,
    );
    assert_eq!(
        depth["asks"],
        json!([{"price": 110_000, "quantity_wh": 600}]),
        "the book came back"
    );
    let (_, trades) = http(port, "GET", "/api/v1/trades", &buyer, None);
    assert_eq!(
        trades.as_array().unwrap().len(),
        1,
        "no trade lost or repeated: {trades}"
    );
    let (st, ack) = http(port, "POST", "/api/v1/orders", &buyer, Some(order("buy", 100)));
    assert_eq!((st, ack["order_id"].as_u64()), (201, Some(3)), "{ack}");

    // a second server on the same port says so
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path().join("other"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--mqtt-listen",
            &format!("127.0.0.1:{}", gridshare_testkit::free_port().unwrap()),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{err}");
    terminate(server);
}

#[test]
fn a_bad_config_file_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[market]\nzones = [1]\nhorizon = \"all\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("line 3") && err.contains("horizon"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["--config", "/nonexistent.toml", "check-config"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.toml"));
    let help = Command::new(BIN).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--listen") && help.contains("GRIDSHARE_LISTEN"), "{help}");
}

#[test]
fn trades_settle_on_the_in_process_chain_with_a_proof() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("fast.toml");
    // 900× real time: a 15-minute interval passes in 1 s, its metering window in another
    std::fs::write(
        &config,
        "[market]\nzones = [1]\nhorizon = 6\nspeed = 900.0\n[settlement]\nevery_ms = 200\n",
    )
    .unwrap();
    let saved = admin(
        &data,
        &[
            "participant",
            "--id",
            "1",
            "--name",
            "A",
            "--role",
            "homeowner",
            "--node",
            "1",
        ],
    );
    admin(
        &data,
        &[
            "participant",
            "--id",
            "2",
            "--name",
            "B",
            "--role",
            "homeowner",
            "--node",
            "2",
        ],
    );
    let seller = admin(&data, &["api-key", "--participant", "1", "--scopes", "read,trade"]);
    let buyer = admin(&data, &["api-key", "--participant", "2", "--scopes", "read,trade"]);
    // Home A has no wallet: the service made its custody seed (its owner's only) and its custodial
    // account, which the CLI prints, the balance below names, and settlement would pay
    let custodial = admin(&data, &["custody", "address", "--participant", "1"]);
    let custodial = custodial.trim().to_owned();
    assert!(custodial.starts_with("0x") && custodial.len() == 42, "{custodial}");
    assert!(saved.contains(&custodial), "{saved}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("custody.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let port = gridshare_testkit::free_port().unwrap();
    let server = serve(&data, &config, port);

    let interval = common::furthest_open_interval(port, &seller);
    let order =
        |side: &str| json!({"zone": 1, "interval": interval, "side": side, "quantity_wh": 250, "price": 100_000});
    let (st, ack) = http(port, "POST", "/api/v1/orders", &seller, Some(order("sell")));
    assert_eq!(st, 201, "{ack}");
    let (st, ack) = http(port, "POST", "/api/v1/orders", &buyer, Some(order("buy")));
    assert_eq!((st, ack["status"].as_str()), (201, Some("filled")), "{ack}");
    let trade_id = ack["trades"][0]["trade_id"].as_u64().unwrap();
    // the recorder writes the trade a moment after the engine made it
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (st, bal) = http(port, "GET", "/api/v1/balance", &seller, None);
        assert_eq!(st, 200, "{bal}");
        assert_eq!(
            bal["account"].as_str().map(str::to_ascii_lowercase).as_deref(),
            Some(custodial.as_str()),
            "{bal}"
        );
        let total = bal["settled"].as_i64().unwrap() + bal["pending"].as_i64().unwrap();
        if total == 25_000 {
            break;
        }
        assert!(
            total == 0 && Instant::now() < deadline,
            "250 Wh at 0.1/kWh, settled or pending: {bal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    let batch = loop {
        let (_, batches) = http(port, "GET", "/api/v1/settlement/batches", &buyer, None);
        if let Some(b) = batches
            .as_array()
            .and_then(|a| a.iter().find(|b| b["status"] == "confirmed"))
        {
            break b.clone();
        }
        assert!(Instant::now() < deadline, "no confirmed batch within 60 s: {batches}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(batch["batch_id"], 1);
    assert_eq!(batch["trades"], 1);
    assert_eq!(batch["transactions"][0]["status"], "confirmed", "{batch}");

    for (key, want) in [(&seller, 25_000), (&buyer, -25_000)] {
        let (_, bal) = http(port, "GET", "/api/v1/balance", key, None);
        assert_eq!(
            (
                bal["settled"].as_i64(),
                bal["on_chain"].as_i64(),
                bal["pending"].as_i64(),
                bal["batches"].as_i64()
            ),
            (Some(want), Some(want), Some(0), Some(1)),
            "ledger and vault agree: {bal}"
        );
    }
    let (st, proof) = http(port, "GET", &format!("/api/v1/trades/{trade_id}/proof"), &seller, None);
    assert_eq!(st, 200, "{proof}");
    assert_eq!(proof["root"], batch["trades_root"]);
    assert_eq!(proof["trade"]["energy_wh"], 250);
    assert!(data.join("deployment.json").exists() && data.join("chain.log").exists());
    let metrics = metrics_text(port);
    for line in [
        "gridshare_trades_total 1",
        "gridshare_traded_wh_total 250",
        "gridshare_orders_total{result=\"accepted\"} 2",
        "gridshare_settlement_batches_total{status=\"confirmed\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} missing from:\n{metrics}");
    }

    // after a restart the chain and the batches are the same: nothing settles twice
    terminate(server);
    let server = serve(&data, &config, port);
    std::thread::sleep(Duration::from_millis(600));
    let (_, batches) = http(port, "GET", "/api/v1/settlement/batches", &buyer, None);
    assert_eq!(batches.as_array().unwrap().len(), 1, "{batches}");
    let (st, again) = http(port, "GET", &format!("/api/v1/trades/{trade_id}/proof"), &buyer, None);
    assert_eq!((st, &again["root"]), (200, &proof["root"]));
    terminate(server);
}
