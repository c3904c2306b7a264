//! The reward epochs API: anyone may list epochs and read a report (the public audit trail),
//! the report served is byte for byte the one its hash was taken over, a homeowner sees only
//! their own rewards and gets the proof of their own account only, and bad input is named.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::http::{Method, StatusCode};
use common::{call, gateway, key, meter_reading, participant, request, state_with, temp_db};
use gridshare_domain::wire::TradeReport;
use gridshare_domain::{
    DeliveryInterval, IntervalLength, MicroPerKwh, OrderId, ParticipantId, Timestamp, TradeId, Wh, ZoneId,
};
use gridshare_market::epoch::collect::{self, Bonds};
use gridshare_market::epoch::{Params, report};
use gridshare_storage::readings;

const HOUR: i64 = 3_600_000;
const QUARTER: i64 = 900_000;
const GENESIS: i64 = 1_764_064_800_000;

#[tokio::test]
async fn epochs_are_public_and_rewards_and_proofs_are_each_homes_own() {
    let (db, _dir) = temp_db().await;
    for id in [1u64, 2, 3] {
        participant(&db, id, "homeowner", Some(id as u32)).await;
        gateway(&db, 10 + id, id, None, id as u32).await;
    }
    let (k1, k3) = (key(&db, 1, "read").await, key(&db, 3, "read").await);
    // homes 1 and 2 sell 100 Wh a quarter to home 3 and export 200 a quarter
    let mut rows = Vec::new();
    for g in [11u64, 12] {
        for m in 0..=64 {
            let at = GENESIS - QUARTER + m * 60_000;
            rows.push(meter_reading(g, m as u64, at, -800, Some(0), Some(m * 200 / 15)));
        }
    }
    readings::insert_batch(&db, &rows).await.unwrap();
    let trades: Vec<TradeReport> = (0..4)
        .flat_map(|q| {
            [1u64, 2].map(|seller| TradeReport {
                trade_id: TradeId(q * 10 + seller),
                zone: ZoneId(1),
                interval: DeliveryInterval::new(Timestamp(GENESIS + q as i64 * QUARTER), IntervalLength::Min15)
                    .unwrap(),
                buy_order: OrderId(q * 100 + seller),
                sell_order: OrderId(q * 100 + seller + 50),
                buyer: ParticipantId(3),
                seller: ParticipantId(seller),
                quantity: Wh(100),
                price: MicroPerKwh(120_000),
                grid_fee: MicroPerKwh(5_000),
                at: Timestamp(GENESIS),
            })
        })
        .collect();
    gridshare_storage::market::insert_trades(&db, &trades).await.unwrap();
    let params = Params {
        epoch_ms: HOUR,
        uptime_period_ms: 60_000,
        ..Params::defaults(GENESIS)
    };
    let done = collect::catch_up(
        &db,
        &params,
        QUARTER,
        &Bonds::NoMinimum,
        GENESIS + HOUR + QUARTER,
        QUARTER,
    )
    .await
    .unwrap();
    assert_eq!(done, vec![1]);
    let s = state_with(&db);

    // public: no credentials needed to list epochs or read a report
    let (st, list) = call(&s, Method::GET, "/api/v1/epochs", None, None).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list[0]["epoch"], 1);
    let reply = request(Method::GET, "/api/v1/epochs/1/report").send(&s).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type").as_deref(), Some("application/json"));
    let r: report::Report = serde_json::from_str(&reply.text).unwrap();
    let (root, hash) = report::verify(&r).unwrap();
    assert_eq!(
        report::hex32(&hash),
        list[0]["report_hash"].as_str().unwrap(),
        "the served bytes are the hashed ones"
    );
    assert_eq!(report::hex32(&root), list[0]["root"].as_str().unwrap());
    assert_eq!(
        r.participants.iter().map(|p| p.participant).collect::<Vec<_>>(),
        vec![1, 2]
    );

    // my rewards: each home its own
    let (st, mine) = call(&s, Method::GET, "/api/v1/epochs/rewards", Some(&k1), None).await;
    assert_eq!(st, StatusCode::OK, "{mine}");
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert!(mine[0]["reward"].as_i64().unwrap() > 0 && mine[0]["local_renewable"].as_i64().unwrap() > 0);
    let (_, theirs) = call(&s, Method::GET, "/api/v1/epochs/rewards", Some(&k3), None).await;
    assert_eq!(theirs.as_array().unwrap().len(), 0, "home 3 only bought: {theirs}");
    let (st, _) = call(&s, Method::GET, "/api/v1/epochs/rewards", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // my proof proves my account's total, and nobody else's
    let (st, p) = call(&s, Method::GET, "/api/v1/epochs/1/proof", Some(&k1), None).await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let account = report::parse_address(p["account"].as_str().unwrap()).unwrap();
    let proof: Vec<[u8; 32]> = p["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let mut out = [0u8; 32];
            let s = h.as_str().unwrap().trim_start_matches("0x");
            for (i, o) in out.iter_mut().enumerate() {
                *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
            }
            out
        })
        .collect();
    let cumulative = p["cumulative"].as_u64().unwrap();
    assert!(report::verify_proof(root, &account, cumulative, &proof));
    assert_eq!(
        account,
        common::custody().address(ParticipantId(1)),
        "home 1's custodial account"
    );
    let (st, none) = call(&s, Method::GET, "/api/v1/epochs/1/proof", Some(&k3), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "home 3 has nothing in the root: {none}");

    // the public network page lists the epoch with its root, for anyone
    let page = request(Method::GET, "/network").send(&s).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains(&r.root[..12]),
        "the epoch's root is on the network page"
    );
    assert!(
        page.text.contains("/api/v1/epochs/1/report"),
        "with a link to its report"
    );

    // bad input, named
    let (st, v) = call(&s, Method::GET, "/api/v1/epochs/9/report", None, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    for huge in [
        "/api/v1/epochs/9223372036854775808/report",
        "/api/v1/epochs/18446744073709551615/proof",
    ] {
        let (st, v) = call(&s, Method::GET, huge, Some(&k1), None).await;
        assert_eq!(
            st,
            StatusCode::NOT_FOUND,
            "an epoch past any column is simply not computed: {v}"
        );
    }
    let (st, v) = call(&s, Method::GET, "/api/v1/epochs?limit=0", None, None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v.to_string().contains("limit"), "{v}");
    let (st, v) = call(&s, Method::GET, "/api/v1/epochs/x/report", None, None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
}
