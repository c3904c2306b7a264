//! The dashboard's pages, served from the same router as the API: the data is loaded here, the
//! page rendered on the server by `gridshare-ui`, and hydrated in the browser by its wasm part
//! (served under `/pkg/` when it has been built; without it the pages still work).
//!
//! - `GET /` sends a visitor to their page (or to `/login`);
//! - `GET /login`, `POST /login` (a plain form: works before any script), `POST /logout`;
//! - `GET /home/{participant}`: a homeowner's page; another homeowner's is refused with 403;
//!   `POST /home/{participant}/preferences` sets the home's trading preferences;
//! - `GET /trader` and its forms; `GET /operator`, its events and their pages;
//! - `GET /installer`, `POST /installer/gateways` (commission), `POST
//!   /installer/gateways/{id}/check` and `GET /installer/gateways/{id}/checks/{check}` (a remote
//!   check and its result).
//!
//! Errors are pages too: a message a person can act on, with the right status.

use std::path::PathBuf;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gridshare_domain::{ParticipantId, Timestamp};
use gridshare_storage::readings::BucketSize;
use gridshare_storage::{gateways, market as trades_db, participants};
use gridshare_ui::Page;
use gridshare_ui::pages::{
    Balance, CheckData, CheckRow, DeviceRow, Energy, ErrorData, EventData, EventRow, FeederRow, Flash, GatewayRow,
    HomeData, InstallerData, KeyRow, Level, LoginData, OperatorData, OrderRow, PreferenceAnswer, PreferencesData,
    ReportRow, Session, TradeRow, TraderData,
};
use serde::Deserialize;

use crate::auth::{Principal, Role};
use crate::{AppState, account, balances, dr};

const DAY_MS: i64 = 86_400_000;

/// Where the built browser part is, if anywhere: `GRIDSHARE_UI_DIR`, else `ui/pkg` in the source
/// tree (written by `scripts/build-ui.sh`).
pub fn default_pkg_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("GRIDSHARE_UI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../ui/pkg")));
    dir.join("gridshare_ui_bg.wasm").exists().then_some(dir)
}

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

async fn session_of(state: &AppState, who: &Principal) -> Option<Session> {
    let db = state.db().ok()?;
    let p = participants::get(db, who.participant).await.ok()?;
    Some(Session {
        participant: who.participant.0,
        name: p.name,
        role: who.role.as_str().into(),
    })
}

/// `GET /`: to the visitor's own page.
pub async fn root(State(state): State<AppState>, who: Result<Principal, Response>) -> Response {
    let Ok(who) = who else {
        return Redirect::to("/login").into_response();
    };
    match who.role {
        Role::Homeowner => Redirect::to(&format!("/home/{}", who.participant.0)).into_response(),
        Role::Trader => Redirect::to("/trader").into_response(),
        Role::Operator => Redirect::to("/operator").into_response(),
        Role::Installer => Redirect::to("/installer").into_response(),
        other => {
            let session = session_of(&state, &who).await;
            error_page(
                &state,
                session,
                StatusCode::NOT_FOUND,
                "No dashboard for this role yet",
                &format!(
                    "The {} pages are not built yet. Everything is in the API meanwhile: see /docs.",
                    other.as_str()
                ),
            )
        }
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
pub async fn login(State(state): State<AppState>, Form(f): Form<LoginForm>) -> Response {
    let username = f.username.clone();
    let attempt = account::login(
        State(state.clone()),
        crate::ApiJson(account::Login {
            username: f.username,
            password: f.password,
        }),
    )
    .await;
    match attempt {
        Ok(resp) => {
            let mut out = Redirect::to("/").into_response();
            if let Some(cookie) = resp.headers().get(header::SET_COOKIE) {
                out.headers_mut().insert(header::SET_COOKIE, cookie.clone());
            }
            out
        }
        Err(e) => {
            let status = e.status;
            html(
                &state,
                status,
                &Page::Login(LoginData {
                    username,
                    error: Some(e.message.clone()),
                }),
            )
        }
    }
}

/// `POST /logout`.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut out = Redirect::to("/login").into_response();
    if let Ok(resp) = account::logout(State(state), headers).await
        && let Some(cookie) = resp.headers().get(header::SET_COOKIE)
    {
        out.headers_mut().insert(header::SET_COOKIE, cookie.clone());
    }
    out
}

fn energy(
    trades: &[(gridshare_domain::wire::TradeReport, Option<u64>)],
    me: ParticipantId,
    tariff: Option<(i64, i64)>,
) -> Energy {
    use gridshare_domain::{Micro, Wh};
    let (mut bought, mut sold, mut paid, mut received, mut saved) = (0i64, 0i64, 0i64, 0i64, 0i64);
    for (t, _) in trades {
        let q = t.quantity.0;
        if t.buyer == me {
            bought += q;
            let cost = q * (t.price.0 + t.grid_fee.0) / 1_000;
            paid += cost;
            if let Some((import, _)) = tariff {
                saved += q * import / 1_000 - cost;
            }
        }
        if t.seller == me {
            sold += q;
            let got = q * t.price.0 / 1_000;
            received += got;
            if let Some((_, export)) = tariff {
                saved += got - q * export / 1_000;
            }
        }
    }
    Energy {
        bought_wh: Wh(bought),
        sold_wh: Wh(sold),
        paid: Micro(paid),
        received: Micro(received),
        saved: tariff.map(|_| Micro(saved)),
        utility: None,
    }
}

/// Energy drawn from and fed to the utility beyond the home's local trades, per bucket of
/// `bucket_ms` that has ended by `now` and has grid readings, as settlement counts it: the metered
/// net (mean grid power × the bucket's length) less the traded net (bought − sold) of the trades
/// delivered in it. Buckets without readings count as traded (no deviation). `None` when there is
/// no such bucket.
fn utility_energy(
    grid: &[(i64, i64)],
    trades: &[(gridshare_domain::wire::TradeReport, Option<u64>)],
    me: ParticipantId,
    bucket_ms: i64,
    now: Timestamp,
) -> Option<(gridshare_domain::Wh, gridshare_domain::Wh)> {
    let (mut from, mut to, mut any) = (0i64, 0i64, false);
    for &(start, mean_w) in grid.iter().filter(|(start, _)| start + bucket_ms <= now.0) {
        any = true;
        let metered = mean_w * bucket_ms / 3_600_000;
        let traded: i64 = trades
            .iter()
            .filter(|(t, _)| t.interval.start().0.div_euclid(bucket_ms) * bucket_ms == start)
            .map(|(t, _)| {
                let q = t.quantity.0;
                (if t.buyer == me { q } else { 0 }) - (if t.seller == me { q } else { 0 })
            })
            .sum();
        let deviation = metered - traded;
        if deviation > 0 {
            from += deviation;
        } else {
            to -= deviation;
        }
    }
    any.then_some((gridshare_domain::Wh(from), gridshare_domain::Wh(to)))
}

/// `GET /home/{participant}`: the homeowner's page. Only the home itself (and an admin) may open it.
pub async fn home(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    who: Result<Principal, Response>,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
) -> Response {
    let Ok(who) = who else {
        return Redirect::to("/login").into_response();
    };
    let session = session_of(&state, &who).await;
    if who.participant.0 != id && who.role != Role::Admin {
        return error_page(
            &state,
            session,
            StatusCode::FORBIDDEN,
            "Not your home",
            "This page belongs to another household; you can only see your own.",
        );
    }
    match home_data(&state, &who, ParticipantId(id), session.clone()).await {
        Ok(mut data) => {
            data.flash = q.flash();
            html(&state, StatusCode::OK, &Page::Home(Box::new(data)))
        }
        Err(e) => error_page(
            &state,
            session,
            e.status,
            "This page could not be loaded",
            &format!("{} Try again in a moment.", e.message),
        ),
    }
}

async fn home_data(
    state: &AppState,
    who: &Principal,
    home: ParticipantId,
    session: Option<Session>,
) -> Result<HomeData, crate::ApiError> {
    let db = state.db()?;
    let p = participants::get(db, home).await?;
    if p.role != "homeowner" {
        return Err(crate::ApiError::not_found(format!(
            "participant {} is not a home",
            home.0
        )));
    }
    let now = state.clock.now();
    let day_start = Timestamp(now.0 - now.0.rem_euclid(DAY_MS));
    let month_start = month_start(now);
    // the page shows the home's own numbers: act as the home (an admin may look at any)
    let as_home = Principal {
        participant: home,
        role: Role::Homeowner,
        scopes: who.scopes.clone(),
    };
    let crate::ApiJson(b) = balances::balance(State(state.clone()), as_home.clone()).await?;
    let month = trades_db::trades_of_participant_since(db, home, month_start, 5_000).await?;
    let today: Vec<_> = month
        .iter()
        .filter(|(t, _)| t.interval.start().0 >= day_start.0)
        .cloned()
        .collect();
    let crate::ApiJson(rewards) = dr::my_rewards(State(state.clone()), as_home).await?;
    let homes_gateways: Vec<gateways::Gateway> = gateways::active(db)
        .await?
        .into_iter()
        .filter(|g| g.owner == home)
        .collect();
    // the home's grid power per quarter hour this month (summed over its gateways): today's for
    // the chart, all of it for the energy drawn from and fed to the utility
    let mut month_power: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
    for g in &homes_gateways {
        for (t, w) in
            gridshare_storage::readings::grid_power_buckets(db, g.id, BucketSize::Quarter, month_start, now).await?
        {
            *month_power.entry(t.0).or_default() += w.0;
        }
    }
    let month_power: Vec<(i64, i64)> = month_power.into_iter().collect();
    let grid_power: Vec<(i64, i64)> = month_power.iter().copied().filter(|(t, _)| *t >= day_start.0).collect();
    let quarter = BucketSize::Quarter.millis();
    // the flows at the last reading of each of the home's devices
    let mut power_now: Option<gridshare_ui::pages::PowerNow> = None;
    for g in &homes_gateways {
        for r in gridshare_storage::readings::latest_per_device(db, g.id, now).await? {
            let p = power_now.get_or_insert_with(Default::default);
            let w = r.sample.power_w.map_or(0, |w| w.0);
            match r.sample.kind {
                gridshare_domain::wire::DeviceKind::GridMeter => p.grid_w = w,
                gridshare_domain::wire::DeviceKind::PvInverter => p.pv_w = w,
                gridshare_domain::wire::DeviceKind::Battery => p.battery_w = w,
                gridshare_domain::wire::DeviceKind::EvCharger => p.ev_w = w,
                gridshare_domain::wire::DeviceKind::SubMeter => {}
            }
            if p.at.as_str() < r.sample.at.0.to_string().as_str() || p.at.is_empty() {
                p.at = r.sample.at.0.to_string();
            }
        }
    }
    Ok(HomeData {
        session: session.unwrap_or(Session {
            participant: home.0,
            name: p.name.clone(),
            role: "homeowner".into(),
        }),
        balance: Balance {
            account: b.account,
            settled: gridshare_domain::Micro(b.settled),
            pending: gridshare_domain::Micro(b.pending),
            on_chain: b.on_chain.map(gridshare_domain::Micro),
            corrections: corrections(db, home, month_start).await?,
        },
        today: Energy {
            utility: utility_energy(&grid_power, &today, home, quarter, now),
            ..energy(&today, home, state.tariff)
        },
        month: Energy {
            utility: utility_energy(&month_power, &month, home, quarter, now),
            ..energy(&month, home, state.tariff)
        },
        trades: month
            .iter()
            .take(50)
            .map(|(t, batch)| TradeRow {
                id: t.trade_id.0,
                interval: t.interval.to_string(),
                bought: t.buyer == home,
                quantity_wh: t.quantity,
                price: t.price,
                grid_fee: t.grid_fee,
                batch: *batch,
            })
            .collect(),
        rewards: gridshare_domain::Micro(rewards.iter().map(|r| r.amount).sum()),
        reward_count: rewards.len(),
        grid_power,
        power_now,
        preferences: preferences_data(
            crate::remote::view_of(state, home, &homes_gateways.iter().map(|g| g.id).collect::<Vec<_>>()).await?,
        ),
        flash: None,
        at: now.to_rfc3339(),
    })
}

/// The home's intervals since `from` settled on an estimate, and their true-ups.
async fn corrections(
    db: &gridshare_storage::Db,
    home: ParticipantId,
    from: Timestamp,
) -> Result<gridshare_ui::pages::Corrections, crate::ApiError> {
    let mut c = gridshare_ui::pages::Corrections::default();
    for p in gridshare_storage::positions::of_participant(db, home, None, 3_000).await? {
        if p.settled.interval_start < from {
            break;
        }
        match (p.settled.estimated, p.true_up) {
            (false, _) => {}
            (true, None) => c.awaiting += 1,
            (true, Some(t)) => {
                c.trued_up += 1;
                c.total = gridshare_domain::Micro(c.total.0.saturating_add(t.cash.0));
            }
        }
    }
    Ok(c)
}

fn preferences_data(v: crate::remote::PreferencesView) -> PreferencesData {
    PreferencesData {
        updated_at: v.preferences.as_ref().map(|p| p.updated_at),
        set: v.preferences.map(|p| gridshare_domain::wire::TradingPreferences {
            version: p.version,
            min_sell_price: gridshare_domain::MicroPerKwh(p.min_sell_price),
            max_buy_price: gridshare_domain::MicroPerKwh(p.max_buy_price),
            battery_reserve_percent: p.battery_reserve_percent,
        }),
        gateways: v
            .gateways
            .into_iter()
            .map(|g| PreferenceAnswer {
                gateway: g.gateway,
                state: g.state,
                version: g.version,
                reason: g.reason,
                at: g.at,
            })
            .collect(),
    }
}

/// The preferences form.
#[derive(Debug, Deserialize)]
pub struct PreferencesForm {
    min_sell_price: String,
    max_buy_price: String,
    battery_reserve_percent: String,
}

/// `POST /home/{participant}/preferences`: checks the form as the page did, stores the
/// preferences and sends them to the home's gateways; back to the page with what happened.
pub async fn home_preferences(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    who: Result<Principal, Response>,
    Form(f): Form<PreferencesForm>,
) -> Response {
    let Ok(who) = who else {
        return Redirect::to("/login").into_response();
    };
    let page = format!("/home/{id}");
    let back = |ok: bool, text: String| back_with(&page, ok, &text, Some("preferences"));
    if who.participant.0 != id || who.role != Role::Homeowner {
        let session = session_of(&state, &who).await;
        return error_page(
            &state,
            session,
            StatusCode::FORBIDDEN,
            "Not your home",
            "Only the household itself sets its trading preferences.",
        );
    }
    let p =
        match gridshare_ui::pages::check_preferences(&f.min_sell_price, &f.max_buy_price, &f.battery_reserve_percent) {
            Ok(p) => p,
            Err(e) => return back(false, format!("Not saved. {e}.")),
        };
    let body = crate::remote::PreferencesBody {
        min_sell_price: p.min_sell_price.0,
        max_buy_price: p.max_buy_price.0,
        battery_reserve_percent: p.battery_reserve_percent,
    };
    match crate::remote::set(&state, who.participant, &body).await {
        Ok(v) if v.gateways.is_empty() => back(
            true,
            "Saved. Your home has no gateway yet: it takes them when it is commissioned.".into(),
        ),
        Ok(v) => back(
            true,
            format!(
                "Saved as version {}, and sent to your gateway.",
                v.preferences.map_or(0, |p| p.version)
            ),
        ),
        Err(e) => back(false, format!("Not saved: {}.", e.message)),
    }
}

/// Midnight UTC on the first of `t`'s month.
fn month_start(t: Timestamp) -> Timestamp {
    let day_start = t.0 - t.0.rem_euclid(DAY_MS);
    // the day of the month from the RFC 3339 date (YYYY-MM-DD…)
    let day_of_month: u32 = t.to_rfc3339().get(8..10).and_then(|d| d.parse().ok()).unwrap_or(1);
    Timestamp(day_start - i64::from(day_of_month - 1) * DAY_MS)
}

/// A page's query: which book (the trader's page), and the last action's result (after a
/// redirect).
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
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

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
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

fn trader_back(interval: &str, ok: bool, text: &str) -> Response {
    back_with(&format!("/trader?interval={}", url_encode(interval)), ok, text, None)
}

/// The caller, if logged in with `role` (admins pass too); else the login page, or a page saying
/// whose the page is.
async fn page_principal(
    state: &AppState,
    who: Result<Principal, Response>,
    role: Role,
    title: &str,
    message: &str,
) -> Result<Principal, Response> {
    let who = who.map_err(|_| Redirect::to("/login").into_response())?;
    if who.require_role(&[role]).is_err() {
        let session = session_of(state, &who).await;
        return Err(error_page(state, session, StatusCode::FORBIDDEN, title, message));
    }
    Ok(who)
}

/// Who may use the trading page: traders (and admins).
async fn trading_principal(state: &AppState, who: Result<Principal, Response>) -> Result<Principal, Response> {
    page_principal(
        state,
        who,
        Role::Trader,
        "Traders only",
        "The trading page is for trader accounts. Homeowners trade through their gateway.",
    )
    .await
}

/// `GET /trader`: order book, my orders, the tape, clearing prices and my API keys.
pub async fn trader(
    State(state): State<AppState>,
    who: Result<Principal, Response>,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
) -> Response {
    let who = match trading_principal(&state, who).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let flash = q.flash();
    trader_page(&state, &who, q.interval, flash, None, StatusCode::OK).await
}

async fn trader_page(
    state: &AppState,
    who: &Principal,
    interval: Option<String>,
    flash: Option<Flash>,
    new_key: Option<String>,
    status: StatusCode,
) -> Response {
    let session = session_of(state, who).await;
    match trader_data(state, who, interval, flash, new_key).await {
        Ok(d) => html(state, status, &Page::Trader(Box::new(d))),
        Err(e) => error_page(
            state,
            session,
            e.status,
            "The trading page could not be loaded",
            &format!("{} Try again in a moment.", e.message),
        ),
    }
}

const ZONE: u32 = 1;

async fn trader_data(
    state: &AppState,
    who: &Principal,
    interval: Option<String>,
    flash: Option<Flash>,
    new_key: Option<String>,
) -> Result<TraderData, crate::ApiError> {
    use crate::api;
    let db = state.db()?;
    let crate::ApiJson(books) = api::books(State(state.clone()), who.clone()).await?;
    let mut intervals: Vec<String> = books
        .iter()
        .filter(|b| b.open && b.zone == ZONE)
        .map(|b| b.interval.clone())
        .collect();
    intervals.sort();
    let chosen = interval
        .filter(|i| books.iter().any(|b| &b.interval == i))
        .or_else(|| intervals.first().cloned())
        .ok_or_else(|| crate::ApiError::not_found("no book is open for orders right now"))?;
    let parsed: gridshare_domain::DeliveryInterval = chosen
        .parse()
        .map_err(|_| crate::ApiError::bad_request("invalid_interval", format!("{chosen:?} is not an interval")))?;
    let depth = api::depth(
        State(state.clone()),
        who.clone(),
        crate::error::ApiPath(ZONE),
        crate::error::ApiQuery(api::BookQuery {
            interval: parsed,
            levels: Some(10),
        }),
    )
    .await?
    .0;
    let tape = trades_db::trades_of_interval(db, gridshare_domain::ZoneId(ZONE), parsed).await?;
    let orders = crate::api::my_orders(
        State(state.clone()),
        who.clone(),
        crate::error::ApiQuery(api::Page {
            before: None,
            limit: Some(200),
        }),
    )
    .await?
    .0;
    let now = state.clock.now();
    let results =
        trades_db::interval_results(db, gridshare_domain::ZoneId(ZONE), Timestamp(now.0 - DAY_MS), now).await?;
    let crate::ApiJson(keys) = account::list_keys(State(state.clone()), who.clone()).await?;
    let session = session_of(state, who)
        .await
        .ok_or_else(|| crate::ApiError::internal("the account could not be read"))?;
    Ok(TraderData {
        session,
        zone: ZONE,
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
    interval: String,
    side: String,
    quantity_wh: String,
    price: String,
}

/// `POST /trader/orders`: places the order as the API would, then back to the book with what
/// happened (or why not).
pub async fn trader_place(
    State(state): State<AppState>,
    who: Result<Principal, Response>,
    Form(f): Form<OrderForm>,
) -> Response {
    let who = match trading_principal(&state, who).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let back = |ok: bool, text: String| trader_back(&f.interval, ok, &text);
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
    let req = crate::api::OrderRequest {
        zone: ZONE,
        interval,
        side,
        quantity_wh,
        price,
        tif: Default::default(),
        mode: Default::default(),
    };
    match crate::api::place_order(State(state.clone()), who, crate::ApiJson(req)).await {
        Ok((_, crate::ApiJson(ack))) => back(
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

/// The cancel button's form.
#[derive(Debug, Deserialize)]
pub struct BackTo {
    #[serde(default)]
    interval: String,
}

/// `POST /trader/orders/{id}/cancel`.
pub async fn trader_cancel(
    State(state): State<AppState>,
    who: Result<Principal, Response>,
    Path(id): Path<u64>,
    Form(f): Form<BackTo>,
) -> Response {
    let who = match trading_principal(&state, who).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let (ok, text) = match crate::api::cancel_order(State(state.clone()), who, crate::error::ApiPath(id)).await {
        Ok(_) => (true, format!("Order {id} cancelled.")),
        Err(e) => (false, format!("Order {id} not cancelled: {}.", e.message)),
    };
    trader_back(&f.interval, ok, &text)
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
pub async fn trader_new_key(
    State(state): State<AppState>,
    who: Result<Principal, Response>,
    Form(f): Form<KeyForm>,
) -> Response {
    use crate::auth::Scope;
    let who = match trading_principal(&state, who).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let mut scopes = Vec::new();
    if f.read.is_some() {
        scopes.push(Scope::Read);
    }
    if f.trade.is_some() {
        scopes.push(Scope::Trade);
    }
    let req = account::NewKey { scopes, label: f.label };
    match account::create_key(State(state.clone()), who.clone(), crate::ApiJson(req)).await {
        Ok((_, crate::ApiJson(k))) => {
            let flash = Flash {
                ok: true,
                text: format!("Key {} made.", k.key.id),
            };
            trader_page(&state, &who, None, Some(flash), Some(k.token), StatusCode::CREATED).await
        }
        Err(e) => {
            let flash = Flash {
                ok: false,
                text: format!("No key made: {}.", e.message),
            };
            trader_page(&state, &who, None, Some(flash), None, e.status).await
        }
    }
}

/// `POST /trader/keys/{id}/revoke`.
pub async fn trader_revoke_key(
    State(state): State<AppState>,
    who: Result<Principal, Response>,
    Path(id): Path<String>,
) -> Response {
    let who = match trading_principal(&state, who).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let (ok, text) = match account::revoke_key(State(state.clone()), who, crate::error::ApiPath(id.clone())).await {
        Ok(_) => (true, format!("Key {id} revoked.")),
        Err(e) => (false, format!("Key {id} not revoked: {}.", e.message)),
    };
    trader_back("", ok, &text)
}

/// Who may use the operator's pages: grid operators (and admins).
async fn operating_principal(state: &AppState, who: Result<Principal, Response>) -> Result<Principal, Response> {
    page_principal(
        state,
        who,
        Role::Operator,
        "Grid operators only",
        "The feeder and demand-response pages are for the grid operator's accounts.",
    )
    .await
}

/// A signal in words.
fn signal_words(intervals: &[gridshare_domain::wire::DrInterval]) -> String {
    use gridshare_domain::wire::DrSignal;
    let Some(s) = intervals.first().and_then(|i| i.signals.first()) else {
        return "nothing".into();
    };
    let kw = |w: i64| gridshare_ui::format::power(gridshare_domain::W(w));
    match *s {
        DrSignal::LoadShed { w } => format!("shed {}", kw(w.0)),
        DrSignal::ImportLimit { w } => format!("import at most {}", kw(w.0)),
        DrSignal::ExportLimit { w } => format!("export at most {}", kw(w.0)),
        DrSignal::BatterySetpoint { w } => format!("battery at {}", kw(w.0)),
        DrSignal::EvCurrentLimit { milliamps } => format!("EV at most {} A", milliamps / 1_000),
        DrSignal::Price { .. } => "a price signal".into(),
    }
}

/// `GET /operator`: the feeder's load against its limits, events, and the form to call one.
pub async fn operator(
    State(state): State<AppState>,
    who: Result<Principal, Response>,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
) -> Response {
    let who = match operating_principal(&state, who).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let flash = q.flash();
    let session = session_of(&state, &who).await;
    match operator_data(&state, &who, flash).await {
        Ok(d) => html(&state, StatusCode::OK, &Page::Operator(Box::new(d))),
        Err(e) => error_page(
            &state,
            session,
            e.status,
            "The feeder could not be loaded",
            &format!("{} Try again in a moment.", e.message),
        ),
    }
}

async fn operator_data(
    state: &AppState,
    who: &Principal,
    flash: Option<Flash>,
) -> Result<OperatorData, crate::ApiError> {
    let db = state.db()?;
    let crate::ApiJson(feeder) = crate::feeder::feeder(
        State(state.clone()),
        who.clone(),
        crate::error::ApiQuery(crate::feeder::FeederQuery { interval: None }),
    )
    .await?;
    let all = gateways::active(db).await?;
    let network = state.network.as_deref().map(Vec::as_slice);
    // parents before children, depth first
    let mut rows: Vec<FeederRow> = Vec::with_capacity(feeder.nodes.len());
    let mut stack: Vec<(u32, u32)> = feeder
        .nodes
        .iter()
        .filter(|n| n.parent.is_none())
        .map(|n| (n.node, 0))
        .collect();
    while let Some((id, depth)) = stack.pop() {
        let Some(n) = feeder.nodes.iter().find(|n| n.node == id) else {
            continue;
        };
        let below_nodes = gridshare_market::dr::subtree(&[id], network);
        let below: Vec<u64> = all
            .iter()
            .filter(|g| below_nodes.contains(&g.feeder_node.0))
            .map(|g| g.id.0)
            .collect();
        let kind = match depth {
            0 => "Substation",
            1 => "Feeder line",
            2 => "Transformer",
            _ => "Home connection",
        };
        rows.push(FeederRow {
            node: id,
            depth,
            label: format!("{kind} {id}"),
            load_w: n.load_w,
            limit_w: n.limit_w,
            gateways: n.gateways,
            below,
        });
        let mut children: Vec<u32> = feeder
            .nodes
            .iter()
            .filter(|c| c.parent == Some(id))
            .map(|c| c.node)
            .collect();
        children.sort_unstable_by(|a, b| b.cmp(a));
        stack.extend(children.into_iter().map(|c| (c, depth + 1)));
    }
    let crate::ApiJson(events) = crate::dr::events(State(state.clone()), who.clone()).await?;
    let now = state.clock.now();
    let step = state.interval_length.millis();
    let next = now.0 - now.0.rem_euclid(step) + step;
    let mut starts = vec![(now.0 - now.0.rem_euclid(60_000), "now".to_owned())];
    for k in 0..4 {
        let t = Timestamp(next + k * step);
        starts.push((t.0, gridshare_ui::format::when(&t.to_rfc3339())));
    }
    let session = session_of(state, who)
        .await
        .ok_or_else(|| crate::ApiError::internal("the account could not be read"))?;
    Ok(OperatorData {
        session,
        interval: feeder.interval,
        feeder: rows,
        events: events
            .iter()
            .take(20)
            .map(|e| EventRow {
                id: e.id,
                status: e.status.clone(),
                starts_at: e.starts_at.clone(),
                ends_at: e.ends_at.clone(),
                signal: signal_words(&e.intervals),
                targeted: e.gateways.len(),
                acknowledged: e
                    .gateways
                    .iter()
                    .filter(|g| e.reports.iter().any(|r| r.gateway == **g))
                    .count(),
            })
            .collect(),
        starts,
        flash,
    })
}

fn form_fields(body: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// `POST /operator/events`: calls the event as the API would (the targets' gateways get it at
/// once) and shows its live response.
pub async fn operator_new_event(
    State(state): State<AppState>,
    who: Result<Principal, Response>,
    body: String,
) -> Response {
    use gridshare_domain::W;
    use gridshare_domain::wire::{DrInterval, DrSignal};
    let who = match operating_principal(&state, who).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let back = |text: String| back_with("/operator", false, &text, None);
    let fields = form_fields(&body);
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let nodes: Vec<u32> = fields
        .iter()
        .filter(|(k, _)| k == "node")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    if nodes.is_empty() {
        return back("Not called: choose the lines or transformers it is for.".into());
    }
    let Some(w) = get("kw")
        .and_then(|k| k.trim().replace(',', ".").parse::<f64>().ok())
        .filter(|k| k.is_finite() && *k >= 0.0 && *k <= 10_000.0)
        .map(|k| (k * 1_000.0).round() as i64)
    else {
        return back("Not called: the power is a number of kW, 0 or more.".into());
    };
    let signal = match get("signal").as_deref() {
        Some("load_shed") => DrSignal::LoadShed { w: W(w) },
        Some("import_limit") => DrSignal::ImportLimit { w: W(w) },
        Some("export_limit") => DrSignal::ExportLimit { w: W(w) },
        _ => return back("Not called: choose a signal.".into()),
    };
    let (Some(start), Some(minutes)) = (
        get("start").and_then(|s| s.parse::<i64>().ok()),
        get("minutes").and_then(|m| m.parse::<u32>().ok()),
    ) else {
        return back("Not called: choose when it starts and how long it lasts.".into());
    };
    // the program: the operator's first, made on first use
    let program_id = match crate::dr::programs(State(state.clone()), who.clone()).await {
        Ok(crate::ApiJson(p)) if !p.is_empty() => p[0].id,
        _ => match crate::dr::create_program(
            State(state.clone()),
            who.clone(),
            crate::ApiJson(crate::dr::NewProgram {
                name: "Operator events".into(),
                description: "Called from the dashboard".into(),
            }),
        )
        .await
        {
            Ok((_, crate::ApiJson(p))) => p.id,
            Err(e) => return back(format!("Not called: {}.", e.message)),
        },
    };
    let req = crate::dr::NewEvent {
        program_id,
        priority: 1,
        targets: gridshare_market::dr::Targets::Nodes { nodes },
        intervals: vec![DrInterval {
            id: 0,
            start: Timestamp(start),
            duration_minutes: minutes,
            signals: vec![signal],
        }],
    };
    match crate::dr::create_event(State(state.clone()), who, crate::ApiJson(req)).await {
        Ok((_, crate::ApiJson(e))) => Redirect::to(&format!("/operator/events/{}", e.id)).into_response(),
        Err(e) => back(format!("Not called: {}.", e.message)),
    }
}

/// `GET /operator/events/{id}`: an event's targeted gateways and their response; reloads itself
/// while the event runs.
pub async fn operator_event(
    State(state): State<AppState>,
    who: Result<Principal, Response>,
    Path(id): Path<u64>,
) -> Response {
    let who = match operating_principal(&state, who).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match event_data(&state, &who, id).await {
        Ok(data) => html(&state, StatusCode::OK, &Page::Event(Box::new(data))),
        Err(r) => r,
    }
}

/// `GET /operator/events/{id}/live`: the event page's data as JSON, polled by the page while the
/// event runs so the response against baseline updates in place.
pub async fn operator_event_live(
    State(state): State<AppState>,
    who: Result<Principal, Response>,
    Path(id): Path<u64>,
) -> Response {
    let who = match who {
        Ok(w) if w.require_role(&[Role::Operator]).is_ok() => w,
        Ok(_) => return crate::ApiError::forbidden("operators only").into_response(),
        Err(r) => return r,
    };
    match event_data(&state, &who, id).await {
        Ok(data) => axum::Json(data).into_response(),
        Err(r) => r,
    }
}

async fn event_data(state: &AppState, who: &Principal, id: u64) -> Result<EventData, Response> {
    let session = session_of(state, who).await;
    let e = match crate::dr::event(State(state.clone()), who.clone(), crate::error::ApiPath(id)).await {
        Ok(crate::ApiJson(e)) => e,
        Err(err) => {
            return Err(error_page(state, session, err.status, "No such event", &err.message));
        }
    };
    let Some(session) = session else {
        return Err(error_page(
            state,
            None,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "the account could not be read",
        ));
    };
    let gateways = e
        .gateways
        .iter()
        .map(|g| {
            let mine: Vec<_> = e.reports.iter().filter(|r| r.gateway == *g).collect();
            let last = mine.last();
            ReportRow {
                gateway: *g,
                acknowledged: !mine.is_empty(),
                confirmed: !mine.is_empty() && mine.iter().all(|r| r.confirmed),
                baseline_w: last.and_then(|r| r.baseline_w),
                measured_w: last.map(|r| r.measured_w),
                note: last.and_then(|r| r.note.clone()),
            }
        })
        .collect();
    Ok(EventData {
        session,
        id: e.id,
        status: e.status.clone(),
        starts_at: e.starts_at.clone(),
        ends_at: e.ends_at.clone(),
        signal: signal_words(&e.intervals),
        gateways,
    })
}

/// `GET /installer`: the installer's gateways — online or not, last reading, devices and their
/// problems — and the form to commission one.
pub async fn installer(
    State(state): State<AppState>,
    who: Result<Principal, Response>,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
) -> Response {
    let who = match page_principal(
        &state,
        who,
        Role::Installer,
        "Installers only",
        "The gateway pages are for installers' accounts.",
    )
    .await
    {
        Ok(w) => w,
        Err(r) => return r,
    };
    let session = session_of(&state, &who).await;
    let flash = q.flash();
    let Some(session) = session else {
        return error_page(
            &state,
            None,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "the account could not be read",
        );
    };
    match installer_gateways(&state, &who).await {
        Ok(gateways) => html(
            &state,
            StatusCode::OK,
            &Page::Installer(Box::new(InstallerData {
                session,
                gateways,
                flash,
            })),
        ),
        Err(e) => error_page(
            &state,
            Some(session),
            e.status,
            "Your gateways could not be loaded",
            &format!("{} Try again in a moment.", e.message),
        ),
    }
}

async fn installer_gateways(state: &AppState, who: &Principal) -> Result<Vec<GatewayRow>, crate::ApiError> {
    let db = state.db()?;
    let now = state.clock.now();
    let crate::ApiJson(mine) = crate::readings::list(State(state.clone()), who.clone()).await?;
    let mut rows = Vec::with_capacity(mine.len());
    for g in mine {
        let latest = gridshare_storage::readings::latest_per_device(db, gridshare_domain::GatewayId(g.id), now).await?;
        let last = latest.iter().map(|r| r.sample.at.0).max();
        let word = |v: String| v.replace('_', " ");
        rows.push(GatewayRow {
            id: g.id,
            owner: g.owner,
            node: g.feeder_node,
            last_reading_s: last.map(|t| (now.0 - t) / 1_000),
            devices: latest
                .iter()
                .map(|r| DeviceRow {
                    name: r.sample.device.to_string(),
                    kind: word(
                        serde_json::to_value(r.sample.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                    ),
                    status: word(
                        serde_json::to_value(r.sample.status)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                    ),
                    quality: serde_json::to_value(r.sample.quality)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    power_w: r.sample.power_w.map(|w| w.0),
                })
                .collect(),
            last_check: gridshare_storage::checks::latest(db, gridshare_domain::GatewayId(g.id))
                .await?
                .map(|c| {
                    let c = crate::remote::CheckView::of(c, now);
                    let how = match (&c.result, c.state.as_str()) {
                        (Some(r), _) if r.devices.iter().all(|d| d.ok()) => "all read".to_owned(),
                        (Some(r), _) => format!("{} devices with errors", r.devices.iter().filter(|d| !d.ok()).count()),
                        (None, "no_answer") => "no answer".to_owned(),
                        _ => "waiting".to_owned(),
                    };
                    (c.id, how)
                }),
        });
    }
    Ok(rows)
}

/// `POST /installer/gateways/{id}/check`: asks the gateway for a remote check and shows its page.
pub async fn installer_check(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    who: Result<Principal, Response>,
) -> Response {
    let Ok(who) = who else {
        return Redirect::to("/login").into_response();
    };
    match crate::remote::start_check(&state, &who, id).await {
        Ok(c) => Redirect::to(&format!("/installer/gateways/{id}/checks/{}", c.id)).into_response(),
        Err(e) => back_with(
            "/installer",
            false,
            &format!("No check of gateway {id}: {}.", e.message),
            None,
        ),
    }
}

/// `GET /installer/gateways/{id}/checks/{check}`: a remote check, waiting or with what the
/// gateway read.
pub async fn installer_check_page(
    State(state): State<AppState>,
    Path((id, check)): Path<(u64, u64)>,
    who: Result<Principal, Response>,
) -> Response {
    let who = match page_principal(
        &state,
        who,
        Role::Installer,
        "Installers only",
        "Remote checks are for the installer who commissioned the gateway.",
    )
    .await
    {
        Ok(w) => w,
        Err(r) => return r,
    };
    let session = session_of(&state, &who).await;
    let found = crate::remote::get_check(State(state.clone()), who.clone(), crate::error::ApiPath((id, check))).await;
    match (found, session) {
        (Ok(crate::ApiJson(c)), Some(session)) => html(
            &state,
            StatusCode::OK,
            &Page::Check(Box::new(CheckData {
                session,
                check: CheckRow {
                    id: c.id,
                    gateway: c.gateway,
                    requested_at: c.requested_at,
                    state: c.state,
                    answered_at: c.answered_at,
                    result: c.result,
                },
            })),
        ),
        (Ok(_), None) => error_page(
            &state,
            None,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "the account could not be read",
        ),
        (Err(e), session) => error_page(
            &state,
            session,
            e.status,
            "This check could not be shown",
            &format!("{} Go back to your gateways and run a check.", e.message),
        ),
    }
}

/// The commissioning form.
#[derive(Debug, Deserialize)]
pub struct CommissionForm {
    id: String,
    owner: String,
    public_key: String,
    #[serde(default)]
    node: String,
}

/// `POST /installer/gateways`: registers a gateway's key for a home, with this installer.
pub async fn installer_commission(
    State(state): State<AppState>,
    who: Result<Principal, Response>,
    Form(f): Form<CommissionForm>,
) -> Response {
    let Ok(who) = who else {
        return Redirect::to("/login").into_response();
    };
    let back = |ok: bool, text: String| back_with("/installer", ok, &text, None);
    if who.require_role(&[Role::Installer]).is_err() {
        return back(false, "Only installers commission gateways.".into());
    }
    let Ok(db) = state.db() else {
        return back(false, "The database is not available.".into());
    };
    let (Ok(id), Ok(owner)) = (f.id.trim().parse::<u64>(), f.owner.trim().parse::<u64>()) else {
        return back(
            false,
            "Not commissioned: the gateway id and the home are numbers.".into(),
        );
    };
    let key = match gridshare_domain::envelope::GatewayPublicKey::from_hex(f.public_key.trim()) {
        Ok(k) => k,
        Err(e) => return back(false, format!("Not commissioned: the public key: {e}.")),
    };
    let home = match participants::get(db, ParticipantId(owner)).await {
        Ok(p) if p.role == "homeowner" => p,
        Ok(_) => return back(false, format!("Not commissioned: participant {owner} is not a home.")),
        Err(_) => return back(false, format!("Not commissioned: there is no home {owner}.")),
    };
    let node = match (f.node.trim(), home.feeder_node) {
        ("", Some(n)) => n,
        ("", None) => {
            return back(
                false,
                format!("Not commissioned: home {owner} has no feeder node; give one."),
            );
        }
        (n, _) => match n.parse() {
            Ok(n) => n,
            Err(_) => return back(false, "Not commissioned: the feeder node is a number.".into()),
        },
    };
    let g = gateways::Gateway {
        id: gridshare_domain::GatewayId(id),
        owner: ParticipantId(owner),
        installer: Some(who.participant),
        public_key: key,
        feeder_node: gridshare_domain::NodeId(node),
        window: Default::default(),
        revoked_at: None,
    };
    match gateways::register(db, &g, state.clock.now()).await {
        Ok(()) => back(
            true,
            format!("Gateway {id} commissioned for home {owner} at node {node}."),
        ),
        Err(gridshare_storage::StorageError::Duplicate { .. }) => back(
            false,
            format!("Not commissioned: gateway {id} or its key is registered already."),
        ),
        Err(e) => back(false, format!("Not commissioned: {e}.")),
    }
}

/// `GET /pkg/{file}`: the browser part of the dashboard.
pub async fn pkg(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let content_type = match file.as_str() {
        "gridshare_ui.js" => "text/javascript; charset=utf-8",
        "gridshare_ui_bg.wasm" => "application/wasm",
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let Some(dir) = &state.ui_pkg else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match tokio::fs::read(dir.join(&file)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The dashboard's routes (pages and their forms; not in the OpenAPI document).
pub fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/", get(root))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/home/{id}", get(home))
        .route("/home/{id}/preferences", post(home_preferences))
        .route("/installer", get(installer))
        .route("/installer/gateways", post(installer_commission))
        .route("/installer/gateways/{id}/check", post(installer_check))
        .route("/installer/gateways/{id}/checks/{check}", get(installer_check_page))
        .route("/operator", get(operator))
        .route("/operator/events", post(operator_new_event))
        .route("/operator/events/{id}", get(operator_event))
        .route("/operator/events/{id}/live", get(operator_event_live))
        .route("/trader", get(trader))
        .route("/trader/orders", post(trader_place))
        .route("/trader/orders/{id}/cancel", post(trader_cancel))
        .route("/trader/keys", post(trader_new_key))
        .route("/trader/keys/{id}/revoke", post(trader_revoke_key))
        .route("/pkg/{file}", get(pkg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_from_and_to_the_utility_is_what_the_meter_saw_beyond_the_trades() {
        use gridshare_domain::wire::TradeReport;
        use gridshare_domain::{DeliveryInterval, IntervalLength, MicroPerKwh, OrderId, TradeId, Wh, ZoneId};
        const Q: i64 = 900_000;
        let me = ParticipantId(1);
        let trade = |start: i64, buyer: u64, seller: u64, wh: i64| {
            (
                TradeReport {
                    trade_id: TradeId(1),
                    zone: ZoneId(1),
                    interval: DeliveryInterval::new(Timestamp(start), IntervalLength::Min15).unwrap(),
                    buy_order: OrderId(1),
                    sell_order: OrderId(2),
                    buyer: ParticipantId(buyer),
                    seller: ParticipantId(seller),
                    quantity: Wh(wh),
                    price: MicroPerKwh(100_000),
                    grid_fee: MicroPerKwh(0),
                    at: Timestamp(start),
                },
                None,
            )
        };
        // quarter 0: 2 kW drawn = 500 Wh, 300 Wh of it bought locally → 200 Wh from the utility;
        // quarter 1: 1.2 kW fed in = 300 Wh, 500 Wh sold → 200 Wh short, drawn from the utility;
        // quarter 2: 4 kW fed in = 1 kWh, nothing traded → 1 kWh to the utility;
        // quarter 3 is still running: not counted; quarter 4 has no readings: counted as traded
        let grid = [(0, 2_000), (Q, -1_200), (2 * Q, -4_000), (3 * Q, 9_000)];
        let trades = [trade(0, 1, 2, 300), trade(Q, 3, 1, 500), trade(4 * Q, 1, 2, 50)];
        let now = Timestamp(3 * Q + 60_000);
        assert_eq!(utility_energy(&grid, &trades, me, Q, now), Some((Wh(400), Wh(1_000))));
        assert_eq!(utility_energy(&[], &trades, me, Q, now), None);
    }

    #[test]
    fn back_to_the_page_with_the_result() {
        let location = |r: Response| r.headers()[header::LOCATION].to_str().unwrap().to_owned();
        assert_eq!(
            location(back_with("/home/1", true, "Saved as version 2.", Some("preferences"))),
            "/home/1?ok=Saved%20as%20version%202.#preferences"
        );
        assert_eq!(
            location(trader_back("2026-12-01T10:00:00Z/PT15M", false, "Not placed: x & y.")),
            "/trader?interval=2026-12-01T10%3A00%3A00Z%2FPT15M&err=Not%20placed%3A%20x%20%26%20y."
        );
    }

    #[test]
    fn form_bodies_with_repeated_fields_decode() {
        let f = form_fields("node=100&node=101&kw=1%2C5&signal=load_shed&x=a+b&bad=%zz&end=%4");
        assert_eq!(
            f,
            vec![
                ("node".into(), "100".into()),
                ("node".into(), "101".into()),
                ("kw".into(), "1,5".into()),
                ("signal".into(), "load_shed".into()),
                ("x".into(), "a b".into()),
                ("bad".into(), "%zz".into()),
                ("end".into(), "%4".into()),
            ]
        );
        assert_eq!(url_encode("Order 5 placed: open"), "Order%205%20placed%3A%20open");
    }

    #[test]
    fn month_start_is_midnight_on_the_first() {
        let t = Timestamp::parse_rfc3339("2026-11-25T10:15:00Z").unwrap();
        assert_eq!(
            month_start(t),
            Timestamp::parse_rfc3339("2026-11-01T00:00:00Z").unwrap()
        );
        let t = Timestamp::parse_rfc3339("2026-12-01T00:00:00Z").unwrap();
        assert_eq!(month_start(t), t);
    }
}
