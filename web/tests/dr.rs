//! The grid operator's demand-response API: only operators make and cancel programs and events,
//! targets resolve to gateways, bad intervals are refused with the field named, and a made event
//! is handed to the gateways' side.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gridshare_domain::envelope::{GatewayKey, ReplayWindow};
use gridshare_domain::{GatewayId, NodeId, ParticipantId, Timestamp};
use gridshare_market::{Downlink, Downlinks};
use gridshare_storage::gateways::{self, Gateway};
use gridshare_storage::participants::{self, Participant};
use gridshare_storage::{Db, api_keys};
use gridshare_web::auth::{TokenKind, new_token};
use gridshare_web::{AppState, app};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const T: Timestamp = Timestamp(1_764_064_800_000);

async fn call(s: &AppState, method: &str, path: &str, key: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json");
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let resp = app(s.clone()).oneshot(req).await.unwrap();
    let st = resp.status();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    (
        st,
        if b.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&b).unwrap()
        },
    )
}

#[tokio::test]
async fn operators_run_demand_response_and_others_may_only_look() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    let mut keys = Vec::new();
    for (id, role, scopes) in [
        (1, "homeowner", "read,trade"),
        (4, "operator", "read,demand_response"),
        (5, "installer", "read"),
        (7, "operator", "read"),
    ] {
        participants::upsert(
            &db,
            &Participant {
                id: ParticipantId(id),
                name: format!("p{id}"),
                role: role.into(),
                evm_address: None,
                feeder_node: Some(id as u32),
            },
            T,
        )
        .await
        .unwrap();
        let t = new_token(TokenKind::ApiKey);
        api_keys::create(&db, &t.id, ParticipantId(id), &t.hash, scopes, "", T)
            .await
            .unwrap();
        keys.push(t.token);
    }
    let [home, operator, installer, operator_read_only] = <[String; 4]>::try_from(keys).unwrap();
    for (gw, node) in [(11u64, 100u32), (12, 100), (13, 200)] {
        gateways::register(
            &db,
            &Gateway {
                id: GatewayId(gw),
                owner: ParticipantId(1),
                installer: None,
                public_key: GatewayKey::from_bytes(&[gw as u8; 32]).unwrap().public(),
                feeder_node: NodeId(node),
                window: ReplayWindow::default(),
                revoked_at: None,
            },
            T,
        )
        .await
        .unwrap();
    }
    let (tx, mut rx) = Downlinks::channel();
    let s = AppState {
        db: Some(db),
        downlink: tx,
        ..AppState::default()
    };

    let program = json!({"name": "evening peak", "description": "17–20 h"});
    for k in [&home, &installer, &operator_read_only] {
        let (st, v) = call(&s, "POST", "/api/v1/dr/programs", k, Some(program.clone())).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    }
    let (st, p) = call(&s, "POST", "/api/v1/dr/programs", &operator, Some(program.clone())).await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    let (st, _) = call(&s, "POST", "/api/v1/dr/programs", &operator, Some(program)).await;
    assert_eq!(st, StatusCode::CONFLICT, "one name once");
    let pid = p["id"].as_u64().unwrap();

    let event = |intervals: Value, targets: Value| json!({"program_id": pid, "priority": 2, "targets": targets, "intervals": intervals});
    let one = json!([{"id": 0, "start": 1_796_144_400_000i64, "duration_minutes": 60,
                      "signals": [{"signal": "load_shed", "w": 2000}]}]);
    let (st, e) = call(
        &s,
        "POST",
        "/api/v1/dr/events",
        &operator,
        Some(event(one.clone(), json!({"kind": "nodes", "nodes": [100]}))),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{e}");
    assert_eq!(e["gateways"], json!([11, 12]), "targets resolved at node 100");
    assert_eq!(e["status"], "scheduled");
    assert_eq!(e["dispatched"], true);
    let Ok(Downlink::Dr(sent)) = rx.try_recv() else {
        panic!("the event was not sent")
    };
    assert_eq!(sent.gateways, vec![GatewayId(11), GatewayId(12)]);
    assert_eq!(sent.event.event_id.0, e["id"].as_u64().unwrap());

    let (st, v) = call(
        &s,
        "POST",
        "/api/v1/dr/events",
        &home,
        Some(event(one.clone(), json!({"kind": "feeder"}))),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let overlapping = json!([
        {"id": 0, "start": 1_796_144_400_000i64, "duration_minutes": 60, "signals": []},
        {"id": 1, "start": 1_796_146_200_000i64, "duration_minutes": 60, "signals": []}
    ]);
    let (st, v) = call(
        &s,
        "POST",
        "/api/v1/dr/events",
        &operator,
        Some(event(overlapping, json!({"kind": "feeder"}))),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_event"))
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("intervals[1].start"),
        "{v}"
    );
    let (st, v) = call(
        &s,
        "POST",
        "/api/v1/dr/events",
        &operator,
        Some(event(one.clone(), json!({"kind": "sites", "gateways": [99]}))),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "no gateway matches: {v}");
    let (st, v) = call(
        &s,
        "POST",
        "/api/v1/dr/events",
        &operator,
        Some(json!({"program_id": 999, "targets": {"kind": "feeder"}, "intervals": one})),
    )
    .await;
    assert!(
        st == StatusCode::UNPROCESSABLE_ENTITY && v["error"]["message"].as_str().unwrap().contains("program_id"),
        "{v}"
    );

    // everyone with read may look; only operators cancel, once
    let id = e["id"].as_u64().unwrap();
    for k in [&home, &installer] {
        let (st, v) = call(&s, "GET", &format!("/api/v1/dr/events/{id}"), k, None).await;
        assert_eq!((st, v["id"].as_u64()), (StatusCode::OK, Some(id)));
    }
    assert_eq!(
        call(&s, "DELETE", &format!("/api/v1/dr/events/{id}"), &home, None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&s, "DELETE", &format!("/api/v1/dr/events/{id}"), &operator, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let Ok(Downlink::Dr(cancel)) = rx.try_recv() else {
        panic!("the cancellation was not sent")
    };
    assert!(cancel.event.cancelled && cancel.gateways == vec![GatewayId(11), GatewayId(12)]);
    assert_eq!(
        call(&s, "DELETE", &format!("/api/v1/dr/events/{id}"), &operator, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = call(&s, "GET", "/api/v1/dr/events", &home, None).await;
    assert_eq!(list[0]["status"], "cancelled");
}

#[tokio::test]
async fn the_response_is_verified_against_the_baseline_and_rewarded_once() {
    use gridshare_domain::wire::{DeviceKind, DeviceStatus, Quality, TelemetrySample};
    use gridshare_domain::{DeviceId, W, Wh};
    use gridshare_storage::readings::{self, Reading};
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    participants::upsert(
        &db,
        &Participant {
            id: ParticipantId(1),
            name: "home".into(),
            role: "homeowner".into(),
            evm_address: None,
            feeder_node: Some(1),
        },
        T,
    )
    .await
    .unwrap();
    participants::upsert(
        &db,
        &Participant {
            id: ParticipantId(4),
            name: "operator".into(),
            role: "operator".into(),
            evm_address: None,
            feeder_node: None,
        },
        T,
    )
    .await
    .unwrap();
    let op = new_token(TokenKind::ApiKey);
    api_keys::create(&db, &op.id, ParticipantId(4), &op.hash, "read,demand_response", "", T)
        .await
        .unwrap();
    let home = new_token(TokenKind::ApiKey);
    api_keys::create(&db, &home.id, ParticipantId(1), &home.hash, "read", "", T)
        .await
        .unwrap();
    gateways::register(
        &db,
        &Gateway {
            id: GatewayId(11),
            owner: ParticipantId(1),
            installer: None,
            public_key: GatewayKey::from_bytes(&[3; 32]).unwrap().public(),
            feeder_node: NodeId(1),
            window: ReplayWindow::default(),
            revoked_at: None,
        },
        T,
    )
    .await
    .unwrap();
    // 3 kW for the hour before T, 1 kW during the hour from T
    let rows: Vec<Reading> = (0..24)
        .map(|i| Reading {
            gateway: GatewayId(11),
            seq: i + 1,
            sample: TelemetrySample {
                device: DeviceId::new("meter").unwrap(),
                kind: DeviceKind::GridMeter,
                at: Timestamp(T.0 - 3_600_000 + i as i64 * 300_000),
                power_w: Some(W(if i < 12 { 3_000 } else { 1_000 })),
                energy_in_wh: Some(Wh(i as i64)),
                energy_out_wh: Some(Wh(0)),
                soc_permille: None,
                status: DeviceStatus::Ok,
                quality: Quality::Good,
            },
        })
        .collect();
    readings::insert_batch(&db, &rows).await.unwrap();
    let s = AppState {
        db: Some(db.clone()),
        ..AppState::default()
    };
    let (_, p) = call(
        &s,
        "POST",
        "/api/v1/dr/programs",
        &op.token,
        Some(json!({"name": "shed"})),
    )
    .await;
    let body = json!({"program_id": p["id"], "targets": {"kind": "feeder"}, "intervals": [
        {"id": 0, "start": T.0, "duration_minutes": 60, "signals": [{"signal": "load_shed", "w": 2000}]}]});
    let (st, e) = call(&s, "POST", "/api/v1/dr/events", &op.token, Some(body)).await;
    assert_eq!(st, StatusCode::CREATED, "{e}");
    assert_eq!(e["dispatched"], false, "no MQTT side here");
    let id = e["id"].as_u64().unwrap();

    let (_, e) = call(&s, "GET", &format!("/api/v1/dr/events/{id}"), &home.token, None).await;
    assert_eq!(
        e["verified"],
        json!([{"gateway": 11, "interval_id": 0, "baseline_w": 3000, "measured_w": 1000, "reduction_wh": 2000, "reward": 400_000}])
    );
    let now = gridshare_market::wall_clock();
    assert_eq!(gridshare_market::dr::credit_completed(&db, None, now).await.unwrap(), 1);
    assert_eq!(
        gridshare_market::dr::credit_completed(&db, None, now).await.unwrap(),
        0,
        "once"
    );
    let (_, rewards) = call(&s, "GET", "/api/v1/rewards", &home.token, None).await;
    assert_eq!(rewards.as_array().unwrap().len(), 1);
    assert_eq!(
        (rewards[0]["kind"].as_str(), rewards[0]["amount"].as_i64()),
        (Some("demand_response"), Some(400_000))
    );
    let (_, e) = call(&s, "GET", &format!("/api/v1/dr/events/{id}"), &op.token, None).await;
    assert_eq!(e["status"], "completed");
    let (_, none) = call(&s, "GET", "/api/v1/rewards", &op.token, None).await;
    assert_eq!(none, json!([]), "rewards are the gateway owner's");
}
