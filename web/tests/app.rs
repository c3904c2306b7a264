//! The HTTP application in-process: health, readiness, metrics, OpenAPI and
//! the error shape for routes and bodies that do not exist or do not parse.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gridshare_web::{AppState, app};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

async fn call(state: &AppState, req: Request<Body>) -> (StatusCode, String) {
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn error_code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    v["error"]["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn readiness_follows_components() {
    let state = AppState::default();
    state.readiness.register("storage");
    let (status, body) = call(&state, get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("\"storage\":false"), "{body}");
    state.readiness.set("storage", true);
    let (status, _) = call(&state, get("/readyz")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(call(&state, get("/healthz")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn unknown_route_and_method_use_the_error_shape() {
    let state = AppState::default();
    let (status, body) = call(&state, get("/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");
    let (status, body) = call(&state, Request::post("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(&body), "method_not_allowed");
}

#[tokio::test]
async fn metrics_count_requests() {
    let state = AppState::default();
    call(&state, get("/healthz")).await;
    call(&state, get("/nope")).await;
    state.metrics.reject("bad_signature");
    let (status, text) = call(&state, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains("gridshare_http_requests_total{method=\"GET\",status=\"2xx\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("gridshare_http_requests_total{method=\"GET\",status=\"4xx\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("gridshare_messages_rejected_total{reason=\"bad_signature\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn openapi_document_and_docs_page() {
    let state = AppState::default();
    let (status, body) = call(&state, get("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert!(doc["paths"]["/readyz"]["get"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    let (status, html) = call(&state, get("/docs")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<code>/readyz</code>"), "{html}");
}

/// The schema's pattern for delivery intervals accepts every interval the API writes and refuses
/// starts that are not on the interval's boundary.
#[tokio::test]
async fn the_interval_pattern_matches_what_the_api_writes() {
    use gridshare_domain::{DeliveryInterval, IntervalLength, Timestamp};
    let (_, body) = call(&AppState::default(), get("/openapi.json")).await;
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
