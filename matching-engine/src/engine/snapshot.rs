//! The engine's whole state as a serialisable [`Snapshot`], and an engine rebuilt from one.

use super::*;

/// The engine's whole state, in a stable, serialisable form: what recovery
/// loads before replaying the journal tail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Format version (1).
    pub version: u32,
    /// How many journal commands this state includes.
    pub journal_commands: u64,
    /// Participants and their nodes, by id.
    pub participants: Vec<(ParticipantId, NodeId)>,
    /// Books in the order they were opened.
    pub books: Vec<BookSnapshot>,
    /// Live orders in time priority (arrival) order.
    pub orders: Vec<OrderSnapshot>,
    /// Last time-priority sequence number used.
    pub seq: u64,
    /// Next trade id.
    pub next_trade: u64,
}

/// A book as [`Engine::books`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookSummary {
    /// Zone.
    pub zone: ZoneId,
    /// Delivery interval.
    pub interval: DeliveryInterval,
    /// The grid fees it charges for its whole life; `None`: the feeder tree's per-edge fees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fees: Option<GridFees>,
    /// Still accepting orders (gate not closed).
    pub open: bool,
    /// Trades so far.
    pub trades: u32,
    /// Energy traded so far.
    pub volume: Wh,
}

/// Aggregated depth of one book ([`Engine::depth`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Depth {
    /// Still accepting orders.
    pub open: bool,
    /// (price, total quantity), highest price first.
    pub bids: Vec<(MicroPerKwh, Wh)>,
    /// (price, total quantity), lowest price first.
    pub asks: Vec<(MicroPerKwh, Wh)>,
}

/// One book in a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookSnapshot {
    /// Zone.
    pub zone: ZoneId,
    /// Interval.
    pub interval: DeliveryInterval,
    /// The grid fees it opened with (absent: the tree's per-edge fees; snapshots written
    /// before books had fees read as absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fees: Option<GridFees>,
    /// Still accepting orders.
    pub open: bool,
    /// Trades so far.
    pub trades: u32,
    /// Energy traded so far.
    pub volume: Wh,
    /// Net flow per feeder edge (dense node order), empty without a network.
    pub flows: Vec<i64>,
}

/// One live order in a [`Snapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSnapshot {
    /// Id.
    pub id: OrderId,
    /// Owner (its node comes from the participant list).
    pub owner: ParticipantId,
    /// Index into [`Snapshot::books`].
    pub book: u32,
    /// Side.
    pub side: Side,
    /// Limit.
    pub price: MicroPerKwh,
    /// Remaining quantity.
    pub quantity: Wh,
    /// Time-priority sequence number.
    pub seq: u64,
    /// Auction-only.
    pub auction_only: bool,
}

/// A snapshot that does not fit the configuration it is restored with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The configuration itself is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Version, book, owner, price or flow data that does not fit.
    #[error("snapshot does not fit this market: {0}")]
    Mismatch(String),
}

impl Engine {
    /// The current state, to be saved at gate closure; `journal_commands`
    /// is how many journal records it covers.
    pub fn snapshot(&self, journal_commands: u64) -> Snapshot {
        let mut participants: Vec<_> = self.owners.iter().map(|(p, n)| (*p, *n)).collect();
        participants.sort();
        let books = self
            .books
            .iter()
            .map(|b| BookSnapshot {
                zone: b.zone,
                interval: b.interval,
                fees: b.fees,
                open: b.open,
                trades: b.trades,
                volume: Wh(b.volume),
                flows: b.flows.clone(),
            })
            .collect();
        let mut orders: Vec<OrderSnapshot> = self
            .slots
            .iter()
            .enumerate()
            .filter(|&(i, s)| self.slot_of(s.id) == Some(i as u32))
            .map(|(_, s)| s)
            .map(|s| OrderSnapshot {
                id: s.id,
                owner: s.owner,
                book: s.book,
                side: s.side,
                price: MicroPerKwh(self.price_of(s.tick)),
                quantity: Wh(s.qty),
                seq: s.seq,
                auction_only: s.auction_only,
            })
            .collect();
        orders.sort_by_key(|o| o.seq);
        Snapshot {
            version: 1,
            journal_commands,
            participants,
            books,
            orders,
            seq: self.seq,
            next_trade: self.next_trade,
        }
    }

    /// Rebuild an engine from a snapshot taken under the same configuration.
    pub fn restore(cfg: MarketConfig, snap: &Snapshot) -> Result<Self, SnapshotError> {
        let bad = |m: String| SnapshotError::Mismatch(m);
        if snap.version != 1 {
            return Err(bad(format!("version {}", snap.version)));
        }
        let mut e = Self::new(cfg)?;
        for &(owner, node) in &snap.participants {
            if e.network.as_ref().is_some_and(|n| n.index_of(node).is_none()) {
                return Err(bad(format!("{owner} at unknown node {node}")));
            }
            e.owners.insert(owner, node);
        }
        for (i, b) in snap.books.iter().enumerate() {
            if b.flows.len() != e.scratch_flows.len() {
                return Err(bad(format!(
                    "book {i} has {} flows for {} nodes",
                    b.flows.len(),
                    e.scratch_flows.len()
                )));
            }
            if let Some(f) = &b.fees {
                e.check_grid_fees(f).map_err(|err| bad(format!("book {i}: {err}")))?;
            }
            let pos = e
                .find_book(b.zone, b.interval)
                .err()
                .ok_or_else(|| bad(format!("book {i} twice")))?;
            let ladder = || {
                if b.open {
                    Ladder::new(e.ticks)
                } else {
                    Ladder::default()
                }
            };
            e.books.push(Book {
                zone: b.zone,
                interval: b.interval,
                fees: b.fees,
                open: b.open,
                bids: ladder(),
                asks: ladder(),
                auction_bids: ladder(),
                auction_asks: ladder(),
                flows: b.flows.clone(),
                trades: b.trades,
                volume: b.volume.0,
                // The snapshot does not say; a re-match pass after the next trade finds out.
                blocked: b.open,
            });
            let (z, start, minutes) = book_key(b.zone, b.interval);
            e.lookup.insert(pos, (z, start, minutes, i as u32));
        }
        // Orders come in arrival order, so pushing each to the back of its
        // level rebuilds every queue exactly.
        for o in &snap.orders {
            let book = e
                .books
                .get(o.book as usize)
                .ok_or_else(|| bad(format!("order {} in book {}", o.id, o.book)))?;
            if !book.open {
                return Err(bad(format!("order {} rests in a closed book", o.id)));
            }
            let tick = e.tick_of(o.price).map_err(|r| bad(format!("order {}: {r:?}", o.id)))?;
            let node_id = *e
                .owners
                .get(&o.owner)
                .ok_or_else(|| bad(format!("order {}: unknown owner", o.id)))?;
            let node = match &e.network {
                Some(n) => n
                    .index_of(node_id)
                    .ok_or_else(|| bad(format!("order {}: node", o.id)))?,
                None => 0,
            };
            let slot = e.alloc(Slot {
                id: o.id,
                owner: o.owner,
                node,
                book: o.book,
                tick,
                qty: o.quantity.0,
                seq: o.seq,
                prev: NIL,
                next: NIL,
                side: o.side,
                auction_only: o.auction_only,
            });
            if !e.index_insert(o.id, slot) {
                return Err(bad(format!("order {} twice or over capacity", o.id)));
            }
            e.rest(slot);
        }
        e.seq = snap.seq;
        e.next_trade = snap.next_trade;
        Ok(e)
    }
}
