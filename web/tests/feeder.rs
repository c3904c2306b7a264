//! The operator's feeder view: each line's and transformer's load from telemetry against its
//! limit from the network configuration; operators only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gridshare_domain::envelope::{GatewayKey, ReplayWindow};
use gridshare_domain::wire::{DeviceKind, DeviceStatus, Quality, TelemetrySample};
use gridshare_domain::{DeviceId, GatewayId, MicroPerKwh, NodeId, ParticipantId, Timestamp, W, Wh};
use gridshare_matching_engine::NodeConfig;
use gridshare_storage::gateways::{self, Gateway};
use gridshare_storage::participants::{self, Participant};
use gridshare_storage::readings::{self, Reading};
use gridshare_storage::{Db, api_keys};
use gridshare_web::auth::{TokenKind, new_token};
use gridshare_web::{AppState, app};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const T: i64 = 1_764_064_800_000; // 2025-11-25T10:00:00Z

async fn call(s: &AppState, path: &str, key: &str) -> (StatusCode, Value) {
    let req = Request::get(path)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let resp = app(s.clone()).oneshot(req).await.unwrap();
    let st = resp.status();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    (st, serde_json::from_slice(&b).unwrap())
}

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
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    let mut keys = Vec::new();
    for (id, role) in [(1, "homeowner"), (4, "operator")] {
        participants::upsert(
            &db,
            &Participant {
                id: ParticipantId(id),
                name: format!("p{id}"),
                role: role.into(),
                evm_address: None,
                feeder_node: None,
            },
            Timestamp(T),
        )
        .await
        .unwrap();
        let t = new_token(TokenKind::ApiKey);
        api_keys::create(&db, &t.id, ParticipantId(id), &t.hash, "read", "", Timestamp(T))
            .await
            .unwrap();
        keys.push(t.token);
    }
    // gateway 11 draws 3 kW at node 100, 12 exports 1 kW at node 101 (both under transformer 10),
    // 13 draws 2 kW at node 200 under transformer 20
    for (gw, at, watts) in [(11u64, 100u32, 3_000i64), (12, 101, -1_000), (13, 200, 2_000)] {
        gateways::register(
            &db,
            &Gateway {
                id: GatewayId(gw),
                owner: ParticipantId(1),
                installer: None,
                public_key: GatewayKey::from_bytes(&[gw as u8; 32]).unwrap().public(),
                feeder_node: NodeId(at),
                window: ReplayWindow::default(),
                revoked_at: None,
            },
            Timestamp(T),
        )
        .await
        .unwrap();
        let rows: Vec<Reading> = (0..3)
            .map(|i| Reading {
                gateway: GatewayId(gw),
                seq: i + 1,
                sample: TelemetrySample {
                    device: DeviceId::new("meter").unwrap(),
                    kind: DeviceKind::GridMeter,
                    at: Timestamp(T + i as i64 * 300_000),
                    power_w: Some(W(watts)),
                    energy_in_wh: None,
                    energy_out_wh: None,
                    soc_permille: None,
                    status: DeviceStatus::Ok,
                    quality: Quality::Good,
                },
            })
            .collect();
        readings::insert_batch(&db, &rows).await.unwrap();
    }
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
    let (st, v) = call(&s, path, &home).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, v) = call(&s, path, &operator).await;
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
        json!({"node": 0, "parent": null, "gateways": 3, "load_w": 4000, "limit_w": null, "headroom_w": null})
    );
    assert_eq!(
        by(10),
        json!({"node": 10, "parent": 0, "gateways": 2, "load_w": 2000, "limit_w": 60000, "headroom_w": 58000})
    );
    assert_eq!(by(100)["headroom_w"], -1000, "overloaded: negative headroom");
    assert_eq!(
        (by(101)["load_w"].as_i64(), by(101)["headroom_w"].as_i64()),
        (Some(-1000), Some(11_000))
    );
    assert_eq!(by(200)["load_w"], 2000);
    let no_net = AppState {
        network: None,
        ..s.clone()
    };
    assert_eq!(call(&no_net, path, &operator).await.0, StatusCode::NOT_FOUND);
}
