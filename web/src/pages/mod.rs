//! The dashboard's pages, served from the same router as the API: the data is loaded here, the
//! page rendered on the server by `gridshare-ui`, and hydrated in the browser by its wasm part
//! (served under `/pkg/` when it has been built; without it the pages still work).
//!
//! - `GET /` sends a visitor to their page (or to `/login`);
//! - `GET /login`, `POST /login` (a plain form: works before any script), `POST /logout`;
//! - `GET /home/{participant}`: a homeowner's page; another homeowner's is refused with 403;
//!   `POST /home/{participant}/preferences` sets the home's trading preferences;
//! - `GET /trader?zone=…&interval=…` and its forms; `GET /operator`, its events and their pages;
//! - `GET /network` (public: the reward epochs, emission against the cap, the rules, the gateways
//!   slashed for equivocation without their envelopes) and `GET /admin` (participants,
//!   installers' homes, gateways, the network with the envelopes);
//! - `GET /installer`, `POST /installer/gateways` (commission), `POST
//!   /installer/gateways/{id}/check` and `GET /installer/gateways/{id}/checks/{check}` (a remote
//!   check and its result).
//!
//! One module per role, as in `gridshare-ui`'s pages ([`common`] for login and the way in); every
//! handler is signed in through [`SignedIn`], and loads its data through the same plain functions
//! the REST handlers call (never through a handler). Errors are pages too: a message a person can
//! act on, with the right status.

mod common;
mod home;
mod installer;
mod network;
mod operator;
mod pkg;
mod signed_in;
mod trader;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gridshare_storage::participants;
use gridshare_ui::Page;
use gridshare_ui::pages::{ErrorData, Flash, Session};
use serde::Deserialize;

use crate::AppState;
use crate::auth::Principal;

pub use pkg::default_pkg_dir;
pub use signed_in::{Admin, Anyone, Homeowner, Installer, MaybeSignedIn, Operator, PageRole, SignedIn, Trader};

/// A day, ms.
const DAY_MS: i64 = 86_400_000;

/// `page` rendered as a whole HTML document with `status` (never cached: it shows live data).
fn html(state: &AppState, status: StatusCode, page: &Page) -> Response {
    let body = gridshare_ui::render(page, state.ui_pkg.is_some());
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// An error page: what went wrong, in words, with `status`.
fn error_page(state: &AppState, session: Option<Session>, status: StatusCode, title: &str, message: &str) -> Response {
    html(
        state,
        status,
        &Page::Error(ErrorData {
            session,
            status: status.as_u16(),
            title: title.into(),
            message: message.into(),
        }),
    )
}

/// The page's error when a page's own data cannot be loaded.
fn not_loaded(state: &AppState, session: Option<Session>, title: &str, e: &crate::ApiError) -> Response {
    error_page(
        state,
        session,
        e.status,
        title,
        &format!("{} Try again in a moment.", e.message),
    )
}

/// The header's "who is logged in" (None if the account cannot be read).
async fn session_of(state: &AppState, who: &Principal) -> Option<Session> {
    let db = state.db().ok()?;
    let p = participants::get(db, who.participant).await.ok()?;
    Some(Session {
        participant: who.participant.0,
        name: p.name,
        role: who.role.as_str().into(),
    })
}

/// The header's session, or the error page when the account cannot be read.
async fn session_or_error(state: &AppState, who: &Principal) -> Result<Session, Response> {
    session_of(state, who).await.ok_or_else(|| {
        error_page(
            state,
            None,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "the account could not be read",
        )
    })
}

/// A proof of equivocation as the pages show it; its envelopes (indented when JSON, else as
/// stored) only when the viewer may read them.
fn slash_row(e: &gridshare_storage::evidence::Equivocation, envelopes: bool) -> gridshare_ui::pages::SlashRow {
    let text = |s: &str| match serde_json::from_str::<serde_json::Value>(s) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_else(|_| s.to_owned()),
        Err(_) => s.to_owned(),
    };
    gridshare_ui::pages::SlashRow {
        evidence: e.evidence.clone(),
        gateway: e.gateway.0,
        owner: e.owner.0,
        seq: e.seq,
        detected_at: e.detected_at.to_rfc3339(),
        status: crate::evidence::status(e).to_owned(),
        slashed_tx: e.slashed_tx.clone(),
        slash_error: e.slash_error.clone(),
        envelopes: envelopes.then(|| (text(&e.first), text(&e.second))),
    }
}

/// A page's query: which zone and book (the trader's page), and the last action's result (after
/// a redirect).
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    zone: Option<String>,
    interval: Option<String>,
    ok: Option<String>,
    err: Option<String>,
}

impl PageQuery {
    /// The last action's result, from `ok=` or `err=`.
    fn flash(&self) -> Option<Flash> {
        match (&self.ok, &self.err) {
            (Some(t), _) => Some(Flash {
                ok: true,
                text: t.clone(),
            }),
            (None, Some(t)) => Some(Flash {
                ok: false,
                text: t.clone(),
            }),
            _ => None,
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (so a space is `%20`, as the
/// pages' links have always had it; `form_urlencoded` would write `+`).
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `s` as a query value.
fn url_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// Back to the page at `path` (which may carry a query already), with the last action's result
/// for [`PageQuery::flash`], scrolled to `#anchor` when one is given.
fn back_with(path: &str, ok: bool, text: &str, anchor: Option<&str>) -> Response {
    let url = format!(
        "{path}{}{}={}{}",
        if path.contains('?') { '&' } else { '?' },
        if ok { "ok" } else { "err" },
        url_encode(text),
        anchor.map(|a| format!("#{a}")).unwrap_or_default()
    );
    Redirect::to(&url).into_response()
}

/// The dashboard's routes (pages and their forms; not in the OpenAPI document).
pub fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/", get(common::root))
        .route("/login", get(common::login_form).post(common::login))
        .route("/logout", post(common::logout))
        .route("/home/{id}", get(home::home))
        .route("/home/{id}/preferences", post(home::preferences))
        .route("/home/{id}/votes", post(home::vote))
        .route("/installer", get(installer::installer))
        .route("/installer/gateways", post(installer::commission))
        .route("/installer/gateways/{id}/check", post(installer::check))
        .route("/installer/gateways/{id}/checks/{check}", get(installer::check_page))
        .route("/operator", get(operator::operator))
        .route("/operator/events", post(operator::new_event))
        .route("/operator/events/{id}", get(operator::event))
        .route("/operator/events/{id}/live", get(operator::event_live))
        .route("/trader", get(trader::trader))
        .route("/trader/orders", post(trader::place))
        .route("/trader/orders/{id}/cancel", post(trader::cancel))
        .route("/trader/keys", post(trader::new_key))
        .route("/trader/keys/{id}/revoke", post(trader::revoke_key))
        .route("/network", get(network::network))
        .route("/network/proposals", post(network::propose))
        .route("/admin", get(network::admin))
        .route("/pkg/{file}", get(pkg::pkg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_to_the_page_with_the_result() {
        let location = |r: Response| r.headers()[header::LOCATION].to_str().unwrap().to_owned();
        assert_eq!(
            location(back_with("/home/1", true, "Saved as version 2.", Some("preferences"))),
            "/home/1?ok=Saved%20as%20version%202.#preferences"
        );
        assert_eq!(url_encode("Order 5 placed: open"), "Order%205%20placed%3A%20open");
        assert_eq!(url_encode("Größe ü"), "Gr%C3%B6%C3%9Fe%20%C3%BC");
    }
}
