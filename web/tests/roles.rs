//! Every role against every protected resource family, with keys carrying all the scopes their
//! role may have: one row per family, one expected answer per role (homeowner, installer,
//! operator, trader, admin) and for a caller without credentials. A homeowner sees only their
//! own data, an installer only the gateways they commissioned. The dashboard's pages likewise:
//! each role's page for that role (and admins), a 403 page for the others, the login page for a
//! visitor; the trader's page for the zone asked (`?zone=`), an unknown zone refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use axum::body::Body;
use axum::http::Request;
use gridshare_domain::envelope::{GatewayKey, ReplayWindow};
use gridshare_domain::wire::TradeReport;
use gridshare_domain::{
    DeliveryInterval, GatewayId, IntervalLength, Micro, MicroPerKwh, NodeId, OrderId, ParticipantId, Timestamp,
    TradeId, Wh, ZoneId,
};
use gridshare_market::{Clock, Downlinks, Market, add_participants};
use gridshare_matching_engine::{Command, MarketConfig};
use gridshare_settlement::merkle::MerkleTree;
use gridshare_settlement::step::{Accounts, OnchainTrade, leaf_trade};
use gridshare_storage::chain_txs::{self, NewBatch};
use gridshare_storage::gateways::{self, Gateway};
use gridshare_storage::participants::{self, Participant};
use gridshare_storage::positions::{self, NewPosition, TrueUp};
use gridshare_storage::{Db, api_keys, market};
use gridshare_web::api::role_scopes;
use gridshare_web::auth::{Role, TokenKind, new_token};
use gridshare_web::{AppState, app};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const NOW: Timestamp = Timestamp(1_764_064_000_000);

fn interval() -> DeliveryInterval {
    DeliveryInterval::new(Timestamp(4_102_444_800_000), IntervalLength::Min15).unwrap()
}

/// The callers, in the order of every row's expectations.
const ROLES: [(u64, &str); 5] = [
    (1, "homeowner"),
    (5, "installer"),
    (4, "operator"),
    (3, "trader"),
    (6, "admin"),
];

struct World {
    state: AppState,
    keys: Vec<String>,
    /// Home 2's key, and a resting order of home 2's that nobody else may cancel.
    home2: String,
    home2_order: u64,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    // home 2 is the other homeowner, whose data home 1 must not see
    for (id, role) in ROLES.iter().copied().chain([(2, "homeowner")]) {
        participants::upsert(
            &db,
            &Participant {
                id: ParticipantId(id),
                name: format!("P{id}"),
                role: role.into(),
                evm_address: None,
                feeder_node: Some(1),
            },
            NOW,
        )
        .await
        .unwrap();
    }
    let mut keys = Vec::new();
    for (id, role) in ROLES {
        let scopes: Vec<String> = role_scopes(Role::parse(role).unwrap())
            .iter()
            .map(|s| serde_json::to_value(s).unwrap().as_str().unwrap().to_owned())
            .collect();
        let t = new_token(TokenKind::ApiKey);
        api_keys::create(&db, &t.id, ParticipantId(id), &t.hash, &scopes.join(","), "matrix", NOW)
            .await
            .unwrap();
        keys.push(t.token);
    }
    // gateway 11: home 1's, commissioned by the installer; gateway 12: home 2's, by nobody
    for (gw, owner, installer) in [(11u64, 1u64, Some(5u64)), (12, 2, None)] {
        gateways::register(
            &db,
            &Gateway {
                id: GatewayId(gw),
                owner: ParticipantId(owner),
                installer: installer.map(ParticipantId),
                public_key: GatewayKey::from_bytes(&[gw as u8; 32]).unwrap().public(),
                feeder_node: NodeId(1),
                window: ReplayWindow::default(),
                revoked_at: None,
            },
            NOW,
        )
        .await
        .unwrap();
    }
    // a settled trade between home 2 (buyer) and the trader (seller), with its proof data
    let trade = TradeReport {
        trade_id: TradeId(1),
        zone: ZoneId(1),
        interval: DeliveryInterval::new(Timestamp(1_764_064_800_000), IntervalLength::Min15).unwrap(),
        buy_order: OrderId(900),
        sell_order: OrderId(901),
        buyer: ParticipantId(2),
        seller: ParticipantId(3),
        quantity: Wh(500),
        price: MicroPerKwh(120_000),
        grid_fee: MicroPerKwh(7_000),
        at: NOW,
    };
    market::insert_trades(&db, std::slice::from_ref(&trade)).await.unwrap();
    let accounts = Accounts::load(
        &db,
        "0x00000000000000000000000000000000000000c0".parse().unwrap(),
        "0x0000000000000000000000000000000000000060".parse().unwrap(),
        "0x0000000000000000000000000000000000000001".parse().unwrap(),
    )
    .await
    .unwrap();
    let leaf = leaf_trade(&trade, &accounts).unwrap();
    chain_txs::insert_batch(
        &db,
        &NewBatch {
            batch_id: 1,
            first_interval_start: trade.interval.start().0,
            last_interval_end: trade.interval.end().0,
            prev_state_hash: format!("0x{}", "00".repeat(32)),
            trades_root: MerkleTree::from_trades(std::slice::from_ref(&leaf)).root().to_string(),
            trade_count: 1,
            deltas: vec![],
            trades: vec![(1, OnchainTrade::from(&leaf).to_json())],
            // home 2's readings were late (settled as traded); the trader's meter agreed
            positions: vec![
                settled_position(ParticipantId(2), Wh(500), Wh(0), true),
                settled_position(ParticipantId(3), Wh(0), Wh(500), false),
            ],
            true_ups: Vec::new(),
        },
        NOW.0,
    )
    .await
    .unwrap();

    let (market, _) = Market::start(MarketConfig::default(), None, db.clone(), Clock::wall())
        .await
        .unwrap();
    add_participants(&market, (1..=6).map(|p| (ParticipantId(p), NodeId(1))))
        .await
        .unwrap();
    market
        .command(Command::OpenBook {
            zone: ZoneId(1),
            interval: interval(),
        })
        .await
        .unwrap();
    let t = new_token(TokenKind::ApiKey);
    api_keys::create(&db, &t.id, ParticipantId(2), &t.hash, "read,trade", "home 2", NOW)
        .await
        .unwrap();
    let feeder = vec![gridshare_matching_engine::NodeConfig {
        id: NodeId(1),
        parent: None,
        capacity: Some(Wh(10_000)),
        fee: MicroPerKwh(0),
    }];
    // what goes down to gateways is kept for the test's life, unread
    let (downlink, kept) = Downlinks::channel();
    std::mem::forget(kept);
    let mut w = World {
        state: AppState {
            db: Some(db),
            market: Some(market),
            network: Some(std::sync::Arc::new(feeder)),
            downlink,
            ..AppState::default()
        },
        keys,
        home2: t.token,
        home2_order: 0,
        _dir: dir,
    };
    let (st, v) = call(&w.state, "POST", "/api/v1/orders", Some(&w.home2), Some(order())).await;
    assert_eq!(st, 201, "{v}");
    w.home2_order = v["order_id"].as_u64().unwrap();
    w
}

fn settled_position(who: ParticipantId, bought: Wh, sold: Wh, estimated: bool) -> NewPosition {
    let iv = DeliveryInterval::new(Timestamp(1_764_064_800_000), IntervalLength::Min15).unwrap();
    NewPosition {
        interval_start: iv.start(),
        interval_end: iv.end(),
        participant: who,
        bought,
        sold,
        metered_net_import: Wh(bought.0 - sold.0),
        estimated,
        imbalance: Wh(0),
        imbalance_cash: Micro(0),
        import_tariff: MicroPerKwh(300_000),
        export_tariff: MicroPerKwh(80_000),
    }
}

fn order() -> String {
    json!({"zone": 1, "interval": interval().to_string(), "side": "buy", "quantity_wh": 100, "price": 50_000})
        .to_string()
}

async fn call(state: &AppState, method: &str, path: &str, key: Option<&str>, body: Option<String>) -> (u16, Value) {
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
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Gateway ids in a `/gateways` answer.
fn gateway_ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(|g| g["id"].as_u64()).collect())
        .unwrap_or_default()
}

/// (family, method, path, body, expected: homeowner, installer, operator, trader, admin, anonymous)
type Row<'a> = (&'a str, &'a str, String, Option<String>, [u16; 6]);

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
            "GET",
            "/api/v1/me".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "place an order",
            "POST",
            "/api/v1/orders".into(),
            Some(order()),
            [201, 403, 403, 201, 201, 401],
        ),
        (
            "cancel home 2's order",
            "DELETE",
            cancel_path.clone(),
            None,
            [403, 403, 403, 403, 403, 401],
        ),
        (
            "my orders",
            "GET",
            "/api/v1/orders".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "my trades",
            "GET",
            "/api/v1/trades".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "market data",
            "GET",
            "/api/v1/markets".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        ("depth", "GET", depth, None, [200, 200, 200, 200, 200, 401]),
        (
            "gateways",
            "GET",
            "/api/v1/gateways".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "home 2's readings",
            "GET",
            "/api/v1/gateways/12/readings?device=meter".into(),
            None,
            [403, 403, 200, 403, 200, 401],
        ),
        (
            "home 1's readings",
            "GET",
            "/api/v1/gateways/11/readings?device=meter".into(),
            None,
            [200, 200, 200, 403, 200, 401],
        ),
        ("feeder view", "GET", feeder, None, [403, 403, 200, 403, 200, 401]),
        (
            "DR programs: create",
            "POST",
            "/api/v1/dr/programs".into(),
            Some(json!({"name": "peak {who}", "description": ""}).to_string()),
            [403, 403, 201, 403, 201, 401],
        ),
        (
            "DR events: read",
            "GET",
            "/api/v1/dr/events".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "rewards",
            "GET",
            "/api/v1/rewards".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "balance",
            "GET",
            "/api/v1/balance".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "settlement batches",
            "GET",
            "/api/v1/settlement/batches".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "my positions",
            "GET",
            "/api/v1/settlement/positions?limit=5".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "proof of home 2's trade",
            "GET",
            "/api/v1/trades/1/proof".into(),
            None,
            [403, 403, 200, 200, 200, 401],
        ),
        (
            "API key with a DR scope",
            "POST",
            "/api/v1/api-keys".into(),
            Some(json!({"label": "x", "scopes": ["demand_response"]}).to_string()),
            [403, 403, 201, 403, 201, 401],
        ),
        (
            "API keys: list",
            "GET",
            "/api/v1/api-keys".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "trading preferences: read",
            "GET",
            "/api/v1/preferences".into(),
            None,
            [200, 403, 403, 403, 403, 401],
        ),
        (
            "trading preferences: set",
            "PUT",
            "/api/v1/preferences".into(),
            Some(
                json!({"min_sell_price": 90_000, "max_buy_price": 250_000, "battery_reserve_percent": 20}).to_string(),
            ),
            [200, 403, 403, 403, 403, 401],
        ),
        (
            "remote check of home 1's gateway",
            "POST",
            "/api/v1/gateways/11/checks".into(),
            None,
            [403, 202, 403, 403, 202, 401],
        ),
        (
            "remote check of home 2's gateway (another installer's)",
            "POST",
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
            let (got, v) = call(&w.state, method, path, who, body).await;
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
    let (st, v) = call(&w.state, "DELETE", &cancel_path, Some(&w.home2), None).await;
    assert_eq!(st, 204, "{v}");

    // what each role sees of the gateways
    let mut seen = Vec::new();
    for k in &w.keys {
        seen.push(gateway_ids(
            &call(&w.state, "GET", "/api/v1/gateways", Some(k), None).await.1,
        ));
    }
    assert_eq!(seen, vec![vec![11], vec![11], vec![11, 12], vec![], vec![11, 12]]);
}

#[tokio::test]
async fn my_positions_show_what_settled_and_its_true_up() {
    let w = world().await;
    let get = |key: String, query: &'static str| {
        let state = w.state.clone();
        async move {
            call(
                &state,
                "GET",
                &format!("/api/v1/settlement/positions{query}"),
                Some(&key),
                None,
            )
            .await
        }
    };
    let (st, v) = get(w.home2.clone(), "").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(
        (&v[0]["status"], &v[0]["bought_wh"], &v[0]["batch_id"], &v[0]["true_up"]),
        (&json!("estimated"), &json!(500), &json!(1), &Value::Null),
        "{v}"
    );
    assert_eq!(v[0]["interval_start"], "2025-11-25T10:00:00Z");
    let (_, v) = get(w.keys[3].clone(), "").await;
    assert_eq!(
        (v.as_array().map(Vec::len), &v[0]["status"], &v[0]["sold_wh"]),
        (Some(1), &json!("measured"), &json!(500)),
        "the trader's own: {v}"
    );
    let (_, v) = get(w.keys[0].clone(), "").await;
    assert_eq!(v, json!([]), "home 1 did not trade");

    // home 2's readings arrive and confirm the estimate: trued up, no money moved
    positions::record_unposted_true_ups(
        w.state.db.as_ref().unwrap(),
        &[TrueUp {
            interval_start: Timestamp(1_764_064_800_000),
            participant: ParticipantId(2),
            real_net_import: Wh(500),
            cash: Micro(0),
        }],
        Timestamp(NOW.0 + 1_000),
    )
    .await
    .unwrap();
    let (_, v) = get(w.home2.clone(), "").await;
    assert_eq!(v[0]["status"], "trued_up", "{v}");
    assert_eq!(
        v[0]["true_up"],
        json!({"metered_net_import_wh": 500, "correction_micro": 0, "batch_id": null, "at": "2025-11-25T09:46:41Z"})
    );
    let (_, v) = get(w.home2.clone(), "?before=1764064800000").await;
    assert_eq!(v, json!([]), "paged by interval start");
    let (st, v) = get(w.home2.clone(), "?limit=0").await;
    assert_eq!((st, &v["error"]["code"]), (400, &json!("invalid_limit")), "{v}");
}

/// A dashboard page or form as `key`'s owner: status, `Location` (redirects) and body.
async fn page(
    state: &AppState,
    method: &str,
    path: &str,
    key: Option<&str>,
    form: Option<&str>,
) -> (u16, String, String) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let req = match form {
        Some(f) => req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(f.to_owned())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, location, String::from_utf8_lossy(&bytes).into_owned())
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
            (404, String::new()),
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
    let (_, v) = call(&state, "GET", &depth(2), trader, None).await;
    assert_eq!(v["asks"], json!([{"price": 60_000, "quantity_wh": 250}]), "{v}");
    let (_, v) = call(&state, "GET", &depth(1), trader, None).await;
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
    let (_, v) = call(&w.state, "GET", &format!("/api/v1/dr/events/{id}"), operator, None).await;
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
