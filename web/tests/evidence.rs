//! Proofs of equivocation (issue 22) over HTTP and on the dashboard, on SQLite and on PostgreSQL:
//! a homeowner sees the proofs against their own gateways and never a neighbour's, the grid
//! operator and administrators see all, traders and installers are refused; each proof says
//! whether its slashing is pending, on chain or refused; a stored envelope that is not JSON comes
//! back as its text without failing the list; `limit` is bounded and every bad value is a 400.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::http::{Method, StatusCode};
use common::{NOW, call, code, gateway, key, participant, request, state_with, temp_db};
use gridshare_domain::{GatewayId, Timestamp};
use gridshare_storage::{Db, evidence};
use gridshare_web::AppState;
use gridshare_web::api::role_scopes;
use gridshare_web::auth::Role;
use serde_json::{Value, json};
use sqlx::Connection;

/// homeowner 1, homeowner 2 (the neighbour), installer, operator, trader, admin.
const PEOPLE: [(u64, &str); 6] = [
    (1, "homeowner"),
    (2, "homeowner"),
    (5, "installer"),
    (4, "operator"),
    (3, "trader"),
    (6, "admin"),
];

fn evidence_hex(b: &str) -> String {
    format!("0x{}", b.repeat(32))
}

/// An envelope's text as the intake stores it (its payload names it, to find it on a page).
fn envelope(gw: u64, seq: u64, payload: &str) -> String {
    json!({"v": 1, "gateway": gw, "seq": seq, "ts": NOW.0, "payload": payload, "sig": "0x01"}).to_string()
}

/// Keys (with all their role's scopes) by participant id, and the state, over `db`: gateways 11
/// (home 1's) and 12 (home 2's), three proofs against 11 (slashed, refused, pending) and one against
/// 12 whose first envelope is not JSON.
async fn world(db: &Db) -> (AppState, std::collections::HashMap<u64, String>) {
    let mut keys = std::collections::HashMap::new();
    for (id, role) in PEOPLE {
        participant(db, id, role, Some(1)).await;
        let scopes: Vec<String> = role_scopes(Role::parse(role).unwrap())
            .iter()
            .map(|s| serde_json::to_value(s).unwrap().as_str().unwrap().to_owned())
            .collect();
        keys.insert(id, key(db, id, &scopes.join(",")).await);
    }
    gateway(db, 11, 1, Some(5), 1).await;
    gateway(db, 12, 2, None, 1).await;
    let at = |minutes: i64| Timestamp(NOW.0 + minutes * 60_000);
    for (ev, gw, seq, first, minutes) in [
        ("a1", 11u64, 7u64, envelope(11, 7, "first-11-7"), 1),
        ("a2", 11, 8, envelope(11, 8, "first-11-8"), 2),
        ("a3", 11, 9, envelope(11, 9, "first-11-9"), 3),
        ("b1", 12, 4, "{not json: first-12-4".to_owned(), 4),
    ] {
        let second = envelope(gw, seq, &format!("second-{gw}-{seq}"));
        let new = evidence::record(db, GatewayId(gw), seq, &evidence_hex(ev), &first, &second, at(minutes))
            .await
            .unwrap();
        assert!(new);
    }
    evidence::set_slashed(db, &evidence_hex("a1"), &evidence_hex("7c"))
        .await
        .unwrap();
    evidence::set_refused(db, &evidence_hex("a2"), "EvidenceAlreadyUsed")
        .await
        .unwrap();
    let network = vec![gridshare_matching_engine::NodeConfig {
        id: gridshare_domain::NodeId(1),
        parent: None,
        capacity: Some(gridshare_domain::Wh(10_000)),
        fee: gridshare_domain::MicroPerKwh(0),
    }];
    let state = AppState {
        network: Some(std::sync::Arc::new(network)),
        ..state_with(db)
    };
    (state, keys)
}

fn evidences(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|p| p["evidence"].as_str().unwrap().to_owned())
        .collect()
}

async fn api_by_role(db: &Db, backend: &str) {
    let (s, keys) = world(db).await;
    let list = async |who: u64, query: &str| {
        call(
            &s,
            Method::GET,
            &format!("/api/v1/equivocations{query}"),
            Some(&keys[&who]),
            None,
        )
        .await
    };
    let all = vec![
        evidence_hex("b1"),
        evidence_hex("a3"),
        evidence_hex("a2"),
        evidence_hex("a1"),
    ];

    // home 1: its own gateway's proofs, never the neighbour's
    let (st, mine) = list(1, "").await;
    assert_eq!(st, StatusCode::OK, "{backend}: {mine}");
    assert_eq!(evidences(&mine), all[1..].to_vec(), "{backend}: {mine}");
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .all(|p| p["owner"] == 1 && p["gateway"] == 11)
    );
    // the neighbour: only theirs, and the envelope that is not JSON is its text
    let (st, theirs) = list(2, "").await;
    assert_eq!(st, StatusCode::OK, "{backend}: {theirs}");
    assert_eq!(evidences(&theirs), vec![evidence_hex("b1")], "{backend}");
    assert_eq!(theirs[0]["first_envelope"], json!("{not json: first-12-4"), "{backend}");
    assert_eq!(theirs[0]["second_envelope"]["payload"], "second-12-4", "{backend}");

    // the operator and the admin: all, newest first
    for who in [4, 6] {
        let (st, v) = list(who, "").await;
        assert_eq!(st, StatusCode::OK, "{backend}: {v}");
        assert_eq!(evidences(&v), all, "{backend}: participant {who}");
    }

    // each proof's state on chain, and the times both ways
    let (_, v) = list(4, "").await;
    let by_ev = |e: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|p| p["evidence"] == evidence_hex(e))
            .unwrap()
            .clone()
    };
    let slashed = by_ev("a1");
    assert_eq!(
        (&slashed["status"], &slashed["slashed_tx"], &slashed["slash_error"]),
        (&json!("slashed"), &json!(evidence_hex("7c")), &Value::Null),
        "{backend}"
    );
    assert_eq!(slashed["seq"], 7);
    assert_eq!(
        slashed["first_envelope"]["payload"], "first-11-7",
        "parsed as an object: {slashed}"
    );
    assert_eq!(slashed["detected_at_ms"], NOW.0 + 60_000);
    assert_eq!(slashed["detected_at"], Timestamp(NOW.0 + 60_000).to_rfc3339());
    let refused = by_ev("a2");
    assert_eq!(
        (&refused["status"], &refused["slashed_tx"], &refused["slash_error"]),
        (&json!("refused"), &Value::Null, &json!("EvidenceAlreadyUsed")),
        "{backend}"
    );
    assert_eq!(by_ev("a3")["status"], "pending");

    // traders and installers are refused, a caller without credentials too
    for who in [3, 5] {
        let (st, v) = list(who, "").await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{backend}: participant {who}: {v}");
        assert_eq!(code(&v), "forbidden");
    }
    let (st, v) = call(&s, Method::GET, "/api/v1/equivocations", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");

    // the document lets an envelope be an object or a string (what schemathesis checks against)
    let (_, doc) = call(&s, Method::GET, "/openapi.json", None, None).await;
    let props = &doc["components"]["schemas"]["EquivocationView"]["properties"];
    for field in ["first_envelope", "second_envelope"] {
        assert!(
            props[field].is_object() && props[field].get("type").is_none(),
            "{field}: {}",
            props[field]
        );
    }

    // limit: bounded, and every bad value a 400 with the error shape (never a 5xx)
    let (st, v) = list(4, "?limit=1").await;
    assert_eq!((st, evidences(&v)), (StatusCode::OK, vec![evidence_hex("b1")]));
    let (st, v) = list(4, "?limit=500").await;
    assert_eq!((st, evidences(&v).len()), (StatusCode::OK, 4));
    let (st, v) = list(1, "?limit=2").await;
    assert_eq!(
        evidences(&v),
        all[1..3].to_vec(),
        "{st}: the owner filter applies before the limit"
    );
    for (query, says) in [("?limit=0", "got 0"), ("?limit=501", "got 501")] {
        let (st, v) = list(4, query).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{query}: {v}");
        assert_eq!(code(&v), "invalid_limit");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("limit must be 1 to 500") && message.contains(says),
            "{message}"
        );
    }
    for query in [
        "?limit=-1",
        "?limit=abc",
        "?limit=99999999999",
        "?limit=",
        "?limit=1.5",
        "?owner=2",
    ] {
        let (st, v) = list(1, query).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{query}: {v}");
        assert_eq!(code(&v), "invalid_query", "{query}");
    }
}

async fn pages(db: &Db, backend: &str) {
    let (s, keys) = world(db).await;
    let page = async |path: &str, who: Option<u64>| {
        let r = request(Method::GET, path)
            .maybe_key(who.map(|w| keys[&w].as_str()))
            .send(&s)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{backend} {path}: {}", r.text);
        r.text
    };

    // the operator: every proof, with both envelopes in full and the slashing transaction
    let html = page("/operator", Some(4)).await;
    assert!(html.contains("Slashed gateways"), "{html}");
    for text in [
        "first-11-7",
        "second-11-7",
        "first-12-4",
        "EvidenceAlreadyUsed",
        &evidence_hex("7c"),
    ] {
        assert!(html.contains(text), "{backend}: the operator's page lacks {text}");
    }
    assert!(html.contains("<details") && html.contains("<pre"), "folded envelopes");

    // home 1: what happened to its gateway in plain words, with its evidence; nothing of home 2's
    let html = page("/home/1", Some(1)).await;
    assert!(
        html.contains("Your gateway 11 signed two different messages with the same number 9 at"),
        "{backend}: {html}"
    );
    assert!(html.contains("It is stopped and its bond is being slashed."), "{html}");
    assert!(html.contains("its bond was slashed (transaction 0x7c7c"), "{html}");
    assert!(
        html.contains("Ask your installer") && html.contains("first-11-9"),
        "{html}"
    );
    assert!(
        !html.contains("first-12-4") && !html.contains(&evidence_hex("b1")),
        "{backend}: a neighbour's proof on home 1's page"
    );
    // …and home 2 its own, the envelope that is not JSON shown as stored
    let html = page("/home/2", Some(2)).await;
    assert!(
        html.contains("Your gateway 12 signed two different messages with the same number 4"),
        "{html}"
    );
    assert!(html.contains("{not json: first-12-4"), "{html}");
    assert!(!html.contains("first-11-"), "{html}");

    // the public network page lists the slashed gateways without their envelopes; the admin's
    // shows them
    let html = page("/network", None).await;
    assert!(
        html.contains("Slashed gateways") && html.contains(&evidence_hex("7c")),
        "{html}"
    );
    assert!(
        !html.contains("first-11-7") && !html.contains("first-12-4"),
        "{backend}: envelopes on the public page"
    );
    let html = page("/admin", Some(6)).await;
    assert!(html.contains("Slashed gateways") && html.contains("first-11-7") && html.contains("first-12-4"));
}

// ------------------------------------------------------------------ backends

/// A fresh PostgreSQL database on the test server (dropped by [`drop_pg`]), or None when no server
/// is configured (outside CI).
async fn postgres() -> Option<(Db, String, String)> {
    let admin = gridshare_testkit::service(gridshare_testkit::POSTGRES_URL, "PostgreSQL")?;
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "gs_web_evidence_{}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    let db = Db::open(&format!("{base}/{name}")).await.unwrap();
    Some((db, admin, name))
}

async fn drop_pg(db: Db, admin: &str, name: &str) {
    db.close().await;
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}

#[tokio::test]
async fn each_home_sees_its_own_proofs_the_operator_all_on_sqlite() {
    let (db, _dir) = temp_db().await;
    api_by_role(&db, "sqlite").await;
}

#[tokio::test]
async fn each_home_sees_its_own_proofs_the_operator_all_on_postgres() {
    let Some((db, admin, name)) = postgres().await else {
        return;
    };
    api_by_role(&db, "postgres").await;
    drop_pg(db, &admin, &name).await;
}

#[tokio::test]
async fn the_pages_show_slashed_gateways_on_sqlite() {
    let (db, _dir) = temp_db().await;
    pages(&db, "sqlite").await;
}

#[tokio::test]
async fn the_pages_show_slashed_gateways_on_postgres() {
    let Some((db, admin, name)) = postgres().await else {
        return;
    };
    pages(&db, "postgres").await;
    drop_pg(db, &admin, &name).await;
}
