//! The OpenAPI document: served at `/openapi.json` with `/docs` rendered from it, its schemas
//! agree with what the API writes, and it lists exactly the routes under `/api` (paths and
//! methods), so the two cannot drift apart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use common::{Reply, request};
use gridshare_web::AppState;
use serde_json::Value;

#[tokio::test]
async fn openapi_document_and_docs_page() {
    let state = AppState::default();
    let Reply { status, text: body, .. } = request(Method::GET, "/openapi.json").send(&state).await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert!(doc["paths"]["/readyz"]["get"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    let Reply { status, text: html, .. } = request(Method::GET, "/docs").send(&state).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<code>/readyz</code>"), "{html}");
}

/// The schema's pattern for delivery intervals accepts every interval the API writes and refuses
/// starts that are not on the interval's boundary.
#[tokio::test]
async fn the_interval_pattern_matches_what_the_api_writes() {
    use gridshare_domain::{DeliveryInterval, IntervalLength, Timestamp};
    let body = request(Method::GET, "/openapi.json")
        .send(&AppState::default())
        .await
        .text;
    let doc: Value = serde_json::from_str(&body).unwrap();
    let pattern = doc["components"]["schemas"]["OrderRequest"]["properties"]["interval"]["pattern"]
        .as_str()
        .expect("OrderRequest.interval has a pattern");
    let re = regex::Regex::new(pattern).unwrap();
    let mut t = 1_764_064_800_000i64; // 2025-11-25T10:00:00Z
    for _ in 0..2_000 {
        for length in [IntervalLength::Min5, IntervalLength::Min15, IntervalLength::Min60] {
            let step = length.minutes() * 60_000;
            let iv = DeliveryInterval::new(Timestamp(t - t.rem_euclid(step)), length).unwrap();
            assert!(re.is_match(&iv.to_string()), "{iv} against {pattern}");
        }
        t += 7 * 24 * 3_600_000 / 13 + 300_000; // wander over days, hours and minutes
    }
    for bad in [
        "2025-11-25T10:05:00Z/PT15M",
        "2025-11-25T10:15:00Z/PT60M",
        "2025-11-25T10:01:00Z/PT5M",
        "2025-11-25T10:00:00Z/PT10M",
        "2025-13-25T10:00:00Z/PT15M",
    ] {
        assert!(!re.is_match(bad), "{bad}");
        assert!(
            bad.parse::<DeliveryInterval>().is_err(),
            "{bad} is refused by the API too"
        );
    }
    // the API also takes RFC 3339's other spellings; the schema names the one it writes
    assert!(!re.is_match("2025-11-25 10:00:00Z/PT15M"));
}

/// The methods probed: those the document and `/docs` use (axum also answers HEAD for GET).
const METHODS: [Method; 5] = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

/// A path template with every `{parameter}` (or `{}` of a format string) replaced by `1`.
fn concrete(template: &str) -> String {
    regex::Regex::new(r"\{[^}/]*\}")
        .unwrap()
        .replace_all(template, "1")
        .into_owned()
}

/// Whether the router has a route for `method path`: anything but the fallback's 404 (no such
/// path) or 405 (no such method on the path).
async fn routed(state: &AppState, method: Method, path: &str) -> bool {
    let reply = request(method, path).send(state).await;
    match reply.status {
        StatusCode::METHOD_NOT_ALLOWED => false,
        StatusCode::NOT_FOUND => reply.json()["error"]["message"] != "no such endpoint; see /docs",
        _ => true,
    }
}

/// `/api/…` paths named in string literals anywhere in the crate's sources (handlers,
/// routers, pages), without their query.
fn api_paths_in_sources() -> BTreeSet<String> {
    let literal = regex::Regex::new(r#""(/api/[^"?#\s]*)"#).unwrap();
    let mut found = BTreeSet::new();
    let mut dirs = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.extend(literal.captures_iter(&text).map(|c| c[1].to_owned()));
            }
        }
    }
    found
}

/// Every operation in the document is routed, and every route under `/api` is in the document:
/// the documented routes are registered with their operations (`gridshare_web::routes`), and
/// nothing else may route under `/api`.
#[tokio::test]
async fn the_router_and_the_document_list_the_same_api() {
    let state = AppState::default();
    let doc = serde_json::to_value(gridshare_web::routes::document()).unwrap();
    let mut documented = BTreeSet::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method.as_str().to_lowercase()).is_some() {
                documented.insert((concrete(template), method.to_string()));
            }
        }
    }
    assert!(documented.len() >= 30, "{documented:?}");

    // documented ⇒ routed
    let mut missing = Vec::new();
    for (path, method) in &documented {
        if !routed(&state, method.parse().unwrap(), path).await {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(missing.is_empty(), "documented but not routed: {missing:?}");

    // routed under /api ⇒ documented: every documented path and every /api path the sources
    // name, with every method
    let candidates: BTreeSet<String> = documented
        .iter()
        .map(|(p, _)| p.clone())
        .chain(api_paths_in_sources().iter().map(|p| concrete(p)))
        .filter(|p| p.starts_with("/api/"))
        .collect();
    assert!(candidates.contains("/api/v1/orders"), "{candidates:?}");
    let mut undocumented = Vec::new();
    for path in &candidates {
        for method in METHODS {
            let key = (path.clone(), method.to_string());
            if !documented.contains(&key) && routed(&state, method.clone(), path).await {
                undocumented.push(format!("{method} {path}"));
            }
        }
    }
    assert!(undocumented.is_empty(), "routed but not documented: {undocumented:?}");
}
