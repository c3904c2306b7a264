//! Every role against every protected resource family, with keys carrying all the scopes their
//! role may have: one row per family, one expected answer per role (homeowner, installer,
//! operator, trader, admin) and for a caller without credentials. A homeowner sees only their
//! own data, an installer only the gateways they commissioned. The dashboard's pages likewise:
//! each role's page for that role (and admins), a 403 page for the others, the login page for a
//! visitor; the trader's page for the zone asked (`?zone=`), an unknown zone refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::http::{Method, StatusCode};
use common::every_role::{ROLES, world};
use common::{call, interval, order, request};
use gridshare_domain::ZoneId;
use gridshare_matching_engine::Command;
use gridshare_web::AppState;
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
            "reward epochs (public)",
            Method::GET,
            "/api/v1/epochs".into(),
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "governed parameters (public)",
            Method::GET,
            "/api/v1/governance/parameters".into(),
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "governance proposals (public)",
            Method::GET,
            "/api/v1/governance/proposals".into(),
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            // the grid operator and admins may propose; here the parameters were never read from
            // a chain, so their bounds are unknown and the proposal waits (409)
            "propose a parameter change",
            Method::POST,
            "/api/v1/governance/proposals".into(),
            Some(
                json!({
                    "description": "a lower fee",
                    "changes": [{"parameter": "feePerHop", "value": "500"}]
                })
                .to_string(),
            ),
            [403, 403, 409, 403, 409, 401],
        ),
        (
            // homeowners vote through the service with their custodial account's tokens; others
            // do not (an admin neither: it would vote with its own account, not a home's). There
            // is no proposal 999: the homeowner gets past every role check to the 404
            "vote on a proposal",
            Method::POST,
            "/api/v1/governance/proposals/999/votes".into(),
            Some(json!({"support": "for"}).to_string()),
            [404, 403, 403, 403, 403, 401],
        ),
        (
            "my votes",
            Method::GET,
            "/api/v1/governance/votes".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "my epoch rewards",
            Method::GET,
            "/api/v1/epochs/rewards".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "proofs of equivocation (a home: its own gateways')",
            Method::GET,
            "/api/v1/equivocations".into(),
            None,
            [200, 403, 200, 403, 200, 401],
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
/// A dashboard page or form as `key`'s owner: status, `Location` (redirects) and body.
async fn page(
    state: &AppState,
    method: &str,
    path: &str,
    key: Option<&str>,
    form: Option<&str>,
) -> (u16, String, String) {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut call = request(method, path).maybe_key(key);
    if let Some(f) = form {
        call = call.form(f);
    }
    let reply = call.send(state).await;
    (
        reply.status.as_u16(),
        reply.header("location").unwrap_or_default(),
        reply.text,
    )
}

#[tokio::test]
async fn every_role_meets_every_page() {
    let w = world().await;
    // (page, what the 403 page says, expected: homeowner, installer, operator, trader, admin, anonymous)
    let rows = [
        ("/home/1", "Not your home", [200, 403, 403, 403, 200, 303]),
        ("/home/2", "Not your home", [403, 403, 403, 403, 200, 303]),
        ("/trader", "Traders only", [403, 403, 403, 200, 200, 303]),
        ("/operator", "Grid operators only", [403, 403, 200, 403, 200, 303]),
        ("/installer", "Installers only", [403, 200, 403, 403, 200, 303]),
        ("/admin", "Admins only", [403, 403, 403, 403, 200, 303]),
        ("/network", "", [200, 200, 200, 200, 200, 200]),
        (
            "/installer/gateways/11/checks/1",
            "Installers only",
            [403, 404, 403, 403, 404, 303],
        ),
    ];
    let mut wrong = Vec::new();
    for (path, refusal, expected) in rows {
        let callers = w.keys.iter().map(|k| Some(k.as_str())).chain([None]);
        let names = ROLES.iter().map(|(_, r)| *r).chain(["anonymous"]);
        for ((who, name), want) in callers.zip(names).zip(expected) {
            let (got, location, body) = page(&w.state, "GET", path, who, None).await;
            if got != want {
                wrong.push(format!("{path}: {name} got {got}, expected {want}: {body}"));
            } else if got == 403 && !body.contains(refusal) {
                wrong.push(format!("{path}: {name}'s 403 page does not say {refusal:?}: {body}"));
            } else if got == 303 && location != "/login" {
                wrong.push(format!("{path}: {name} sent to {location:?}, not the login page"));
            } else if got == 200 && !body.contains("<main") {
                wrong.push(format!("{path}: {name}'s page has no content: {body}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{} pages wrong:\n{}", wrong.len(), wrong.join("\n"));

    // the way in: each role to its own page
    let mut to = Vec::new();
    for k in &w.keys {
        let (st, location, _) = page(&w.state, "GET", "/", Some(k), None).await;
        to.push((st, location));
    }
    assert_eq!(
        to,
        vec![
            (303, "/home/1".to_owned()),
            (303, "/installer".to_owned()),
            (303, "/operator".to_owned()),
            (303, "/trader".to_owned()),
            (303, "/admin".to_owned()),
        ]
    );

    // a form of another role's page is refused the same way
    let (st, _, body) = page(
        &w.state,
        "POST",
        "/trader/orders",
        Some(&w.keys[0]),
        Some("interval=x&side=buy&quantity_wh=1&price=0.05"),
    )
    .await;
    assert_eq!((st, body.contains("Traders only")), (403, true));
}

#[tokio::test]
async fn the_trader_page_shows_the_zone_asked_for() {
    let w = world().await;
    let trader = Some(w.keys[3].as_str());
    let mut state = w.state.clone();
    state.zones = vec![ZoneId(1), ZoneId(2)];
    state
        .market
        .as_ref()
        .unwrap()
        .command(Command::OpenBook {
            zone: ZoneId(2),
            interval: interval(),
            fees: None,
        })
        .await
        .unwrap();
    let zone_field = |z: u32| format!(r#"name="zone" value="{z}""#);

    // no zone asked: the first configured
    let (st, _, body) = page(&state, "GET", "/trader", trader, None).await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains(&zone_field(1)), "{body}");
    let (st, _, body) = page(&state, "GET", "/trader?zone=2", trader, None).await;
    assert_eq!(st, 200, "{body}");
    assert!(
        body.contains(&zone_field(2)) && !body.contains(&zone_field(1)),
        "{body}"
    );

    // an unknown zone is an error page, not a panic
    let (st, _, body) = page(&state, "GET", "/trader?zone=7", trader, None).await;
    assert_eq!(st, 404, "{body}");
    assert!(body.contains("The market has no zone 7; its zones are 1, 2."), "{body}");
    let (st, _, body) = page(&state, "GET", "/trader?zone=north", trader, None).await;
    assert_eq!(st, 400, "{body}");

    // an order placed from zone 2's page goes into zone 2's book, and back to it
    let form = format!(
        "zone=2&interval={}&side=sell&quantity_wh=250&price=0.060",
        interval().to_string().replace(':', "%3A").replace('/', "%2F")
    );
    let (st, location, _) = page(&state, "POST", "/trader/orders", trader, Some(&form)).await;
    assert_eq!(st, 303);
    assert!(
        location.starts_with("/trader?zone=2&interval=") && location.contains("&ok=Order%20"),
        "{location}"
    );
    let depth = |z: u32| format!("/api/v1/markets/{z}/depth?interval={}", interval());
    let (_, v) = call(&state, Method::GET, &depth(2), trader, None).await;
    assert_eq!(v["asks"], json!([{"price": 60_000, "quantity_wh": 250}]), "{v}");
    let (_, v) = call(&state, Method::GET, &depth(1), trader, None).await;
    assert_eq!(v["asks"], json!([]), "{v}");

    // …and an order for an unknown zone is refused with the reason
    let (st, location, _) = page(
        &state,
        "POST",
        "/trader/orders",
        trader,
        Some(&form.replace("zone=2", "zone=7")),
    )
    .await;
    assert_eq!(st, 303);
    assert!(
        location.starts_with("/trader?err=Not%20placed.%20The%20market%20has%20no%20zone%207"),
        "{location}"
    );
}

#[tokio::test]
async fn the_operator_calls_an_event_on_the_lines_ticked() {
    let w = world().await;
    let operator = Some(w.keys[2].as_str());
    // `node` repeats, one per line ticked; the power as people type it
    let form = format!(
        "node=1&node=1&kw=1%2C5&signal=load_shed&start={}&minutes=15",
        interval().start().0
    );
    let (st, location, body) = page(&w.state, "POST", "/operator/events", operator, Some(&form)).await;
    assert_eq!(st, 303, "{body}");
    let id = location.strip_prefix("/operator/events/").expect("to the event's page");
    let (_, v) = call(
        &w.state,
        Method::GET,
        &format!("/api/v1/dr/events/{id}"),
        operator,
        None,
    )
    .await;
    assert_eq!(v["targets"], json!({"kind": "nodes", "nodes": [1, 1]}), "{v}");
    assert_eq!(v["gateways"], json!([11, 12]), "{v}");
    assert_eq!(v["intervals"][0]["signals"][0]["w"], 1_500, "{v}");
    let (st, _, body) = page(&w.state, "GET", &location, operator, None).await;
    assert_eq!(st, 200, "{body}");

    // a form without a line ticked goes back with the reason
    let (st, location, _) = page(
        &w.state,
        "POST",
        "/operator/events",
        operator,
        Some("kw=1&signal=load_shed&start=0&minutes=15"),
    )
    .await;
    assert_eq!(st, 303);
    assert_eq!(
        location,
        "/operator?err=Not%20called%3A%20choose%20the%20lines%20or%20transformers%20it%20is%20for."
    );
}
