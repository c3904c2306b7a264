//! The gate-closure auction under a feeder tree: the clearing that maximises total surplus
//! (what buyers were willing to pay, minus what sellers asked, minus the path fees, over the
//! matched Wh) within every edge's room in both directions, and a price per node.
//!
//! # Algorithm: supply and demand curves merged up the tree
//! Let `W_v(x)` be the most surplus the orders of node `v`'s subtree can make when `x` Wh net
//! leave the subtree through the edge above it (negative: arrive). It is concave, piecewise
//! linear, and described by its left end `x_min` (every bid filled, no ask: `x_min = −Σ bids`)
//! and its unit steps in order: moving right by one Wh either fills one more Wh of an ask at
//! price `a` or gives up one Wh of a bid at price `b`, cheapest first, so the steps are the
//! orders' prices in ascending order, kept as *pieces* (price, Wh, origin).
//! - Two parts of a subtree side by side: the best split of `x` between them (a
//!   sup-convolution), which for concave curves is the merge of their pieces and the sum of
//!   their left ends.
//! - Across the edge above a child (fee `f`, room `u` up and `d` down after the book's
//!   continuous trades): a Wh that leaves the child costs its piece's price plus `f` at the
//!   parent, and a Wh that arrives is worth its piece's price minus `f`; so the pieces right of
//!   `x = 0` are raised by `f`, those left of it lowered by `f` (a piece straddling 0 is split),
//!   and the curve is cut to `[−d, u]`.
//! - At the root nothing leaves: the optimum is `W_root(0)`. Taking the first `−x_min` Wh of
//!   the root's pieces says how much each child sends up (or takes down), and the same step
//!   in each child, top-down, gives every order's fill.
//!
//! This is the tree case of min-cost flow; with `n` orders and a tree of depth `h` it costs
//! O(n·h) piece copies and one merge-sort of presorted runs per node, so O(n·h·log n).
//!
//! # Prices per node
//! A node's price is the value of one more Wh there. At the root it lies between the last
//! Wh taken and the next one (`lo + k·(hi − lo)` with `auction_k_permille`, on the tick grid
//! when both ends are on it). Below, a subtree that sends `y` Wh up has its parent's price
//! minus the fee (plus, for one that takes Wh down), unless the edge is full, when the
//! subtree's own curve sets it: the value nearest the parent's that the curve allows. So
//! every filled order is at or inside its limit at its node's price, every Wh left unfilled
//! would not trade at it, and where no edge is full neighbouring prices differ by exactly
//! the fee on the edge the energy crosses.
//!
//! A trade pays the seller its node's price; its `grid_fee` is the buyer's node price minus
//! the seller's: the path fee, plus the congestion charge of each full edge on the path
//! (collected with the fee).
//!
//! # A book's own grid fees
//! In a book opened with [`GridFees`] every edge's fee is `per_hop`, and every trade pays
//! `per_kwh` besides, wherever its ends are: a bid of limit `b` is worth `b − per_kwh` to the
//! market, so its pieces enter its node's curve at that price and prices are in sellers'
//! terms. A buyer pays its node's price plus `per_kwh`, and a trade's `grid_fee` is the
//! difference of node prices plus `per_kwh`. Trades are formed bottom-up — each node pairs what its subtree
//! sells with what it buys before passing the rest up — so no trade crosses an edge against
//! that edge's net flow.
//!
//! # Ties
//! Pieces of one price: asks' before bids' (so among optimal outcomes the one with the most
//! volume), older asks filled first and newer bids given up first (time priority at the
//! margin). Everything is integer and ordered by keys that never tie, so the outcome is
//! deterministic.

use super::*;

/// Origin tag of a piece that came from a child node (the child's dense index in the low bits).
const CHILD: u32 = 1 << 31;

/// A run of Wh at one price in a node's curve.
#[derive(Debug, Clone, Copy)]
struct Piece {
    /// The price in this node's frame (the order's limit, moved by the fees on the way up).
    price: i64,
    /// 0 for an ask's Wh, 1 for a bid's: at one price, asks' come first.
    rank: u8,
    /// The order's sequence number for an ask, its complement for a bid.
    tie: u64,
    /// Wh.
    qty: i64,
    /// The order (index into bids, then asks) for a piece of this node, `CHILD | node` for one
    /// that came up from a child.
    src: u32,
}

impl Piece {
    #[inline]
    fn key(&self) -> (i64, u8, u64) {
        (self.price, self.rank, self.tie)
    }
}

/// One node's price and the auction's flow on the edge above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NodeOutcome {
    /// The node's price; `None` where no order and no edge gives it one (an empty part of the
    /// tree cut off by full edges).
    pub price: Option<i64>,
    /// Wh the auction sends up the edge above (negative: down); 0 at the root.
    pub flow: i64,
    /// How far the price difference across the edge above exceeds its fee (0 where the edge
    /// is not full).
    pub congestion: i64,
}

impl Engine {
    /// The network auction for book `book_i`: its trades and node prices emitted, `bids` and
    /// `asks` (each `(slot, remaining)`, sorted by priority) left with what is unmatched.
    /// Returns the root's price (none when nothing traded at its level) and the volume.
    pub(super) fn clear_network(
        &mut self,
        at: Timestamp,
        book_i: usize,
        bids: &mut [(u32, i64)],
        asks: &mut [(u32, i64)],
        out: &mut impl EventSink,
    ) -> (Option<MicroPerKwh>, i64) {
        let Some(net) = self.network.as_ref() else {
            return (None, 0);
        };
        let flows = &self.books[book_i].flows;
        let fees = self.books[book_i].fees;
        // The fee on the edge above a node, and what every trade pays besides.
        let edge_fee = |v: u32| fees.map_or_else(|| net.fee(v), |f| f.per_hop.0);
        let flat = Self::least_fee(fees);
        let n = net.len();
        let nb = bids.len();

        // Bottom-up: each node's curve, handed to its parent across the edge.
        let mut pieces: Vec<Vec<Piece>> = vec![Vec::new(); n];
        let mut x_min = vec![0i64; n];
        for (i, &(slot, qty)) in bids.iter().enumerate() {
            let s = &self.slots[slot as usize];
            pieces[s.node as usize].push(Piece {
                price: self.price_of(s.tick) - flat,
                rank: 1,
                tie: !s.seq,
                qty,
                src: i as u32,
            });
            x_min[s.node as usize] -= qty;
        }
        for (j, &(slot, qty)) in asks.iter().enumerate() {
            let s = &self.slots[slot as usize];
            pieces[s.node as usize].push(Piece {
                price: self.price_of(s.tick),
                rank: 0,
                tie: s.seq,
                qty,
                src: (nb + j) as u32,
            });
        }
        let mut cut_min = vec![0i64; n]; // a child's left end after the cut, in its parent's frame
        let mut room = vec![(0i64, 0i64); n]; // (down, up) above each node
        for &v in net.bottom_up() {
            let v = v as usize;
            let mut list = std::mem::take(&mut pieces[v]);
            list.sort_by_key(Piece::key); // stable; the runs from each child are already sorted
            if let Some(p) = net.parent(v as u32) {
                let f = edge_fee(v as u32);
                let (down, up) = (
                    net.edge_room(v as u32, false, flows),
                    net.edge_room(v as u32, true, flows),
                );
                room[v] = (down, up);
                let (lo, hi) = (-down, up);
                let mut x = x_min[v];
                cut_min[v] = x.max(lo);
                x_min[p as usize] += cut_min[v];
                for pc in &list {
                    let (a, b) = (x, x + pc.qty);
                    x = b;
                    for (s, e, price) in [(a, b.min(0), pc.price - f), (a.max(0), b, pc.price + f)] {
                        let (s, e) = (s.max(lo), e.min(hi));
                        if e > s {
                            pieces[p as usize].push(Piece {
                                price,
                                qty: e - s,
                                src: CHILD | v as u32,
                                ..*pc
                            });
                        }
                    }
                }
            }
            pieces[v] = list;
        }

        // Top-down: how much each node takes of its curve, its margin and its price.
        let mut taken = vec![0i64; nb + asks.len()];
        let mut child_taken = vec![0i64; n];
        let mut target = vec![0i64; n];
        let mut price: Vec<Option<i64>> = vec![None; n];
        let mut outcome = vec![
            NodeOutcome {
                price: None,
                flow: 0,
                congestion: 0
            };
            n
        ];
        for &v in net.bottom_up().iter().rev() {
            let v = v as usize;
            let parent = net.parent(v as u32).map(|p| p as usize);
            if parent.is_some() {
                target[v] = cut_min[v] + child_taken[v];
            }
            let mut need = target[v] - x_min[v];
            let (mut last, mut next) = (None, None);
            for pc in &pieces[v] {
                if need == 0 {
                    next = Some(pc.price);
                    break;
                }
                let t = need.min(pc.qty);
                need -= t;
                if pc.src & CHILD != 0 {
                    child_taken[(pc.src & !CHILD) as usize] += t;
                } else {
                    taken[pc.src as usize] += t;
                }
                last = Some(pc.price);
                if t < pc.qty {
                    next = Some(pc.price);
                    break;
                }
            }
            debug_assert_eq!(need, 0, "a node's target lies within its curve");
            outcome[v].flow = target[v];
            price[v] = match parent.and_then(|p| price[p]) {
                // the root, or a node below one whose curve was empty (nothing could cross
                // the edges between them): its own margin alone sets its price
                None => self.root_price(last, next),
                Some(pp) => Some({
                    let f = edge_fee(v as u32);
                    let (down, up) = room[v];
                    let y = target[v];
                    const INF: i64 = i64::MAX / 4;
                    // What the edge asks of this node's price, given the parent's.
                    let (band_lo, band_hi) = match y {
                        y if y > 0 => (if y < up { pp - f } else { -INF }, pp - f),
                        y if y < 0 => (pp + f, if -y < down { pp + f } else { INF }),
                        _ => (if up > 0 { pp - f } else { -INF }, if down > 0 { pp + f } else { INF }),
                    };
                    // What the node's own curve allows at its target.
                    let (own_lo, own_hi) = (last.unwrap_or(-INF), next.unwrap_or(INF));
                    let (lo, hi) = (band_lo.max(own_lo), band_hi.min(own_hi));
                    debug_assert!(lo <= hi, "node {v}: band {band_lo}..{band_hi}, own {own_lo}..{own_hi}");
                    let pv = pp.clamp(lo, hi.max(lo));
                    outcome[v].congestion = ((pv - pp).abs() - f).max(0);
                    pv
                }),
            };
            outcome[v].price = price[v];
        }

        // Fills, then trades formed bottom-up.
        let mut supply: Vec<Vec<(u32, i64)>> = vec![Vec::new(); n];
        let mut demand: Vec<Vec<(u32, i64)>> = vec![Vec::new(); n];
        for (i, bid) in bids.iter_mut().enumerate() {
            let fill = bid.1 - taken[i];
            if fill > 0 {
                demand[self.slots[bid.0 as usize].node as usize].push((bid.0, fill));
            }
            bid.1 = taken[i];
        }
        for (j, ask) in asks.iter_mut().enumerate() {
            let fill = taken[nb + j];
            if fill > 0 {
                supply[self.slots[ask.0 as usize].node as usize].push((ask.0, fill));
            }
            ask.1 -= fill;
        }
        let mut pairs: Vec<(u32, u32, i64)> = Vec::new();
        for &v in net.bottom_up() {
            let v = v as usize;
            let (mut s, mut d) = (std::mem::take(&mut supply[v]), std::mem::take(&mut demand[v]));
            let (mut i, mut j) = (0, 0);
            while i < s.len() && j < d.len() {
                let q = s[i].1.min(d[j].1);
                debug_assert_ne!(
                    self.slots[s[i].0 as usize].owner, self.slots[d[j].0 as usize].owner,
                    "an owner's filled buy and sell would cross: refused when they rested"
                );
                pairs.push((d[j].0, s[i].0, q));
                s[i].1 -= q;
                d[j].1 -= q;
                i += usize::from(s[i].1 == 0);
                j += usize::from(d[j].1 == 0);
            }
            match net.parent(v as u32) {
                Some(p) => {
                    supply[p as usize].extend_from_slice(&s[i..]);
                    demand[p as usize].extend_from_slice(&d[j..]);
                }
                None => debug_assert!(i == s.len() && j == d.len(), "the root balances"),
            }
        }
        if pairs.is_empty() {
            return (None, 0);
        }
        let mut volume = 0;
        #[allow(clippy::unreachable)] // a filled order's Wh is a piece of its node's curve
        for (buy, sell, q) in pairs {
            let (b, s) = (self.slots[buy as usize], self.slots[sell as usize]);
            let (Some(pb), Some(ps)) = (outcome[b.node as usize].price, outcome[s.node as usize].price) else {
                unreachable!("a node with a filled order has a margin, so a price");
            };
            let grid_fee = pb - ps + flat;
            debug_assert!(
                grid_fee >= self.fee_between(fees, s.node, b.node),
                "node prices cover the path fee"
            );
            self.execute(at, book_i, &b, &s, q, ps, grid_fee, true, out);
            volume += q;
        }
        let Some(net) = self.network.as_ref() else {
            return (None, volume);
        };
        let (zone, interval) = (self.books[book_i].zone, self.books[book_i].interval);
        for (i, o) in outcome.iter().enumerate() {
            if let Some(price) = o.price {
                out.push(Event::NodePrice {
                    zone,
                    interval,
                    node: net.id_of(i as u32),
                    price: MicroPerKwh(price),
                    flow: Wh(o.flow),
                    congestion: MicroPerKwh(o.congestion),
                });
            }
        }
        let root = net.bottom_up().last().and_then(|&r| outcome[r as usize].price);
        (root.map(MicroPerKwh), volume)
    }

    /// The root's price between the last Wh taken (`lo`) and the next (`hi`):
    /// `lo + k·(hi − lo)`, on the tick grid when both ends are on it.
    fn root_price(&self, lo: Option<i64>, hi: Option<i64>) -> Option<i64> {
        let (lo, hi) = match (lo, hi) {
            (None, None) => return None,
            (Some(l), None) => return Some(l),
            (None, Some(h)) => return Some(h),
            (Some(l), Some(h)) => (l, h.max(l)),
        };
        let k = i128::from(self.cfg.auction_k_permille);
        let (tick, base) = (self.cfg.tick.0, self.cfg.min_price.0);
        let step = if (lo - base) % tick == 0 && (hi - base) % tick == 0 {
            tick
        } else {
            1
        };
        let span = i128::from((hi - lo) / step);
        Some(lo + step * ((k * span + 500) / 1000) as i64)
    }
}
