//! The HTTP side attacked as a stranger would (issue 17): cross-site forms and login CSRF, cookies
//! behind TLS, `/metrics` for anyone, login spraying and lockout, very long user names. Each test
//! shows the attack refused, counted, and the real user unaffected.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use common::{code, password, request, sign_in, state_with, temp_db, user};
use gridshare_web::AppState;
use gridshare_web::guard::Security;

fn refused(state: &AppState, reason: &str) -> u64 {
    state
        .metrics
        .http_refused
        .get_or_create(&gridshare_market::metrics::ReasonLabels { reason: reason.into() })
        .get()
}

fn login_form(username: &str) -> String {
    format!("username={username}&password={}", password(username))
}

#[tokio::test]
async fn a_form_posted_from_another_site_is_refused_login_included() {
    let (db, _dir) = temp_db().await;
    user(&db, 1, "trader", "tess").await;
    let state = state_with(&db);
    let (_, cookie) = sign_in(&state, "tess").await;

    // login CSRF: another site logs the visitor in as the attacker
    let r = request(Method::POST, "/login")
        .header("host", "grid.example".into())
        .header("origin", "https://evil.example".into())
        .form(login_form("tess"))
        .send(&state)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(code(&r.json()), "cross_origin");
    assert!(r.header("set-cookie").is_none(), "no session was started");

    // a signed-in visitor's cookie riding on a cross-site form (no Origin, as some old browsers)
    let r = request(Method::POST, "/trader/keys")
        .cookie(&cookie)
        .header("sec-fetch-site", "cross-site".into())
        .form("label=stolen&scopes=trade")
        .send(&state)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // `Origin: null` (a sandboxed frame, a data: URL) is not the service's own origin either
    let r = request(Method::POST, "/logout")
        .cookie(&cookie)
        .header("origin", "null".into())
        .send(&state)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // a WebSocket opened by another site with the visitor's cookie
    let r = request(Method::GET, "/api/v1/ws")
        .cookie(&cookie)
        .header("origin", "https://evil.example".into())
        .header("host", "grid.example".into())
        .header("upgrade", "websocket".into())
        .header("connection", "upgrade".into())
        .header("sec-websocket-version", "13".into())
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==".into())
        .send(&state)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(refused(&state, "cross_origin"), 4);
    let keys = common::call(
        &state,
        Method::GET,
        "/api/v1/api-keys",
        Some(&cookie_token(&cookie)),
        None,
    )
    .await;
    assert_eq!(keys.1.as_array().map(Vec::len), Some(0), "no key was made: {}", keys.1);

    // the same requests from the service's own pages pass
    let r = request(Method::POST, "/login")
        .header("host", "grid.example".into())
        .header("origin", "https://grid.example".into())
        .header("sec-fetch-site", "same-origin".into())
        .form(login_form("tess"))
        .send(&state)
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(r.header("set-cookie").is_some());
    // and so does a script with its own credentials, wherever it runs
    let r = request(Method::DELETE, "/api/v1/session")
        .key(&cookie_token(&cookie))
        .header("origin", "https://tools.example".into())
        .send(&state)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
}

/// The session token in a `name=value` cookie pair.
fn cookie_token(cookie: &str) -> String {
    cookie.split_once('=').unwrap().1.to_owned()
}

#[tokio::test]
async fn an_origin_the_operator_allows_may_post() {
    let (db, _dir) = temp_db().await;
    user(&db, 1, "trader", "tess").await;
    let state = AppState {
        security: Arc::new(Security {
            allowed_origins: vec!["https://dashboard.example".into()],
            ..Security::default()
        }),
        ..state_with(&db)
    };
    let post = |origin: &'static str| {
        request(Method::POST, "/login")
            .header("host", "api.example".into())
            .header("origin", origin.into())
            .form(login_form("tess"))
    };
    assert_eq!(
        post("https://dashboard.example").send(&state).await.status,
        StatusCode::SEE_OTHER
    );
    // a prefix or a look-alike is not the allowed origin
    for origin in ["https://dashboard.example.evil.example", "http://dashboard.example"] {
        assert_eq!(
            post(origin).send(&state).await.status,
            StatusCode::FORBIDDEN,
            "{origin}"
        );
    }
}

#[tokio::test]
async fn cookies_are_secure_behind_tls() {
    let (db, _dir) = temp_db().await;
    user(&db, 1, "trader", "tess").await;
    let plain = state_with(&db);
    let (_, _) = sign_in(&plain, "tess").await;
    let r = request(Method::POST, "/api/v1/session")
        .json(&serde_json::json!({"username": "tess", "password": password("tess")}))
        .send(&plain)
        .await;
    assert!(!r.header("set-cookie").unwrap().contains("Secure"));

    let tls = AppState {
        security: Arc::new(Security {
            secure_cookies: true,
            ..Security::default()
        }),
        ..state_with(&db)
    };
    let r = request(Method::POST, "/api/v1/session")
        .json(&serde_json::json!({"username": "tess", "password": password("tess")}))
        .send(&tls)
        .await;
    let cookie = r.header("set-cookie").unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let r = request(Method::POST, "/logout")
        .cookie(cookie.split(';').next().unwrap())
        .send(&tls)
        .await;
    assert!(
        r.header("set-cookie").unwrap().contains("; Secure"),
        "the clearing cookie too"
    );
}

#[tokio::test]
async fn metrics_are_for_this_host_or_the_metrics_token() {
    let open = AppState::default();
    for (from, expect) in [
        (Some("127.0.0.1"), StatusCode::OK),
        (Some("::1"), StatusCode::OK),
        (Some("203.0.113.9"), StatusCode::FORBIDDEN),
        (None, StatusCode::FORBIDDEN),
    ] {
        let mut r = request(Method::GET, "/metrics");
        if let Some(ip) = from {
            r = r.from(ip);
        }
        assert_eq!(r.send(&open).await.status, expect, "from {from:?}");
    }
    assert_eq!(refused(&open, "metrics_token"), 2);

    let token = "a-long-random-metrics-token";
    let guarded = AppState {
        security: Arc::new(Security {
            metrics_token: Some(token.into()),
            ..Security::default()
        }),
        ..AppState::default()
    };
    let get = |key: Option<&str>| request(Method::GET, "/metrics").from("203.0.113.9").maybe_key(key);
    assert_eq!(get(Some(token)).send(&guarded).await.status, StatusCode::OK);
    assert_eq!(
        get(Some("a-long-random-metrics-tokeN")).send(&guarded).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(get(None).send(&guarded).await.status, StatusCode::FORBIDDEN);
    // with a token, being on the same host is not enough
    let r = request(Method::GET, "/metrics").from("127.0.0.1").send(&guarded).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

async fn login_from(state: &AppState, ip: &str, username: &str, password: &str) -> common::Reply {
    request(Method::POST, "/api/v1/session")
        .from(ip)
        .json(&serde_json::json!({"username": username, "password": password}))
        .send(state)
        .await
}

#[tokio::test]
async fn guessing_a_password_is_throttled_at_the_guesser_and_the_user_still_logs_in_from_home() {
    let (db, _dir) = temp_db().await;
    user(&db, 1, "homeowner", "alice").await;
    let state = state_with(&db);
    let attacker = "198.51.100.7";
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(
            login_from(&state, attacker, "alice", &format!("guess-{i}"))
                .await
                .status,
        );
    }
    assert_eq!(&statuses[..5], &[StatusCode::UNAUTHORIZED; 5], "{statuses:?}");
    let r = login_from(&state, attacker, "alice", "guess-9").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    // even the right password is not tried from there now: the throttle is not an oracle
    let r = login_from(&state, attacker, "alice", &password("alice")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused(&state, "login_throttled") >= 4);

    // alice, at home, is not locked out by any of it
    let r = login_from(&state, "192.0.2.10", "alice", &password("alice")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn spraying_many_user_names_from_one_address_is_throttled() {
    let (db, _dir) = temp_db().await;
    user(&db, 1, "homeowner", "alice").await;
    let state = state_with(&db);
    let mut first_refused = None;
    for i in 0..30 {
        let r = login_from(&state, "2001:db8:1:2::99", &format!("user{i}"), "Winter2026!").await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            first_refused = Some(i);
            break;
        }
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(first_refused, Some(20), "a burst of 20 per address, then throttled");
    // another address in the same IPv6 /64 is the same subscriber
    let r = login_from(&state, "2001:db8:1:2::1234", "alice", "x").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // the next /64 is someone else
    let r = login_from(&state, "2001:db8:1:3::1", "alice", &password("alice")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn a_very_long_user_name_is_refused_before_it_costs_anything() {
    let (db, _dir) = temp_db().await;
    let state = state_with(&db);
    let r = login_from(&state, "192.0.2.1", &"a".repeat(10_000), "x").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("username"), "{}", r.text);
}

#[tokio::test]
async fn password_checks_beyond_the_queue_are_answered_busy_not_queued_without_bound() {
    // one check at a time, one more waiting
    let queue = Arc::new(gridshare_web::guard::PasswordQueue::new(1, 1));
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let (started_tx, started) = std::sync::mpsc::channel::<()>();
    let q = queue.clone();
    let first = tokio::spawn(async move {
        q.run(move || {
            started_tx.send(()).unwrap();
            hold.recv().unwrap();
        })
        .await
    });
    tokio::task::spawn_blocking(move || started.recv().unwrap())
        .await
        .unwrap();
    let mut second = std::pin::pin!(queue.run(|| "second"));
    let waited = tokio::time::timeout(std::time::Duration::from_millis(50), &mut second).await;
    assert!(waited.is_err(), "the second check waits for the first");
    // a third finds the worker busy and the queue full: refused at once, nothing held
    assert_eq!(queue.run(|| "third").await, Err(gridshare_web::guard::Busy));
    release.send(()).unwrap();
    assert!(first.await.unwrap().is_ok());
    assert_eq!(second.await, Ok("second"));
    // and once the queue has drained, checks run again
    assert_eq!(queue.run(|| "fourth").await, Ok("fourth"));
}

#[tokio::test]
async fn a_key_without_the_keys_scope_cannot_touch_keys_and_children_die_with_their_parent() {
    let (db, _dir) = temp_db().await;
    user(&db, 1, "trader", "tess").await;
    let state = state_with(&db);
    let (session, _) = sign_in(&state, "tess").await;
    let make = |key: String, scopes: serde_json::Value| {
        let state = state.clone();
        async move {
            request(Method::POST, "/api/v1/api-keys")
                .key(&key)
                .json(&serde_json::json!({"scopes": scopes, "label": "k"}))
                .send(&state)
                .await
        }
    };
    let trading = make(session.clone(), serde_json::json!(["read", "trade"])).await.json();
    let reading = make(session.clone(), serde_json::json!(["read"])).await.json();
    let read_token = reading["token"].as_str().unwrap().to_owned();

    // the read-only key: no listing, no new keys, no revoking the trading key
    let r = request(Method::GET, "/api/v1/api-keys")
        .key(&read_token)
        .send(&state)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = make(read_token.clone(), serde_json::json!(["read"])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = request(
        Method::DELETE,
        format!("/api/v1/api-keys/{}", trading["id"].as_str().unwrap()),
    )
    .key(&read_token)
    .send(&state)
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = request(Method::GET, "/api/v1/me")
        .key(trading["token"].as_str().unwrap())
        .send(&state)
        .await;
    assert_eq!(r.status, StatusCode::OK, "the trading key still works");

    // a key made with `keys` may make keys (no scope it lacks); they and theirs die with it
    let admin_key = make(session.clone(), serde_json::json!(["read", "keys"])).await.json();
    let admin_token = admin_key["token"].as_str().unwrap().to_owned();
    let r = make(admin_token.clone(), serde_json::json!(["trade"])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "not a scope it holds: {}", r.text);
    let child = make(admin_token.clone(), serde_json::json!(["read", "keys"]))
        .await
        .json();
    let child_token = child["token"].as_str().unwrap().to_owned();
    let grandchild = make(child_token.clone(), serde_json::json!(["read"])).await.json();
    let grandchild_token = grandchild["token"].as_str().unwrap().to_owned();
    for t in [&child_token, &grandchild_token] {
        assert_eq!(
            request(Method::GET, "/api/v1/me").key(t).send(&state).await.status,
            StatusCode::OK
        );
    }
    let r = request(
        Method::DELETE,
        format!("/api/v1/api-keys/{}", admin_key["id"].as_str().unwrap()),
    )
    .key(&session)
    .send(&state)
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    for t in [&admin_token, &child_token, &grandchild_token] {
        let r = request(Method::GET, "/api/v1/me").key(t).send(&state).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "a key made with a revoked key is revoked too"
        );
    }
    // keys made in the session are nobody's children
    for t in [trading["token"].as_str().unwrap(), read_token.as_str()] {
        assert_eq!(
            request(Method::GET, "/api/v1/me").key(t).send(&state).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn an_event_shows_non_operators_their_own_gateways_figures_only() {
    use gridshare_domain::wire::DrReport;
    use gridshare_domain::{EventId, GatewayId, W};
    let (db, _dir) = temp_db().await;
    let mut keys = Vec::new();
    for (id, role, scopes) in [
        (1, "homeowner", "read"),
        (2, "homeowner", "read"),
        (3, "trader", "read"),
        (4, "operator", "read,demand_response"),
        (5, "installer", "read"),
    ] {
        common::participant(&db, id, role, Some(id as u32)).await;
        keys.push(common::key(&db, id, scopes).await);
    }
    let [ada, bo, trader, operator, installer] = <[String; 5]>::try_from(keys).unwrap();
    common::gateway(&db, 11, 1, Some(5), 100).await; // ada's, commissioned by the installer
    common::gateway(&db, 12, 2, None, 100).await; // bo's
    let state = state_with(&db);
    let (_, p) = common::call(
        &state,
        Method::POST,
        "/api/v1/dr/programs",
        Some(&operator),
        Some(serde_json::json!({"name": "peak", "description": ""}).to_string()),
    )
    .await;
    let event = serde_json::json!({"program_id": p["id"], "targets": {"kind": "sites", "gateways": [11, 12]},
        "intervals": [{"id": 0, "start": 1_796_144_400_000i64, "duration_minutes": 15,
                       "signals": [{"signal": "load_shed", "w": 2000}]}]});
    let (st, e) = common::call(
        &state,
        Method::POST,
        "/api/v1/dr/events",
        Some(&operator),
        Some(event.to_string()),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{e}");
    let id = e["id"].as_u64().unwrap();
    for (gw, measured) in [(11, 900), (12, 4_321)] {
        let r = DrReport {
            event_id: EventId(id),
            interval_id: 0,
            baseline_w: Some(W(5_555)),
            measured_w: W(measured),
            confirmed: true,
            note: None,
            at: common::NOW,
        };
        gridshare_storage::dr::record_report(&db, GatewayId(gw), &r)
            .await
            .unwrap();
    }
    let seen = |key: String| {
        let state = state.clone();
        async move {
            let (st, one) = common::call(
                &state,
                Method::GET,
                &format!("/api/v1/dr/events/{id}"),
                Some(&key),
                None,
            )
            .await;
            assert_eq!(st, StatusCode::OK, "{one}");
            let (_, list) = common::call(&state, Method::GET, "/api/v1/dr/events", Some(&key), None).await;
            assert_eq!(list[0], one, "the list shows what the event shows");
            let gateways = |field: &str| -> Vec<u64> {
                one[field]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["gateway"].as_u64().unwrap_or_else(|| r.as_u64().unwrap()))
                    .collect()
            };
            (
                gateways("reports"),
                gateways("gateways"),
                one["targets"]["gateways"].clone(),
                one.to_string(),
            )
        }
    };
    let (reports, gateways, targets, _) = seen(operator).await;
    assert_eq!(
        (reports, gateways),
        (vec![11, 12], vec![11, 12]),
        "the operator sees everyone"
    );
    assert_eq!(targets, serde_json::json!([11, 12]));
    let (reports, gateways, targets, text) = seen(ada).await;
    assert_eq!((reports, gateways), (vec![11], vec![11]), "ada sees her own");
    assert_eq!(targets, serde_json::json!([11]));
    assert!(!text.contains("4321"), "bo's measurement is not in ada's view: {text}");
    let (reports, _, _, _) = seen(bo).await;
    assert_eq!(reports, vec![12]);
    let (reports, _, _, _) = seen(installer).await;
    assert_eq!(reports, vec![11], "the installer sees the gateway they commissioned");
    let (reports, gateways, targets, _) = seen(trader).await;
    assert!(
        reports.is_empty() && gateways.is_empty(),
        "a trader sees no home's figures"
    );
    assert_eq!(targets, serde_json::json!([]));
}

#[tokio::test]
async fn an_installer_commissions_only_for_homes_that_chose_them() {
    use gridshare_domain::GatewayId;
    use gridshare_domain::envelope::GatewayKey;
    let (db, _dir) = temp_db().await;
    user(&db, 1, "homeowner", "ada").await;
    user(&db, 5, "installer", "ivan").await;
    common::participant(&db, 2, "homeowner", Some(2)).await;
    common::participant(&db, 3, "trader", None).await;
    // the fixture's participants have no feeder node; homes need one to be commissioned
    for home in [1u64, 2] {
        let mut p = gridshare_storage::participants::get(&db, gridshare_domain::ParticipantId(home))
            .await
            .unwrap();
        p.feeder_node = Some(home as u32);
        gridshare_storage::participants::upsert(&db, &p, common::NOW)
            .await
            .unwrap();
    }
    let state = state_with(&db);
    let ada = common::key(&db, 1, "read,trade").await;
    let bo = common::key(&db, 2, "read,trade").await;
    let trader = common::key(&db, 3, "read,trade").await;
    let (_, ivan) = sign_in(&state, "ivan").await;
    let commission = |gateway: u64, home: u64| {
        let state = state.clone();
        let ivan = ivan.clone();
        async move {
            let public_key = GatewayKey::from_bytes(&[gateway as u8; 32]).unwrap().public().to_hex();
            request(Method::POST, "/installer/gateways")
                .cookie(&ivan)
                .form(format!("id={gateway}&owner={home}&public_key={public_key}&node="))
                .send(&state)
                .await;
            gridshare_storage::gateways::active(&db_of(&state))
                .await
                .unwrap()
                .iter()
                .any(|g| g.id == GatewayId(gateway))
        }
    };
    assert!(!commission(21, 1).await, "not chosen by home 1 yet");

    let assign = |key: String, method: Method, home: u64, installer: u64| {
        let state = state.clone();
        async move {
            request(method, format!("/api/v1/homes/{home}/installers/{installer}"))
                .key(&key)
                .send(&state)
                .await
                .status
        }
    };
    assert_eq!(
        assign(bo.clone(), Method::PUT, 1, 5).await,
        StatusCode::FORBIDDEN,
        "a neighbour"
    );
    assert_eq!(assign(trader, Method::PUT, 1, 5).await, StatusCode::FORBIDDEN);
    assert_eq!(
        assign(ada.clone(), Method::PUT, 1, 3).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a trader is no installer"
    );
    assert_eq!(assign(ada.clone(), Method::PUT, 1, 5).await, StatusCode::NO_CONTENT);
    assert!(commission(21, 1).await, "home 1 chose ivan");
    assert!(!commission(22, 2).await, "home 2 did not");
    let (st, homes) = common::call(
        &state,
        Method::GET,
        "/api/v1/installers/me/homes",
        Some(&cookie_token(&ivan)),
        None,
    )
    .await;
    assert_eq!((st, homes), (StatusCode::OK, serde_json::json!([1])));

    assert_eq!(assign(ada.clone(), Method::DELETE, 1, 5).await, StatusCode::NO_CONTENT);
    assert!(!commission(23, 1).await, "the assignment ended");
    assert_eq!(assign(ada, Method::DELETE, 1, 5).await, StatusCode::NOT_FOUND);
}

fn db_of(state: &AppState) -> gridshare_storage::Db {
    state.db.clone().unwrap()
}
