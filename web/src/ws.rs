//! The live feed over WebSocket at `/api/v1/ws`: public market data for everyone (every trade,
//! and the depth of each book after it changes) and the caller's own order events.
//!
//! Messages are JSON text frames with a `type`:
//! - `{"type":"trade", …TradeView}`
//! - `{"type":"book", "zone", "interval", "open", "bids":[{price,quantity_wh}], "asks":[…]}`
//! - `{"type":"order", "event":{"event":"accepted"|"rejected"|"amended"|"cancelled"|"trade", …}}`
//!   (only to the order's owner)
//! - `{"type":"power", "gateway", "samples":[TelemetrySample…]}` (only to the home the gateway
//!   belongs to: its devices' power as each envelope arrives)
//! - `{"type":"result", "zone", …ResultView}` when a book closes at its gate: the auction's price
//!   and volume and, with a feeder network, every node's price (public market data)
//!
//! Back-pressure: the engine never waits for a client. Each connection reads the market's
//! broadcast feed at its own pace; a client that falls [`gridshare_market::FEED_CAPACITY`] outcomes
//! behind, or does not take a frame within [`SEND_TIMEOUT`], is closed with code 1013 ("try
//! again later") and a reason saying so, and can reconnect and re-read state over REST.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use gridshare_matching_engine::Event;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;
use crate::api::{ResultView, TradeView};
use crate::auth::{Principal, Scope};
use crate::error::ApiError;
use gridshare_market::{Live, Outcome};

/// Longest a client may take to accept one frame before it is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Close code for a client dropped for being too slow (RFC 6455 1013, "try again later").
pub const CLOSE_TOO_SLOW: u16 = 1013;

/// Open the live feed.
#[utoipa::path(get, path = "/api/v1/ws", tag = "markets", security(("api_key" = [])),
    responses(
        (status = 101, description = "WebSocket: trades, book depth and my order events as JSON text frames"),
        (status = 401, description = "No or bad API key", body = crate::error::ErrorBody),
    ))]
pub async fn ws(
    State(state): State<AppState>,
    who: Principal,
    slot: Option<axum::Extension<crate::server::ConnectionSlot>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    who.require_scope(Scope::Read)?;
    let market = state.market.as_ref().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "market_unavailable",
            "the market is not running",
        )
    })?;
    let rx = market.subscribe();
    let live = state.live.subscribe();
    let metrics = state.metrics.clone();
    Ok(upgrade.on_upgrade(move |socket| async move {
        // the socket keeps its connection's place under the listener's caps until it closes
        let _slot = slot;
        feed(socket, rx, live, who, metrics).await;
    }))
}

/// The frames one outcome gives this caller.
pub fn frames(o: &Outcome, who: &Principal) -> Vec<String> {
    let mut out = Vec::new();
    for t in o.events.iter().filter_map(Event::trade_report) {
        let mut v = serde_json::to_value(TradeView::from(&t)).unwrap_or_default();
        v["type"] = json!("trade");
        out.push(v.to_string());
    }
    for r in Event::interval_results(&o.events) {
        let mut v = serde_json::to_value(ResultView::from(&r)).unwrap_or_default();
        v["type"] = json!("result");
        v["zone"] = json!(r.zone.0);
        out.push(v.to_string());
    }
    for (zone, interval, d) in &o.books {
        let levels = |v: &[(gridshare_domain::MicroPerKwh, gridshare_domain::Wh)]| -> Vec<serde_json::Value> {
            v.iter()
                .map(|(p, q)| json!({"price": p.0, "quantity_wh": q.0}))
                .collect()
        };
        out.push(
            json!({"type": "book", "zone": zone.0, "interval": interval.to_string(), "open": d.open,
                   "bids": levels(&d.bids), "asks": levels(&d.asks)})
            .to_string(),
        );
    }
    let mine = |id| {
        o.owners
            .iter()
            .any(|&(oid, owner)| oid == id && owner == who.participant)
    };
    for e in &o.events {
        let is_mine = match *e {
            Event::Accepted { id } | Event::Amended { id, .. } | Event::Cancelled { id, .. } => mine(id),
            Event::Rejected { .. } => o.owner == Some(who.participant),
            Event::Trade { buy, sell, .. } => mine(buy) || mine(sell),
            _ => false,
        };
        if is_mine {
            out.push(json!({"type": "order", "event": e}).to_string());
        }
    }
    out
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let _ = tokio::time::timeout(
        SEND_TIMEOUT,
        socket.send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))),
    )
    .await;
}

async fn feed(
    mut socket: WebSocket,
    mut rx: tokio::sync::broadcast::Receiver<Arc<Outcome>>,
    mut live: tokio::sync::broadcast::Receiver<Arc<Live>>,
    who: Principal,
    metrics: Arc<crate::Metrics>,
) {
    loop {
        tokio::select! {
            l = live.recv() => match l {
                Ok(l) if l.owner == who.participant => {
                    let frame = json!({"type": "power", "gateway": l.gateway.0, "samples": l.samples}).to_string();
                    match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(frame.into()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        Err(_) => {
                            metrics.ws_dropped.inc();
                            close(&mut socket, CLOSE_TOO_SLOW, "too slow: a frame waited over 5 s").await;
                            return;
                        }
                    }
                }
                // another home's, or missed samples: the next ones will do
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => {
                    close(&mut socket, 1001, "the service is shutting down").await;
                    return;
                }
            },
            next = rx.recv() => match next {
                Ok(outcome) => {
                    for frame in frames(&outcome, &who) {
                        match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(frame.into()))).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return, // the client went away
                            Err(_) => {
                                tracing::info!(participant = %who.participant, "WebSocket client too slow; dropped");
                                metrics.ws_dropped.inc();
                                close(&mut socket, CLOSE_TOO_SLOW, "too slow: a frame waited over 5 s").await;
                                return;
                            }
                        }
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::info!(participant = %who.participant, behind = n, "WebSocket client lagged; dropped");
                    metrics.ws_dropped.inc();
                    close(&mut socket, CLOSE_TOO_SLOW, &format!("too slow: fell {n} updates behind; reconnect and reload over REST")).await;
                    return;
                }
                Err(RecvError::Closed) => {
                    close(&mut socket, 1001, "the market is shutting down").await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_) | Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {} // pings are answered by the server; other input is ignored
            },
        }
    }
}
