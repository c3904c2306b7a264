//! The market handle: the matching engine on a thread of its own that owns all its state, a handle
//! the API and MQTT ingest share (one path into the engine), and a feed of what happened for
//! WebSocket and MQTT subscribers. What the engine did goes to the recorder (`recorder.rs`).
//!
//! ```text
//!  Market (handle, cloneable) ──request──▶ engine thread: journal ▶ apply ▶ reply
//!                                               ├──▶ feed (broadcast; a lagging subscriber loses its place, never slows the engine)
//!                                               └──▶ recorder task ──▶ storage::orders::record (one transaction per burst, retried)
//!  scheduler task: open the next books, close gates on time ──▶ same handle
//! ```
//!
//! **Group commit.** With `Durability::Group` the journal syncs many commands at once. The engine
//! thread holds each applied command's answer, database changes and feed entry until its
//! record is on disk: it syncs when the group is full, when the oldest waited `max_wait`, or as
//! soon as no request is waiting, so a lone order waits for one sync and a burst shares one.
//! Nothing a power cut could take back is ever acknowledged (to the API, or to a gateway as
//! stored), recorded or published.
//!
//! The journal is the truth. The database is a projection of it: on start the whole journal is
//! replayed through a scratch engine and every change is recorded again, idempotently, so a crash
//! between the journal write and the database write loses nothing. A command a gateway sent is
//! journaled with its [`Origin`] (the gateway, its envelope's sequence number, its order id), so
//! the replay records the order's gateway and the link from the gateway's order id, and the
//! market knows which of each gateway's messages it has taken ([`Market::intake_state`]):
//! a message sent again after a crash is not taken twice, and none is lost between the intake
//! taking it and the journal holding it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use gridshare_domain::envelope::ReplayWindow;
use gridshare_domain::{
    DeliveryInterval, GatewayId, MicroPerKwh, NodeId, OrderId, OrderMode, ParticipantId, Side, TimeInForce, Timestamp,
    Wh, ZoneId,
};
use gridshare_matching_engine::journal::{self, Durability, Journaled, Origin};
use gridshare_matching_engine::{
    BookSummary, Command, Depth, Engine, Event, GridFees, GridFeesError, MarketConfig, OrderSpec,
};
use gridshare_storage::Db;
use gridshare_storage::orders::{self, Change};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::clock::Clock;
use crate::recorder::{self, LiveOrder, Projector};

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
    /// Grid fees the engine would refuse to open a book with (the current fees are unchanged).
    #[error("grid fees refused: {0}")]
    GridFees(#[from] GridFeesError),
}

/// An order as a participant places it; the market assigns the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOrder {
    /// Owner.
    pub owner: ParticipantId,
    /// Where it came from, when a gateway sent it (MQTT): journaled with the order.
    pub origin: Option<Origin>,
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
    Command(
        Command,
        Option<Origin>,
        oneshot::Sender<Result<Arc<Outcome>, MarketError>>,
    ),
    IntakeState(oneshot::Sender<IntakeState>),
    Depth(ZoneId, DeliveryInterval, usize, oneshot::Sender<Option<Depth>>),
    Books(oneshot::Sender<Vec<BookSummary>>),
    CheckGridFees(GridFees, oneshot::Sender<Result<(), GridFeesError>>),
    Flush(oneshot::Sender<Result<(), MarketError>>),
}

/// The handle: cheap to clone, used by every producer of commands.
#[derive(Debug, Clone)]
pub struct Market {
    requests: mpsc::Sender<Request>,
    feed: broadcast::Sender<Arc<Outcome>>,
    clock: Clock,
    halted: Halt,
    /// The fees the next books open with (see [`Market::set_grid_fees`]).
    grid_fees: Arc<watch::Sender<Option<GridFees>>>,
}

/// Set once, when the journal could not be written: the market refuses every command from
/// then on (rather than let engine, journal and database drift apart) until a restart recovers
/// it from the journal.
type Halt = Arc<std::sync::OnceLock<String>>;

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
    /// The engine with its journal, and what is set when the journal fails.
    Journaled(Box<Journaled>, Halt),
}

impl Core {
    /// Applies `cmd`. `Err`: not applied (no events); the journal failed, now or before, and
    /// `halt` says why. A failure after the command was applied still gives its events (they are
    /// recorded, so the database matches the engine) and halts the market.
    fn apply(
        &mut self,
        origin: Option<&Origin>,
        cmd: &Command,
        out: &mut Vec<Event>,
        metrics: &crate::Metrics,
    ) -> Result<(), MarketError> {
        let (j, halt) = match self {
            Self::Memory(e) => {
                e.apply(cmd, out);
                return Ok(());
            }
            Self::Journaled(j, halt) => (j, halt),
        };
        let stop = |why: String| {
            if halt.set(why.clone()).is_ok() {
                metrics.journal_failed.set(1);
                tracing::error!(
                    error = %why,
                    "the engine's journal cannot be written: the market refuses every command until the service is restarted \
                     (free disk space or file handles, then restart; the journal holds everything applied)"
                );
            }
        };
        match j.apply_from(origin, cmd, out) {
            Ok(journal::AfterApply::Fine) => Ok(()),
            Ok(journal::AfterApply::SnapshotFailed(e)) => {
                tracing::warn!(error = %e, "no snapshot after a gate closure; the journal holds every command (the next start replays more)");
                Ok(())
            }
            Ok(journal::AfterApply::FlushFailed(e)) => {
                stop(e.to_string());
                Ok(())
            }
            Err(e) => {
                stop(e.to_string());
                Err(MarketError::Journal(format!(
                    "{e}; the command was not applied and the market takes no more until it is restarted"
                )))
            }
        }
    }
    fn engine(&self) -> &Engine {
        match self {
            Self::Memory(e) => e,
            Self::Journaled(j, _) => j.engine(),
        }
    }
    /// Every command applied is on disk (always, without a journal or with a sync per command;
    /// with group commit, once the group has been flushed).
    fn settled(&self) -> bool {
        match self {
            Self::Memory(_) => true,
            Self::Journaled(j, _) => j.durable() == j.appended(),
        }
    }
    fn flush(&mut self) -> Result<(), MarketError> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Journaled(j, _) => j.flush().map_err(|e| MarketError::Journal(e.to_string())),
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
        clock: Clock,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), MarketError> {
        Self::start_with_metrics(cfg, journal, db, clock, Arc::default()).await
    }

    /// [`Self::start`], counting orders, trades and gate closures in `metrics` (from the engine
    /// thread: atomic counters, exact, and never waiting).
    pub async fn start_with_metrics(
        cfg: MarketConfig,
        journal: Option<JournalConfig>,
        db: Db,
        clock: Clock,
        metrics: Arc<crate::Metrics>,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), MarketError> {
        let mut projector = Projector::default();
        let mut gateways = GatewayLedger::default();
        let halted = Halt::default();
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
                    let mut origins = recovered.origins.iter().peekable();
                    for (i, cmd) in recovered.commands.iter().enumerate() {
                        let origin = origins.next_if(|(at, _)| *at == i).map(|(_, o)| o);
                        events.clear();
                        scratch.apply(cmd, &mut events);
                        projector.changes(cmd, origin, &events, &mut changes);
                        gateways.note(origin, cmd, &events, &projector.live);
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
                if let Some(aside) = recovery.set_aside {
                    // the journal is the record; a snapshot only shortens the replay
                    tracing::error!(
                        reason = %aside.reason,
                        moved_to = %aside.moved_to.display(),
                        replayed = recovery.replayed,
                        "the engine's snapshot could not be used and was set aside; the market goes on from its whole \
                         journal (if the snapshot was ahead, the journal had lost commands: look for a restored or \
                         unsynced journal file)"
                    );
                }
                Core::Journaled(Box::new(j), halted.clone())
            }
        };
        projector.max_id = projector.max_id.max(orders::max_id(&db).await?.map_or(0, |o| o.0));
        let (requests, rx) = mpsc::channel(1024);
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        let (to_recorder, from_engine) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(recorder::record(db, from_engine));
        let feed_tx = feed.clone();
        let engine_clock = clock.clone();
        std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || {
                let engine = EngineState {
                    core,
                    projector,
                    gateways,
                };
                run_engine(engine, rx, feed_tx, to_recorder, &metrics, &engine_clock);
            })
            .map_err(|e| MarketError::Recovery(format!("cannot start the engine thread: {e}")))?;
        Ok((
            Self {
                requests,
                feed,
                clock,
                halted,
                grid_fees: Arc::new(watch::Sender::new(None)),
            },
            recorder,
        ))
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
        self.ask(|tx| Request::Command(cmd, None, tx)).await?
    }

    /// [`Self::command`] for a command a gateway sent (a cancel): its origin is journaled with it.
    pub async fn command_from(&self, origin: Origin, cmd: Command) -> Result<Arc<Outcome>, MarketError> {
        self.ask(|tx| Request::Command(cmd, Some(origin), tx)).await?
    }

    /// What the journal says of the gateways' messages, for the MQTT intake to start from: the
    /// sequence numbers of the messages whose commands it holds (the whole journal's and this
    /// run's) and the gateways' ids of their open orders. The intake merges the windows into its
    /// own, so a message it took just before a crash, whose window it had not stored yet, is not
    /// taken again, and it answers cancels and fills under the gateways' ids.
    pub async fn intake_state(&self) -> Result<IntakeState, MarketError> {
        self.ask(Request::IntakeState).await
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

    /// The grid fees books open with from now on: `None` (the default at start) charges the
    /// feeder tree's per-edge fees; `Some` charges `per_kwh + per_hop × hops` (see
    /// [`GridFees`]). The scheduler reads this each time it opens a book.
    pub fn grid_fees(&self) -> Option<GridFees> {
        *self.grid_fees.borrow()
    }

    /// Changes the grid fees (governance changed `GridParameters` on chain). The change applies to
    /// books opened **from now on**, as issue 22 rules: a book already open — including the
    /// later intervals the scheduler keeps open ahead — keeps the fees it opened with until its
    /// gate closes. Fees the engine would refuse (negative, above [`GridFees::MAX`], or a largest
    /// fee beyond the market's price range) are refused here and the current fees stay. The
    /// setting is not persisted: after a restart it is `None` until set again, so set it before
    /// the scheduler starts.
    pub async fn set_grid_fees(&self, fees: Option<GridFees>) -> Result<(), MarketError> {
        if let Some(f) = fees {
            self.ask(|tx| Request::CheckGridFees(f, tx)).await??;
        }
        self.grid_fees.send_replace(fees);
        Ok(())
    }

    /// Every change of the grid fees from now on (the value is what [`Self::grid_fees`] returns).
    pub fn watch_grid_fees(&self) -> watch::Receiver<Option<GridFees>> {
        self.grid_fees.subscribe()
    }

    /// Writes the journal to disk (shutdown).
    pub async fn flush(&self) -> Result<(), MarketError> {
        self.ask(Request::Flush).await?
    }

    /// Why the market refuses every command, if its journal could not be written (see
    /// [`MarketError::Journal`]); `None` while it runs normally.
    pub fn halted(&self) -> Option<&str> {
        self.halted.get().map(String::as_str)
    }

    /// The market's clock (what "now" is for its books, gates and stamps).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Everything that happens from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Outcome>> {
        self.feed.subscribe()
    }
}

/// See [`Market::intake_state`].
#[derive(Debug, Clone, Default)]
pub struct IntakeState {
    /// Per gateway, the sequence numbers of its commands in the journal.
    pub windows: HashMap<GatewayId, ReplayWindow>,
    /// Open orders a gateway sent: (gateway, its id for the order, the market's id).
    pub links: Vec<(GatewayId, OrderId, OrderId)>,
}

/// What the engine thread owns.
struct EngineState {
    core: Core,
    projector: Projector,
    gateways: GatewayLedger,
}

/// What the journal says of the gateways' messages (see [`Market::intake_state`]).
#[derive(Debug, Default)]
struct GatewayLedger {
    /// Per gateway, the sequence numbers of its commands in the journal.
    journaled: HashMap<GatewayId, ReplayWindow>,
    /// (gateway, its order id) → the market's, for the orders gateways sent (pruned of orders
    /// no longer open at every gate closure).
    links: HashMap<(GatewayId, OrderId), OrderId>,
}

impl GatewayLedger {
    /// Notes what a command a gateway sent leaves behind: its sequence number, and the link to
    /// an order it placed. `live`: the orders open after it.
    fn note(&mut self, origin: Option<&Origin>, cmd: &Command, events: &[Event], live: &HashMap<OrderId, LiveOrder>) {
        if let Some(o) = origin {
            let w = self.journaled.entry(o.gateway).or_default();
            // one far behind the newest is outside every window already
            if o.seq > w.highest || w.highest - o.seq < ReplayWindow::WIDTH {
                w.record(o.seq);
            }
            if let Command::Submit { order, .. } = cmd
                && events
                    .iter()
                    .any(|e| matches!(e, Event::Accepted { id } if *id == order.id))
            {
                self.links.insert((o.gateway, o.client_order_id), order.id);
            }
        }
        if matches!(cmd, Command::CloseGate { .. }) {
            self.links.retain(|_, id| live.contains_key(id));
        }
    }

    fn intake_state(&self, live: &HashMap<OrderId, LiveOrder>) -> IntakeState {
        IntakeState {
            windows: self.journaled.clone(),
            links: self
                .links
                .iter()
                .filter(|(_, id)| live.contains_key(id))
                .map(|(&(g, client), &id)| (g, client, id))
                .collect(),
        }
    }
}

fn run_engine(
    engine: EngineState,
    mut rx: mpsc::Receiver<Request>,
    feed: broadcast::Sender<Arc<Outcome>>,
    recorder: mpsc::UnboundedSender<Vec<Change>>,
    metrics: &crate::Metrics,
    clock: &Clock,
) {
    let EngineState {
        mut core,
        mut projector,
        mut gateways,
    } = engine;
    let apply = |core: &mut Core,
                 projector: &mut Projector,
                 gateways: &mut GatewayLedger,
                 cmd: Command,
                 origin: Option<Origin>,
                 order_id,
                 owner|
     -> Result<(Arc<Outcome>, Vec<Change>), MarketError> {
        let mut events = Vec::new();
        core.apply(origin.as_ref(), &cmd, &mut events, metrics)?;
        let owners = projector.owners(&cmd, &events);
        count(metrics, &cmd, &events);
        let mut books = Vec::new();
        if feed.receiver_count() > 0 {
            let touched = match cmd {
                Command::Submit { order, .. } => Some((order.zone, order.interval)),
                Command::CloseGate { zone, interval, .. } | Command::OpenBook { zone, interval, .. } => {
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
        projector.changes(&cmd, origin.as_ref(), &events, &mut changes);
        gateways.note(origin.as_ref(), &cmd, &events, &projector.live);
        let outcome = Arc::new(Outcome {
            at: clock.now(),
            order_id,
            owner,
            events,
            owners,
            books,
        });
        Ok((outcome, changes))
    };
    // Commands applied but not yet on disk (group commit), answered once they are.
    let mut held: Vec<Held> = Vec::new();
    let release = |held: &mut Vec<Held>| {
        for h in held.drain(..) {
            if !h.changes.is_empty() && recorder.send(h.changes).is_err() {
                tracing::error!("the market recorder has stopped; the journal still holds every command");
            }
            let _ = feed.send(h.outcome.clone()); // no subscribers is fine
            let _ = h.reply.send(Ok(h.outcome));
        }
    };
    loop {
        let req = if held.is_empty() {
            match rx.blocking_recv() {
                Some(req) => req,
                None => break,
            }
        } else {
            match rx.try_recv() {
                Ok(req) => req,
                Err(idle) => {
                    // nothing more waiting: one fdatasync for every command held, then answers
                    if let Err(e) = core.flush() {
                        tracing::error!(error = %e, "flushing the journal");
                    }
                    release(&mut held);
                    if idle == mpsc::error::TryRecvError::Disconnected {
                        break;
                    }
                    continue;
                }
            }
        };
        metrics.engine_queue.set(rx.len() as i64);
        let mut settle = |applied: Result<(Arc<Outcome>, Vec<Change>), MarketError>,
                          reply: oneshot::Sender<Result<Arc<Outcome>, MarketError>>,
                          core: &Core| {
            match applied {
                // not applied: nothing to wait for
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
                Ok((outcome, changes)) => {
                    held.push(Held {
                        changes,
                        outcome,
                        reply,
                    });
                    if core.settled() {
                        release(&mut held);
                    }
                }
            }
        };
        match req {
            Request::Submit(o, reply) => {
                let id = OrderId(projector.max_id + 1);
                projector.max_id = id.0;
                // an unknown owner gets node 0 and the engine rejects the order as `unknown_owner`
                let node = projector.nodes.get(&o.owner).copied().unwrap_or(NodeId(0));
                let cmd = Command::Submit {
                    at: clock.now(),
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
                let applied = apply(
                    &mut core,
                    &mut projector,
                    &mut gateways,
                    cmd,
                    o.origin,
                    Some(id),
                    Some(o.owner),
                );
                settle(applied, reply, &core);
            }
            Request::Command(cmd, origin, reply) => {
                let owner = match cmd {
                    Command::Cancel { owner, .. } | Command::Amend { owner, .. } => Some(owner),
                    _ => None,
                };
                let applied = apply(&mut core, &mut projector, &mut gateways, cmd, origin, None, owner);
                settle(applied, reply, &core);
            }
            Request::IntakeState(reply) => {
                let _ = reply.send(gateways.intake_state(&projector.live));
            }
            Request::Depth(zone, interval, levels, reply) => {
                let _ = reply.send(core.engine().depth(zone, interval, levels));
            }
            Request::Books(reply) => {
                let _ = reply.send(core.engine().books());
            }
            Request::CheckGridFees(fees, reply) => {
                let _ = reply.send(core.engine().check_grid_fees(&fees));
            }
            Request::Flush(reply) => {
                let flushed = core.flush();
                release(&mut held);
                let _ = reply.send(flushed);
            }
        }
    }
    if let Err(e) = core.flush() {
        tracing::error!(error = %e, "flushing the journal at shutdown");
    }
    release(&mut held);
}

/// A command the engine applied whose journal record is not yet on disk: its changes, its
/// outcome and its answer wait until it is (group commit), so nothing is acknowledged, recorded
/// or published that a power cut could take back.
struct Held {
    changes: Vec<Change>,
    outcome: Arc<Outcome>,
    reply: oneshot::Sender<Result<Arc<Outcome>, MarketError>>,
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
/// Path of the engine's journal in `dir`.
pub fn journal_path(dir: &Path) -> std::path::PathBuf {
    dir.join("engine.journal")
}
