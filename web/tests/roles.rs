//! Every role against every protected resource family, with keys carrying all the scopes their
//! role may have: one row per family, one expected answer per role (homeowner, installer,
//! operator, trader, admin) and for a caller without credentials. A homeowner sees only their
//! own data, an installer only the gateways they commissioned.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::http::{Method, StatusCode};
use common::every_role::{ROLES, world};
use common::{call, interval, order};
use serde_json::{Value, json};

/// Gateway ids in a `/gateways` answer.
fn gateway_ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(|g| g["id"].as_u64()).collect())
        .unwrap_or_default()
}

/// (family, method, path, body, expected: homeowner, installer, operator, trader, admin, anonymous)
type Row<'a> = (&'a str, Method, String, Option<String>, [u16; 6]);

#[tokio::test]
async fn every_role_meets_every_boundary() {
    let w = world().await;
    let cancel_path = format!("/api/v1/orders/{}", w.home2_order);
    let depth = format!("/api/v1/markets/1/depth?interval={}", interval());
    let feeder = format!("/api/v1/feeder?interval={}", interval());
    // (family, method, path, body, expected: homeowner, installer, operator, trader, admin, anonymous)
    let rows: Vec<Row> = vec![
        (
            "who am I",
            Method::GET,
            "/api/v1/me".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "place an order",
            Method::POST,
            "/api/v1/orders".into(),
            Some(order("buy", 100, 50_000)),
            [201, 403, 403, 201, 201, 401],
        ),
        (
            "cancel home 2's order",
            Method::DELETE,
            cancel_path.clone(),
            None,
            [403, 403, 403, 403, 403, 401],
        ),
        (
            "my orders",
            Method::GET,
            "/api/v1/orders".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "my trades",
            Method::GET,
            "/api/v1/trades".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "market data",
            Method::GET,
            "/api/v1/markets".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        ("depth", Method::GET, depth, None, [200, 200, 200, 200, 200, 401]),
        (
            "gateways",
            Method::GET,
            "/api/v1/gateways".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "home 2's readings",
            Method::GET,
            "/api/v1/gateways/12/readings?device=meter".into(),
            None,
            [403, 403, 200, 403, 200, 401],
        ),
        (
            "home 1's readings",
            Method::GET,
            "/api/v1/gateways/11/readings?device=meter".into(),
            None,
            [200, 200, 200, 403, 200, 401],
        ),
        ("feeder view", Method::GET, feeder, None, [403, 403, 200, 403, 200, 401]),
        (
            "DR programs: create",
            Method::POST,
            "/api/v1/dr/programs".into(),
            Some(json!({"name": "peak {who}", "description": ""}).to_string()),
            [403, 403, 201, 403, 201, 401],
        ),
        (
            "DR events: read",
            Method::GET,
            "/api/v1/dr/events".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "rewards",
            Method::GET,
            "/api/v1/rewards".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "balance",
            Method::GET,
            "/api/v1/balance".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "settlement batches",
            Method::GET,
            "/api/v1/settlement/batches".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "my positions",
            Method::GET,
            "/api/v1/settlement/positions?limit=5".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "proof of home 2's trade",
            Method::GET,
            "/api/v1/trades/1/proof".into(),
            None,
            [403, 403, 200, 200, 200, 401],
        ),
        (
            "API key with a DR scope",
            Method::POST,
            "/api/v1/api-keys".into(),
            Some(json!({"label": "x", "scopes": ["demand_response"]}).to_string()),
            [403, 403, 201, 403, 201, 401],
        ),
        (
            "API keys: list",
            Method::GET,
            "/api/v1/api-keys".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "trading preferences: read",
            Method::GET,
            "/api/v1/preferences".into(),
            None,
            [200, 403, 403, 403, 403, 401],
        ),
        (
            "trading preferences: set",
            Method::PUT,
            "/api/v1/preferences".into(),
            Some(
                json!({"min_sell_price": 90_000, "max_buy_price": 250_000, "battery_reserve_percent": 20}).to_string(),
            ),
            [200, 403, 403, 403, 403, 401],
        ),
        (
            "remote check of home 1's gateway",
            Method::POST,
            "/api/v1/gateways/11/checks".into(),
            None,
            [403, 202, 403, 403, 202, 401],
        ),
        (
            "remote check of home 2's gateway (another installer's)",
            Method::POST,
            "/api/v1/gateways/12/checks".into(),
            None,
            [403, 403, 403, 403, 202, 401],
        ),
    ];
    let mut wrong = Vec::new();
    for (family, method, path, body, expected) in &rows {
        let callers = w.keys.iter().map(|k| Some(k.as_str())).chain([None]);
        let names = ROLES.iter().map(|(_, r)| *r).chain(["anonymous"]);
        for ((who, name), want) in callers.zip(names).zip(expected) {
            let body = body.as_ref().map(|b| b.replace("{who}", name));
            let (got, v) = call(&w.state, method.clone(), path, who, body).await;
            let got = got.as_u16();
            if got != *want {
                wrong.push(format!("{family}: {name} got {got}, expected {want}: {v}"));
            } else if got >= 400 && v["error"]["code"].as_str().is_none() {
                wrong.push(format!("{family}: {name}'s {got} lacks the error shape: {v}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} boundaries wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // the owner may cancel what nobody else could
    let (st, v) = call(&w.state, Method::DELETE, &cancel_path, Some(&w.home2), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");

    // what each role sees of the gateways
    let mut seen = Vec::new();
    for k in &w.keys {
        seen.push(gateway_ids(
            &call(&w.state, Method::GET, "/api/v1/gateways", Some(k), None).await.1,
        ));
    }
    assert_eq!(seen, vec![vec![11], vec![11], vec![11, 12], vec![], vec![11, 12]]);
}
