//! The way in, for every role: `GET /` (to the visitor's own page), the login form and logging
//! out.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gridshare_ui::Page;
use gridshare_ui::pages::LoginData;
use serde::Deserialize;

use super::{Anyone, SignedIn, html};
use crate::auth::Role;
use crate::guard::ClientAddr;
use crate::{AppState, account};

/// `GET /`: to the visitor's own page (the login page when not signed in).
pub async fn root(SignedIn { who, .. }: SignedIn<Anyone>) -> Response {
    match who.role {
        Role::Homeowner => Redirect::to(&format!("/home/{}", who.participant.0)).into_response(),
        Role::Trader => Redirect::to("/trader").into_response(),
        Role::Operator => Redirect::to("/operator").into_response(),
        Role::Installer => Redirect::to("/installer").into_response(),
        Role::Admin => Redirect::to("/admin").into_response(),
    }
}

/// `GET /login`.
pub async fn login_form(State(state): State<AppState>) -> Response {
    html(&state, StatusCode::OK, &Page::Login(LoginData::default()))
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

/// `POST /login`: checks the password as the API does, sets the session cookie and goes to the
/// visitor's page; a refusal shows the form again with the reason.
pub async fn login(State(state): State<AppState>, client: ClientAddr, Form(f): Form<LoginForm>) -> Response {
    let username = f.username.clone();
    let attempt = account::start_session(
        &state,
        client,
        account::Login {
            username: f.username,
            password: f.password,
        },
    )
    .await;
    match attempt {
        Ok(started) => {
            let mut out = Redirect::to("/").into_response();
            if let Ok(cookie) = HeaderValue::from_str(&started.cookie) {
                out.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            out
        }
        Err(e) => html(
            &state,
            e.status,
            &Page::Login(LoginData {
                username,
                error: Some(e.message.clone()),
            }),
        ),
    }
}

/// `POST /logout`: ends the session and clears its cookie.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut out = Redirect::to("/login").into_response();
    if account::end_session(&state, &headers).await.is_ok()
        && let Ok(cookie) = HeaderValue::from_str(&account::ended_session_cookie(&state))
    {
        out.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    out
}
