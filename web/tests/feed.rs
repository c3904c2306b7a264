//! The WebSocket feed (`/api/v1/ws`) over a real socket: trades and depth go to everyone, order
//! events only to their owner, no feed without a key, and a client that stops reading is dropped
//! while the market goes on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::time::Duration;

use axum::http::Method;
use common::{call, interval, market_world, order};
use futures_util::{SinkExt, StreamExt};
use gridshare_domain::{ParticipantId, ZoneId};
use gridshare_web::{AppState, app};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::ClientRequestBuilder;

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn live(state: AppState) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app(state)).await.unwrap() });
    port
}

async fn ws_connect(port: u16, key: &str) -> Ws {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let req = ClientRequestBuilder::new(format!("ws://127.0.0.1:{port}/api/v1/ws").parse().unwrap())
        .with_header("authorization", format!("Bearer {key}"));
    tokio_tungstenite::client_async(req, stream).await.unwrap().0
}

/// The next JSON text frame.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("the feed is open")
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// Frames until one of `kind`.
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = next(ws).await;
        if v["type"] == kind {
            return v;
        }
    }
}

#[tokio::test]
async fn the_feed_carries_trades_and_depth_to_all_and_order_events_to_their_owner() {
    let w = market_world().await;
    let port = live(w.state.clone()).await;
    let mut seller = ws_connect(port, &w.seller).await;
    let mut buyer = ws_connect(port, &w.buyer).await;
    let mut watcher = ws_connect(port, &w.trader).await;
    let s = &w.state;
    tokio::time::sleep(Duration::from_millis(50)).await; // subscriptions are taken at upgrade

    let (_, ack) = call(
        s,
        Method::POST,
        "/api/v1/orders",
        Some(&w.seller),
        Some(order("sell", 800, 130_000)),
    )
    .await;
    let sell_id = ack["order_id"].as_u64().unwrap();
    let book = next_of(&mut watcher, "book").await;
    assert_eq!(book["asks"], json!([{"price": 130_000, "quantity_wh": 800}]), "{book}");
    assert_eq!(book["interval"], interval().to_string());
    let mine = next_of(&mut seller, "order").await;
    assert_eq!(mine["event"], json!({"event": "accepted", "id": sell_id}));

    call(
        s,
        Method::POST,
        "/api/v1/orders",
        Some(&w.buyer),
        Some(order("buy", 300, 130_000)),
    )
    .await;
    for ws in [&mut seller, &mut buyer, &mut watcher] {
        let t = next_of(ws, "trade").await;
        assert_eq!(
            (t["quantity_wh"].as_i64(), t["price"].as_i64()),
            (Some(300), Some(130_000))
        );
    }
    let fill = next_of(&mut seller, "order").await;
    assert_eq!(fill["event"]["event"], "trade", "{fill}");
    let book = next_of(&mut watcher, "book").await;
    assert_eq!(book["asks"], json!([{"price": 130_000, "quantity_wh": 500}]));

    // the watcher hears of nobody's orders: the next frame it gets after a cancel is the book
    call(
        s,
        Method::DELETE,
        &format!("/api/v1/orders/{sell_id}"),
        Some(&w.seller),
        None,
    )
    .await;
    let v = next(&mut watcher).await;
    assert_eq!((v["type"].as_str(), &v["asks"]), (Some("book"), &json!([])), "{v}");
    let v = next_of(&mut seller, "order").await;
    assert_eq!(v["event"]["event"], "cancelled");
    assert_eq!(v["event"]["reason"], "requested");

    // without a key there is no feed
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let req = ClientRequestBuilder::new(format!("ws://127.0.0.1:{port}/api/v1/ws").parse().unwrap());
    assert!(tokio_tungstenite::client_async(req, stream).await.is_err());
    let _ = watcher.send(Message::Close(None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_and_the_market_goes_on() {
    let w = market_world().await;
    let port = live(w.state.clone()).await;
    // a client with a tiny receive window that reads nothing
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let req = ClientRequestBuilder::new(format!("ws://127.0.0.1:{port}/api/v1/ws").parse().unwrap())
        .with_header("authorization", format!("Bearer {}", w.trader));
    let mut stuck = tokio_tungstenite::client_async(req, stream).await.unwrap().0;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let market = w.state.market.clone().unwrap();
    // a flood of resting orders on 10 levels a side, none crossing, while the client reads
    // nothing: far more than the socket buffers and the feed's capacity hold
    let flood = 30_000;
    let started = std::time::Instant::now();
    for i in 0..flood {
        let o = market
            .submit(gridshare_market::NewOrder {
                owner: ParticipantId(1 + (i % 2) as u64),
                origin: None,
                zone: ZoneId(1),
                interval: interval(),
                side: if i % 2 == 0 {
                    gridshare_domain::Side::Sell
                } else {
                    gridshare_domain::Side::Buy
                },
                quantity: gridshare_domain::Wh(1),
                price: gridshare_domain::MicroPerKwh(if i % 2 == 0 {
                    200_000 + (i % 10) as i64 * 1000
                } else {
                    100_000 - (i % 10) as i64 * 1000
                }),
                tif: Default::default(),
                mode: Default::default(),
            })
            .await
            .unwrap();
        assert!(o.order_id.is_some());
    }
    assert!(
        started.elapsed() < gridshare_web::ws::SEND_TIMEOUT,
        "the flood must end before the send timeout for this test to see the lag path"
    );
    // now read: some frames, then the close with the reason
    let mut frames = 0usize;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(20), stuck.next())
            .await
            .expect("closed within 20 s")
        {
            Some(Ok(Message::Text(_))) => frames += 1,
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("the server should close cleanly: {e} after {frames} frames"),
            None => panic!("closed without a close frame after {frames} frames"),
        }
    };
    let close = close.expect("a close frame with a reason");
    assert_eq!(u16::from(close.code), gridshare_web::ws::CLOSE_TOO_SLOW);
    assert!(close.reason.contains("too slow"), "{}", close.reason);
    assert!(frames < flood, "dropped before it got everything ({frames} of {flood})");
    // the market is fine and a new client is served
    let mut fresh = ws_connect(port, &w.trader).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    call(
        &w.state,
        Method::POST,
        "/api/v1/orders",
        Some(&w.seller),
        Some(order("sell", 5, 150_000)),
    )
    .await;
    assert_eq!(next(&mut fresh).await["type"], "book");
}
