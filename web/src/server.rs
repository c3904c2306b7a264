//! Serving the application on a TCP listener with the limits a public listener needs, which
//! `axum::serve` does not set: a client that opens a connection and sends nothing (or sends its
//! headers a byte at a time) is cut off after [`Limits::header_read_timeout`]; at most
//! [`Limits::max_connections`] connections are open at once, and at most
//! [`Limits::max_per_address`] from one client address, so one client cannot use every file
//! handle the service has (which would also starve the engine's journal and the database).
//!
//! ```text
//!  accept ─▶ connection cap ─▶ per-address cap ─▶ HTTP/1 (header read timeout) ─▶ app
//!               └ full: closed at once, counted (`gridshare_http_refused{reason=…}`)
//! ```
//!
//! A request body is bounded in size and time by the application's own layers (see
//! [`crate::app`]). A WebSocket keeps its connection's slot until it closes ([`ConnectionSlot`]).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt as _;

use crate::Metrics;

/// The listener's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once (WebSockets included); more are closed as soon as accepted.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_per_address: usize,
    /// Longest wait for a request's headers, from the connection's opening or the end of the
    /// previous response (an idle keep-alive connection is closed after it too).
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 2_048,
            max_per_address: 64,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// A connection's place under the caps, held while the connection (or the WebSocket it became)
/// is open. Each request carries it as an extension, so a WebSocket handler can keep it.
#[derive(Debug, Clone)]
pub struct ConnectionSlot(#[allow(dead_code)] Arc<Slot>);

#[derive(Debug)]
struct Slot {
    _permit: OwnedSemaphorePermit,
    address: IpAddr,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then lets the requests
/// under way finish. Handlers see the client's address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let per_address: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    // closing `stop` asks every connection to finish; `done` is closed when every one has
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // out of file handles, or a connection reset before it was accepted: the
                    // listener itself is fine, so wait a little rather than spin or stop
                    tracing::warn!(error = %e, "HTTP listener: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            metrics.refuse_http("connection_cap");
            continue; // dropping the stream closes it
        };
        {
            let mut open = per_address.lock().unwrap_or_else(|p| p.into_inner());
            let n = open.entry(peer.ip()).or_insert(0);
            if *n >= limits.max_per_address {
                drop(open);
                metrics.refuse_http("address_cap");
                continue;
            }
            *n += 1;
        }
        let slot = ConnectionSlot(Arc::new(Slot {
            _permit: permit,
            address: peer.ip(),
            per_address: per_address.clone(),
        }));
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut stop = stop_rx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let request_slot = slot.clone();
            let service = app.map_request(move |req: axum::http::Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(request_slot.clone());
                req
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, %peer, "HTTP connection ended");
                    }
                }
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(slot);
            drop(done);
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
}
