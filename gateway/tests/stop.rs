//! `gateway run` stops within 2 s on SIGTERM and on SIGINT in every state: the broker down and
//! the reconnect back-off asleep, a poll waiting on a device that does not answer, and messages
//! sent to a broker that never acknowledges them. Afterwards the outbox opens cleanly and holds
//! what was not acknowledged.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gridshare_domain::envelope::GatewayKey;
use gridshare_gateway::outbox::{DEFAULT_CAPACITY, Outbox};
use gridshare_gateway::profile::Profile;
use gridshare_gateway::simulate::{Fault, Simulator};

const BIN: &str = env!("CARGO_BIN_EXE_gateway");
const MARKET: &str = "02f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9";

/// What the broker does.
#[derive(Clone, Copy)]
enum Broker {
    /// Nothing listens: connections are refused.
    Down,
    /// Accepts, says CONNACK, and never acknowledges anything.
    Silent,
}

/// A broker address: a port nothing listens on, or a fake broker that accepts and acknowledges
/// the connection but nothing sent on it (kept running for the test's life).
fn broker(kind: Broker) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    match kind {
        Broker::Down => drop(listener),
        Broker::Silent => {
            std::thread::spawn(move || {
                for mut s in listener.incoming().flatten() {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 4_096];
                        if s.read(&mut buf).unwrap_or(0) == 0 {
                            return;
                        }
                        // CONNACK, session not present, accepted
                        let _ = s.write_all(&[0x20, 0x02, 0x00, 0x00]);
                        while s.read(&mut buf).unwrap_or(0) > 0 {}
                    });
                }
            });
        }
    }
    port
}

/// A simulated grid meter on Modbus TCP, answering or silent; returns its port.
fn device(rt: &tokio::runtime::Runtime, answers: bool) -> u16 {
    let sim = Simulator::new(1_750_507_200.0);
    let profile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware/eastron-sdm630.toml");
    sim.add(1, Profile::load(&profile).unwrap());
    if !answers {
        sim.set_fault(Fault::Timeout);
    }
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        let _ = sim
            .serve(listener, Duration::from_millis(100), 1.0, std::future::pending())
            .await;
    });
    port
}

/// The gateway, its stderr collected line by line.
struct Gateway {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    fn start(dir: &Path, broker_port: u16, device_port: u16, timeout_ms: u64) -> Self {
        std::fs::write(dir.join("key.hex"), GatewayKey::from_bytes(&[7; 32]).unwrap().to_hex()).unwrap();
        let config = format!(
            "[gateway]\nid = 42\nkey_file = \"{d}/key.hex\"\ndata_dir = \"{d}/data\"\ntelemetry_period_s = 1\n\
             [mqtt]\nurl = \"mqtt://127.0.0.1:{broker_port}\"\nusername = \"42\"\nmarket_key = \"{MARKET}\"\n\
             [[devices]]\nname = \"grid\"\nprofile = \"{hw}/eastron-sdm630.toml\"\nhost = \"127.0.0.1\"\n\
             port = {device_port}\nunit = 1\ntimeout_ms = {timeout_ms}\n",
            d = dir.display(),
            hw = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware").display(),
        );
        std::fs::write(dir.join("gw.toml"), config).unwrap();
        let mut child = Command::new(BIN)
            .args(["run", "--config", dir.join("gw.toml").to_str().unwrap()])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Self { child, log }
    }

    /// Waits until `n` lines of the log contain `text`.
    fn wait_for(&self, text: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log.lock().unwrap();
            if log.iter().filter(|l| l.contains(text)).count() >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {n}× {text:?}:\n{}",
                log.join("\n")
            );
            drop(log);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal`; asserts a clean exit within 2 s and returns how long it took.
    fn stop(mut self, signal: &str) -> Duration {
        let sent = Instant::now();
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let took = sent.elapsed();
                let log = self.log.lock().unwrap().join("\n");
                assert!(status.success(), "{status}\n{log}");
                assert!(took < Duration::from_secs(2), "stopped after {took:?}\n{log}");
                return took;
            }
            if sent.elapsed() > Duration::from_secs(5) {
                let _ = self.child.kill();
                panic!(
                    "still running 5 s after {signal}:\n{}",
                    self.log.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn outbox_len(dir: &Path) -> usize {
    Outbox::open(&dir.join("data/outbox"), DEFAULT_CAPACITY).unwrap().len()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// The broker refuses; the sender sleeps its growing back-off (0.5, 1, then 2 s) between tries.
fn broker_down(signal: &str) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), broker(Broker::Down), device(&rt, true), 1_000);
    gw.wait_for("cannot connect to the broker", 3);
    let took = gw.stop(signal);
    eprintln!("broker down, {signal}: stopped in {took:?}");
    assert!(
        outbox_len(dir.path()) >= 1,
        "the samples taken while the broker was down are kept"
    );
}

#[test]
fn stops_on_sigterm_while_the_broker_is_down() {
    broker_down("-TERM");
}

#[test]
fn stops_on_sigint_while_the_broker_is_down() {
    broker_down("-INT");
}

/// The device does not answer and its timeout is 10 s: the poller is in the middle of a request.
fn mid_poll(signal: &str) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), broker(Broker::Silent), device(&rt, false), 10_000);
    gw.wait_for("connected to the broker", 1);
    std::thread::sleep(Duration::from_millis(300));
    let took = gw.stop(signal);
    eprintln!("mid-poll, {signal}: stopped in {took:?}");
    outbox_len(dir.path());
}

#[test]
fn stops_on_sigterm_in_the_middle_of_a_poll() {
    mid_poll("-TERM");
}

#[test]
fn stops_on_sigint_in_the_middle_of_a_poll() {
    mid_poll("-INT");
}

/// The broker takes the connection and the messages and acknowledges none: messages are in
/// flight when the signal comes, and stay in the outbox.
fn mid_send(signal: &str) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), broker(Broker::Silent), device(&rt, true), 1_000);
    gw.wait_for("connected to the broker", 1);
    std::thread::sleep(Duration::from_millis(1_500)); // a poll or two sent, none acknowledged
    let took = gw.stop(signal);
    eprintln!("mid-send, {signal}: stopped in {took:?}");
    assert!(outbox_len(dir.path()) >= 1, "messages not receipted stay in the outbox");
}

#[test]
fn stops_on_sigterm_in_the_middle_of_sending() {
    mid_send("-TERM");
}

#[test]
fn stops_on_sigint_in_the_middle_of_sending() {
    mid_send("-INT");
}
