//! The market: the matching engine on a thread of its own that owns all its state, a handle the
//! API and MQTT ingest share (one path into the engine), a feed of what happened for WebSocket
//! and MQTT subscribers, and a recorder that writes orders, trades and results to the database.
//!
//! ```text
//!  Market (handle, cloneable) ──request──▶ engine thread: journal ▶ apply ▶ reply
//!                                               ├──▶ feed (broadcast; a lagging subscriber loses its place, never slows the engine)
//!                                               └──▶ recorder task ──▶ storage::orders::record (one transaction per burst, retried)
//!  scheduler task: open the next books, close gates on time ──▶ same handle
//! ```
//!
//! The journal is the truth. The database is a projection of it: on start the whole journal is
//! replayed through a scratch engine and every change is recorded again, idempotently, so a crash
//! between the journal write and the database write loses nothing. (An order's gateway is not in
//! the journal: an order recovered this way is recorded without it.)

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gridshare_domain::wire::IntervalResult;
use gridshare_domain::{
    DeliveryInterval, GatewayId, IntervalRules, MicroPerKwh, NodeId, OrderId, OrderMode, ParticipantId, Side,
    TimeInForce, Timestamp, Wh, ZoneId,
};
use gridshare_matching_engine::journal::{self, Durability, Journaled};
use gridshare_matching_engine::{BookSummary, CancelReason, Command, Depth, Engine, Event, MarketConfig, OrderSpec};
use gridshare_storage::Db;
use gridshare_storage::orders::{self, Change, OrderRecord, OrderStatus};
use tokio::sync::{broadcast, mpsc, oneshot};

/// The real time now, in ms since the epoch (not the accelerated market clock).
pub fn wall_clock() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    )
}

/// The market's clock when it runs faster than real time (demos): the market time at a moment
/// and how fast it runs from there.
static CLOCK: std::sync::OnceLock<(Timestamp, std::time::Instant, f64)> = std::sync::OnceLock::new();

/// Makes the process's market clock run `speed` times faster than real time, reading `at` now.
/// Set once, at start (later calls are ignored, so the clock never jumps).
pub fn set_clock(at: Timestamp, speed: f64) {
    let _ = CLOCK.set((at, std::time::Instant::now(), speed));
}

/// Market time now, in ms since the epoch: the wall clock, or the accelerated clock.
pub fn now() -> Timestamp {
    match CLOCK.get() {
        None => wall_clock(),
        Some((at, since, speed)) => Timestamp(at.0 + (since.elapsed().as_secs_f64() * speed * 1000.0) as i64),
    }
}

/// Why the market could not do something.
#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    /// The engine thread has stopped (shutdown or a journal failure).
    #[error("the market is not running")]
    Stopped,
    /// The journal could not be written: the command was not applied.
    #[error("journal: {0}")]
    Journal(String),
    /// Recovery failed at start.
    #[error("recovering the market: {0}")]
    Recovery(String),
    /// The database failed at start.
    #[error(transparent)]
    Storage(#[from] gridshare_storage::StorageError),
}

/// An order as a participant places it; the market assigns the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOrder {
    /// Owner.
    pub owner: ParticipantId,
    /// The gateway that sent it (MQTT), if any.
    pub gateway: Option<GatewayId>,
    /// Zone.
    pub zone: ZoneId,
    /// Delivery interval.
    pub interval: DeliveryInterval,
    /// Side.
    pub side: Side,
    /// Quantity.
    pub quantity: Wh,
    /// Limit price.
    pub price: MicroPerKwh,
    /// Time in force.
    pub tif: TimeInForce,
    /// Mode.
    pub mode: OrderMode,
}

/// What one command did: its events, stamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// When the engine applied it.
    pub at: Timestamp,
    /// The order id the market gave a new order.
    pub order_id: Option<OrderId>,
    /// Whose command it was (None for the scheduler's).
    pub owner: Option<ParticipantId>,
    /// The engine's events.
    pub events: Vec<Event>,
    /// Owner of every order an event names (so each owner hears about their own orders).
    pub owners: Vec<(OrderId, ParticipantId)>,
    /// Depth of every book the command changed, best 10 levels a side (only computed while
    /// someone subscribes to the feed).
    pub books: Vec<(ZoneId, DeliveryInterval, Depth)>,
}

/// Levels per side in [`Outcome::books`].
pub const FEED_DEPTH_LEVELS: usize = 10;

enum Request {
    Submit(NewOrder, oneshot::Sender<Result<Arc<Outcome>, MarketError>>),
    Command(Command, oneshot::Sender<Result<Arc<Outcome>, MarketError>>),
    Depth(ZoneId, DeliveryInterval, usize, oneshot::Sender<Option<Depth>>),
    Books(oneshot::Sender<Vec<BookSummary>>),
    Flush(oneshot::Sender<Result<(), MarketError>>),
}

/// The handle: cheap to clone, used by every producer of commands.
#[derive(Debug, Clone)]
pub struct Market {
    requests: mpsc::Sender<Request>,
    feed: broadcast::Sender<Arc<Outcome>>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Request")
    }
}

/// Capacity of the feed: a subscriber this many outcomes behind loses its place.
pub const FEED_CAPACITY: usize = 4096;

/// The engine and where it keeps its journal.
enum Core {
    Memory(Box<Engine>),
    Journaled(Box<Journaled>),
}

impl Core {
    fn apply(&mut self, cmd: &Command, out: &mut Vec<Event>) -> Result<(), MarketError> {
        match self {
            Self::Memory(e) => {
                e.apply(cmd, out);
                Ok(())
            }
            Self::Journaled(j) => j.apply(cmd, out).map_err(|e| MarketError::Journal(e.to_string())),
        }
    }
    fn engine(&self) -> &Engine {
        match self {
            Self::Memory(e) => e,
            Self::Journaled(j) => j.engine(),
        }
    }
    fn flush(&mut self) -> Result<(), MarketError> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Journaled(j) => j.flush().map_err(|e| MarketError::Journal(e.to_string())),
        }
    }
}

/// Turns commands and their events into database changes, tracking each live order's remaining
/// quantity so a complete fill is known.
#[derive(Debug, Default)]
struct Projector {
    /// Each live order.
    live: HashMap<OrderId, LiveOrder>,
    nodes: HashMap<ParticipantId, NodeId>,
    max_id: u64,
}

#[derive(Debug, Clone, Copy)]
struct LiveOrder {
    rest: i64,
    owner: ParticipantId,
    zone: ZoneId,
    interval: DeliveryInterval,
}

fn cancel_reason(r: CancelReason) -> &'static str {
    match r {
        CancelReason::Requested => "requested",
        CancelReason::ImmediateOrCancel => "immediate_or_cancel",
        CancelReason::SelfTrade => "self_trade",
        CancelReason::Unmatched => "unmatched",
    }
}

impl Projector {
    /// The book of a live order.
    fn book_of(&self, id: OrderId) -> Option<(ZoneId, DeliveryInterval)> {
        self.live.get(&id).map(|l| (l.zone, l.interval))
    }

    /// Owners of the orders `events` name, looked up before [`Self::changes`] forgets them.
    fn owners(&self, cmd: &Command, events: &[Event]) -> Vec<(OrderId, ParticipantId)> {
        let mut out = Vec::new();
        let mut add = |id: OrderId, owner: Option<ParticipantId>| {
            if let Some(o) = owner.or_else(|| self.live.get(&id).map(|l| l.owner))
                && !out.contains(&(id, o))
            {
                out.push((id, o));
            }
        };
        let submitted = match cmd {
            Command::Submit { order, .. } => Some((order.id, order.owner)),
            _ => None,
        };
        for e in events {
            match *e {
                Event::Accepted { id } | Event::Amended { id, .. } | Event::Cancelled { id, .. } => {
                    add(id, submitted.filter(|s| s.0 == id).map(|s| s.1));
                }
                Event::Rejected { id: Some(id), .. } => add(id, submitted.filter(|s| s.0 == id).map(|s| s.1)),
                Event::Trade {
                    buy,
                    sell,
                    buyer,
                    seller,
                    ..
                } => {
                    add(buy, Some(buyer));
                    add(sell, Some(seller));
                }
                _ => {}
            }
        }
        out
    }

    fn changes(&mut self, cmd: &Command, gateway: Option<GatewayId>, events: &[Event], out: &mut Vec<Change>) {
        let at = match *cmd {
            Command::Submit { at, .. }
            | Command::Cancel { at, .. }
            | Command::Amend { at, .. }
            | Command::CloseGate { at, .. } => at,
            Command::AddParticipant { .. } | Command::OpenBook { .. } => Timestamp(0),
        };
        if let Command::AddParticipant { owner, node } = *cmd
            && events.iter().any(|e| matches!(e, Event::ParticipantAdded { .. }))
        {
            self.nodes.insert(owner, node);
        }
        if let Command::Submit { order, .. } = cmd {
            self.max_id = self.max_id.max(order.id.0);
            if events
                .iter()
                .any(|e| matches!(e, Event::Accepted { id } if *id == order.id))
            {
                self.live.insert(
                    order.id,
                    LiveOrder {
                        rest: order.quantity.0,
                        owner: order.owner,
                        zone: order.zone,
                        interval: order.interval,
                    },
                );
                out.push(Change::Accepted(OrderRecord {
                    id: order.id,
                    owner: order.owner,
                    gateway,
                    zone: order.zone,
                    interval: order.interval,
                    side: order.side,
                    quantity: order.quantity,
                    price: order.price,
                    tif: order.tif,
                    mode: order.mode,
                    status: OrderStatus::Open,
                    filled: Wh(0),
                    reason: None,
                    created_at: at,
                    updated_at: at,
                }));
            }
        }
        let mut auction: Option<(Option<MicroPerKwh>, Wh)> = None;
        for e in events {
            match *e {
                Event::Trade {
                    buy,
                    sell,
                    quantity,
                    at,
                    ..
                } => {
                    if let Some(t) = e.trade_report() {
                        out.push(Change::Trade(t));
                    }
                    for id in [buy, sell] {
                        if let Some(o) = self.live.get_mut(&id) {
                            o.rest -= quantity.0;
                            if o.rest <= 0 {
                                self.live.remove(&id);
                                out.push(Change::Filled { id, at });
                            }
                        }
                    }
                }
                Event::Amended {
                    id, quantity, price, ..
                } => {
                    if let Some(o) = self.live.get_mut(&id) {
                        o.rest = quantity.0;
                    }
                    out.push(Change::Amended {
                        id,
                        quantity,
                        price,
                        at,
                    });
                }
                Event::Cancelled { id, reason, .. } => {
                    self.live.remove(&id);
                    out.push(Change::Cancelled {
                        id,
                        reason: cancel_reason(reason),
                        at,
                    });
                }
                Event::AuctionResult {
                    clearing_price, volume, ..
                } => auction = Some((clearing_price, volume)),
                Event::BookClosed {
                    zone,
                    interval,
                    total_volume,
                    trades,
                } => {
                    let (clearing_price, auction_volume) = auction.unwrap_or((None, Wh(0)));
                    out.push(Change::Result {
                        result: IntervalResult {
                            zone,
                            interval,
                            clearing_price,
                            auction_volume,
                            total_volume,
                            trades,
                        },
                        closed_at: at,
                    });
                }
                Event::ParticipantAdded { .. }
                | Event::BookOpened { .. }
                | Event::Accepted { .. }
                | Event::Rejected { .. } => {}
            }
        }
    }
}

/// Where the engine keeps its journal and snapshots.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    /// Directory of `engine.journal` and `engine.snapshot.json`.
    pub dir: std::path::PathBuf,
    /// When appended commands reach the disk.
    pub durability: Durability,
}

impl Market {
    /// Starts the market: recovers the engine from its journal (if any), records whatever the
    /// database missed, then runs the engine thread and the recorder task.
    pub async fn start(
        cfg: MarketConfig,
        journal: Option<JournalConfig>,
        db: Db,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), MarketError> {
        Self::start_with_metrics(cfg, journal, db, Arc::default()).await
    }

    /// [`Self::start`], counting orders, trades and gate closures in `metrics` (from the engine
    /// thread: atomic counters, exact, and never waiting).
    pub async fn start_with_metrics(
        cfg: MarketConfig,
        journal: Option<JournalConfig>,
        db: Db,
        metrics: Arc<crate::Metrics>,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), MarketError> {
        let mut projector = Projector::default();
        let core = match &journal {
            None => Core::Memory(Box::new(
                Engine::new(cfg).map_err(|e| MarketError::Recovery(e.to_string()))?,
            )),
            Some(j) => {
                let path = j.dir.join("engine.journal");
                if path.exists() {
                    let recovered = journal::read(&path).map_err(|e| MarketError::Recovery(e.to_string()))?;
                    let mut scratch = Engine::new(cfg.clone()).map_err(|e| MarketError::Recovery(e.to_string()))?;
                    let (mut events, mut changes) = (Vec::new(), Vec::new());
                    for cmd in &recovered.commands {
                        events.clear();
                        scratch.apply(cmd, &mut events);
                        projector.changes(cmd, None, &events, &mut changes);
                        if changes.len() >= 10_000 {
                            orders::record(&db, &changes).await?;
                            changes.clear();
                        }
                    }
                    orders::record(&db, &changes).await?;
                    tracing::info!(commands = recovered.commands.len(), "market recovered from its journal");
                }
                let (j, recovery) =
                    Journaled::open(cfg, &j.dir, j.durability).map_err(|e| MarketError::Recovery(e.to_string()))?;
                if let Some(torn) = recovery.torn {
                    tracing::warn!(offset = torn.offset, reason = %torn.reason, "journal tail was torn and cut off");
                }
                Core::Journaled(Box::new(j))
            }
        };
        projector.max_id = projector.max_id.max(orders::max_id(&db).await?.map_or(0, |o| o.0));
        let (requests, rx) = mpsc::channel(1024);
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        let (to_recorder, from_engine) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(record(db, from_engine));
        let feed_tx = feed.clone();
        std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || run_engine(core, projector, rx, feed_tx, to_recorder, &metrics))
            .map_err(|e| MarketError::Recovery(format!("cannot start the engine thread: {e}")))?;
        Ok((Self { requests, feed }, recorder))
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Request) -> Result<T, MarketError> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(make(tx)).await.map_err(|_| MarketError::Stopped)?;
        rx.await.map_err(|_| MarketError::Stopped)
    }

    /// Places an order (the market gives it an id).
    pub async fn submit(&self, order: NewOrder) -> Result<Arc<Outcome>, MarketError> {
        self.ask(|tx| Request::Submit(order, tx)).await?
    }

    /// Applies any other command (cancel, amend, open a book, close a gate, add a participant).
    pub async fn command(&self, cmd: Command) -> Result<Arc<Outcome>, MarketError> {
        self.ask(|tx| Request::Command(cmd, tx)).await?
    }

    /// A book's aggregated depth.
    pub async fn depth(
        &self,
        zone: ZoneId,
        interval: DeliveryInterval,
        levels: usize,
    ) -> Result<Option<Depth>, MarketError> {
        self.ask(|tx| Request::Depth(zone, interval, levels, tx)).await
    }

    /// Every book.
    pub async fn books(&self) -> Result<Vec<BookSummary>, MarketError> {
        self.ask(Request::Books).await
    }

    /// Writes the journal to disk (shutdown).
    pub async fn flush(&self) -> Result<(), MarketError> {
        self.ask(Request::Flush).await?
    }

    /// Everything that happens from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Outcome>> {
        self.feed.subscribe()
    }
}

fn run_engine(
    mut core: Core,
    mut projector: Projector,
    mut rx: mpsc::Receiver<Request>,
    feed: broadcast::Sender<Arc<Outcome>>,
    recorder: mpsc::UnboundedSender<Vec<Change>>,
    metrics: &crate::Metrics,
) {
    let apply = |core: &mut Core,
                 projector: &mut Projector,
                 cmd: Command,
                 gateway,
                 order_id,
                 owner|
     -> Result<Arc<Outcome>, MarketError> {
        let mut events = Vec::new();
        core.apply(&cmd, &mut events)?;
        let owners = projector.owners(&cmd, &events);
        count(metrics, &cmd, &events);
        let mut books = Vec::new();
        if feed.receiver_count() > 0 {
            let touched = match cmd {
                Command::Submit { order, .. } => Some((order.zone, order.interval)),
                Command::CloseGate { zone, interval, .. } | Command::OpenBook { zone, interval } => {
                    Some((zone, interval))
                }
                Command::Cancel { .. } | Command::Amend { .. } => events.iter().find_map(|e| match *e {
                    Event::Cancelled { id, .. } | Event::Amended { id, .. } => owners
                        .iter()
                        .any(|(o, _)| *o == id)
                        .then(|| projector.book_of(id))
                        .flatten(),
                    _ => None,
                }),
                Command::AddParticipant { .. } => None,
            };
            if let Some((zone, interval)) = touched
                && let Some(d) = core.engine().depth(zone, interval, FEED_DEPTH_LEVELS)
            {
                books.push((zone, interval, d));
            }
        }
        let mut changes = Vec::new();
        projector.changes(&cmd, gateway, &events, &mut changes);
        if !changes.is_empty() && recorder.send(changes).is_err() {
            tracing::error!("the market recorder has stopped; the journal still holds every command");
        }
        let outcome = Arc::new(Outcome {
            at: now(),
            order_id,
            owner,
            events,
            owners,
            books,
        });
        let _ = feed.send(outcome.clone()); // no subscribers is fine
        Ok(outcome)
    };
    while let Some(req) = rx.blocking_recv() {
        metrics.engine_queue.set(rx.len() as i64);
        match req {
            Request::Submit(o, reply) => {
                let id = OrderId(projector.max_id + 1);
                projector.max_id = id.0;
                // an unknown owner gets node 0 and the engine rejects the order as `unknown_owner`
                let node = projector.nodes.get(&o.owner).copied().unwrap_or(NodeId(0));
                let cmd = Command::Submit {
                    at: now(),
                    order: OrderSpec {
                        id,
                        owner: o.owner,
                        node,
                        zone: o.zone,
                        interval: o.interval,
                        side: o.side,
                        quantity: o.quantity,
                        price: o.price,
                        tif: o.tif,
                        mode: o.mode,
                    },
                };
                let _ = reply.send(apply(
                    &mut core,
                    &mut projector,
                    cmd,
                    o.gateway,
                    Some(id),
                    Some(o.owner),
                ));
            }
            Request::Command(cmd, reply) => {
                let owner = match cmd {
                    Command::Cancel { owner, .. } | Command::Amend { owner, .. } => Some(owner),
                    _ => None,
                };
                let _ = reply.send(apply(&mut core, &mut projector, cmd, None, None, owner));
            }
            Request::Depth(zone, interval, levels, reply) => {
                let _ = reply.send(core.engine().depth(zone, interval, levels));
            }
            Request::Books(reply) => {
                let _ = reply.send(core.engine().books());
            }
            Request::Flush(reply) => {
                let _ = reply.send(core.flush());
            }
        }
    }
    if let Err(e) = core.flush() {
        tracing::error!(error = %e, "flushing the journal at shutdown");
    }
}

fn count(m: &crate::Metrics, cmd: &Command, events: &[Event]) {
    use crate::metrics::ResultLabels;
    let order_cmd = matches!(
        cmd,
        Command::Submit { .. } | Command::Cancel { .. } | Command::Amend { .. }
    );
    for e in events {
        match *e {
            Event::Accepted { .. } => {
                m.orders
                    .get_or_create(&ResultLabels {
                        result: "accepted".into(),
                    })
                    .inc();
            }
            Event::Rejected { reason, .. } if order_cmd => {
                m.orders
                    .get_or_create(&ResultLabels {
                        result: reason.code().to_owned(),
                    })
                    .inc();
            }
            Event::Trade { quantity, .. } => {
                m.trades.inc();
                m.traded_wh.inc_by(quantity.0.max(0) as u64);
            }
            Event::BookClosed { .. } => {
                m.gate_closures.inc();
            }
            _ => {}
        }
    }
}

/// Writes changes in bursts (everything queued goes in one transaction); a failing database is
/// retried with backoff and nothing is dropped.
async fn record(db: Db, mut rx: mpsc::UnboundedReceiver<Vec<Change>>) {
    while let Some(first) = rx.recv().await {
        let mut batch = first;
        while batch.len() < 5_000 {
            match rx.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        let mut wait = Duration::from_millis(100);
        while let Err(e) = orders::record(&db, &batch).await {
            tracing::warn!(error = %e, changes = batch.len(), "recording market changes failed; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(10));
        }
    }
}

/// Keeps books open for the next `horizon` intervals of `zones` and closes each gate on time.
/// `clock` gives "now" (the demo runs an accelerated one). Runs until the market stops.
pub async fn schedule(
    market: Market,
    zones: Vec<ZoneId>,
    rules: IntervalRules,
    horizon: usize,
    clock: impl Fn() -> Timestamp + Send + 'static,
    tick: Duration,
) {
    let mut opened: std::collections::BTreeSet<(ZoneId, DeliveryInterval)> = Default::default();
    if let Ok(books) = market.books().await {
        opened.extend(books.iter().filter(|b| b.open).map(|b| (b.zone, b.interval)));
    }
    loop {
        let t = clock();
        for iv in rules.first_open(t).iter_from(horizon) {
            for &zone in &zones {
                if opened.insert((zone, iv)) {
                    match market.command(Command::OpenBook { zone, interval: iv }).await {
                        Ok(_) => {}
                        Err(MarketError::Stopped) => return,
                        Err(e) => tracing::error!(error = %e, "opening a book"),
                    }
                }
            }
        }
        let due: Vec<_> = opened
            .iter()
            .filter(|(_, iv)| iv.gate_closure(&rules) <= t)
            .copied()
            .collect();
        for (zone, interval) in due {
            opened.remove(&(zone, interval));
            match market.command(Command::CloseGate { at: t, zone, interval }).await {
                Ok(o) => tracing::info!(%zone, %interval, events = o.events.len(), "gate closed"),
                Err(MarketError::Stopped) => return,
                Err(e) => tracing::error!(error = %e, "closing a gate"),
            }
        }
        tokio::time::sleep(tick).await;
    }
}

/// Registers participants with the engine (their feeder node decides grid fees and limits).
pub async fn add_participants(
    market: &Market,
    participants: impl IntoIterator<Item = (ParticipantId, NodeId)>,
) -> Result<(), MarketError> {
    for (owner, node) in participants {
        market.command(Command::AddParticipant { owner, node }).await?;
    }
    Ok(())
}

/// Path of the engine's journal in `dir`.
pub fn journal_path(dir: &Path) -> std::path::PathBuf {
    dir.join("engine.journal")
}
