//! Dashboard sessions and API-key management: login and logout, cookie or bearer sessions, keys
//! made with the scopes a role allows, listed without secrets, revoked for good.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gridshare_domain::{ParticipantId, Timestamp};
use gridshare_storage::Db;
use gridshare_storage::participants::{self, Participant};
use gridshare_web::auth::hash_password;
use gridshare_web::{AppState, app};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const NOW: Timestamp = Timestamp(1_764_064_000_000);

async fn state() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    for (id, role, user) in [(1, "homeowner", "ada"), (4, "operator", "olga")] {
        participants::upsert(
            &db,
            &Participant {
                id: ParticipantId(id),
                name: user.into(),
                role: role.into(),
                evm_address: None,
                feeder_node: None,
            },
            NOW,
        )
        .await
        .unwrap();
        let hash = hash_password(&format!("{user}-correct-horse")).unwrap();
        participants::create_user(&db, user, &hash, ParticipantId(id), NOW)
            .await
            .unwrap();
    }
    (
        AppState {
            db: Some(db),
            ..AppState::default()
        },
        dir,
    )
}

async fn call(
    s: &AppState,
    method: &str,
    path: &str,
    auth: &[(&str, String)],
    body: Option<Value>,
) -> (StatusCode, Value, Option<String>) {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in auth {
        req = req.header(*k, v);
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = app(s.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let cookie = resp.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, v, cookie)
}

fn bearer(t: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {t}"))]
}

#[tokio::test]
async fn login_sessions_and_keys() {
    let (s, _dir) = state().await;
    let (st, v, _) = call(
        &s,
        "POST",
        "/api/v1/session",
        &[],
        Some(json!({"username": "ada", "password": "nope-nope-nope"})),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (st, _, _) = call(
        &s,
        "POST",
        "/api/v1/session",
        &[],
        Some(json!({"username": "nobody", "password": "x"})),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "an unknown user looks the same as a wrong password"
    );
    let (st, v, _) = call(&s, "POST", "/api/v1/session", &[], Some(json!({"username": "ada"}))).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body"))
    );

    let (st, session, cookie) = call(
        &s,
        "POST",
        "/api/v1/session",
        &[],
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
    let (st, me, _) = call(&s, "GET", "/api/v1/me", &[("cookie", cookie_pair.clone())], None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(me["scopes"], json!(["read", "trade"]));
    assert_eq!(
        call(&s, "GET", "/api/v1/me", &bearer(&token), None).await.0,
        StatusCode::OK
    );

    // a key: made, used, listed without its secret, revoked
    let (st, key, _) = call(
        &s,
        "POST",
        "/api/v1/api-keys",
        &bearer(&token),
        Some(json!({"scopes": ["read"], "label": "grafana"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{key}");
    let secret = key["token"].as_str().unwrap().to_owned();
    let id = key["id"].as_str().unwrap().to_owned();
    let (_, me, _) = call(&s, "GET", "/api/v1/me", &bearer(&secret), None).await;
    assert_eq!(me["scopes"], json!(["read"]));
    let (_, list, _) = call(&s, "GET", "/api/v1/api-keys", &bearer(&token), None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["label"], "grafana");
    assert!(!list.to_string().contains(&secret[20..]), "no secret in the list");
    let (st, v, _) = call(
        &s,
        "POST",
        "/api/v1/api-keys",
        &bearer(&token),
        Some(json!({"scopes": ["demand_response"]})),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "a homeowner cannot give DR"
    );
    let (st, v, _) = call(
        &s,
        "POST",
        "/api/v1/api-keys",
        &bearer(&secret),
        Some(json!({"scopes": ["trade"]})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "a read key cannot make a trade key: {v}");
    assert_eq!(
        call(&s, "DELETE", &format!("/api/v1/api-keys/{id}"), &bearer(&token), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&s, "GET", "/api/v1/me", &bearer(&secret), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&s, "DELETE", &format!("/api/v1/api-keys/{id}"), &bearer(&token), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // another user cannot revoke ada's keys
    let (_, olga, _) = call(
        &s,
        "POST",
        "/api/v1/session",
        &[],
        Some(json!({"username": "olga", "password": "olga-correct-horse"})),
    )
    .await;
    let olga = olga["token"].as_str().unwrap().to_owned();
    let (_, key2, _) = call(
        &s,
        "POST",
        "/api/v1/api-keys",
        &bearer(&token),
        Some(json!({"scopes": ["read", "trade"]})),
    )
    .await;
    let id2 = key2["id"].as_str().unwrap();
    assert_eq!(
        call(&s, "DELETE", &format!("/api/v1/api-keys/{id2}"), &bearer(&olga), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, me, _) = call(&s, "GET", "/api/v1/me", &bearer(&olga), None).await;
    assert_eq!(me["scopes"], json!(["read", "demand_response"]));

    // logout ends the session and clears the cookie
    let (st, _, cleared) = call(
        &s,
        "DELETE",
        "/api/v1/session",
        &[("cookie", cookie_pair.clone())],
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert!(cleared.unwrap().contains("Max-Age=0"));
    assert_eq!(
        call(&s, "GET", "/api/v1/me", &[("cookie", cookie_pair)], None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&s, "GET", "/api/v1/me", &bearer(&token), None).await.0,
        StatusCode::UNAUTHORIZED
    );
}
