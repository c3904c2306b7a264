//! Order entry against a real engine thread and database: orders cross into trades both sides
//! see, depth, amends and cancels, gate closure and its results; bad orders get a named error
//! and store nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{NOW, call, code, interval, market_world, order, recorded};
use gridshare_domain::ZoneId;
use gridshare_matching_engine::Command;
use gridshare_storage::orders;
use serde_json::json;

#[tokio::test]
async fn orders_cross_into_trades_visible_to_both_sides() {
    let w = market_world().await;
    let s = &w.state;
    let (st, ack) = call(
        s,
        Method::POST,
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
        Method::GET,
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
        Method::POST,
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
        let (_, v) = call(s, Method::GET, "/api/v1/trades", Some(&w.buyer), None).await;
        (v.as_array().unwrap().len() == 1).then_some(v)
    })
    .await;
    assert_eq!(buyer_trades[0]["quantity_wh"], 400);
    let (_, seller_trades) = call(s, Method::GET, "/api/v1/trades", Some(&w.seller), None).await;
    assert_eq!(seller_trades, buyer_trades, "the same trade on both sides");
    let (_, others) = call(s, Method::GET, "/api/v1/trades", Some(&w.trader), None).await;
    assert_eq!(others, json!([]), "a third party does not see it as theirs");

    let (_, mine) = call(s, Method::GET, "/api/v1/orders", Some(&w.seller), None).await;
    assert_eq!(mine[0]["order_id"].as_u64(), Some(sell_id));
    assert_eq!(
        (mine[0]["status"].as_str(), mine[0]["filled_wh"].as_i64()),
        (Some("open"), Some(400))
    );

    // amend down keeps the order; cancel removes it; a second cancel finds nothing
    let amend = json!({"quantity_wh": 300, "price": 120_000}).to_string();
    let (st, v) = call(
        s,
        Method::PATCH,
        &format!("/api/v1/orders/{sell_id}"),
        Some(&w.seller),
        Some(amend),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (st, v) = call(
        s,
        Method::DELETE,
        &format!("/api/v1/orders/{sell_id}"),
        Some(&w.buyer),
        None,
    )
    .await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "not_owner"));
    let (st, _) = call(
        s,
        Method::DELETE,
        &format!("/api/v1/orders/{sell_id}"),
        Some(&w.seller),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = call(
        s,
        Method::DELETE,
        &format!("/api/v1/orders/{sell_id}"),
        Some(&w.seller),
        None,
    )
    .await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "unknown_order"));
    let cancelled = recorded(async || {
        let (_, v) = call(s, Method::GET, "/api/v1/orders", Some(&w.seller), None).await;
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
            Method::GET,
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
        Method::POST,
        "/api/v1/orders",
        Some(&w.seller),
        Some(order("sell", 10, 120_000)),
    )
    .await;
    assert_eq!((st, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "book_closed"));
    let (_, books) = call(s, Method::GET, "/api/v1/markets", Some(&w.trader), None).await;
    assert_eq!(books[0]["open"], false);
    let (_, trades) = call(
        s,
        Method::GET,
        &format!("/api/v1/markets/1/trades?interval={}", interval()),
        Some(&w.trader),
        None,
    )
    .await;
    assert_eq!(trades.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_orders_get_a_named_error_and_store_nothing() {
    let w = market_world().await;
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
        let (st, v) = call(s, Method::POST, "/api/v1/orders", Some(&w.seller), Some(body.clone())).await;
        assert_eq!((st, code(&v)), (status, want), "{}", &body[..body.len().min(120)]);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let db = w.state.db.as_ref().unwrap();
    assert_eq!(orders::max_id(db).await.unwrap(), None, "nothing stored");
    let (_, mine) = call(s, Method::GET, "/api/v1/orders?limit=0", Some(&w.seller), None).await;
    assert_eq!(code(&mine), "invalid_limit");
    let (st, v) = call(
        s,
        Method::GET,
        "/api/v1/markets/1/depth?interval=soon",
        Some(&w.seller),
        None,
    )
    .await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_query"));
}
