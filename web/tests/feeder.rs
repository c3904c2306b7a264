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
