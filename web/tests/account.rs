//! Dashboard sessions and API-key management: login and logout, cookie or bearer sessions, keys
//! made with the scopes a role allows, listed without secrets, revoked for good.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::http::{Method, StatusCode};
use common::{Call, request, sign_in, state_with, temp_db, user};
use gridshare_web::AppState;
use serde_json::{Value, json};

async fn state() -> (AppState, tempfile::TempDir) {
    let (db, dir) = temp_db().await;
    user(&db, 1, "homeowner", "ada").await;
    user(&db, 4, "operator", "olga").await;
    (state_with(&db), dir)
}

/// Sends `req` with an optional JSON body: the status, the body and the `set-cookie` header.
async fn send(s: &AppState, req: Call, body: Option<Value>) -> (StatusCode, Value, Option<String>) {
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let reply = req.send(s).await;
    (reply.status, reply.json(), reply.header("set-cookie"))
}

#[tokio::test]
async fn login_sessions_and_keys() {
    let (s, _dir) = state().await;
    let (st, v, _) = send(
        &s,
        request(Method::POST, "/api/v1/session"),
        Some(json!({"username": "ada", "password": "nope-nope-nope"})),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (st, _, _) = send(
        &s,
        request(Method::POST, "/api/v1/session"),
        Some(json!({"username": "nobody", "password": "x"})),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "an unknown user looks the same as a wrong password"
    );
    let (st, v, _) = send(
        &s,
        request(Method::POST, "/api/v1/session"),
        Some(json!({"username": "ada"})),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body"))
    );

    let (st, session, cookie) = send(
        &s,
        request(Method::POST, "/api/v1/session"),
        Some(json!({"username": "ada", "password": "ada-correct-horse"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{session}");
    assert_eq!(
        (session["participant"].as_u64(), session["role"].as_str()),
        (Some(1), Some("homeowner"))
    );
    let token = session["token"].as_str().unwrap().to_owned();
    let cookie = cookie.unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie_pair = cookie.split(';').next().unwrap().to_owned();

    // the session works as a cookie and as a bearer token, with its role's scopes
    let (st, me, _) = send(&s, request(Method::GET, "/api/v1/me").cookie(&cookie_pair), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(me["scopes"], json!(["read", "trade", "vote", "keys"]));
    assert_eq!(
        send(&s, request(Method::GET, "/api/v1/me").key(&token), None).await.0,
        StatusCode::OK
    );

    // a key: made, used, listed without its secret, revoked
    let (st, key, _) = send(
        &s,
        request(Method::POST, "/api/v1/api-keys").key(&token),
        Some(json!({"scopes": ["read"], "label": "grafana"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{key}");
    let secret = key["token"].as_str().unwrap().to_owned();
    let id = key["id"].as_str().unwrap().to_owned();
    let (_, me, _) = send(&s, request(Method::GET, "/api/v1/me").key(&secret), None).await;
    assert_eq!(me["scopes"], json!(["read"]));
    let (_, list, _) = send(&s, request(Method::GET, "/api/v1/api-keys").key(&token), None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["label"], "grafana");
    assert!(!list.to_string().contains(&secret[20..]), "no secret in the list");
    let (st, v, _) = send(
        &s,
        request(Method::POST, "/api/v1/api-keys").key(&token),
        Some(json!({"scopes": ["demand_response"]})),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "a homeowner cannot give DR"
    );
    let (st, v, _) = send(
        &s,
        request(Method::POST, "/api/v1/api-keys").key(&secret),
        Some(json!({"scopes": ["trade"]})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "a read key cannot make a trade key: {v}");
    assert_eq!(
        send(
            &s,
            request(Method::DELETE, format!("/api/v1/api-keys/{id}")).key(&token),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&s, request(Method::GET, "/api/v1/me").key(&secret), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(
            &s,
            request(Method::DELETE, format!("/api/v1/api-keys/{id}")).key(&token),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    // another user cannot revoke ada's keys
    let (olga, _) = sign_in(&s, "olga").await;
    let (_, key2, _) = send(
        &s,
        request(Method::POST, "/api/v1/api-keys").key(&token),
        Some(json!({"scopes": ["read", "trade"]})),
    )
    .await;
    let id2 = key2["id"].as_str().unwrap();
    assert_eq!(
        send(
            &s,
            request(Method::DELETE, format!("/api/v1/api-keys/{id2}")).key(&olga),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (_, me, _) = send(&s, request(Method::GET, "/api/v1/me").key(&olga), None).await;
    assert_eq!(me["scopes"], json!(["read", "demand_response", "govern", "keys"]));

    // logout ends the session and clears the cookie
    let (st, _, cleared) = send(
        &s,
        request(Method::DELETE, "/api/v1/session").cookie(&cookie_pair),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert!(cleared.unwrap().contains("Max-Age=0"));
    assert_eq!(
        send(&s, request(Method::GET, "/api/v1/me").cookie(&cookie_pair), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&s, request(Method::GET, "/api/v1/me").key(&token), None).await.0,
        StatusCode::UNAUTHORIZED
    );
}
