//! Fair queueing of gateway publishes: one queue per gateway, served in turn, so that one
//! gateway's flood waits behind itself and not in front of its neighbours' orders.
//!
//! ```text
//! broker ─▶ pump ─push(lane)─▶ [gw 7: ▮▮▮▮▮▮▮▮] ─┐
//!                              [gw 8: ▮]         ├─ pop: one from each lane in turn ─▶ checks
//!                              [other: ▮▮]      ─┘
//! ```
//!
//! The connection task pushes every publish at once (so acknowledgements and answers keep
//! flowing however busy the intake is), into the lane of the gateway its topic names; a publish
//! whose topic names none goes into one shared lane. The intake pops one publish from each
//! non-empty lane in turn (round robin). Each lane holds at most [`Limits::lane_messages`]
//! publishes and [`Limits::lane_bytes`] bytes, all lanes together [`Limits::total_bytes`]: past
//! that a publish is refused ([`Refused`]) and counted by the caller. Nothing is lost by that:
//! a refused publish is not receipted, and its gateway sends it again (a well-behaved gateway
//! has at most a window of 32 messages unreceipted, well inside a lane).
//!
//! A gateway's login may publish only on its own topics (the broker's access control), so a
//! flooder fills only its own lane, or the shared one with topics that are not a gateway's.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use gridshare_domain::GatewayId;
use tokio::sync::Notify;

/// Bounds of a [`FairQueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Publishes waiting per lane.
    pub lane_messages: usize,
    /// Bytes waiting per lane.
    pub lane_bytes: usize,
    /// Bytes waiting in all lanes.
    pub total_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // eight times a gateway's window of unreceipted messages
            lane_messages: 256,
            lane_bytes: 1 << 20,
            total_bytes: 128 << 20,
        }
    }
}

/// Why a publish was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Its lane is full: its gateway sends faster than the market takes.
    #[error("the gateway's intake queue is full")]
    LaneFull,
    /// All lanes together are full.
    #[error("the intake queue is full")]
    Full,
}

impl Refused {
    /// Stable reason code for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Self::LaneFull => "lane_full",
            Self::Full => "intake_full",
        }
    }
}

/// Whose lane a publish goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// The gateway its topic names.
    Gateway(GatewayId),
    /// Topics that name no gateway.
    Other,
}

#[derive(Debug)]
struct Inner<T> {
    lanes: HashMap<Lane, VecDeque<(T, usize)>>,
    /// Non-empty lanes, in the order they are served.
    turn: VecDeque<Lane>,
    bytes: usize,
    /// Bytes waiting per lane.
    lane_bytes: HashMap<Lane, usize>,
}

/// Per-gateway queues served in turn (see the module documentation). Push from one task, pop
/// from another.
#[derive(Debug)]
pub struct FairQueue<T> {
    inner: Mutex<Inner<T>>,
    ready: Notify,
    limits: Limits,
}

impl<T> FairQueue<T> {
    /// An empty queue.
    pub fn new(limits: Limits) -> Self {
        Self {
            inner: Mutex::new(Inner {
                lanes: HashMap::new(),
                turn: VecDeque::new(),
                bytes: 0,
                lane_bytes: HashMap::new(),
            }),
            ready: Notify::new(),
            limits,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        // the lock guards plain collections and is never held across a panic point that leaves
        // them inconsistent, so a poisoned lock's data is still good
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `item` (of `size` bytes) in `lane`, or refuses it when its lane or the queue is full.
    pub fn push(&self, lane: Lane, item: T, size: usize) -> Result<(), Refused> {
        {
            let mut inner = self.lock();
            let Inner {
                lanes,
                turn,
                bytes,
                lane_bytes,
            } = &mut *inner;
            let queue = lanes.entry(lane).or_default();
            let used = lane_bytes.entry(lane).or_default();
            if queue.len() >= self.limits.lane_messages || *used + size > self.limits.lane_bytes {
                if queue.is_empty() {
                    lanes.remove(&lane);
                    lane_bytes.remove(&lane);
                }
                return Err(Refused::LaneFull);
            }
            if *bytes + size > self.limits.total_bytes {
                if queue.is_empty() {
                    lanes.remove(&lane);
                    lane_bytes.remove(&lane);
                }
                return Err(Refused::Full);
            }
            if queue.is_empty() {
                turn.push_back(lane);
            }
            queue.push_back((item, size));
            *used += size;
            *bytes += size;
        }
        self.ready.notify_one();
        Ok(())
    }

    /// The next publish in turn, if any waits.
    pub fn try_pop(&self) -> Option<T> {
        let mut inner = self.lock();
        let lane = inner.turn.pop_front()?;
        let queue = inner.lanes.get_mut(&lane)?;
        let (item, size) = queue.pop_front()?;
        let left = !queue.is_empty();
        inner.bytes -= size;
        if left {
            inner.turn.push_back(lane);
            if let Some(b) = inner.lane_bytes.get_mut(&lane) {
                *b -= size;
            }
        } else {
            inner.lanes.remove(&lane);
            inner.lane_bytes.remove(&lane);
        }
        Some(item)
    }

    /// The next publish in turn, waiting for one (cancel-safe: an item is taken only in the poll
    /// that returns it).
    pub async fn pop(&self) -> T {
        loop {
            if let Some(item) = self.try_pop() {
                return item;
            }
            self.ready.notified().await;
        }
    }

    /// Publishes waiting.
    pub fn len(&self) -> usize {
        self.lock().lanes.values().map(VecDeque::len).sum()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.lock().turn.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GW7: Lane = Lane::Gateway(GatewayId(7));
    const GW8: Lane = Lane::Gateway(GatewayId(8));

    fn drain(q: &FairQueue<(Lane, u32)>) -> Vec<(Lane, u32)> {
        std::iter::from_fn(|| q.try_pop()).collect()
    }

    #[test]
    fn lanes_are_served_in_turn_each_in_its_own_order() {
        let q = FairQueue::new(Limits::default());
        for i in 0..100 {
            q.push(GW7, (GW7, i), 10).unwrap();
        }
        q.push(GW8, (GW8, 0), 10).unwrap();
        q.push(Lane::Other, (Lane::Other, 0), 10).unwrap();
        q.push(GW8, (GW8, 1), 10).unwrap();
        assert_eq!(q.len(), 103);
        let got = drain(&q);
        // gateway 8's two and the other lane's one come within the first five, not after 100
        assert_eq!(&got[..5], &[(GW7, 0), (GW8, 0), (Lane::Other, 0), (GW7, 1), (GW8, 1)]);
        let sevens: Vec<u32> = got.iter().filter(|(l, _)| *l == GW7).map(|(_, i)| *i).collect();
        assert_eq!(sevens, (0..100).collect::<Vec<_>>(), "a lane keeps its order");
        assert!(q.is_empty());
        assert_eq!(q.try_pop(), None);
    }

    #[test]
    fn a_full_lane_refuses_without_touching_the_others() {
        let q = FairQueue::new(Limits {
            lane_messages: 3,
            lane_bytes: 1_000,
            total_bytes: 10_000,
        });
        for i in 0..3 {
            q.push(GW7, (GW7, i), 10).unwrap();
        }
        assert_eq!(q.push(GW7, (GW7, 3), 10), Err(Refused::LaneFull));
        assert_eq!(q.push(GW8, (GW8, 0), 1_001), Err(Refused::LaneFull), "bytes count too");
        q.push(GW8, (GW8, 0), 500).unwrap();
        assert_eq!(q.len(), 4);
        // room again once one is taken
        assert_eq!(q.try_pop(), Some((GW7, 0)));
        q.push(GW7, (GW7, 3), 10).unwrap();
        assert_eq!(drain(&q), vec![(GW8, 0), (GW7, 1), (GW7, 2), (GW7, 3)]);
    }

    #[test]
    fn all_lanes_together_are_bounded_and_the_bytes_are_given_back() {
        let q = FairQueue::new(Limits {
            lane_messages: 100,
            lane_bytes: 1_000,
            total_bytes: 1_500,
        });
        q.push(GW7, (GW7, 0), 1_000).unwrap();
        assert_eq!(q.push(GW8, (GW8, 0), 600), Err(Refused::Full));
        q.push(GW8, (GW8, 0), 500).unwrap();
        assert_eq!(q.push(Lane::Other, (Lane::Other, 0), 1), Err(Refused::Full));
        assert_eq!(drain(&q).len(), 2);
        for round in 0..10 {
            q.push(GW7, (GW7, round), 1_000).unwrap();
            q.push(GW8, (GW8, round), 500).unwrap();
            assert_eq!(drain(&q), vec![(GW7, round), (GW8, round)]);
        }
    }

    #[tokio::test]
    async fn pop_waits_for_a_push_from_another_task() {
        let q = std::sync::Arc::new(FairQueue::new(Limits::default()));
        let popper = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        q.push(GW8, (GW8, 9), 1).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), popper)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, (GW8, 9));
    }
}
