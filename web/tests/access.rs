//! Who reaches the market API: no key, a malformed, unknown or revoked key are refused; an
//! operator or a read-only key does not trade; every role reads market data; `/me` names the
//! caller.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::http::{Method, StatusCode};
use common::{call, code, market_world, order};
use serde_json::json;

#[tokio::test]
async fn each_role_and_scope_reaches_only_what_it_may() {
    let w = market_world().await;
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
            (Method::GET, "/api/v1/orders"),
            (Method::GET, "/api/v1/markets"),
            (Method::POST, "/api/v1/orders"),
        ] {
            let body = (m == Method::POST).then(|| order("sell", 1, 120_000));
            let (st, v) = call(s, m.clone(), p, k, body).await;
            assert_eq!(
                (st, code(&v)),
                (StatusCode::UNAUTHORIZED, "unauthorized"),
                "{what} {m} {p}"
            );
        }
    }
    // an operator does not trade; a read-only key does not trade
    let (st, v) = call(s, Method::POST, "/api/v1/orders", Some(&w.operator), sell()).await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "forbidden"));
    let (st, v) = call(s, Method::POST, "/api/v1/orders", Some(&w.read_only), sell()).await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "forbidden"));
    // but every role reads market data
    for k in [&w.operator, &w.read_only, &w.trader, &w.seller] {
        assert_eq!(
            call(s, Method::GET, "/api/v1/markets", Some(k), None).await.0,
            StatusCode::OK
        );
    }
    // homeowners and traders trade
    for k in [&w.seller, &w.trader] {
        let (st, v) = call(s, Method::POST, "/api/v1/orders", Some(k), sell()).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    let (_, me) = call(s, Method::GET, "/api/v1/me", Some(&w.trader), None).await;
    assert_eq!(
        me,
        json!({"participant": 3, "role": "trader", "scopes": ["read", "trade"]})
    );
}
