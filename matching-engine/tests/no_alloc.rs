//! After warm-up, submitting, matching, amending and cancelling allocate
//! nothing: a counting global allocator proves it. Only the allocations of
//! the thread that runs the engine are counted (the test harness's own thread
//! may allocate at any moment, which made this test fail now and then).

#![allow(unsafe_code)] // a GlobalAlloc impl is unsafe by definition; it only counts and forwards
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use gridshare_domain::{
    DeliveryInterval, IntervalLength, MicroPerKwh, NodeId, OrderId, OrderMode, ParticipantId, Side, TimeInForce,
    Timestamp, Wh, ZoneId,
};
use gridshare_matching_engine::{Command, Engine, Event, MarketConfig, OrderSpec};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// True on the thread whose allocations are counted (const: reading it never allocates).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTED.with(Cell::get) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn commands(round: u64, iv: DeliveryInterval) -> Vec<Command> {
    let mut v = Vec::new();
    for i in 0..2_000u64 {
        let id = round * 10_000 + i;
        let owner = 1 + i % 8;
        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        let price = 100 + (i * 7919 % 41) as i64 - 20;
        v.push(Command::Submit {
            at: Timestamp(i as i64),
            order: OrderSpec {
                id: OrderId(id),
                owner: ParticipantId(owner),
                node: NodeId(owner as u32),
                zone: ZoneId(1),
                interval: iv,
                side,
                quantity: Wh(100 + (i % 50) as i64),
                price: MicroPerKwh(price * 1000),
                tif: if i % 10 == 0 {
                    TimeInForce::ImmediateOrCancel
                } else {
                    TimeInForce::GoodTillGateClosure
                },
                mode: OrderMode::Continuous,
            },
        });
        if i % 3 == 0 && i > 10 {
            let victim = round * 10_000 + i - 7;
            v.push(Command::Cancel {
                at: Timestamp(i as i64),
                id: OrderId(victim),
                owner: ParticipantId(1 + (i - 7) % 8),
            });
        }
        if i % 5 == 0 && i > 10 {
            let target = round * 10_000 + i - 3;
            v.push(Command::Amend {
                at: Timestamp(i as i64),
                id: OrderId(target),
                owner: ParticipantId(1 + (i - 3) % 8),
                quantity: Wh(60),
                price: MicroPerKwh(price * 1000),
            });
        }
    }
    v
}

#[test]
fn hot_path_does_not_allocate_after_warm_up() {
    let iv = DeliveryInterval::new(Timestamp(1_764_064_800_000), IntervalLength::Min15).unwrap();
    let mut e = Engine::new(MarketConfig {
        max_orders: 100_000,
        ..MarketConfig::default()
    })
    .unwrap();
    let mut out: Vec<Event> = Vec::with_capacity(64);
    for p in 1..=8u64 {
        e.apply(
            &Command::AddParticipant {
                owner: ParticipantId(p),
                node: NodeId(p as u32),
            },
            &mut out,
        );
    }
    e.apply(
        &Command::OpenBook {
            zone: ZoneId(1),
            interval: iv,
            fees: None,
        },
        &mut out,
    );
    // Warm-up: grow the slot slab, free list and event buffer.
    for c in commands(1, iv) {
        out.clear();
        e.apply(&c, &mut out);
    }
    let measured = commands(2, iv);
    let mut trades = 0;
    COUNTED.with(|c| c.set(true));
    let before = ALLOCS.load(Ordering::Relaxed);
    for c in &measured {
        out.clear();
        e.apply(c, &mut out);
        trades += out.iter().filter(|e| matches!(e, Event::Trade { .. })).count();
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    COUNTED.with(|c| c.set(false));
    assert!(trades > 100, "the workload must match: {trades} trades");
    assert_eq!(allocs, 0, "{allocs} allocations in {} commands", measured.len());
}
