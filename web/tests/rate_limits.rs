//! Per-key rate limits: a key over its rate is answered 429 with `retry-after`; other keys are
//! not affected.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use common::{call, market_world, request};
use gridshare_web::ratelimit::{RateLimit, RateLimiter};

#[tokio::test]
async fn a_key_over_its_rate_is_told_when_to_retry() {
    let mut w = market_world().await;
    w.state.limiter = Arc::new(RateLimiter::new(RateLimit {
        per_second: 0.5,
        burst: 3.0,
    }));
    let s = &w.state;
    for _ in 0..3 {
        assert_eq!(
            call(s, Method::GET, "/api/v1/me", Some(&w.trader), None).await.0,
            StatusCode::OK
        );
    }
    let reply = request(Method::GET, "/api/v1/me").key(&w.trader).send(s).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.header("retry-after").as_deref(), Some("2"));
    // another key is not affected
    assert_eq!(
        call(s, Method::GET, "/api/v1/me", Some(&w.seller), None).await.0,
        StatusCode::OK
    );
}
