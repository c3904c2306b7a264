//! The operator's feeder view: each line's and transformer's load from telemetry against its
//! limit from the network configuration; operators only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use common::{call, gateway, key, meter_reading, participant, temp_db};
use gridshare_domain::{MicroPerKwh, NodeId, Wh};
use gridshare_matching_engine::NodeConfig;
use gridshare_storage::readings;
use gridshare_web::AppState;
use serde_json::json;

const T: i64 = 1_764_064_800_000; // 2025-11-25T10:00:00Z

fn node(id: u32, parent: Option<u32>, capacity: Option<i64>) -> NodeConfig {
    NodeConfig {
        id: NodeId(id),
        parent: parent.map(NodeId),
        capacity: capacity.map(Wh),
        fee: MicroPerKwh(0),
    }
}

#[tokio::test]
async fn load_per_node_against_its_limit() {
    let (db, _dir) = temp_db().await;
    let mut keys = Vec::new();
    for (id, role) in [(1, "homeowner"), (4, "operator")] {
        participant(&db, id, role, None).await;
        keys.push(key(&db, id, "read").await);
    }
    // gateway 11 draws 3 kW at node 100, 12 exports 1 kW at node 101 (both under transformer 10),
    // 13 draws 2 kW at node 200 under transformer 20
    for (gw, at, watts) in [(11u64, 100u32, 3_000i64), (12, 101, -1_000), (13, 200, 2_000)] {
        gateway(&db, gw, 1, None, at).await;
        let rows: Vec<_> = (0..3)
            .map(|i| meter_reading(gw, i + 1, T + i as i64 * 300_000, watts, None, None))
            .collect();
        readings::insert_batch(&db, &rows).await.unwrap();
    }
    // the interval's gate-closure auction, as the recorder stores it: node 10's edge was full
    let interval: gridshare_domain::DeliveryInterval = "2025-11-25T10:00:00Z/PT15M".parse().unwrap();
    let node_price = |node, price, flow, congestion| {
        gridshare_storage::orders::Change::NodePrice(gridshare_domain::wire::NodePrice {
            zone: gridshare_domain::ZoneId(1),
            interval,
            node: NodeId(node),
            price: MicroPerKwh(price),
            flow: Wh(flow),
            congestion: MicroPerKwh(congestion),
        })
    };
    gridshare_storage::orders::record(
        &db,
        &[node_price(0, 120_000, 0, 0), node_price(10, 60_000, 15_000, 60_000)],
    )
    .await
    .unwrap();
    let s = AppState {
        db: Some(db),
        network: Some(Arc::new(vec![
            node(0, None, None),
            node(10, Some(0), Some(15_000)), // 15 kWh per 15 min = 60 kW
            node(100, Some(10), Some(500)),  // 2 kW: overloaded
            node(101, Some(10), Some(3_000)),
            node(20, Some(0), None),
            node(200, Some(20), Some(3_000)),
        ])),
        ..AppState::default()
    };
    let [home, operator] = <[String; 2]>::try_from(keys).unwrap();
    let path = "/api/v1/feeder?interval=2025-11-25T10:00:00Z/PT15M";
    let (st, v) = call(&s, Method::GET, path, Some(&home), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, v) = call(&s, Method::GET, path, Some(&operator), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let by = |n: u32| {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["node"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by(0),
        json!({"node": 0, "parent": null, "gateways": 3, "load_w": 4000, "limit_w": null, "headroom_w": null,
               "auction_price": 120_000, "auction_flow_wh": 0, "congestion": 0})
    );
    assert_eq!(
        by(10),
        json!({"node": 10, "parent": 0, "gateways": 2, "load_w": 2000, "limit_w": 60000, "headroom_w": 58000,
               "auction_price": 60_000, "auction_flow_wh": 15_000, "congestion": 60_000})
    );
    assert_eq!(by(100)["headroom_w"], -1000, "overloaded: negative headroom");
    assert_eq!(
        (by(101)["load_w"].as_i64(), by(101)["headroom_w"].as_i64()),
        (Some(-1000), Some(11_000))
    );
    assert_eq!(by(200)["load_w"], 2000);
    assert_eq!(by(200)["auction_price"], json!(null), "no price stored for it");
    assert_eq!(v["zone"], 1);
    // another zone's auction had no prices
    let (st, v) = call(&s, Method::GET, &format!("{path}&zone=2"), Some(&operator), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["auction_price"].is_null()),
        "{v}"
    );
    let no_net = AppState {
        network: None,
        ..s.clone()
    };
    assert_eq!(
        call(&no_net, Method::GET, path, Some(&operator), None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn each_result_carries_its_books_node_prices_over_the_api_and_the_live_feed() {
    use gridshare_domain::wire::{IntervalResult, NodePrice};
    use gridshare_domain::{DeliveryInterval, Timestamp, ZoneId};
    use gridshare_matching_engine::Event;
    use gridshare_storage::orders::Change;

    let (db, _dir) = temp_db().await;
    participant(&db, 1, "homeowner", None).await;
    let home = key(&db, 1, "read").await;
    let interval: DeliveryInterval = "2025-11-25T10:00:00Z/PT15M".parse().unwrap();
    let later: DeliveryInterval = "2025-11-25T10:15:00Z/PT15M".parse().unwrap();
    let price = |interval, node, price, flow, congestion| NodePrice {
        zone: ZoneId(1),
        interval,
        node: NodeId(node),
        price: MicroPerKwh(price),
        flow: Wh(flow),
        congestion: MicroPerKwh(congestion),
    };
    let result = |interval| IntervalResult {
        zone: ZoneId(1),
        interval,
        clearing_price: Some(MicroPerKwh(120_000)),
        auction_volume: Wh(15_000),
        total_volume: Wh(16_000),
        trades: 3,
        node_prices: vec![],
    };
    // the first book traded over a full edge; the second's auction traded nothing
    gridshare_storage::orders::record(
        &db,
        &[
            Change::NodePrice(price(interval, 0, 120_000, 0, 0)),
            Change::NodePrice(price(interval, 10, 60_000, 15_000, 60_000)),
            Change::Result {
                result: result(interval),
                closed_at: Timestamp(T),
            },
            Change::Result {
                result: result(later),
                closed_at: Timestamp(T + 900_000),
            },
        ],
    )
    .await
    .unwrap();
    let s = AppState {
        db: Some(db),
        ..AppState::default()
    };
    let range = "from=2025-11-25T09:00:00Z&to=2025-11-25T11:00:00Z";
    let (st, v) = call(
        &s,
        Method::GET,
        &format!("/api/v1/markets/1/results?{range}"),
        Some(&home),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v[0]["node_prices"],
        json!([{"node": 0, "price": 120_000, "flow_wh": 0, "congestion": 0},
               {"node": 10, "price": 60_000, "flow_wh": 15_000, "congestion": 60_000}])
    );
    assert_eq!(v[1]["node_prices"], json!([]), "{v}");
    let (st, v) = call(
        &s,
        Method::GET,
        &format!("/api/v1/markets/1/results?{range}&node=10"),
        Some(&home),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v[0]["node_prices"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v[0]["node_prices"][0]["node"], 10);
    let (st, v) = call(
        &s,
        Method::GET,
        &format!("/api/v1/markets/1/results?{range}&node=-1"),
        Some(&home),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "not a node: {v}");

    // the live feed's result frame at gate closure: from the engine's events, to everyone
    let events = vec![
        Event::AuctionResult {
            zone: ZoneId(1),
            interval,
            clearing_price: Some(MicroPerKwh(120_000)),
            volume: Wh(15_000),
        },
        Event::NodePrice {
            zone: ZoneId(1),
            interval,
            node: NodeId(10),
            price: MicroPerKwh(60_000),
            flow: Wh(15_000),
            congestion: MicroPerKwh(60_000),
        },
        Event::BookClosed {
            zone: ZoneId(1),
            interval,
            total_volume: Wh(16_000),
            trades: 3,
        },
    ];
    let outcome = gridshare_market::Outcome {
        at: Timestamp(T),
        order_id: None,
        owner: None,
        events,
        owners: vec![],
        books: vec![],
    };
    let who = gridshare_web::auth::Principal {
        participant: gridshare_domain::ParticipantId(1),
        role: gridshare_web::auth::Role::Homeowner,
        scopes: vec![],
        key: None,
    };
    let frames = gridshare_web::ws::frames(&outcome, &who);
    let frame: serde_json::Value = serde_json::from_str(frames.last().unwrap()).unwrap();
    assert_eq!(
        (
            &frame["type"],
            &frame["zone"],
            &frame["clearing_price"],
            &frame["node_prices"][0]["price"]
        ),
        (&json!("result"), &json!(1), &json!(120_000), &json!(60_000)),
        "{frame}"
    );
}
