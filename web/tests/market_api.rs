//! The market API in-process against a real engine thread and a real database: order entry to
//! trades, depth, cancels and amends, gate closure results, every role and scope boundary, bad
//! input refused with nothing stored, rate limits, and recovery of the database from the journal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gridshare_domain::{DeliveryInterval, IntervalLength, NodeId, ParticipantId, Timestamp, ZoneId};
use gridshare_market::{Clock, JournalConfig, Market, add_participants};
use gridshare_matching_engine::journal::Durability;
use gridshare_matching_engine::{Command, MarketConfig};
use gridshare_storage::participants::{self, Participant};
use gridshare_storage::{Db, api_keys, orders};
use gridshare_web::auth::{TokenKind, new_token};
use gridshare_web::ratelimit::{RateLimit, RateLimiter};
use gridshare_web::{AppState, app};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const NOW: Timestamp = Timestamp(1_764_064_000_000);

fn interval() -> DeliveryInterval {
    // far in the future, so no clock closes it during the test
    DeliveryInterval::new(Timestamp(4_102_444_800_000), IntervalLength::Min15).unwrap()
}

struct World {
    state: AppState,
    _dir: tempfile::TempDir,
    seller: String,
    buyer: String,
    trader: String,
    operator: String,
    read_only: String,
    revoked: String,
}

async fn key(db: &Db, who: u64, scopes: &str) -> String {
    let t = new_token(TokenKind::ApiKey);
    api_keys::create(db, &t.id, ParticipantId(who), &t.hash, scopes, "test", NOW)
        .await
        .unwrap();
    t.token
}

async fn people(db: &Db) {
    for (id, role) in [(1, "homeowner"), (2, "homeowner"), (3, "trader"), (4, "operator")] {
        participants::upsert(
            db,
            &Participant {
                id: ParticipantId(id),
                name: format!("P{id}"),
                role: role.into(),
                evm_address: None,
                feeder_node: Some(id as u32),
            },
            NOW,
        )
        .await
        .unwrap();
    }
}

async fn start(db: &Db, journal: Option<JournalConfig>) -> Market {
    let (market, _recorder) = Market::start(MarketConfig::default(), journal, db.clone(), Clock::wall())
        .await
        .unwrap();
    add_participants(&market, (1..=4).map(|p| (ParticipantId(p), NodeId(p as u32))))
        .await
        .unwrap();
    market
        .command(Command::OpenBook {
            zone: ZoneId(1),
            interval: interval(),
        })
        .await
        .unwrap();
    market
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    people(&db).await;
    let market = start(&db, None).await;
    let revoked = key(&db, 1, "read,trade").await;
    let revoked_id = gridshare_web::auth::token_id(TokenKind::ApiKey, &revoked)
        .unwrap()
        .to_owned();
    api_keys::revoke(&db, ParticipantId(1), &revoked_id, NOW).await.unwrap();
    World {
        seller: key(&db, 1, "read,trade").await,
        buyer: key(&db, 2, "read,trade").await,
        trader: key(&db, 3, "read,trade").await,
        operator: key(&db, 4, "read,trade,demand_response").await,
        read_only: key(&db, 2, "read").await,
        revoked,
        state: AppState {
            db: Some(db),
            market: Some(market),
            ..AppState::default()
        },
        _dir: dir,
    }
}

async fn call(
    state: &AppState,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<String>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let req = match body {
        Some(b) => req.header("content-type", "application/json").body(Body::from(b)),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
    };
    (status, v)
}

fn order(side: &str, qty: i64, price: i64) -> String {
    json!({"zone": 1, "interval": interval().to_string(), "side": side, "quantity_wh": qty, "price": price}).to_string()
}

fn code(v: &Value) -> &str {
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    v["error"]["code"].as_str().unwrap()
}

/// Waits until the recorder has written what the engine did.
async fn recorded<T>(mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not recorded within 2 s");
}

#[tokio::test]
async fn orders_cross_into_trades_visible_to_both_sides() {
    let w = world().await;
    let s = &w.state;
    let (st, ack) = call(
        s,
        "POST",
        "/api/v1/orders",
        Some(&w.seller),
        Some(order("sell", 1000, 120_000)),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{ack}");
    assert_eq!(ack["status"], "open");
    let sell_id = ack["order_id"].as_u64().unwrap();

    let (st, depth) = call(
        s,
        "GET",
        &format!("/api/v1/markets/1/depth?interval={}", interval()),
        Some(&w.trader),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{depth}");
    assert_eq!(depth["asks"], json!([{"price": 120_000, "quantity_wh": 1000}]));
    assert_eq!(depth["bids"], json!([]));

    let (st, ack) = call(
        s,
        "POST",
        "/api/v1/orders",
        Some(&w.buyer),
        Some(order("buy", 400, 125_000)),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{ack}");
    assert_eq!(
        (ack["status"].as_str(), ack["filled_wh"].as_i64()),
        (Some("filled"), Some(400))
    );
    let trade = &ack["trades"][0];
    assert_eq!(
        (trade["price"].as_i64(), trade["seller"].as_u64()),
        (Some(120_000), Some(1)),
        "resting price"
    );

    let buyer_trades = recorded(async || {
        let (_, v) = call(s, "GET", "/api/v1/trades", Some(&w.buyer), None).await;
        (v.as_array().unwrap().len() == 1).then_some(v)
    })
    .await;
    assert_eq!(buyer_trades[0]["quantity_wh"], 400);
    let (_, seller_trades) = call(s, "GET", "/api/v1/trades", Some(&w.seller), None).await;
    assert_eq!(seller_trades, buyer_trades, "the same trade on both sides");
    let (_, others) = call(s, "GET", "/api/v1/trades", Some(&w.trader), None).await;
    assert_eq!(others, json!([]), "a third party does not see it as theirs");

    let (_, mine) = call(s, "GET", "/api/v1/orders", Some(&w.seller), None).await;
    assert_eq!(mine[0]["order_id"].as_u64(), Some(sell_id));
    assert_eq!(
        (mine[0]["status"].as_str(), mine[0]["filled_wh"].as_i64()),
        (Some("open"), Some(400))
    );

    // amend down keeps the order; cancel removes it; a second cancel finds nothing
    let amend = json!({"quantity_wh": 300, "price": 120_000}).to_string();
    let (st, v) = call(
        s,
        "PATCH",
        &format!("/api/v1/orders/{sell_id}"),
        Some(&w.seller),
        Some(amend),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (st, v) = call(s, "DELETE", &format!("/api/v1/orders/{sell_id}"), Some(&w.buyer), None).await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "not_owner"));
    let (st, _) = call(s, "DELETE", &format!("/api/v1/orders/{sell_id}"), Some(&w.seller), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = call(s, "DELETE", &format!("/api/v1/orders/{sell_id}"), Some(&w.seller), None).await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "unknown_order"));
    let cancelled = recorded(async || {
        let (_, v) = call(s, "GET", "/api/v1/orders", Some(&w.seller), None).await;
        (v[0]["status"] == "cancelled").then_some(v)
    })
    .await;
    assert_eq!(cancelled[0]["reason"], "requested");
    assert_eq!(cancelled[0]["quantity_wh"], 300, "the amend was recorded");

    // gate closure: the result appears
    w.state
        .market
        .as_ref()
        .unwrap()
        .command(Command::CloseGate {
            at: NOW,
            zone: ZoneId(1),
            interval: interval(),
        })
        .await
        .unwrap();
    let range = "from=2099-12-31T00:00:00Z&to=2100-01-02T00:00:00Z";
    let results = recorded(async || {
        let (_, v) = call(
            s,
            "GET",
            &format!("/api/v1/markets/1/results?{range}"),
            Some(&w.trader),
            None,
        )
        .await;
        (v.as_array().is_some_and(|a| a.len() == 1)).then_some(v)
    })
    .await;
    assert_eq!(results[0]["total_volume_wh"], 400);
    assert_eq!(results[0]["trades"], 1);
    let (st, v) = call(
        s,
        "POST",
        "/api/v1/orders",
        Some(&w.seller),
        Some(order("sell", 10, 120_000)),
    )
    .await;
    assert_eq!((st, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "book_closed"));
    let (_, books) = call(s, "GET", "/api/v1/markets", Some(&w.trader), None).await;
    assert_eq!(books[0]["open"], false);
    let (_, trades) = call(
        s,
        "GET",
        &format!("/api/v1/markets/1/trades?interval={}", interval()),
        Some(&w.trader),
        None,
    )
    .await;
    assert_eq!(trades.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_orders_get_a_named_error_and_store_nothing() {
    let w = world().await;
    let s = &w.state;
    let cases: Vec<(String, StatusCode, &str)> = vec![
        (order("sell", 100, 120_500), StatusCode::UNPROCESSABLE_ENTITY, "price_off_tick"),
        (order("sell", 100, 99_000_000), StatusCode::UNPROCESSABLE_ENTITY, "price_out_of_bounds"),
        (order("sell", -5, 120_000), StatusCode::UNPROCESSABLE_ENTITY, "quantity_out_of_bounds"),
        (order("sell", 0, 120_000), StatusCode::UNPROCESSABLE_ENTITY, "quantity_out_of_bounds"),
        (order("hold", 100, 120_000), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        (
            json!({"zone": 1, "interval": interval().to_string(), "side": "sell", "quantity_wh": 1, "price": 1000, "leverage": 10}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"zone": 1, "interval": "tomorrow", "side": "sell", "quantity_wh": 1, "price": 1000}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"zone": "one", "interval": interval().to_string(), "side": "sell", "quantity_wh": 1, "price": 1000}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"zone": 2, "interval": interval().to_string(), "side": "sell", "quantity_wh": 1, "price": 1000}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_book",
        ),
        ("{\"zone\": 1,".to_owned(), StatusCode::BAD_REQUEST, "invalid_json"),
        ("x".repeat(70_000), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
    ];
    for (body, status, want) in cases {
        let (st, v) = call(s, "POST", "/api/v1/orders", Some(&w.seller), Some(body.clone())).await;
        assert_eq!((st, code(&v)), (status, want), "{}", &body[..body.len().min(120)]);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let db = w.state.db.as_ref().unwrap();
    assert_eq!(orders::max_id(db).await.unwrap(), None, "nothing stored");
    let (_, mine) = call(s, "GET", "/api/v1/orders?limit=0", Some(&w.seller), None).await;
    assert_eq!(code(&mine), "invalid_limit");
    let (st, v) = call(s, "GET", "/api/v1/markets/1/depth?interval=soon", Some(&w.seller), None).await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_query"));
}

#[tokio::test]
async fn each_role_and_scope_reaches_only_what_it_may() {
    let w = world().await;
    let s = &w.state;
    let sell = || Some(order("sell", 100, 120_000));
    // no key, a malformed key, an unknown key, a revoked key
    for (k, what) in [
        (None, "no key"),
        (Some("Bearer-less"), "malformed"),
        (
            Some("gsk_000000000000_0000000000000000000000000000000000000000000000000000000000000000"),
            "unknown",
        ),
        (Some(w.revoked.as_str()), "revoked"),
    ] {
        for (m, p) in [
            ("GET", "/api/v1/orders"),
            ("GET", "/api/v1/markets"),
            ("POST", "/api/v1/orders"),
        ] {
            let (st, v) = call(s, m, p, k, (m == "POST").then(|| order("sell", 1, 120_000))).await;
            assert_eq!(
                (st, code(&v)),
                (StatusCode::UNAUTHORIZED, "unauthorized"),
                "{what} {m} {p}"
            );
        }
    }
    // an operator does not trade; a read-only key does not trade
    let (st, v) = call(s, "POST", "/api/v1/orders", Some(&w.operator), sell()).await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "forbidden"));
    let (st, v) = call(s, "POST", "/api/v1/orders", Some(&w.read_only), sell()).await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "forbidden"));
    // but every role reads market data
    for k in [&w.operator, &w.read_only, &w.trader, &w.seller] {
        assert_eq!(call(s, "GET", "/api/v1/markets", Some(k), None).await.0, StatusCode::OK);
    }
    // homeowners and traders trade
    for k in [&w.seller, &w.trader] {
        let (st, v) = call(s, "POST", "/api/v1/orders", Some(k), sell()).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    let (_, me) = call(s, "GET", "/api/v1/me", Some(&w.trader), None).await;
    assert_eq!(
        me,
        json!({"participant": 3, "role": "trader", "scopes": ["read", "trade"]})
    );
}

#[tokio::test]
async fn a_key_over_its_rate_is_told_when_to_retry() {
    let mut w = world().await;
    w.state.limiter = Arc::new(RateLimiter::new(RateLimit {
        per_second: 0.5,
        burst: 3.0,
    }));
    let s = &w.state;
    for _ in 0..3 {
        assert_eq!(
            call(s, "GET", "/api/v1/me", Some(&w.trader), None).await.0,
            StatusCode::OK
        );
    }
    let resp = app(s.clone())
        .oneshot(
            Request::get("/api/v1/me")
                .header("authorization", format!("Bearer {}", w.trader))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "2");
    // another key is not affected
    assert_eq!(
        call(s, "GET", "/api/v1/me", Some(&w.seller), None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_database_is_rebuilt_from_the_journal_and_ids_continue() {
    let dir = tempfile::tempdir().unwrap();
    let journal = JournalConfig {
        dir: dir.path().join("engine"),
        durability: Durability::EveryCommand,
    };
    let db1 = Db::open(dir.path().join("db1").to_str().unwrap()).await.unwrap();
    people(&db1).await;
    let market = start(&db1, Some(journal.clone())).await;
    let key1 = key(&db1, 1, "read,trade").await;
    let key2 = key(&db1, 2, "read,trade").await;
    let state = AppState {
        db: Some(db1.clone()),
        market: Some(market.clone()),
        ..AppState::default()
    };
    call(
        &state,
        "POST",
        "/api/v1/orders",
        Some(&key1),
        Some(order("sell", 500, 100_000)),
    )
    .await;
    let (_, ack) = call(
        &state,
        "POST",
        "/api/v1/orders",
        Some(&key2),
        Some(order("buy", 200, 100_000)),
    )
    .await;
    assert_eq!(ack["order_id"], 2);
    market.flush().await.unwrap();
    drop(state);
    drop(market);

    // a new database (as if the first lost its last writes): everything comes back
    let db2 = Db::open(dir.path().join("db2").to_str().unwrap()).await.unwrap();
    people(&db2).await;
    let (market, _) = Market::start(MarketConfig::default(), Some(journal), db2.clone(), Clock::wall())
        .await
        .unwrap();
    let o1 = orders::get(&db2, gridshare_domain::OrderId(1)).await.unwrap().unwrap();
    assert_eq!((o1.filled.0, o1.status), (200, orders::OrderStatus::Open));
    assert_eq!(
        orders::trades_of_participant(&db2, ParticipantId(2), None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let key2 = key(&db2, 2, "read,trade").await;
    let state = AppState {
        db: Some(db2),
        market: Some(market),
        ..AppState::default()
    };
    let (st, ack) = call(
        &state,
        "POST",
        "/api/v1/orders",
        Some(&key2),
        Some(order("buy", 100, 100_000)),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{ack}");
    assert_eq!(ack["order_id"], 3, "ids continue after the journal's");
    assert_eq!(
        ack["status"], "filled",
        "the recovered book still holds the rest of order 1"
    );
}

// ------------------------------------------------------------------ WebSocket feed

use futures_util::{SinkExt, StreamExt};
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
    let w = world().await;
    let port = live(w.state.clone()).await;
    let mut seller = ws_connect(port, &w.seller).await;
    let mut buyer = ws_connect(port, &w.buyer).await;
    let mut watcher = ws_connect(port, &w.trader).await;
    let s = &w.state;
    tokio::time::sleep(Duration::from_millis(50)).await; // subscriptions are taken at upgrade

    let (_, ack) = call(
        s,
        "POST",
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
        "POST",
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
    call(s, "DELETE", &format!("/api/v1/orders/{sell_id}"), Some(&w.seller), None).await;
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
    let w = world().await;
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
                gateway: None,
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
        "POST",
        "/api/v1/orders",
        Some(&w.seller),
        Some(order("sell", 5, 150_000)),
    )
    .await;
    assert_eq!(next(&mut fresh).await["type"], "book");
}
