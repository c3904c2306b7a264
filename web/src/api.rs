//! The trader and homeowner REST API under `/api/v1`: markets and their books, order entry
//! (place, amend, cancel — the same path into the engine as orders from gateways), my orders and
//! trades, interval results. Callers authenticate with an API key (`Authorization: Bearer
//! gsk_…`); each key is rate-limited on its own.

use std::time::Instant;

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use gridshare_domain::wire::{IntervalResult, TradeReport};
use gridshare_domain::{DeliveryInterval, MicroPerKwh, OrderId, OrderMode, Side, TimeInForce, Timestamp, Wh, ZoneId};
use gridshare_matching_engine::{Command, Event, RejectReason};
use gridshare_storage::orders::OrderRecord;
use gridshare_storage::{StorageError, api_keys, market as market_store, orders};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Principal, Role, Scope, TokenKind, token_id, token_matches};
use crate::error::{ApiError, ApiJson, ApiPath as Path, ApiQuery as Query};
use gridshare_market::{Market, MarketError, NewOrder};

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        tracing::error!(error = %e, "storage error in a request");
        ApiError::internal("the database failed; try again")
    }
}

impl From<MarketError> for ApiError {
    fn from(e: MarketError) -> Self {
        tracing::error!(error = %e, "market error in a request");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "market_unavailable", e.to_string())
    }
}

fn market(state: &AppState) -> Result<&Market, ApiError> {
    state.market.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "market_unavailable",
            "the market is not running",
        )
    })
}

/// Name of the dashboard's session cookie.
pub const SESSION_COOKIE: &str = "gridshare_session";

/// The token a request presents: `Authorization: Bearer …`, else the session cookie.
fn presented_token(parts: &Parts) -> Option<&str> {
    if let Some(v) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        return v.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    }
    parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
}

/// Scopes a dashboard session has: all its role allows.
pub fn role_scopes(role: Role) -> Vec<Scope> {
    match role {
        Role::Homeowner => vec![Scope::Read, Scope::Trade, Scope::Vote, Scope::Keys],
        Role::Trader => vec![Scope::Read, Scope::Trade, Scope::Keys],
        Role::Operator => vec![Scope::Read, Scope::DemandResponse, Scope::Govern, Scope::Keys],
        Role::Installer => vec![Scope::Read, Scope::Keys],
        Role::Admin => vec![
            Scope::Read,
            Scope::Trade,
            Scope::DemandResponse,
            Scope::Govern,
            Scope::Vote,
            Scope::Keys,
        ],
    }
}

/// Takes one request from `key`'s bucket; when it is empty, the 429 answer with `Retry-After`.
fn rate_limited(state: &AppState, key: &str) -> Result<(), Box<Response>> {
    let Err(wait) = state.limiter.check(key, Instant::now()) else {
        return Ok(());
    };
    let secs = (wait.as_secs_f64().ceil() as u64).max(1);
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests; retry in {secs} s"),
    )
    .into_response();
    if let Ok(v) = secs.to_string().parse() {
        resp.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
    }
    Err(Box::new(resp))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let deny = |m: &str| ApiError::unauthorized(m).into_response();
        let token = presented_token(parts)
            .ok_or_else(|| deny("log in, or send an API key as `Authorization: Bearer gsk_…`"))?;
        let db = state.db().map_err(IntoResponse::into_response)?;
        if let Some(id) = token_id(TokenKind::Session, token) {
            tracing::trace!(session = id, "session presented");
            let session = gridshare_storage::participants::find_session(
                db,
                &crate::auth::token_hash(token),
                // sessions last wall-clock hours, whatever speed the market clock runs at
                gridshare_market::wall_clock(),
            )
            .await
            .map_err(|e| ApiError::from(e).into_response())?
            .ok_or_else(|| deny("the session has expired or ended; log in again"))?;
            rate_limited(state, &format!("user:{}", session.user_id)).map_err(|r| *r)?;
            let role = Role::parse(&session.role)
                .ok_or_else(|| ApiError::forbidden(format!("a {} may not log in", session.role)).into_response())?;
            return Ok(Principal {
                participant: session.participant,
                role,
                scopes: role_scopes(role),
                key: None,
            });
        }
        let id = token_id(TokenKind::ApiKey, token).ok_or_else(|| deny("malformed API key"))?;
        let key = api_keys::find(db, id)
            .await
            .map_err(|e| ApiError::from(e).into_response())?
            .filter(|k| token_matches(token, &k.token_hash))
            .ok_or_else(|| deny("unknown API key"))?;
        if key.revoked_at.is_some() {
            return Err(deny("this API key was revoked"));
        }
        rate_limited(state, &key.id).map_err(|r| *r)?;
        let role = Role::parse(&key.role)
            .ok_or_else(|| ApiError::forbidden(format!("a {} may not use the API", key.role)).into_response())?;
        let scopes = key
            .scopes
            .split(',')
            .filter_map(|s| serde_json::from_value::<Scope>(serde_json::Value::String(s.trim().to_owned())).ok())
            .collect();
        Ok(Principal {
            participant: key.participant,
            role,
            scopes,
            key: Some(key.id),
        })
    }
}

/// An order to place.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// Market zone.
    pub zone: u32,
    /// Delivery interval, ISO 8601 `start/duration`, e.g. `2026-11-30T10:15:00Z/PT15M`.
    #[schema(value_type = String, example = "2026-11-30T10:15:00Z/PT15M", pattern = "^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):(([0-5][05]:00Z/PT5M)|((00|15|30|45):00Z/PT15M)|(00:00Z/PT60M))$")]
    pub interval: DeliveryInterval,
    /// `buy` or `sell`.
    #[schema(value_type = String, example = "sell")]
    pub side: Side,
    /// Energy in Wh (> 0).
    pub quantity_wh: i64,
    /// Limit price in micro-currency per kWh (a multiple of the market's tick).
    pub price: i64,
    /// `good_till_gate_closure` (default), `immediate_or_cancel` or `fill_or_kill`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub tif: TimeInForce,
    /// `continuous` (default) or `auction_only`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub mode: OrderMode,
}

/// A trade, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TradeView {
    /// Trade id.
    pub trade_id: u64,
    /// Zone.
    pub zone: u32,
    /// Delivery interval.
    pub interval: String,
    /// Buying order.
    pub buy_order: u64,
    /// Selling order.
    pub sell_order: u64,
    /// Buyer.
    pub buyer: u64,
    /// Seller.
    pub seller: u64,
    /// Energy, Wh.
    pub quantity_wh: i64,
    /// Price the seller receives, µ/kWh.
    pub price: i64,
    /// Grid fee the buyer pays on top, µ/kWh.
    pub grid_fee: i64,
    /// When (RFC 3339).
    pub at: String,
}

impl From<&TradeReport> for TradeView {
    fn from(t: &TradeReport) -> Self {
        Self {
            trade_id: t.trade_id.0,
            zone: t.zone.0,
            interval: t.interval.to_string(),
            buy_order: t.buy_order.0,
            sell_order: t.sell_order.0,
            buyer: t.buyer.0,
            seller: t.seller.0,
            quantity_wh: t.quantity.0,
            price: t.price.0,
            grid_fee: t.grid_fee.0,
            at: t.at.to_rfc3339(),
        }
    }
}

fn trades_in(events: &[Event]) -> Vec<TradeView> {
    events
        .iter()
        .filter_map(Event::trade_report)
        .map(|t| TradeView::from(&t))
        .collect()
}

fn reject_message(r: RejectReason) -> &'static str {
    match r {
        RejectReason::UnknownBook => "there is no book for that zone and interval",
        RejectReason::BookClosed => "the gate of that interval has closed",
        RejectReason::BookExists => "that book is already open",
        RejectReason::TooManyBooks => "too many books are open",
        RejectReason::PriceOffTick => "the price is not a multiple of the market's tick",
        RejectReason::PriceOutOfBounds => "the price is outside the market's bounds",
        RejectReason::QuantityOutOfBounds => "the quantity is outside the market's bounds",
        RejectReason::UnknownOwner => "you are not registered with the market",
        RejectReason::UnknownNode => "your feeder node is not in the network",
        RejectReason::DuplicateOrderId => "duplicate order id",
        RejectReason::UnknownOrder => "no such live order",
        RejectReason::NotOwner => "that order is not yours",
        RejectReason::OrderCapacity => "the market holds as many orders as it can",
        RejectReason::FillOrKillUnfilled => "a fill-or-kill order could not be filled at once",
        RejectReason::InvalidTimeInForce => "that time in force is not allowed for this mode",
        RejectReason::InvalidGridFees => "the grid fees are negative or too large for this market",
    }
}

fn rejected(events: &[Event]) -> Option<ApiError> {
    events.iter().find_map(|e| match *e {
        Event::Rejected { reason, .. } => Some(ApiError::new(
            match reason {
                RejectReason::UnknownOrder => StatusCode::NOT_FOUND,
                RejectReason::NotOwner => StatusCode::FORBIDDEN,
                RejectReason::OrderCapacity | RejectReason::TooManyBooks => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            },
            reason.code(),
            reject_message(reason),
        )),
        _ => None,
    })
}

/// What became of an order request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderAck {
    /// The order's id.
    pub order_id: u64,
    /// `open` (resting), `filled`, or `cancelled` (an IOC rest, self-trade prevention).
    pub status: String,
    /// Filled at once, Wh.
    pub filled_wh: i64,
    /// Trades made at once.
    pub trades: Vec<TradeView>,
}

/// Place an order.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = OrderRequest,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Accepted", body = OrderAck),
        (status = 401, description = "No or bad API key", body = crate::error::ErrorBody),
        (status = 403, description = "Role or scope does not allow trading", body = crate::error::ErrorBody),
        (status = 422, description = "Refused by the market (code names the rule)", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
    ))]
pub async fn place_order(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<OrderRequest>,
) -> Result<(StatusCode, ApiJson<OrderAck>), ApiError> {
    Ok((StatusCode::CREATED, ApiJson(place(&state, &who, &req).await?)))
}

/// Places `req` for `who` (a homeowner or trader with the `trade` scope): what the REST handler
/// and the trader's page both do.
pub async fn place(state: &AppState, who: &Principal, req: &OrderRequest) -> Result<OrderAck, ApiError> {
    who.require_role(&[Role::Homeowner, Role::Trader])?;
    who.require_scope(Scope::Trade)?;
    if req.quantity_wh <= 0 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "quantity_out_of_bounds",
            "quantity_wh must be positive",
        ));
    }
    let outcome = market(state)?
        .submit(NewOrder {
            owner: who.participant,
            origin: None,
            zone: ZoneId(req.zone),
            interval: req.interval,
            side: req.side,
            quantity: Wh(req.quantity_wh),
            price: MicroPerKwh(req.price),
            tif: req.tif,
            mode: req.mode,
        })
        .await?;
    if let Some(err) = rejected(&outcome.events) {
        return Err(err);
    }
    let id = outcome.order_id.unwrap_or(OrderId(0));
    let trades = trades_in(&outcome.events);
    let filled_wh: i64 = trades.iter().map(|t| t.quantity_wh).sum();
    let cancelled = outcome
        .events
        .iter()
        .any(|e| matches!(e, Event::Cancelled { id: c, .. } if *c == id));
    let status = if filled_wh >= req.quantity_wh {
        "filled"
    } else if cancelled {
        "cancelled"
    } else {
        "open"
    };
    Ok(OrderAck {
        order_id: id.0,
        status: status.to_owned(),
        filled_wh,
        trades,
    })
}

/// Cancel one of my orders.
#[utoipa::path(delete, path = "/api/v1/orders/{id}", tag = "orders", security(("api_key" = [])),
    params(("id" = u64, Path, description = "Order id")),
    responses(
        (status = 204, description = "Cancelled"),
        (status = 403, description = "Not your order", body = crate::error::ErrorBody),
        (status = 404, description = "No such live order", body = crate::error::ErrorBody),
    ))]
pub async fn cancel_order(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<u64>,
) -> Result<StatusCode, ApiError> {
    cancel(&state, &who, OrderId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Cancels `who`'s order `id` (the `trade` scope): for the REST handler and the trader's page.
pub async fn cancel(state: &AppState, who: &Principal, id: OrderId) -> Result<(), ApiError> {
    who.require_scope(Scope::Trade)?;
    let outcome = market(state)?
        .command(Command::Cancel {
            at: state.clock.now(),
            id,
            owner: who.participant,
        })
        .await?;
    match rejected(&outcome.events) {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// A change to a resting order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendRequest {
    /// New remaining quantity, Wh (reducing it keeps time priority).
    pub quantity_wh: i64,
    /// New limit price, µ/kWh (any change loses time priority).
    pub price: i64,
}

/// Amend one of my resting orders.
#[utoipa::path(patch, path = "/api/v1/orders/{id}", tag = "orders", security(("api_key" = [])),
    params(("id" = u64, Path, description = "Order id")), request_body = AmendRequest,
    responses(
        (status = 204, description = "Amended"),
        (status = 404, description = "No such live order", body = crate::error::ErrorBody),
        (status = 422, description = "Refused by the market", body = crate::error::ErrorBody),
    ))]
pub async fn amend_order(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<u64>,
    ApiJson(req): ApiJson<AmendRequest>,
) -> Result<StatusCode, ApiError> {
    who.require_scope(Scope::Trade)?;
    let outcome = market(&state)?
        .command(Command::Amend {
            at: state.clock.now(),
            id: OrderId(id),
            owner: who.participant,
            quantity: Wh(req.quantity_wh),
            price: MicroPerKwh(req.price),
        })
        .await?;
    match rejected(&outcome.events) {
        Some(err) => Err(err),
        None => Ok(StatusCode::NO_CONTENT),
    }
}

/// Paging: newest first, `before` an id from the previous page.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Only items with a smaller id.
    pub before: Option<u64>,
    /// Items per page (1–500, default 100).
    pub limit: Option<u32>,
}

impl Page {
    /// The page size asked for, checked.
    pub fn limit(self) -> Result<u32, ApiError> {
        match self.limit.unwrap_or(100) {
            n @ 1..=500 => Ok(n),
            n => Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be 1 to 500, got {n}"),
            )),
        }
    }
}

/// An order as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderView {
    /// Id.
    pub order_id: u64,
    /// Zone.
    pub zone: u32,
    /// Delivery interval.
    pub interval: String,
    /// `buy` or `sell`.
    pub side: String,
    /// Quantity, Wh.
    pub quantity_wh: i64,
    /// Limit, µ/kWh.
    pub price: i64,
    /// `open`, `filled` or `cancelled`.
    pub status: String,
    /// Filled, Wh.
    pub filled_wh: i64,
    /// Why it left the book, if cancelled.
    pub reason: Option<String>,
    /// Placed at (RFC 3339).
    pub created_at: String,
}

impl From<&OrderRecord> for OrderView {
    fn from(o: &OrderRecord) -> Self {
        Self {
            order_id: o.id.0,
            zone: o.zone.0,
            interval: o.interval.to_string(),
            side: match o.side {
                Side::Buy => "buy",
                Side::Sell => "sell",
            }
            .to_owned(),
            quantity_wh: o.quantity.0,
            price: o.price.0,
            status: o.status.as_str().to_owned(),
            filled_wh: o.filled.0,
            reason: o.reason.clone(),
            created_at: o.created_at.to_rfc3339(),
        }
    }
}

/// My orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("api_key" = [])), params(Page),
    responses((status = 200, description = "Orders", body = Vec<OrderView>)))]
pub async fn my_orders(
    State(state): State<AppState>,
    who: Principal,
    Query(page): Query<Page>,
) -> Result<ApiJson<Vec<OrderView>>, ApiError> {
    Ok(ApiJson(orders_of(&state, &who, page).await?))
}

/// A page of `who`'s orders, newest first.
pub async fn orders_of(state: &AppState, who: &Principal, page: Page) -> Result<Vec<OrderView>, ApiError> {
    who.require_scope(Scope::Read)?;
    let rows = orders::of_participant(state.db()?, who.participant, page.before.map(OrderId), page.limit()?).await?;
    Ok(rows.iter().map(OrderView::from).collect())
}

/// My trades, newest first.
#[utoipa::path(get, path = "/api/v1/trades", tag = "orders", security(("api_key" = [])), params(Page),
    responses((status = 200, description = "Trades", body = Vec<TradeView>)))]
pub async fn my_trades(
    State(state): State<AppState>,
    who: Principal,
    Query(page): Query<Page>,
) -> Result<ApiJson<Vec<TradeView>>, ApiError> {
    who.require_scope(Scope::Read)?;
    let rows = orders::trades_of_participant(state.db()?, who.participant, page.before, page.limit()?).await?;
    Ok(ApiJson(rows.iter().map(TradeView::from).collect()))
}

/// One book.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BookView {
    /// Zone.
    pub zone: u32,
    /// Delivery interval.
    pub interval: String,
    /// Accepting orders.
    pub open: bool,
    /// Trades so far.
    pub trades: u32,
    /// Energy traded so far, Wh.
    pub volume_wh: i64,
    /// Grid fee per feeder edge crossed, µ/kWh, when the book was opened with governance's fees
    /// (absent: the feeder tree's own per-edge fees apply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_per_hop: Option<i64>,
    /// Grid fee on every trade, µ/kWh, when the book was opened with governance's fees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_per_kwh: Option<i64>,
}

/// The books the market holds (open ones and those closed since the service started).
#[utoipa::path(get, path = "/api/v1/markets", tag = "markets", security(("api_key" = [])),
    responses((status = 200, description = "Books", body = Vec<BookView>)))]
pub async fn books(State(state): State<AppState>, who: Principal) -> Result<ApiJson<Vec<BookView>>, ApiError> {
    Ok(ApiJson(list_books(&state, &who).await?))
}

/// The books the market holds, as [`books`] shows them.
pub async fn list_books(state: &AppState, who: &Principal) -> Result<Vec<BookView>, ApiError> {
    who.require_scope(Scope::Read)?;
    let books = market(state)?.books().await?;
    Ok(books
        .iter()
        .map(|b| BookView {
            zone: b.zone.0,
            interval: b.interval.to_string(),
            open: b.open,
            trades: b.trades,
            volume_wh: b.volume.0,
            fee_per_hop: b.fees.map(|f| f.per_hop.0),
            fee_per_kwh: b.fees.map(|f| f.per_kwh.0),
        })
        .collect())
}

/// Which book.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BookQuery {
    /// Delivery interval, `start/duration`.
    #[param(value_type = String, example = "2026-11-30T10:15:00Z/PT15M", pattern = "^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):(([0-5][05]:00Z/PT5M)|((00|15|30|45):00Z/PT15M)|(00:00Z/PT60M))$")]
    pub interval: DeliveryInterval,
    /// Price levels per side (1–100, default 10).
    pub levels: Option<usize>,
}

/// A price level.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LevelView {
    /// µ/kWh.
    pub price: i64,
    /// Total remaining, Wh.
    pub quantity_wh: i64,
}

/// A book's depth.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DepthView {
    /// Accepting orders.
    pub open: bool,
    /// Best (highest) first.
    pub bids: Vec<LevelView>,
    /// Best (lowest) first.
    pub asks: Vec<LevelView>,
}

/// A book's aggregated depth.
#[utoipa::path(get, path = "/api/v1/markets/{zone}/depth", tag = "markets", security(("api_key" = [])),
    params(("zone" = u32, Path, description = "Zone"), BookQuery),
    responses(
        (status = 200, description = "Depth", body = DepthView),
        (status = 404, description = "No such book", body = crate::error::ErrorBody),
    ))]
pub async fn depth(
    State(state): State<AppState>,
    who: Principal,
    Path(zone): Path<u32>,
    Query(q): Query<BookQuery>,
) -> Result<ApiJson<DepthView>, ApiError> {
    Ok(ApiJson(book_depth(&state, &who, ZoneId(zone), &q).await?))
}

/// The depth of `zone`'s book for `q.interval`, as [`depth`] shows it.
pub async fn book_depth(state: &AppState, who: &Principal, zone: ZoneId, q: &BookQuery) -> Result<DepthView, ApiError> {
    who.require_scope(Scope::Read)?;
    let levels = match q.levels.unwrap_or(10) {
        n @ 1..=100 => n,
        n => {
            return Err(ApiError::bad_request(
                "invalid_levels",
                format!("levels must be 1 to 100, got {n}"),
            ));
        }
    };
    let d = market(state)?
        .depth(zone, q.interval, levels)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no book for zone {} and {}", zone.0, q.interval)))?;
    let view = |v: &[(MicroPerKwh, Wh)]| {
        v.iter()
            .map(|(p, q)| LevelView {
                price: p.0,
                quantity_wh: q.0,
            })
            .collect()
    };
    Ok(DepthView {
        open: d.open,
        bids: view(&d.bids),
        asks: view(&d.asks),
    })
}

/// The trades of one book (public market data: ids of buyer and seller included, as on chain).
#[utoipa::path(get, path = "/api/v1/markets/{zone}/trades", tag = "markets", security(("api_key" = [])),
    params(("zone" = u32, Path, description = "Zone"), BookQuery),
    responses((status = 200, description = "Trades", body = Vec<TradeView>)))]
pub async fn book_trades(
    State(state): State<AppState>,
    who: Principal,
    Path(zone): Path<u32>,
    Query(q): Query<BookQuery>,
) -> Result<ApiJson<Vec<TradeView>>, ApiError> {
    who.require_scope(Scope::Read)?;
    let rows = market_store::trades_of_interval(state.db()?, ZoneId(zone), q.interval).await?;
    Ok(ApiJson(rows.iter().map(TradeView::from).collect()))
}

/// A time range.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// From (RFC 3339, inclusive); default 24 h ago.
    pub from: Option<String>,
    /// To (RFC 3339, exclusive); default 24 h ahead.
    pub to: Option<String>,
}

fn time(s: Option<&str>, default: Timestamp, name: &str) -> Result<Timestamp, ApiError> {
    match s {
        None => Ok(default),
        Some(s) => {
            Timestamp::parse_rfc3339(s).map_err(|e| ApiError::bad_request("invalid_time", format!("{name}: {e}")))
        }
    }
}

/// A gate-closure result.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResultView {
    /// Delivery interval.
    pub interval: String,
    /// Uniform clearing price of the auction, µ/kWh (none if nothing crossed); with a feeder
    /// network, the substation's node price.
    pub clearing_price: Option<i64>,
    /// Matched in the auction, Wh.
    pub auction_volume_wh: i64,
    /// Matched in all, Wh.
    pub total_volume_wh: i64,
    /// Trades over the book's life.
    pub trades: u32,
    /// With a feeder network, each node's price in the auction (empty when it traded nothing).
    pub node_prices: Vec<NodePriceView>,
}

/// One feeder node's price in a gate-closure auction: sellers there receive it, buyers there
/// pay it (grid fee included).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodePriceView {
    /// The node.
    pub node: u32,
    /// Its price, µ/kWh.
    pub price: i64,
    /// Energy the auction sent over the edge above the node, Wh (positive: up, toward the
    /// substation).
    pub flow_wh: i64,
    /// How far the price gap across that edge exceeds its fee, µ/kWh: positive only where the
    /// edge was full (binding).
    pub congestion: i64,
}

impl From<&IntervalResult> for ResultView {
    fn from(r: &IntervalResult) -> Self {
        Self {
            interval: r.interval.to_string(),
            clearing_price: r.clearing_price.map(|p| p.0),
            auction_volume_wh: r.auction_volume.0,
            total_volume_wh: r.total_volume.0,
            trades: r.trades,
            node_prices: r
                .node_prices
                .iter()
                .map(|p| NodePriceView {
                    node: p.node.0,
                    price: p.price.0,
                    flow_wh: p.flow.0,
                    congestion: p.congestion.0,
                })
                .collect(),
        }
    }
}

/// Which results.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ResultsQuery {
    /// From (RFC 3339, inclusive); default 24 h ago.
    pub from: Option<String>,
    /// To (RFC 3339, exclusive); default 24 h ahead.
    pub to: Option<String>,
    /// Only this feeder node's price in each result (default: every node's).
    pub node: Option<u32>,
}

/// Results of a zone's closed books, with their node prices.
#[utoipa::path(get, path = "/api/v1/markets/{zone}/results", tag = "markets", security(("api_key" = [])),
    params(("zone" = u32, Path, description = "Zone"), ResultsQuery),
    responses((status = 200, description = "Results, oldest first", body = Vec<ResultView>)))]
pub async fn results(
    State(state): State<AppState>,
    who: Principal,
    Path(zone): Path<u32>,
    Query(r): Query<ResultsQuery>,
) -> Result<ApiJson<Vec<ResultView>>, ApiError> {
    who.require_scope(Scope::Read)?;
    let now = state.clock.now();
    let from = time(r.from.as_deref(), Timestamp(now.0 - 86_400_000), "from")?;
    let to = time(r.to.as_deref(), Timestamp(now.0 + 86_400_000), "to")?;
    let node = r.node.map(gridshare_domain::NodeId);
    let rows = market_store::interval_results(state.db()?, ZoneId(zone), from, to, node).await?;
    Ok(ApiJson(rows.iter().map(ResultView::from).collect()))
}

/// The caller.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MeView {
    /// Participant id.
    pub participant: u64,
    /// Role.
    pub role: Role,
    /// The key's scopes.
    pub scopes: Vec<Scope>,
}

/// Who this key acts for.
#[utoipa::path(get, path = "/api/v1/me", tag = "account", security(("api_key" = [])),
    responses((status = 200, description = "The caller", body = MeView), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody)))]
pub async fn me(who: Principal) -> ApiJson<MeView> {
    ApiJson(MeView {
        participant: who.participant.0,
        role: who.role,
        scopes: who.scopes,
    })
}
