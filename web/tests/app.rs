//! The HTTP application in-process: health, readiness, metrics and the error shape for routes
//! and methods that do not exist (the OpenAPI document is in `openapi.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::http::{Method, StatusCode};
use common::{Reply, code, request};
use gridshare_web::AppState;
use serde_json::Value;

fn error_code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    code(&v).to_owned()
}

#[tokio::test]
async fn readiness_follows_components() {
    let state = AppState::default();
    state.readiness.register("storage");
    let Reply { status, text: body, .. } = request(Method::GET, "/readyz").send(&state).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("\"storage\":false"), "{body}");
    state.readiness.set("storage", true);
    let status = request(Method::GET, "/readyz").send(&state).await.status;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        request(Method::GET, "/healthz").send(&state).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_route_and_method_use_the_error_shape() {
    let state = AppState::default();
    let Reply { status, text: body, .. } = request(Method::GET, "/nope").send(&state).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");
    let Reply { status, text: body, .. } = request(Method::POST, "/healthz").send(&state).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(&body), "method_not_allowed");
}

#[tokio::test]
async fn metrics_count_requests() {
    let state = AppState::default();
    request(Method::GET, "/healthz").send(&state).await;
    request(Method::GET, "/nope").send(&state).await;
    state.metrics.reject("bad_signature");
    let Reply { status, text, .. } = request(Method::GET, "/metrics").from("127.0.0.1").send(&state).await;
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
