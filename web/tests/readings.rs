//! Who sees which gateway and its readings: the home its own, the installer those they
//! commissioned, the operator all.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gridshare_domain::envelope::{GatewayKey, ReplayWindow};
use gridshare_domain::wire::{DeviceKind, DeviceStatus, Quality, TelemetrySample};
use gridshare_domain::{DeviceId, GatewayId, NodeId, ParticipantId, Timestamp, W, Wh};
use gridshare_storage::gateways::{self, Gateway};
use gridshare_storage::participants::{self, Participant};
use gridshare_storage::readings::{self, Reading};
use gridshare_storage::{Db, api_keys};
use gridshare_web::auth::{TokenKind, new_token};
use gridshare_web::{AppState, app};
use http_body_util::BodyExt;
use serde_json::Value;
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

#[tokio::test]
async fn each_role_sees_only_its_gateways() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    let mut keys = Vec::new();
    for (id, role) in [
        (1, "homeowner"),
        (2, "homeowner"),
        (4, "operator"),
        (5, "installer"),
        (6, "trader"),
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
    let [home1, home2, operator, installer, trader] = <[String; 5]>::try_from(keys).unwrap();
    for (gw, owner, inst, k) in [(11u64, 1u64, Some(5u64), 1u8), (12, 2, None, 2)] {
        gateways::register(
            &db,
            &Gateway {
                id: GatewayId(gw),
                owner: ParticipantId(owner),
                installer: inst.map(ParticipantId),
                public_key: GatewayKey::from_bytes(&[k; 32]).unwrap().public(),
                feeder_node: NodeId(owner as u32),
                window: ReplayWindow::default(),
                revoked_at: None,
            },
            Timestamp(T),
        )
        .await
        .unwrap();
    }
    let rows: Vec<Reading> = (0..8)
        .map(|i| Reading {
            gateway: GatewayId(11),
            seq: i + 1,
            sample: TelemetrySample {
                device: DeviceId::new("meter").unwrap(),
                kind: DeviceKind::GridMeter,
                at: Timestamp(T + i as i64 * 300_000),
                power_w: Some(W(1_000 + i as i64 * 100)),
                energy_in_wh: Some(Wh(5_000 + i as i64 * 90)),
                energy_out_wh: Some(Wh(0)),
                soc_permille: None,
                status: DeviceStatus::Ok,
                quality: Quality::Good,
            },
        })
        .collect();
    readings::insert_batch(&db, &rows).await.unwrap();
    let s = AppState {
        db: Some(db),
        ..AppState::default()
    };

    let ids = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&call(&s, "/api/v1/gateways", &home1).await.1), [11]);
    assert_eq!(ids(&call(&s, "/api/v1/gateways", &home2).await.1), [12]);
    assert_eq!(ids(&call(&s, "/api/v1/gateways", &installer).await.1), [11]);
    assert_eq!(ids(&call(&s, "/api/v1/gateways", &operator).await.1), [11, 12]);
    assert_eq!(ids(&call(&s, "/api/v1/gateways", &trader).await.1), Vec::<u64>::new());

    let q = "/api/v1/gateways/11/readings?device=meter&bucket=1h&from=2025-11-25T10:00:00Z&to=2025-11-25T12:00:00Z";
    for k in [&home1, &installer, &operator] {
        let (st, v) = call(&s, q, k).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v.as_array().unwrap().len(), 1);
        assert_eq!(v[0]["samples"], 8);
        assert_eq!(v[0]["energy_in_wh"], 630);
    }
    for k in [&home2, &trader] {
        let (st, v) = call(&s, q, k).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
    }
    let (st, v) = call(&s, "/api/v1/gateways/12/readings?device=meter", &installer).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "not commissioned by this installer: {v}");
    let (st, v) = call(&s, "/api/v1/gateways/99/readings?device=meter", &operator).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (st, v) = call(&s, "/api/v1/gateways/11/readings?device=meter&bucket=5m", &home1).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_bucket"))
    );
    let (st, v) = call(&s, "/api/v1/gateways/11/readings", &home1).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
}
