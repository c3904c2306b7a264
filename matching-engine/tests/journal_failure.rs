//! A journal write that fails (a full disk, a file-size limit) refuses the command it was
//! writing — the engine does not apply it — and every command after it, even once the disk has
//! room again, so the journal on disk is never more or less than what the engine applied. A
//! restart recovers exactly the state before the failure.
//!
//! The failure is real: the process's file-size limit (`RLIMIT_FSIZE`) is lowered to the
//! journal's length, so the kernel refuses the next write with `EFBIG`. The limit is
//! process-wide, hence this file holds one test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code
#![allow(unsafe_code)] // setrlimit and signal, to make the kernel refuse a write (see the module doc)

use gridshare_domain::{
    DeliveryInterval, IntervalLength, MicroPerKwh, NodeId, OrderId, OrderMode, ParticipantId, Side, TimeInForce,
    Timestamp, Wh, ZoneId,
};
use gridshare_matching_engine::journal::{Durability, JournalError, Journaled};
use gridshare_matching_engine::{Command, MarketConfig, OrderSpec};

fn interval() -> DeliveryInterval {
    DeliveryInterval::new(Timestamp(1_764_064_800_000), IntervalLength::Min15).unwrap()
}

fn order(id: u64, owner: u64, side: Side, price: i64) -> Command {
    Command::Submit {
        at: Timestamp(id as i64),
        order: OrderSpec {
            id: OrderId(id),
            owner: ParticipantId(owner),
            node: NodeId(0),
            zone: ZoneId(1),
            interval: interval(),
            side,
            quantity: Wh(100),
            price: MicroPerKwh(price),
            tif: TimeInForce::GoodTillGateClosure,
            mode: OrderMode::Continuous,
        },
    }
}

fn set_file_size_limit(bytes: Option<u64>) {
    let limit = libc::rlimit {
        rlim_cur: bytes.unwrap_or(libc::RLIM_INFINITY),
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain system calls on this process with a valid struct; SIGXFSZ is ignored so a
    // write past the limit fails with EFBIG instead of ending the process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}

#[test]
fn a_failed_journal_write_refuses_that_command_and_every_later_one_and_a_restart_recovers_the_state_before() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("engine.journal");
    let (mut j, _) = Journaled::open(MarketConfig::default(), dir.path(), Durability::EveryCommand).unwrap();
    for owner in [1, 2] {
        j.apply(
            &Command::AddParticipant {
                owner: ParticipantId(owner),
                node: NodeId(0),
            },
            &mut Vec::new(),
        )
        .unwrap();
    }
    j.apply(
        &Command::OpenBook {
            zone: ZoneId(1),
            interval: interval(),
            fees: None,
        },
        &mut Vec::new(),
    )
    .unwrap();
    j.apply(&order(1, 1, Side::Sell, 100_000), &mut Vec::new()).unwrap();
    let before = j.engine().snapshot(0);

    // the disk "fills": 8 more bytes fit, the next record does not
    let len = std::fs::metadata(&journal).unwrap().len();
    set_file_size_limit(Some(len + 8));
    let mut events = Vec::new();
    let err = j.apply(&order(2, 2, Side::Buy, 100_000), &mut events).unwrap_err();
    set_file_size_limit(None);
    assert!(matches!(err, JournalError::Io { .. }), "{err}");
    assert!(events.is_empty(), "a refused command makes no events: {events:?}");
    assert_eq!(
        j.engine().snapshot(0),
        before,
        "the buy that would have traded was not applied"
    );
    assert!(j.failure().is_some());

    // room again, but the journal stays shut: nothing reaches the disk behind the torn record
    let err = j.apply(&order(3, 2, Side::Buy, 90_000), &mut Vec::new()).unwrap_err();
    assert!(matches!(err, JournalError::Failed { .. }), "{err}");
    assert!(err.to_string().contains("restart"), "{err}");
    assert_eq!(j.engine().snapshot(0), before);
    drop(j);

    // a restart: the torn record is cut off, the state is the one before the failure, and the
    // journal takes commands again
    let (mut j, recovery) = Journaled::open(MarketConfig::default(), dir.path(), Durability::EveryCommand).unwrap();
    assert!(
        recovery.torn.is_some(),
        "the 8 bytes written of the refused record are a torn tail"
    );
    assert_eq!(j.engine().snapshot(0), before);
    let mut events = Vec::new();
    j.apply(&order(2, 2, Side::Buy, 100_000), &mut events).unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, gridshare_matching_engine::Event::Trade { .. })),
        "{events:?}"
    );
}
