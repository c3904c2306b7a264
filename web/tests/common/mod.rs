//! What the integration tests share: one way to call the application in-process
//! ([`request`], and [`call`] for the common case) and the fixtures they build on (a temporary
//! SQLite database, participants, users and signing in, API keys, gateways, readings, a running
//! market with one open book).
//!
//! Each test file is its own crate and uses a part of this, hence `dead_code` is allowed.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use gridshare_domain::envelope::{GatewayKey, ReplayWindow};
use gridshare_domain::wire::{DeviceKind, DeviceStatus, Quality, TelemetrySample};
use gridshare_domain::{
    DeliveryInterval, DeviceId, GatewayId, IntervalLength, NodeId, ParticipantId, Timestamp, W, Wh, ZoneId,
};
use gridshare_market::{Clock, JournalConfig, Market, add_participants};
use gridshare_matching_engine::{Command, MarketConfig};
use gridshare_storage::gateways::{self, Gateway};
use gridshare_storage::participants::{self, Participant};
use gridshare_storage::readings::Reading;
use gridshare_storage::{Db, api_keys};
use gridshare_web::auth::{TokenKind, hash_password, new_token};
use gridshare_web::{AppState, app};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub mod every_role;

/// When fixtures are made (2025-11-25T09:46:40Z).
pub const NOW: Timestamp = Timestamp(1_764_064_000_000);

// ------------------------------------------------------------------ calling the app

/// A request being built: `request(Method::POST, "/api/v1/orders").key(&k).json(&body).send(&s)`.
#[derive(Debug)]
pub struct Call {
    method: Method,
    path: String,
    from: Option<std::net::SocketAddr>,
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
    content_type: &'static str,
}

/// The start of every request the tests make.
pub fn request(method: Method, path: impl Into<String>) -> Call {
    Call {
        method,
        path: path.into(),
        from: None,
        headers: Vec::new(),
        body: None,
        content_type: "application/json",
    }
}

impl Call {
    /// `Authorization: Bearer {key}` (an API key or a session token).
    pub fn key(self, key: &str) -> Self {
        self.header("authorization", format!("Bearer {key}"))
    }

    /// [`Call::key`] when there is one; nothing for an anonymous caller.
    pub fn maybe_key(self, key: Option<&str>) -> Self {
        match key {
            Some(k) => self.key(k),
            None => self,
        }
    }

    /// `Cookie: {pair}` (a session cookie as `name=value`).
    pub fn cookie(self, pair: &str) -> Self {
        self.header("cookie", pair.to_owned())
    }

    /// Any other header.
    pub fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// As if it came over a connection from `ip` (what the server loop tells handlers); without
    /// it the request has no client address, as in-process calls do.
    pub fn from(mut self, ip: &str) -> Self {
        self.from = Some(std::net::SocketAddr::new(ip.parse().unwrap(), 40_000));
        self
    }

    /// A JSON body.
    pub fn json(self, body: &Value) -> Self {
        self.body(body.to_string())
    }

    /// A body sent as `content-type: application/json`, whatever it holds (bad JSON included).
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// A dashboard form's body (`application/x-www-form-urlencoded`).
    pub fn form(mut self, body: impl Into<String>) -> Self {
        self.content_type = "application/x-www-form-urlencoded";
        self.body(body)
    }

    /// [`Call::body`] when there is one.
    pub fn maybe_body(self, body: Option<String>) -> Self {
        match body {
            Some(b) => self.body(b),
            None => self,
        }
    }

    /// Sends it to a fresh `app(state)`, in-process.
    pub async fn send(self, state: &AppState) -> Reply {
        let mut req = Request::builder().method(self.method).uri(self.path);
        for (name, value) in self.headers {
            req = req.header(name, value);
        }
        let req = match self.body {
            Some(b) => req.header("content-type", self.content_type).body(Body::from(b)),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let mut req = req;
        if let Some(peer) = self.from {
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        }
        let resp = app(state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            text: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as text.
    pub text: String,
}

impl Reply {
    /// The body as JSON; `null` when empty. Panics, showing the body, when it is not JSON.
    pub fn json(&self) -> Value {
        if self.text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
        }
    }

    /// A response header, if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
    }
}

/// The common case: `method path` with an optional API key and JSON body; the status and the
/// body as JSON (`null` when empty).
pub async fn call(
    state: &AppState,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<String>,
) -> (StatusCode, Value) {
    let reply = request(method, path).maybe_key(key).maybe_body(body).send(state).await;
    (reply.status, reply.json())
}

/// An error answer's code, checking it has the error shape (a code and a non-empty message).
pub fn code(v: &Value) -> &str {
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code: {v}"))
}

// ------------------------------------------------------------------ fixtures

/// A new database in a temporary directory (kept while the directory lives).
pub async fn temp_db() -> (Db, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    (db, dir)
}

/// An application state over `db`, the rest default.
pub fn state_with(db: &Db) -> AppState {
    AppState {
        db: Some(db.clone()),
        ..AppState::default()
    }
}

/// The custody seed of the tests' participants (the service derives from its own seed file).
pub fn custody() -> gridshare_domain::accounts::Custody {
    gridshare_domain::accounts::Custody::from_bytes([0x5e; 32])
}

/// A participant `P{id}` with `role` ("homeowner", "trader", …) at a feeder node, with its
/// custodial account.
pub async fn participant(db: &Db, id: u64, role: &str, feeder_node: Option<u32>) {
    participants::upsert(
        db,
        &Participant {
            id: ParticipantId(id),
            name: format!("P{id}"),
            role: role.into(),
            evm_address: None,
            feeder_node,
            custody_address: Some(custody().address_hex(ParticipantId(id))),
        },
        NOW,
    )
    .await
    .unwrap();
}

/// An API key for participant `who` with `scopes` ("read,trade"); its secret.
pub async fn key(db: &Db, who: u64, scopes: &str) -> String {
    let t = new_token(TokenKind::ApiKey);
    let k = api_keys::NewKey {
        id: &t.id,
        participant: ParticipantId(who),
        token_hash: &t.hash,
        scopes,
        label: "test",
        parent: None,
    };
    api_keys::create(db, &k, NOW).await.unwrap();
    t.token
}

/// A participant with a dashboard login `username`, password `{username}-correct-horse`.
pub async fn user(db: &Db, id: u64, role: &str, username: &str) {
    participant(db, id, role, None).await;
    let hash = hash_password(&password(username)).unwrap();
    participants::create_user(db, username, &hash, ParticipantId(id), NOW)
        .await
        .unwrap();
}

/// The password [`user`] gives `username`.
pub fn password(username: &str) -> String {
    format!("{username}-correct-horse")
}

/// Signs `username` in (`POST /api/v1/session` with [`password`]): the session token and the
/// session cookie as `name=value`.
pub async fn sign_in(state: &AppState, username: &str) -> (String, String) {
    let reply = request(Method::POST, "/api/v1/session")
        .json(&json!({"username": username, "password": password(username)}))
        .send(state)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let token = reply.json()["token"].as_str().unwrap().to_owned();
    let cookie = reply.header("set-cookie").expect("a session cookie");
    (token, cookie.split(';').next().unwrap().to_owned())
}

/// Gateway `id` of `owner` at `node`, commissioned by `installer`.
pub async fn gateway(db: &Db, id: u64, owner: u64, installer: Option<u64>, node: u32) {
    gateways::register(
        db,
        &Gateway {
            id: GatewayId(id),
            owner: ParticipantId(owner),
            installer: installer.map(ParticipantId),
            public_key: GatewayKey::from_bytes(&[id as u8; 32]).unwrap().public(),
            feeder_node: NodeId(node),
            window: ReplayWindow::default(),
            revoked_at: None,
        },
        NOW,
    )
    .await
    .unwrap();
}

/// A good grid-meter reading (device `meter`) of gateway `gw`.
pub fn meter_reading(
    gw: u64,
    seq: u64,
    at: i64,
    power_w: i64,
    energy_in_wh: Option<i64>,
    energy_out_wh: Option<i64>,
) -> Reading {
    Reading {
        gateway: GatewayId(gw),
        seq,
        sample: TelemetrySample {
            device: DeviceId::new("meter").unwrap(),
            kind: DeviceKind::GridMeter,
            at: Timestamp(at),
            power_w: Some(W(power_w)),
            energy_in_wh: energy_in_wh.map(Wh),
            energy_out_wh: energy_out_wh.map(Wh),
            soc_permille: None,
            status: DeviceStatus::Ok,
            quality: Quality::Good,
        },
    }
}

// ------------------------------------------------------------------ market

/// The book the market fixtures open: zone 1, far in the future, so no clock closes it during
/// a test.
pub fn interval() -> DeliveryInterval {
    DeliveryInterval::new(Timestamp(4_102_444_800_000), IntervalLength::Min15).unwrap()
}

/// An order for [`interval`] in zone 1, as a JSON body.
pub fn order(side: &str, quantity_wh: i64, price: i64) -> String {
    json!({"zone": 1, "interval": interval().to_string(), "side": side, "quantity_wh": quantity_wh, "price": price})
        .to_string()
}

/// A market over `db` (with its journal, if any) that knows `participants` (id and feeder node)
/// and has the book for [`interval`] open in zone 1.
pub async fn start_market(
    db: &Db,
    journal: Option<JournalConfig>,
    participants: impl IntoIterator<Item = (u64, u32)>,
) -> Market {
    let (market, _recorder) = Market::start(MarketConfig::default(), journal, db.clone(), Clock::wall())
        .await
        .unwrap();
    add_participants(
        &market,
        participants.into_iter().map(|(p, n)| (ParticipantId(p), NodeId(n))),
    )
    .await
    .unwrap();
    market
        .command(Command::OpenBook {
            zone: ZoneId(1),
            interval: interval(),
            fees: None,
        })
        .await
        .unwrap();
    market
}

/// Waits until the recorder has written what the engine did: `check` returns `Some` (2 s at
/// most).
pub async fn recorded<T>(mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("not recorded within 2 s");
}

/// The market tests' participants: homes 1 and 2, trader 3, operator 4, each at its own node.
pub const TRADERS: [(u64, &str); 4] = [(1, "homeowner"), (2, "homeowner"), (3, "trader"), (4, "operator")];

/// [`TRADERS`] in `db`.
pub async fn traders(db: &Db) {
    for (id, role) in TRADERS {
        participant(db, id, role, Some(id as u32)).await;
    }
}

/// A running market and the database behind it, with [`TRADERS`] and their keys.
#[derive(Debug)]
pub struct MarketWorld {
    pub state: AppState,
    pub _dir: tempfile::TempDir,
    /// Home 1, read and trade.
    pub seller: String,
    /// Home 2, read and trade.
    pub buyer: String,
    /// The trader, read and trade.
    pub trader: String,
    /// The operator, read, trade and demand response.
    pub operator: String,
    /// Home 2, read only.
    pub read_only: String,
    /// Home 1's key, revoked.
    pub revoked: String,
}

/// A [`MarketWorld`] with the book for [`interval`] open and empty.
pub async fn market_world() -> MarketWorld {
    let (db, dir) = temp_db().await;
    traders(&db).await;
    let market = start_market(&db, None, TRADERS.map(|(id, _)| (id, id as u32))).await;
    let revoked = key(&db, 1, "read,trade").await;
    let revoked_id = gridshare_web::auth::token_id(TokenKind::ApiKey, &revoked)
        .unwrap()
        .to_owned();
    api_keys::revoke(&db, ParticipantId(1), &revoked_id, NOW).await.unwrap();
    MarketWorld {
        seller: key(&db, 1, "read,trade").await,
        buyer: key(&db, 2, "read,trade").await,
        trader: key(&db, 3, "read,trade").await,
        operator: key(&db, 4, "read,trade,demand_response").await,
        read_only: key(&db, 2, "read").await,
        revoked,
        state: AppState {
            db: Some(db),
            market: Some(market),
            ..AppState::default()
        },
        _dir: dir,
    }
}
