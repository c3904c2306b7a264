//! Logging in and out of the dashboard, and managing API keys.
//!
//! A login answers with a session token, also set as an `HttpOnly; SameSite=Strict` cookie (and
//! `Secure` behind TLS) so the dashboard never handles it in script. Cross-site requests are
//! refused before they reach a handler ([`crate::guard::same_origin`]); logins are throttled per
//! address and per user name at an address, and their password checks queued
//! ([`crate::guard`]). An API key's secret is shown once, when it is made; only its
//! SHA-256 is stored.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gridshare_domain::Timestamp;
use gridshare_storage::{api_keys, participants};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::api::{SESSION_COOKIE, role_scopes};
use crate::auth::{Principal, Role, Scope, TokenKind, new_token, token_hash, verify_password};
use crate::error::{ApiError, ApiJson, ApiPath as Path};
use crate::guard::{ClientAddr, MAX_USERNAME};

/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;

/// Credentials.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A new session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    /// The session token (also set as a cookie); send as `Authorization: Bearer gss_…`.
    pub token: String,
    /// The participant the user acts for.
    pub participant: u64,
    /// Their role.
    pub role: Role,
    /// Expiry (RFC 3339).
    pub expires_at: String,
}

/// Log in.
#[utoipa::path(post, path = "/api/v1/session", tag = "account", request_body = Login,
    responses(
        (status = 200, description = "Logged in; the token is also set as a cookie", body = SessionView),
        (status = 401, description = "Wrong username or password", body = crate::error::ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = crate::error::ErrorBody),
        (status = 503, description = "Too many logins being checked; retry in a second", body = crate::error::ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(req): ApiJson<Login>,
) -> Result<Response, ApiError> {
    let s = start_session(&state, client, req).await?;
    let mut resp = ApiJson(s.view).into_response();
    if let Ok(v) = HeaderValue::from_str(&s.cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// A session just started: what the API answers, and the cookie that carries it.
#[derive(Debug, Clone)]
pub struct StartedSession {
    /// The answer to `POST /api/v1/session`.
    pub view: SessionView,
    /// The `Set-Cookie` value.
    pub cookie: String,
}

/// Checks a username and password and starts a session: for the REST handler and the login page.
pub async fn start_session(state: &AppState, client: ClientAddr, req: Login) -> Result<StartedSession, ApiError> {
    if req.username.len() > MAX_USERNAME {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("username: at most {MAX_USERNAME} bytes"),
        ));
    }
    if let Err(wait) = state
        .security
        .logins
        .check(client, &req.username, std::time::Instant::now())
    {
        state.metrics.refuse_http("login_throttled");
        let secs = wait.as_secs_f64().ceil() as u64;
        return Err(ApiError::retry_after(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many login attempts from your address; retry in {} s", secs.max(1)),
            secs,
        ));
    }
    let db = state.db()?;
    let wrong = || ApiError::unauthorized("wrong username or password");
    let user = participants::find_user(db, &req.username).await?;
    // verify against a dummy hash when the user does not exist, so timing does not tell
    let phc = user
        .as_ref()
        .map_or_else(|| DUMMY_HASH.clone(), |u| u.password_hash.clone());
    let password = req.password;
    let Ok(ok) = state
        .security
        .passwords
        .run(move || verify_password(&password, &phc))
        .await
    else {
        state.metrics.refuse_http("hashing_busy");
        return Err(crate::guard::busy_error());
    };
    let user = user.filter(|_| ok).ok_or_else(wrong)?;
    let p = participants::get(db, user.participant).await?;
    let role = Role::parse(&p.role).ok_or_else(|| ApiError::forbidden(format!("a {} may not log in", p.role)))?;
    let t = new_token(TokenKind::Session);
    let at = gridshare_market::wall_clock();
    let expires = Timestamp(at.0 + SESSION_HOURS * 3_600_000);
    participants::create_session(db, &t.hash, user.id, at, expires).await?;
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        t.token,
        SESSION_HOURS * 3600,
        state.security.cookie_suffix()
    );
    Ok(StartedSession {
        view: SessionView {
            token: t.token,
            participant: user.participant.0,
            role,
            expires_at: expires.to_rfc3339(),
        },
        cookie,
    })
}

/// An argon2id hash of a random string, verified against when a username is unknown (the same
/// work as a real check; it never matches).
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let t = new_token(TokenKind::Session);
    crate::auth::hash_password(&t.token).unwrap_or_default()
});

/// Log out (ends the session the request presents).
#[utoipa::path(delete, path = "/api/v1/session", tag = "account",
    responses((status = 204, description = "Logged out; the cookie is cleared")))]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    end_session(&state, &headers).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&ended_session_cookie(&state)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// The `Set-Cookie` value that clears the session cookie.
pub fn ended_session_cookie(state: &AppState) -> String {
    format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        state.security.cookie_suffix()
    )
}

/// Ends the session `headers` present (bearer token or cookie), if any: for the REST handler and
/// the logout form.
pub async fn end_session(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .find_map(|c| {
                    c.trim()
                        .strip_prefix(SESSION_COOKIE)?
                        .strip_prefix('=')
                        .map(str::to_owned)
                })
        });
    if let Some(t) = token {
        participants::delete_session(state.db()?, &token_hash(&t), gridshare_market::wall_clock()).await?;
    }
    Ok(())
}

/// A key to make.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// Scopes: `read`, `trade`, `demand_response`, `keys` (each must be allowed to your role and
    /// held by the key or session making it).
    pub scopes: Vec<Scope>,
    /// A label to recognise it by (≤ 64 characters).
    #[serde(default)]
    pub label: String,
}

/// A key as listed (no secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyView {
    /// Public id.
    pub id: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Label.
    pub label: String,
    /// Made at (RFC 3339).
    pub created_at: String,
    /// Revoked at (RFC 3339), if revoked.
    pub revoked_at: Option<String>,
}

/// A new key, with its secret (shown this once).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key.
    #[serde(flatten)]
    pub key: KeyView,
    /// The secret token: store it now, it is never shown again.
    pub token: String,
}

fn view(k: &api_keys::ApiKey) -> KeyView {
    KeyView {
        id: k.id.clone(),
        scopes: k.scopes.split(',').map(str::to_owned).collect(),
        label: k.label.clone(),
        created_at: Timestamp(k.created_at).to_rfc3339(),
        revoked_at: k.revoked_at.map(|t| Timestamp(t).to_rfc3339()),
    }
}

fn scope_name(s: Scope) -> &'static str {
    match s {
        Scope::Read => "read",
        Scope::Trade => "trade",
        Scope::DemandResponse => "demand_response",
        Scope::Govern => "govern",
        Scope::Vote => "vote",
        Scope::Keys => "keys",
    }
}

/// Make an API key.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "account", security(("api_key" = [])), request_body = NewKey,
    responses(
        (status = 201, description = "The key and its secret, shown once", body = CreatedKey),
        (status = 403, description = "No `keys` scope, or a scope you do not hold", body = crate::error::ErrorBody),
    ))]
pub async fn create_key(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<NewKey>,
) -> Result<(StatusCode, ApiJson<CreatedKey>), ApiError> {
    Ok((StatusCode::CREATED, ApiJson(make_key(&state, &who, req).await?)))
}

/// Makes an API key for `who` with scopes their role and session allow: for the REST handler and
/// the trader's page.
pub async fn make_key(state: &AppState, who: &Principal, req: NewKey) -> Result<CreatedKey, ApiError> {
    who.require_scope(Scope::Keys)?;
    if req.scopes.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "at least one scope",
        ));
    }
    if req.label.chars().count() > 64 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "label: at most 64 characters",
        ));
    }
    let allowed = role_scopes(who.role);
    if let Some(s) = req
        .scopes
        .iter()
        .find(|s| !allowed.contains(s) || !who.scopes.contains(s))
    {
        return Err(ApiError::forbidden(format!(
            "the {} scope is not yours to give",
            scope_name(*s)
        )));
    }
    let mut names: Vec<&str> = req.scopes.iter().map(|s| scope_name(*s)).collect();
    names.sort_unstable();
    names.dedup();
    let t = new_token(TokenKind::ApiKey);
    let at = gridshare_market::wall_clock();
    let key = api_keys::NewKey {
        id: &t.id,
        participant: who.participant,
        token_hash: &t.hash,
        scopes: &names.join(","),
        label: &req.label,
        parent: who.key.as_deref(),
    };
    api_keys::create(state.db()?, &key, at).await?;
    Ok(CreatedKey {
        key: KeyView {
            id: t.id,
            scopes: names.iter().map(|s| (*s).to_owned()).collect(),
            label: req.label,
            created_at: at.to_rfc3339(),
            revoked_at: None,
        },
        token: t.token,
    })
}

/// My API keys (no secrets).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "account", security(("api_key" = [])),
    responses(
        (status = 200, description = "Keys, newest first", body = Vec<KeyView>),
        (status = 403, description = "No `keys` scope", body = crate::error::ErrorBody),
    ))]
pub async fn list_keys(State(state): State<AppState>, who: Principal) -> Result<ApiJson<Vec<KeyView>>, ApiError> {
    Ok(ApiJson(keys_of(&state, &who).await?))
}

/// `who`'s API keys, newest first (no secrets).
pub async fn keys_of(state: &AppState, who: &Principal) -> Result<Vec<KeyView>, ApiError> {
    who.require_scope(Scope::Keys)?;
    let keys = api_keys::list(state.db()?, who.participant).await?;
    Ok(keys.iter().map(view).collect())
}

/// Revoke one of my API keys, and every key made with it.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "account", security(("api_key" = [])),
    params(("id" = String, Path, description = "Key id, gsk_…")),
    responses(
        (status = 204, description = "Revoked, with the keys made with it"),
        (status = 403, description = "No `keys` scope", body = crate::error::ErrorBody),
        (status = 404, description = "No such live key of yours", body = crate::error::ErrorBody),
    ))]
pub async fn revoke_key(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    revoke(&state, &who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes `who`'s live API key `id` and every key made with it (and with those, …).
pub async fn revoke(state: &AppState, who: &Principal, id: &str) -> Result<(), ApiError> {
    who.require_scope(Scope::Keys)?;
    match api_keys::revoke(state.db()?, who.participant, id, gridshare_market::wall_clock()).await {
        Ok(()) => Ok(()),
        Err(gridshare_storage::StorageError::NotFound { .. }) => {
            Err(ApiError::not_found(format!("you have no live API key {id}")))
        }
        Err(e) => Err(e.into()),
    }
}
