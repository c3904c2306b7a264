//! The demo for real: `gridshare demo` runs a small neighbourhood headless for a few accelerated
//! intervals, and the API shows that it works as a market — trades happened, every interval
//! whose gate closed has its result, every settlement batch is confirmed on the in-process chain
//! and moves no money out of nowhere (its deltas sum to zero), and each home's balance on chain
//! equals the settlement ledger. Stopped (SIGTERM) and started again on the same data directory,
//! it resumes: nothing settled before is lost or settled again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_gridshare");
const INTERVAL_MS: i64 = 15 * 60_000;

fn http(port: u16, path: &str, key: &str) -> (u16, Value) {
    common::http(port, "GET", path, key, None)
}

struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path, port: u16) -> Demo {
    Demo(
        Command::new(BIN)
            .arg("--data-dir")
            .arg(dir)
            .args(["demo", "--homes", "6", "--speed", "300", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    )
}

fn stop(mut demo: Demo) {
    let pid = demo.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = demo.0.try_wait().unwrap() {
            assert!(status.success(), "the demo stops cleanly: {status}");
            return;
        }
        assert!(Instant::now() < deadline, "the demo stops within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn parse_ms(rfc3339: &str) -> i64 {
    gridshare_domain::Timestamp::parse_rfc3339(rfc3339).unwrap().0
}

/// The results of zone 1, oldest first, as (interval start ms, trades).
fn results(port: u16, key: &str) -> Vec<(i64, u64)> {
    let (st, v) = http(port, "/api/v1/markets/1/results", key);
    assert_eq!(st, 200, "{v}");
    let mut out: Vec<(i64, u64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                parse_ms(r["interval"].as_str().unwrap().split('/').next().unwrap()),
                r["trades"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort_unstable();
    out
}

fn batches(port: u16, key: &str) -> Vec<Value> {
    let (st, v) = http(port, "/api/v1/settlement/batches?limit=500", key);
    assert_eq!(st, 200, "{v}");
    v.as_array().unwrap().clone()
}

/// Waits until the neighbourhood has cleared `intervals` intervals with trades and has
/// `settled` confirmed batches, and a moment comes when every batch is confirmed.
fn wait_for_market(port: u16, key: &str, intervals: usize, settled: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let r = results(port, key);
        let b = batches(port, key);
        let confirmed = b.iter().filter(|b| b["status"] == "confirmed").count();
        if r.len() >= intervals && r.iter().any(|(_, t)| *t > 0) && confirmed >= settled && confirmed == b.len() {
            return b;
        }
        assert!(
            Instant::now() < deadline,
            "market not moving: {} results, {confirmed} of {} batches confirmed: {b:?}",
            r.len(),
            b.len()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn the_demo_trades_settles_on_chain_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let port = gridshare_testkit::free_port().unwrap();
    let demo = start(&data, port);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !data.join("demo.json").exists() || TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the demo comes up within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(data.join("demo.json")).unwrap()).unwrap();
    let homes = saved["homes"].as_array().unwrap().clone();
    assert_eq!(homes.len(), 6);
    let key = homes[0]["api_key"].as_str().unwrap().to_owned();

    let first = wait_for_market(port, &key, 4, 2);

    // every interval from the first result to the last has one: no gate closure went missing
    let r = results(port, &key);
    for w in r.windows(2) {
        assert_eq!(w[1].0 - w[0].0, INTERVAL_MS, "consecutive results: {r:?}");
    }
    assert!(r.iter().map(|(_, t)| t).sum::<u64>() > 0, "trades happened: {r:?}");
    // every batch: confirmed on chain, nets to zero
    for b in &first {
        assert_eq!(b["status"], "confirmed", "{b}");
        assert_eq!(b["net_micro"], 0, "deltas sum to zero: {b}");
        assert!(
            b["transactions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["status"] == "confirmed"),
            "{b}"
        );
    }
    // each home: what the vault holds is what the ledger says (retry across a batch landing)
    for h in &homes {
        let home_key = h["api_key"].as_str().unwrap();
        let mut agreed = false;
        for _ in 0..40 {
            let (st, bal) = http(port, "/api/v1/balance", home_key);
            assert_eq!(st, 200, "{bal}");
            if bal["settled"] == bal["on_chain"] {
                agreed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(agreed, "home {}: ledger and vault agree", h["id"]);
    }

    // stop and start again: the same batches, then more
    stop(demo);
    let demo = start(&data, port);
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the demo comes back");
        std::thread::sleep(Duration::from_millis(100));
    }
    let again = wait_for_market(port, &key, r.len() + 2, first.len() + 1);
    let ids: Vec<u64> = again.iter().map(|b| b["batch_id"].as_u64().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "no batch twice: {ids:?}");
    assert_eq!(
        sorted,
        (1..=sorted.len() as u64).collect::<Vec<_>>(),
        "no batch lost: {ids:?}"
    );
    for b in &first {
        let same = again.iter().find(|x| x["batch_id"] == b["batch_id"]).unwrap();
        assert_eq!(
            (&same["trades_root"], &same["state_hash"], &same["trades"]),
            (&b["trades_root"], &b["state_hash"], &b["trades"]),
            "a batch settled before the restart is unchanged"
        );
    }
    for b in &again {
        assert_eq!(b["net_micro"], 0, "{b}");
    }
    let before: Vec<(i64, u64)> = r;
    let after = results(port, &key);
    for res in &before {
        assert!(after.contains(res), "result {res:?} kept after the restart");
    }
    stop(demo);
}
