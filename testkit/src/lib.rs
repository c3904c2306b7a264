//! Test support shared by the crates' integration tests.
//!
//! Tests that need a real service (PostgreSQL, an MQTT broker, anvil) ask for
//! it here. `scripts/test.sh` starts throwaway instances on free loopback
//! ports and exports their addresses in the variables below. When a variable
//! is missing the test is skipped with a message saying how to provide it —
//! except under `CI=true`, where a missing service is a failure, so CI can
//! never pass by skipping.

use std::path::PathBuf;

/// PostgreSQL URL of a throwaway cluster, e.g. `postgres://postgres@127.0.0.1:5433/postgres`.
pub const POSTGRES_URL: &str = "GRIDSHARE_TEST_POSTGRES_URL";
/// MQTT broker (Mosquitto) as `mqtt://user:password@127.0.0.1:port`.
pub const MQTT_URL: &str = "GRIDSHARE_TEST_MQTT_URL";
/// URL of the same Mosquitto's TLS listener (`mqtts://user:password@localhost:port`).
pub const MQTTS_URL: &str = "GRIDSHARE_TEST_MQTTS_URL";
/// The CA certificate (PEM) the TLS listener's certificate is signed with. Its folder also holds
/// that certificate, `server.pem` (for `localhost` and 127.0.0.1), and its key, `server.key`, for
/// TLS listeners the tests start themselves.
pub const MQTT_CA: &str = "GRIDSHARE_TEST_MQTT_CA";
/// Path to the `anvil` binary (else looked up on `PATH`).
pub const ANVIL_BIN: &str = "GRIDSHARE_ANVIL_BIN";

/// True when running under CI (`CI=true` or `CI=1`).
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// The value of service variable `var`, or `None` (test should return early)
/// when it is unset outside CI. Panics under CI: a missing service is a failure.
#[allow(clippy::panic, clippy::print_stderr)] // reporting to the test harness is this function's job
pub fn service(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ if in_ci() => panic!("{what} is required under CI=true but {var} is not set (scripts/test.sh starts it)"),
        _ => {
            eprintln!("skipping: {what} not available; set {var} or run scripts/test.sh");
            None
        }
    }
}

/// Find an executable: the variable `var` if set, else `name` on `PATH`.
/// `None` (skip) outside CI when absent; panics under CI.
#[allow(clippy::panic, clippy::print_stderr)]
pub fn executable(var: &str, name: &str) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(var) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some(p);
        }
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None if in_ci() => panic!("{name} is required under CI=true but was not found (set {var} or put it on PATH)"),
        None => {
            eprintln!("skipping: {name} not found; set {var} or run scripts/setup.sh");
            None
        }
    }
}

/// A free TCP port on 127.0.0.1 (bind to port 0, read it, release it).
/// Prefer binding port 0 directly; use this only for programs that need a number.
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

/// The workspace root (for tests that read `hardware/`, `contracts/` and such).
pub fn workspace_root() -> PathBuf {
    // This crate lives at <root>/testkit.
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// A child process (a server under test) killed and reaped when dropped, also when a test panics.
#[derive(Debug)]
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A throwaway anvil node on a free loopback port, killed on drop.
#[derive(Debug)]
pub struct Anvil {
    child: std::process::Child,
    /// Its JSON-RPC URL.
    pub url: String,
}

impl Anvil {
    /// Starts anvil (found by [`executable`]) with `extra` arguments and waits until it
    /// listens. `None` when anvil is not available outside CI.
    pub fn start(extra: &[&str]) -> Option<std::io::Result<Self>> {
        let bin = executable(ANVIL_BIN, "anvil")?;
        Some(Self::spawn(&bin, extra))
    }

    fn spawn(bin: &std::path::Path, extra: &[&str]) -> std::io::Result<Self> {
        let port = free_port()?;
        let child = std::process::Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--silent"])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let mut anvil = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = anvil.child.try_wait()? {
                return Err(std::io::Error::other(format!("anvil exited early: {status}")));
            }
            if std::time::Instant::now() > deadline {
                return Err(std::io::Error::other("anvil did not listen within 20 s"));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(anvil)
    }

    /// Moves anvil's clock on by `seconds` and mines a block at the new time (`evm_increaseTime`,
    /// `evm_mine`), for tests of anything that waits on chain time (votes, timelocks, cool-downs).
    pub fn increase_time(&self, seconds: u64) -> std::io::Result<()> {
        self.rpc("evm_increaseTime", &format!("[{seconds}]"))?;
        self.rpc("evm_mine", "[]")
    }

    /// One JSON-RPC call over plain HTTP/1.1; an error unless the answer is 200 with a `result`.
    fn rpc(&self, method: &str, params: &str) -> std::io::Result<()> {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://");
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#);
        let mut s = std::net::TcpStream::connect(addr)?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        write!(
            s,
            "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        if answer.starts_with("HTTP/1.1 200") && answer.contains("\"result\"") {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("anvil {method}: {answer}")))
        }
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Anvil's first well-known development key (funded on every anvil; public knowledge, test use only).
pub const ANVIL_KEY_0: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
