//! The installer's `scan` against units that misbehave ([`faulty`]): a probe that goes
//! unanswered is tried again, and every unit that answered anything is reported: one that
//! answers only exceptions (named), one that answered and then fell silent ("no answer after N
//! tries"), one that answers but matches nothing. A unit that never answers is left out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod faulty;

use std::net::SocketAddr;
use std::time::Duration;

use faulty::{Fault, Faulty};
use gridshare_gateway::modbus::{Bus, Endpoint};
use gridshare_gateway::profile::Table;
use gridshare_gateway::scan::{Identified, scan};
use tokio_modbus::ExceptionCode;

const TIMEOUT: Duration = Duration::from_millis(100);

async fn serve(device: Faulty) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(device.serve_tcp(listener));
    addr
}

#[tokio::test]
async fn scan_retries_and_reports_every_unit_that_answered_anything() {
    const DROP_ALL: faulty::Mix = &[(Fault::Drop, 1_000)];
    // answers only exceptions
    let refuses = Faulty::scripted(1, &[Fault::Exception; 40], TIMEOUT);
    // its first two probes go unanswered; the third try is answered
    let slow = Faulty::scripted(1, &[Fault::Drop, Fault::Drop], TIMEOUT);
    // answers the first probe, then nothing at all
    let falls_silent = Faulty::new(1, 5, DROP_ALL, TIMEOUT);
    falls_silent.state.lock().unwrap().script = [Fault::None].into_iter().collect();
    // never a word
    let silent = Faulty::new(1, 6, DROP_ALL, TIMEOUT);
    let endpoints: Vec<Endpoint> = vec![
        serve(refuses).await.into(),
        serve(slow).await.into(),
        serve(falls_silent).await.into(),
        serve(silent).await.into(),
    ];
    let found = scan(&endpoints, 1..=1, &[], TIMEOUT, 2).await;
    let what: Vec<(&Endpoint, &Identified)> = found.iter().map(|f| (&f.endpoint, &f.what)).collect();
    assert_eq!(
        what,
        vec![
            (
                &endpoints[0],
                &Identified::ExceptionsOnly {
                    exceptions: vec![ExceptionCode::ServerDeviceFailure]
                }
            ),
            (&endpoints[1], &Identified::Unknown),
            (&endpoints[2], &found[2].what),
        ],
        "the silent unit is left out"
    );
    match &found[2].what {
        Identified::NoAnswer { tries: 3, error } => assert!(error.contains("no answer within"), "{error}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn read_says_how_many_tries_a_value_took() {
    let device = Faulty::scripted(1, &[Fault::Drop, Fault::Late], TIMEOUT);
    let addr = serve(device).await;
    let mut link = Bus::new(addr.into(), Duration::ZERO).link(1, TIMEOUT).with_retries(2);
    assert_eq!(link.read(Table::Input, 7, 1).await.unwrap(), vec![faulty::truth(4, 7)]);
    assert_eq!(link.last_tries(), 3);
    assert_eq!(link.read(Table::Input, 8, 1).await.unwrap(), vec![faulty::truth(4, 8)]);
    assert_eq!(link.last_tries(), 1);
    assert_eq!((link.heard().retried, link.heard().most_tries), (1, 3));
    // without retries, the first timeout is the answer
    let device = Faulty::scripted(1, &[Fault::Drop], TIMEOUT);
    let mut once = Bus::new(serve(device).await.into(), Duration::ZERO).link(1, TIMEOUT);
    assert!(once.read(Table::Input, 7, 1).await.unwrap_err().is_timeout());
}
