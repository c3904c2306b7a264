//! The grid operator's demand-response API: only operators make and cancel programs and events,
//! targets resolve to gateways, bad intervals are refused with the field named, and a made event
//! is handed to the gateways' side.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::http::{Method, StatusCode};
use common::{call, gateway, key, meter_reading, participant, state_with, temp_db};
use gridshare_domain::{GatewayId, Timestamp};
use gridshare_market::{Downlink, Downlinks};
use gridshare_storage::readings;
use gridshare_web::AppState;
use serde_json::{Value, json};

const T: Timestamp = Timestamp(1_764_064_800_000);

#[tokio::test]
async fn operators_run_demand_response_and_others_may_only_look() {
    let (db, _dir) = temp_db().await;
    let mut keys = Vec::new();
    for (id, role, scopes) in [
        (1, "homeowner", "read,trade"),
        (4, "operator", "read,demand_response"),
        (5, "installer", "read"),
        (7, "operator", "read"),
    ] {
        participant(&db, id, role, Some(id as u32)).await;
        keys.push(key(&db, id, scopes).await);
    }
    let [home, operator, installer, operator_read_only] = <[String; 4]>::try_from(keys).unwrap();
    for (gw, node) in [(11u64, 100u32), (12, 100), (13, 200)] {
        gateway(&db, gw, 1, None, node).await;
    }
    let (tx, mut rx) = Downlinks::channel();
    let s = AppState {
        db: Some(db),
        downlink: tx,
        ..AppState::default()
    };

    let program = json!({"name": "evening peak", "description": "17–20 h"});
    for k in [&home, &installer, &operator_read_only] {
        let (st, v) = call(
            &s,
            Method::POST,
            "/api/v1/dr/programs",
            Some(k),
            Some(program.to_string()),
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    }
    let (st, p) = call(
        &s,
        Method::POST,
        "/api/v1/dr/programs",
        Some(&operator),
        Some(program.to_string()),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    let (st, _) = call(
        &s,
        Method::POST,
        "/api/v1/dr/programs",
        Some(&operator),
        Some(program.to_string()),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "one name once");
    let pid = p["id"].as_u64().unwrap();

    let event = |intervals: Value, targets: Value| json!({"program_id": pid, "priority": 2, "targets": targets, "intervals": intervals});
    let one = json!([{"id": 0, "start": 1_796_144_400_000i64, "duration_minutes": 60,
                      "signals": [{"signal": "load_shed", "w": 2000}]}]);
    let (st, e) = call(
        &s,
        Method::POST,
        "/api/v1/dr/events",
        Some(&operator),
        Some(event(one.clone(), json!({"kind": "nodes", "nodes": [100]})).to_string()),
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
        Method::POST,
        "/api/v1/dr/events",
        Some(&home),
        Some(event(one.clone(), json!({"kind": "feeder"})).to_string()),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let overlapping = json!([
        {"id": 0, "start": 1_796_144_400_000i64, "duration_minutes": 60, "signals": []},
        {"id": 1, "start": 1_796_146_200_000i64, "duration_minutes": 60, "signals": []}
    ]);
    let (st, v) = call(
        &s,
        Method::POST,
        "/api/v1/dr/events",
        Some(&operator),
        Some(event(overlapping, json!({"kind": "feeder"})).to_string()),
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
        Method::POST,
        "/api/v1/dr/events",
        Some(&operator),
        Some(event(one.clone(), json!({"kind": "sites", "gateways": [99]})).to_string()),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "no gateway matches: {v}");
    let (st, v) = call(
        &s,
        Method::POST,
        "/api/v1/dr/events",
        Some(&operator),
        Some(json!({"program_id": 999, "targets": {"kind": "feeder"}, "intervals": one}).to_string()),
    )
    .await;
    assert!(
        st == StatusCode::UNPROCESSABLE_ENTITY && v["error"]["message"].as_str().unwrap().contains("program_id"),
        "{v}"
    );

    // everyone with read may look; only operators cancel, once
    let id = e["id"].as_u64().unwrap();
    for k in [&home, &installer] {
        let (st, v) = call(&s, Method::GET, &format!("/api/v1/dr/events/{id}"), Some(k), None).await;
        assert_eq!((st, v["id"].as_u64()), (StatusCode::OK, Some(id)));
    }
    assert_eq!(
        call(
            &s,
            Method::DELETE,
            &format!("/api/v1/dr/events/{id}"),
            Some(&home),
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(
            &s,
            Method::DELETE,
            &format!("/api/v1/dr/events/{id}"),
            Some(&operator),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let Ok(Downlink::Dr(cancel)) = rx.try_recv() else {
        panic!("the cancellation was not sent")
    };
    assert!(cancel.event.cancelled && cancel.gateways == vec![GatewayId(11), GatewayId(12)]);
    assert_eq!(
        call(
            &s,
            Method::DELETE,
            &format!("/api/v1/dr/events/{id}"),
            Some(&operator),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = call(&s, Method::GET, "/api/v1/dr/events", Some(&home), None).await;
    assert_eq!(list[0]["status"], "cancelled");
}

#[tokio::test]
async fn the_response_is_verified_against_the_baseline_and_rewarded_once() {
    let (db, _dir) = temp_db().await;
    participant(&db, 1, "homeowner", Some(1)).await;
    participant(&db, 4, "operator", None).await;
    let op = key(&db, 4, "read,demand_response").await;
    let home = key(&db, 1, "read").await;
    gateway(&db, 11, 1, None, 1).await;
    // 3 kW for the hour before T, 1 kW during the hour from T
    let rows: Vec<_> = (0..24)
        .map(|i| {
            let power = if i < 12 { 3_000 } else { 1_000 };
            meter_reading(
                11,
                i + 1,
                T.0 - 3_600_000 + i as i64 * 300_000,
                power,
                Some(i as i64),
                Some(0),
            )
        })
        .collect();
    readings::insert_batch(&db, &rows).await.unwrap();
    let s = state_with(&db);
    let (_, p) = call(
        &s,
        Method::POST,
        "/api/v1/dr/programs",
        Some(&op),
        Some(json!({"name": "shed"}).to_string()),
    )
    .await;
    let body = json!({"program_id": p["id"], "targets": {"kind": "feeder"}, "intervals": [
        {"id": 0, "start": T.0, "duration_minutes": 60, "signals": [{"signal": "load_shed", "w": 2000}]}]});
    let (st, e) = call(&s, Method::POST, "/api/v1/dr/events", Some(&op), Some(body.to_string())).await;
    assert_eq!(st, StatusCode::CREATED, "{e}");
    assert_eq!(e["dispatched"], false, "no MQTT side here");
    let id = e["id"].as_u64().unwrap();

    let (_, e) = call(&s, Method::GET, &format!("/api/v1/dr/events/{id}"), Some(&home), None).await;
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
    let (_, rewards) = call(&s, Method::GET, "/api/v1/rewards", Some(&home), None).await;
    assert_eq!(rewards.as_array().unwrap().len(), 1);
    assert_eq!(
        (rewards[0]["kind"].as_str(), rewards[0]["amount"].as_i64()),
        (Some("demand_response"), Some(400_000))
    );
    let (_, e) = call(&s, Method::GET, &format!("/api/v1/dr/events/{id}"), Some(&op), None).await;
    assert_eq!(e["status"], "completed");
    let (_, none) = call(&s, Method::GET, "/api/v1/rewards", Some(&op), None).await;
    assert_eq!(none, json!([]), "rewards are the gateway owner's");
}
