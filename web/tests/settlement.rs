//! Settlement as a participant sees it: my positions per interval, settled as measured or as
//! estimated, then trued up when late readings arrive; paging and limits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::http::Method;
use common::every_role::world;
use common::{NOW, call};
use gridshare_domain::{Micro, ParticipantId, Timestamp, Wh};
use gridshare_storage::positions::{self, TrueUp};
use serde_json::{Value, json};

#[tokio::test]
async fn my_positions_show_what_settled_and_its_true_up() {
    let w = world().await;
    let get = |key: String, query: &'static str| {
        let state = w.state.clone();
        async move {
            let (st, v) = call(
                &state,
                Method::GET,
                &format!("/api/v1/settlement/positions{query}"),
                Some(&key),
                None,
            )
            .await;
            (st.as_u16(), v)
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
