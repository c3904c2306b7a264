//! Helpers shared by the service's end-to-end tests (each test crate uses some of them).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// One HTTP request to the service on `port` with a bearer `key`; the status and the JSON body
/// (`Null` when there is none).
pub fn http(port: u16, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    try_http(port, method, path, key, body).unwrap_or_else(|e| panic!("{method} {path} on port {port}: {e}"))
}

/// [`http`], or why there was no answer (nothing listening, the connection cut, a body that is
/// not JSON): for a service that may be starting or about to be killed.
pub fn try_http(port: u16, method: &str, path: &str, key: &str, body: Option<Value>) -> Result<(u16, Value), String> {
    let err = |e: std::io::Error| e.to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(err)?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(err)?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(err)?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(err)?;
    let status: u16 = resp
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {resp:?}"))?;
    let (_, body) = resp
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no body: {resp:?}"))?;
    // chunked bodies: take the JSON between the first '{' or '[' and the last '}' or ']'
    let start = body.find(['{', '[']).unwrap_or(body.len());
    let end = body.rfind(['}', ']']).map_or(start, |e| e + 1);
    let v = if start < end {
        serde_json::from_str(&body[start..end]).map_err(|e| format!("{e}: {body}"))?
    } else {
        Value::Null
    };
    Ok((status, v))
}

/// True when the service on `port` answers `/readyz` with 200.
pub fn ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(s, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    r.starts_with("HTTP/1.1 200")
}

/// The interval of the furthest open book. Tests at 900x order there: a book nearer delivery may
/// close between two orders, and how many are open changes as the scheduler closes one and opens
/// the next.
pub fn furthest_open_interval(port: u16, key: &str) -> String {
    let (st, books) = http(port, "GET", "/api/v1/markets", key, None);
    books
        .as_array()
        .and_then(|b| b.last())
        .and_then(|b| b["interval"].as_str())
        .unwrap_or_else(|| panic!("open books: {st} {books}"))
        .to_owned()
}

/// Milliseconds since the epoch of an RFC 3339 time.
pub fn parse_ms(rfc3339: &str) -> i64 {
    gridshare_domain::Timestamp::parse_rfc3339(rfc3339).unwrap().0
}

/// The results of zone 1, oldest first, as (interval start ms, trades).
pub fn results(port: u16, key: &str) -> Vec<(i64, u64)> {
    let (st, v) = http(port, "GET", "/api/v1/markets/1/results", key, None);
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

pub fn batches(port: u16, key: &str) -> Vec<Value> {
    let (st, v) = http(port, "GET", "/api/v1/settlement/batches?limit=500", key, None);
    assert_eq!(st, 200, "{v}");
    v.as_array().unwrap().clone()
}

// ------------------------------------------------------------------ the binary

/// The `gridshare` binary these tests run.
pub const BIN: &str = env!("CARGO_BIN_EXE_gridshare");

/// `gridshare --data-dir {dir} {args…}`, which must succeed; its standard output, trimmed.
pub fn admin(dir: &std::path::Path, args: &[&str]) -> String {
    admin_with_stdin(dir, args, "")
}

/// [`admin`] with `input` on standard input (a password, say).
pub fn admin_with_stdin(dir: &std::path::Path, args: &[&str], input: &str) -> String {
    use std::process::{Command, Stdio};
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A running `gridshare serve`, killed when dropped.
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `gridshare serve` on `port` with `config` and an embedded broker on a free port; returns once
/// `/readyz` answers 200 (at most 30 s).
pub fn serve(dir: &std::path::Path, config: &std::path::Path, port: u16) -> Server {
    use std::process::{Command, Stdio};
    use std::time::Instant;
    let server = Server(
        Command::new(BIN)
            .arg("--data-dir")
            .arg(dir)
            .arg("--config")
            .arg(config)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args([
                "--mqtt-listen",
                &format!("127.0.0.1:{}", gridshare_testkit::free_port().unwrap()),
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if ready(port) {
            return server;
        }
        assert!(Instant::now() < deadline, "server not ready in 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Home `p` (a homeowner at feeder node `p`, without an address of its own) with gateway `g`
/// signing with `key`, as an installer commissions them.
pub async fn home_with_gateway(
    db: &gridshare_storage::Db,
    p: u64,
    g: u64,
    key: &gridshare_domain::envelope::GatewayKey,
) {
    use gridshare_domain::{GatewayId, NodeId, ParticipantId};
    use gridshare_storage::gateways::{self, Gateway};
    use gridshare_storage::participants::{self, Participant};
    let now = gridshare_market::wall_clock();
    participants::upsert(
        db,
        &Participant {
            id: ParticipantId(p),
            name: format!("home {p}"),
            role: "homeowner".into(),
            evm_address: None,
            feeder_node: Some(p as u32),
            custody_address: None,
        },
        now,
    )
    .await
    .unwrap();
    gateways::register(
        db,
        &Gateway {
            id: GatewayId(g),
            owner: ParticipantId(p),
            installer: None,
            public_key: key.public(),
            feeder_node: NodeId(p as u32),
            window: gridshare_domain::envelope::ReplayWindow::default(),
            revoked_at: None,
        },
        now,
    )
    .await
    .unwrap();
}
