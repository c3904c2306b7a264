//! Who sees which gateway and its readings: the home its own, the installer those they
//! commissioned, the operator all.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::http::{Method, StatusCode};
use common::{call, gateway, key, meter_reading, participant, state_with, temp_db};
use gridshare_storage::readings;
use serde_json::Value;

const T: i64 = 1_764_064_800_000; // 2025-11-25T10:00:00Z

#[tokio::test]
async fn each_role_sees_only_its_gateways() {
    let (db, _dir) = temp_db().await;
    let mut keys = Vec::new();
    for (id, role) in [
        (1, "homeowner"),
        (2, "homeowner"),
        (4, "operator"),
        (5, "installer"),
        (6, "trader"),
    ] {
        participant(&db, id, role, Some(id as u32)).await;
        keys.push(key(&db, id, "read").await);
    }
    let [home1, home2, operator, installer, trader] = <[String; 5]>::try_from(keys).unwrap();
    for (gw, owner, inst) in [(11u64, 1u64, Some(5u64)), (12, 2, None)] {
        gateway(&db, gw, owner, inst, owner as u32).await;
    }
    let rows: Vec<_> = (0..8)
        .map(|i| {
            let at = T + i as i64 * 300_000;
            meter_reading(
                11,
                i + 1,
                at,
                1_000 + i as i64 * 100,
                Some(5_000 + i as i64 * 90),
                Some(0),
            )
        })
        .collect();
    readings::insert_batch(&db, &rows).await.unwrap();
    let s = state_with(&db);

    let ids = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&call(&s, Method::GET, "/api/v1/gateways", Some(&home1), None).await.1),
        [11]
    );
    assert_eq!(
        ids(&call(&s, Method::GET, "/api/v1/gateways", Some(&home2), None).await.1),
        [12]
    );
    assert_eq!(
        ids(&call(&s, Method::GET, "/api/v1/gateways", Some(&installer), None)
            .await
            .1),
        [11]
    );
    assert_eq!(
        ids(&call(&s, Method::GET, "/api/v1/gateways", Some(&operator), None).await.1),
        [11, 12]
    );
    assert_eq!(
        ids(&call(&s, Method::GET, "/api/v1/gateways", Some(&trader), None).await.1),
        Vec::<u64>::new()
    );

    let q = "/api/v1/gateways/11/readings?device=meter&bucket=1h&from=2025-11-25T10:00:00Z&to=2025-11-25T12:00:00Z";
    for k in [&home1, &installer, &operator] {
        let (st, v) = call(&s, Method::GET, q, Some(k), None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v.as_array().unwrap().len(), 1);
        assert_eq!(v[0]["samples"], 8);
        assert_eq!(v[0]["energy_in_wh"], 630);
    }
    for k in [&home2, &trader] {
        let (st, v) = call(&s, Method::GET, q, Some(k), None).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
    }
    let (st, v) = call(
        &s,
        Method::GET,
        "/api/v1/gateways/12/readings?device=meter",
        Some(&installer),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "not commissioned by this installer: {v}");
    let (st, v) = call(
        &s,
        Method::GET,
        "/api/v1/gateways/99/readings?device=meter",
        Some(&operator),
        None,
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (st, v) = call(
        &s,
        Method::GET,
        "/api/v1/gateways/11/readings?device=meter&bucket=5m",
        Some(&home1),
        None,
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_bucket"))
    );
    let (st, v) = call(&s, Method::GET, "/api/v1/gateways/11/readings", Some(&home1), None).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
}
