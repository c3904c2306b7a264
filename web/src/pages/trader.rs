//! The trader's page (`GET /trader?zone=…&interval=…`): a zone's order book for one delivery
//! interval, my open orders, the tape, clearing prices and my API keys; and its forms (place and
//! cancel an order, make and revoke a key). The zone is `?zone=` (a form's `zone` field), else
//! the first the market is configured with; an unknown one is an error page.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use gridshare_domain::{OrderId, Timestamp, ZoneId};
use gridshare_storage::market as trades_db;
use gridshare_ui::Page;
use gridshare_ui::pages::{Flash, KeyRow, Level, OrderRow, TraderData};
use serde::Deserialize;

use super::{DAY_MS, PageQuery, SignedIn, Trader, back_with, error_page, html, session_of, url_encode};
use crate::auth::Principal;
use crate::{AppState, account, api};

/// The zone a trader's page or form is for: `asked` if the market has it, else (nothing or an
/// empty field asked) the first configured zone. An error says why not, with the page's status.
fn zone_of(state: &AppState, asked: Option<&str>) -> Result<ZoneId, (StatusCode, String)> {
    let known = || {
        state
            .zones
            .iter()
            .map(|z| z.0.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match asked.map(str::trim).filter(|a| !a.is_empty()) {
        None => state.zones.first().copied().ok_or_else(|| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The market is configured with no zone.".to_owned(),
            )
        }),
        Some(a) => match a.parse::<u32>().map(ZoneId) {
            Ok(z) if state.zones.contains(&z) => Ok(z),
            Ok(z) => Err((
                StatusCode::NOT_FOUND,
                format!("The market has no zone {}; its zones are {}.", z.0, known()),
            )),
            Err(_) => Err((
                StatusCode::BAD_REQUEST,
                format!("{a:?} is not a zone number; the market's zones are {}.", known()),
            )),
        },
    }
}

/// Back to the trader's page for `zone` and `interval`, with the last action's result.
fn trader_back(zone: ZoneId, interval: &str, ok: bool, text: &str) -> Response {
    back_with(
        &format!("/trader?zone={}&interval={}", zone.0, url_encode(interval)),
        ok,
        text,
        None,
    )
}

/// `GET /trader`: order book, my orders, the tape, clearing prices and my API keys.
pub async fn trader(
    State(state): State<AppState>,
    SignedIn { who, .. }: SignedIn<Trader>,
    Query(q): Query<PageQuery>,
) -> Response {
    let flash = q.flash();
    trader_page(&state, &who, q.zone.as_deref(), q.interval, flash, None, StatusCode::OK).await
}

/// The trader's page for zone `zone` (as asked; see [`zone_of`]) with `status`.
async fn trader_page(
    state: &AppState,
    who: &Principal,
    zone: Option<&str>,
    interval: Option<String>,
    flash: Option<Flash>,
    new_key: Option<String>,
    status: StatusCode,
) -> Response {
    let session = session_of(state, who).await;
    let zone = match zone_of(state, zone) {
        Ok(z) => z,
        Err((status, message)) => return error_page(state, session, status, "No such market zone", &message),
    };
    match trader_data(state, who, zone, interval, flash, new_key).await {
        Ok(d) => html(state, status, &Page::Trader(Box::new(d))),
        Err(e) => super::not_loaded(state, session, "The trading page could not be loaded", &e),
    }
}

async fn trader_data(
    state: &AppState,
    who: &Principal,
    zone: ZoneId,
    interval: Option<String>,
    flash: Option<Flash>,
    new_key: Option<String>,
) -> Result<TraderData, crate::ApiError> {
    let db = state.db()?;
    let books = api::list_books(state, who).await?;
    let in_zone = |b: &&api::BookView| b.zone == zone.0;
    let mut intervals: Vec<String> = books
        .iter()
        .filter(in_zone)
        .filter(|b| b.open)
        .map(|b| b.interval.clone())
        .collect();
    intervals.sort();
    let chosen = interval
        .filter(|i| books.iter().filter(in_zone).any(|b| &b.interval == i))
        .or_else(|| intervals.first().cloned())
        .ok_or_else(|| crate::ApiError::not_found("no book is open for orders right now"))?;
    let parsed: gridshare_domain::DeliveryInterval = chosen
        .parse()
        .map_err(|_| crate::ApiError::bad_request("invalid_interval", format!("{chosen:?} is not an interval")))?;
    let depth = api::book_depth(
        state,
        who,
        zone,
        &api::BookQuery {
            interval: parsed,
            levels: Some(10),
        },
    )
    .await?;
    let tape = trades_db::trades_of_interval(db, zone, parsed).await?;
    let orders = api::orders_of(
        state,
        who,
        api::Page {
            before: None,
            limit: Some(200),
        },
    )
    .await?;
    let now = state.clock.now();
    let results = trades_db::interval_results(db, zone, Timestamp(now.0 - DAY_MS), now, None).await?;
    let keys = account::keys_of(state, who).await?;
    let session = session_of(state, who)
        .await
        .ok_or_else(|| crate::ApiError::internal("the account could not be read"))?;
    Ok(TraderData {
        session,
        zone: zone.0,
        intervals,
        interval: chosen,
        open: depth.open,
        bids: depth
            .bids
            .iter()
            .map(|l| Level {
                price: gridshare_domain::MicroPerKwh(l.price),
                quantity_wh: gridshare_domain::Wh(l.quantity_wh),
            })
            .collect(),
        asks: depth
            .asks
            .iter()
            .map(|l| Level {
                price: gridshare_domain::MicroPerKwh(l.price),
                quantity_wh: gridshare_domain::Wh(l.quantity_wh),
            })
            .collect(),
        trades: tape
            .iter()
            .rev()
            .take(20)
            .map(|t| (t.at.to_rfc3339(), t.quantity, t.price))
            .collect(),
        orders: orders
            .iter()
            .filter(|o| o.status == "open")
            .map(|o| OrderRow {
                id: o.order_id,
                interval: o.interval.clone(),
                side: o.side.clone(),
                quantity_wh: gridshare_domain::Wh(o.quantity_wh),
                filled_wh: gridshare_domain::Wh(o.filled_wh),
                price: gridshare_domain::MicroPerKwh(o.price),
            })
            .collect(),
        prices: results
            .iter()
            .filter_map(|r| r.clearing_price.map(|p| (r.interval.start().0, p.0)))
            .collect(),
        keys: keys
            .iter()
            .map(|k| KeyRow {
                id: k.id.clone(),
                label: k.label.clone(),
                scopes: k.scopes.clone(),
                created_at: k.created_at.clone(),
                revoked: k.revoked_at.is_some(),
            })
            .collect(),
        tick: gridshare_domain::MicroPerKwh(state.price_tick),
        flash,
        new_key,
    })
}

/// The order form.
#[derive(Debug, Deserialize)]
pub struct OrderForm {
    /// The zone (absent: the first configured).
    #[serde(default)]
    zone: Option<String>,
    interval: String,
    side: String,
    quantity_wh: String,
    price: String,
}

/// `POST /trader/orders`: places the order as the API would, then back to the book with what
/// happened (or why not).
pub async fn place(
    State(state): State<AppState>,
    SignedIn { who, .. }: SignedIn<Trader>,
    Form(f): Form<OrderForm>,
) -> Response {
    let zone = match zone_of(&state, f.zone.as_deref()) {
        Ok(z) => z,
        Err((_, why)) => return back_with("/trader", false, &format!("Not placed. {why}"), None),
    };
    let back = |ok: bool, text: String| trader_back(zone, &f.interval, ok, &text);
    let price = match gridshare_ui::pages::parse_price(&f.price, gridshare_domain::MicroPerKwh(state.price_tick)) {
        Ok(p) => p.0,
        Err(e) => return back(false, format!("Not placed: {e}.")),
    };
    let Ok(quantity_wh) = f.quantity_wh.trim().parse::<i64>() else {
        return back(false, "Not placed: the energy is a whole number of Wh.".into());
    };
    let side = match f.side.as_str() {
        "buy" => gridshare_domain::market::Side::Buy,
        "sell" => gridshare_domain::market::Side::Sell,
        other => return back(false, format!("Not placed: {other:?} is neither buy nor sell.")),
    };
    let Ok(interval) = f.interval.parse() else {
        return back(false, "Not placed: choose a delivery interval.".into());
    };
    let req = api::OrderRequest {
        zone: zone.0,
        interval,
        side,
        quantity_wh,
        price,
        tif: Default::default(),
        mode: Default::default(),
    };
    match api::place(&state, &who, &req).await {
        Ok(ack) => back(
            true,
            format!(
                "Order {} placed: {} ({} filled at once).",
                ack.order_id,
                ack.status,
                gridshare_ui::format::energy(gridshare_domain::Wh(ack.filled_wh))
            ),
        ),
        Err(e) => back(false, format!("Not placed: {}.", e.message)),
    }
}

/// The cancel button's form: which page to go back to.
#[derive(Debug, Deserialize)]
pub struct BackTo {
    #[serde(default)]
    zone: Option<String>,
    #[serde(default)]
    interval: String,
}

/// `POST /trader/orders/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    SignedIn { who, .. }: SignedIn<Trader>,
    Path(id): Path<u64>,
    Form(f): Form<BackTo>,
) -> Response {
    let (ok, text) = match api::cancel(&state, &who, OrderId(id)).await {
        Ok(()) => (true, format!("Order {id} cancelled.")),
        Err(e) => (false, format!("Order {id} not cancelled: {}.", e.message)),
    };
    match zone_of(&state, f.zone.as_deref()) {
        Ok(zone) => trader_back(zone, &f.interval, ok, &text),
        Err(_) => back_with("/trader", ok, &text, None),
    }
}

/// The new-key form (checkboxes are present only when ticked).
#[derive(Debug, Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    label: String,
    read: Option<String>,
    trade: Option<String>,
}

/// `POST /trader/keys`: makes a key and shows its secret on this response only (no redirect, so
/// it is never in a URL or the history).
pub async fn new_key(
    State(state): State<AppState>,
    SignedIn { who, .. }: SignedIn<Trader>,
    Form(f): Form<KeyForm>,
) -> Response {
    use crate::auth::Scope;
    let mut scopes = Vec::new();
    if f.read.is_some() {
        scopes.push(Scope::Read);
    }
    if f.trade.is_some() {
        scopes.push(Scope::Trade);
    }
    let req = account::NewKey { scopes, label: f.label };
    let (flash, token, status) = match account::make_key(&state, &who, req).await {
        Ok(k) => (
            Flash {
                ok: true,
                text: format!("Key {} made.", k.key.id),
            },
            Some(k.token),
            StatusCode::CREATED,
        ),
        Err(e) => (
            Flash {
                ok: false,
                text: format!("No key made: {}.", e.message),
            },
            None,
            e.status,
        ),
    };
    trader_page(&state, &who, None, None, Some(flash), token, status).await
}

/// `POST /trader/keys/{id}/revoke`.
pub async fn revoke_key(
    State(state): State<AppState>,
    SignedIn { who, .. }: SignedIn<Trader>,
    Path(id): Path<String>,
) -> Response {
    let (ok, text) = match account::revoke(&state, &who, &id).await {
        Ok(()) => (true, format!("Key {id} revoked.")),
        Err(e) => (false, format!("Key {id} not revoked: {}.", e.message)),
    };
    back_with("/trader", ok, &text, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_to_the_zones_book_with_the_result() {
        let r = trader_back(ZoneId(2), "2026-12-01T10:00:00Z/PT15M", false, "Not placed: x & y.");
        assert_eq!(
            r.headers()[axum::http::header::LOCATION],
            "/trader?zone=2&interval=2026-12-01T10%3A00%3A00Z%2FPT15M&err=Not%20placed%3A%20x%20%26%20y."
        );
    }

    #[test]
    fn the_zone_is_the_asked_one_or_the_first_configured() {
        let state = AppState {
            zones: vec![ZoneId(3), ZoneId(5)],
            ..AppState::default()
        };
        assert_eq!(zone_of(&state, None), Ok(ZoneId(3)));
        assert_eq!(zone_of(&state, Some("")), Ok(ZoneId(3)));
        assert_eq!(zone_of(&state, Some("5")), Ok(ZoneId(5)));
        let (status, why) = zone_of(&state, Some("4")).unwrap_err();
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(why, "The market has no zone 4; its zones are 3, 5.");
        assert_eq!(zone_of(&state, Some("x")).unwrap_err().0, StatusCode::BAD_REQUEST);
        let none = AppState {
            zones: Vec::new(),
            ..AppState::default()
        };
        assert_eq!(zone_of(&none, None).unwrap_err().0, StatusCode::SERVICE_UNAVAILABLE);
    }
}
