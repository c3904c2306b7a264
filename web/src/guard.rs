//! What stands between an anonymous client and the service's resources: the checks no handler
//! should have to remember.
//!
//! - **Cross-site requests** ([`same_origin`], a middleware on the whole app): a state-changing
//!   request (any method but GET/HEAD/OPTIONS) or a WebSocket upgrade that a browser made from
//!   another site is refused 403, login included (login CSRF). Browsers say where a request
//!   comes from (`Origin`, `Sec-Fetch-Site`); a request that names no origin is not a browser's
//!   cross-site request and passes, and neither header can be forged by a page. Requests that
//!   carry `Authorization` pass too: a page on another site cannot add that header without a CORS
//!   preflight, which we never grant.
//! - **Password checks** ([`PasswordQueue`]): argon2 costs ~19 MiB and tens of milliseconds per
//!   check, so at most one check per core runs at once and a short queue waits; when the queue is
//!   full the login is answered 503 with `Retry-After` instead of the service running out of
//!   memory.
//! - **Login throttling** ([`LoginThrottle`]): per client address (spraying many user names from
//!   one address) and per user name *from that address* (guessing one user's password), so an
//!   attacker elsewhere cannot lock the real user out. Bounded memory (see
//!   [`crate::ratelimit`]); user names are at most [`MAX_USERNAME`] bytes.
//! - **`/metrics`** ([`Security::metrics_allowed`]): with a token configured, only to
//!   `Authorization: Bearer <token>`; without one, only to clients on the same host (loopback).
//! - **Cookies** get `Secure` when the service is reached over TLS ([`Security::secure_cookies`]).
//!
//! Every refusal is counted in `gridshare_http_refused{reason=…}`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;
use crate::ratelimit::{RateLimit, RateLimiter};

/// Longest user name a login may name, in bytes.
pub const MAX_USERNAME: usize = 128;

/// Logins allowed from one client address: a burst of 20, then one every 3 s.
pub const LOGINS_PER_ADDRESS: RateLimit = RateLimit {
    per_second: 1.0 / 3.0,
    burst: 20.0,
};

/// Logins allowed for one user name from one client address: a burst of 5, then one every 20 s.
pub const LOGINS_PER_USER_AND_ADDRESS: RateLimit = RateLimit {
    per_second: 1.0 / 20.0,
    burst: 5.0,
};

/// The HTTP side's security settings and shared limits.
#[derive(Debug)]
pub struct Security {
    /// Add `Secure` to cookies (the service is reached over TLS, directly or through a proxy).
    pub secure_cookies: bool,
    /// Origins besides the request's own host that may send state-changing requests, as
    /// `scheme://host[:port]` (a dashboard served from another name, say).
    pub allowed_origins: Vec<String>,
    /// The bearer token `/metrics` asks for; `None`: loopback clients only.
    pub metrics_token: Option<String>,
    /// Peers whose `X-Forwarded-For` names the client (a reverse proxy in front of the service).
    pub trusted_proxies: Vec<IpAddr>,
    /// The password checks' queue.
    pub passwords: PasswordQueue,
    /// Login attempts by address and by user name at an address.
    pub logins: LoginThrottle,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            secure_cookies: false,
            allowed_origins: Vec::new(),
            metrics_token: None,
            trusted_proxies: Vec::new(),
            passwords: PasswordQueue::new(default_workers(), 32),
            logins: LoginThrottle::default(),
        }
    }
}

/// One password check per core, at most four.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

impl Security {
    /// `; Secure` when cookies should carry it, else nothing.
    pub fn cookie_suffix(&self) -> &'static str {
        if self.secure_cookies { "; Secure" } else { "" }
    }

    /// Whether this request may read `/metrics`.
    pub fn metrics_allowed(&self, headers: &HeaderMap, client: Option<IpAddr>) -> bool {
        match &self.metrics_token {
            Some(token) => headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes())),
            None => client.is_some_and(|a| a.is_loopback()),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ------------------------------------------------------------------ the client's address

/// The client's address: the TCP peer, or the address a trusted proxy forwarded. `None` when
/// the application is called without a connection (in-process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    /// The client's address as the request shows it.
    pub fn of(parts_extensions: &axum::http::Extensions, headers: &HeaderMap, security: &Security) -> Self {
        let peer = parts_extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip());
        let forwarded = || {
            headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|a| a.trim().parse::<IpAddr>().ok())
        };
        Self(match peer {
            Some(p) if security.trusted_proxies.contains(&p) => forwarded().or(Some(p)),
            other => other,
        })
    }

    /// The key a limiter counts this client under: the address, or its /64 for IPv6 (one
    /// subscriber usually holds a whole /64).
    pub fn key(self) -> String {
        match self.0 {
            None => "in-process".to_owned(),
            Some(IpAddr::V4(a)) => a.to_string(),
            Some(IpAddr::V6(a)) => {
                let s = a.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.extensions, &parts.headers, &state.security))
    }
}

// ------------------------------------------------------------------ cross-site requests

/// Why a request was taken for a cross-site one, or `None` when it is not.
pub fn cross_site(method: &Method, headers: &HeaderMap, allowed_origins: &[String]) -> Option<String> {
    let upgrade = headers.contains_key(header::UPGRADE);
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if (safe && !upgrade) || headers.contains_key(header::AUTHORIZATION) {
        return None;
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let authority = origin.split_once("://").map(|(_, a)| a);
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let same_host = authority.is_some() && authority == host;
        if same_host || allowed_origins.iter().any(|o| o == origin) {
            return None;
        }
        return Some(format!("a request from {origin} may not change anything here"));
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        None | Some("same-origin" | "none") => None,
        Some(site) => Some(format!("a {site} request may not change anything here")),
    }
}

/// Middleware: refuses cross-site state-changing requests and WebSocket upgrades (see the
/// module doc).
pub async fn same_origin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(why) = cross_site(req.method(), req.headers(), &state.security.allowed_origins) {
        state.metrics.refuse_http("cross_origin");
        return ApiError::new(StatusCode::FORBIDDEN, "cross_origin", why).into_response();
    }
    next.run(req).await
}

// ------------------------------------------------------------------ password checks

/// Password checks on `workers` threads of their own with `queue` more waiting. Own threads
/// rather than tokio's blocking pool: that pool grows a thread per waiting job, and every new
/// thread's allocator arena keeps the ~19 MiB argon2 took (a crowd of logins grew the service by
/// hundreds of MiB); a fixed set of threads reuses the same memory.
#[derive(Debug)]
pub struct PasswordQueue {
    jobs: std::sync::mpsc::SyncSender<Job>,
}

type Job = Box<dyn FnOnce() + Send>;

/// The queue is full: try again in a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl PasswordQueue {
    /// A queue running `workers` checks at once with `queue` more waiting.
    pub fn new(workers: usize, queue: usize) -> Self {
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(queue);
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for n in 0..workers.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-check-{n}"))
                .spawn(move || {
                    loop {
                        // a poisoned lock only means a check panicked; the receiver is fine
                        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // the queue is gone
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-check thread");
            }
        }
        Self { jobs }
    }

    /// Runs `check` (CPU- and memory-heavy) on a worker when one is free; [`Busy`] at once
    /// when the queue is full.
    pub async fn run<T: Send + 'static>(&self, check: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(check());
        });
        self.jobs.try_send(job).map_err(|_| Busy)?;
        rx.await.map_err(|_| Busy)
    }
}

/// The 503 a full password queue answers, with `Retry-After`.
pub fn busy_error() -> ApiError {
    ApiError::retry_after(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "too many logins are being checked right now; try again in a second",
        1,
    )
}

// ------------------------------------------------------------------ login throttling

/// Login attempts counted per client address and per user name at an address.
#[derive(Debug)]
pub struct LoginThrottle {
    per_address: RateLimiter,
    per_user: RateLimiter,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(LOGINS_PER_ADDRESS, LOGINS_PER_USER_AND_ADDRESS)
    }
}

impl LoginThrottle {
    /// A throttle with these limits.
    pub fn new(per_address: RateLimit, per_user_and_address: RateLimit) -> Self {
        Self {
            per_address: RateLimiter::new(per_address),
            per_user: RateLimiter::new(per_user_and_address),
        }
    }

    /// Takes one attempt for `username` from `client` at `now`; `Err(wait)` when either limit
    /// is reached.
    pub fn check(&self, client: ClientAddr, username: &str, now: Instant) -> Result<(), Duration> {
        let address = client.key();
        self.per_address.check(&address, now)?;
        self.per_user.check(&format!("{address} {username}"), now)
    }
}
