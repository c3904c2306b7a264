//! Late answers never become the next request's value. Over Modbus RTU (an in-memory line, on
//! tokio's paused clock) an answer that comes after its request timed out is discarded, or,
//! when it comes so late that it meets the next request's answer, makes that request a named
//! error; over Modbus TCP it carries an older transaction id and is dropped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod faulty;

use std::time::Duration;

use faulty::{Fault, Faulty, truth};
use gridshare_gateway::modbus::{Bus, FrameError, LinkFault, ModbusError};
use gridshare_gateway::profile::Table;

const TIMEOUT: Duration = Duration::from_millis(200);

fn rtu(device: &Faulty) -> Bus {
    let (client, server) = tokio::io::duplex(4_096);
    tokio::spawn(device.clone().serve_rtu(server));
    Bus::rtu_over("test-line", 19_200, client, Duration::ZERO)
}

fn fault(e: &ModbusError) -> &LinkFault {
    match e {
        ModbusError::Link { fault, .. } => fault,
        ModbusError::Exception { .. } => panic!("not a link fault: {e}"),
    }
}

fn truths(address: u16) -> Vec<u16> {
    vec![truth(3, address), truth(3, address + 1)]
}

#[tokio::test(start_paused = true)]
async fn rtu_a_late_answer_is_discarded_not_taken_for_the_next_request() {
    let device = Faulty::scripted(1, &[Fault::Late], TIMEOUT);
    let mut link = rtu(&device).link(1, TIMEOUT);
    // A times out; its answer comes while the gateway leaves the line alone
    let a = link.read(Table::Holding, 100, 2).await.unwrap_err();
    assert_eq!(fault(&a), &LinkFault::Timeout(TIMEOUT), "{a}");
    // B: same unit, function and length, another address: B's values
    assert_eq!(link.read(Table::Holding, 200, 2).await.unwrap(), truths(200));
    assert_eq!(link.read(Table::Holding, 300, 2).await.unwrap(), truths(300));
}

#[tokio::test(start_paused = true)]
async fn rtu_a_very_late_answer_met_by_the_next_one_is_an_error_not_a_value() {
    let device = Faulty::scripted(1, &[Fault::VeryLate], TIMEOUT);
    let mut link = rtu(&device).link(1, TIMEOUT);
    let a = link.read(Table::Holding, 100, 2).await.unwrap_err();
    assert_eq!(fault(&a), &LinkFault::Timeout(TIMEOUT), "{a}");
    // A's answer comes after the gateway gave up waiting for it, right before B's: two frames
    match link.read(Table::Holding, 200, 2).await {
        Ok(words) => assert_eq!(words, truths(200), "B took A's answer"),
        Err(e) => assert!(
            matches!(fault(&e), LinkFault::Garbled(FrameError::Trailing { .. })),
            "{e}"
        ),
    }
    // and the line is clean again
    assert_eq!(link.read(Table::Holding, 300, 2).await.unwrap(), truths(300));
}

#[tokio::test(start_paused = true)]
async fn rtu_answers_from_another_unit_or_function_or_with_a_bad_crc_are_named_errors() {
    let script = [
        Fault::WrongUnit,
        Fault::WrongFunction,
        Fault::BadCrc,
        Fault::Trailing,
        Fault::Truncated,
        Fault::Exception,
    ];
    let device = Faulty::scripted(1, &script, TIMEOUT);
    let mut link = rtu(&device).link(1, TIMEOUT);
    let mut errors = Vec::new();
    for _ in &script {
        errors.push(link.read(Table::Holding, 100, 2).await.unwrap_err());
    }
    assert!(
        matches!(
            fault(&errors[0]),
            LinkFault::Garbled(FrameError::WrongUnit { expected: 1, got: 2 })
        ),
        "{}",
        errors[0]
    );
    assert!(
        matches!(
            fault(&errors[1]),
            LinkFault::Garbled(FrameError::WrongFunction { expected: 3, got: 4 })
        ),
        "{}",
        errors[1]
    );
    assert!(
        matches!(fault(&errors[2]), LinkFault::Garbled(FrameError::Crc { .. })),
        "{}",
        errors[2]
    );
    assert!(
        matches!(fault(&errors[3]), LinkFault::Garbled(FrameError::Trailing { .. })),
        "{}",
        errors[3]
    );
    assert!(
        matches!(fault(&errors[4]), LinkFault::Truncated { .. }),
        "{}",
        errors[4]
    );
    assert!(
        matches!(&errors[5], ModbusError::Exception { code, .. } if *code == tokio_modbus::ExceptionCode::ServerDeviceFailure),
        "{}",
        errors[5]
    );
    assert_eq!(link.read(Table::Holding, 100, 2).await.unwrap(), truths(100));
}

#[tokio::test]
async fn tcp_a_late_answer_with_an_older_transaction_id_is_dropped() {
    let device = Faulty::scripted(1, &[Fault::Late, Fault::None, Fault::StaleId], TIMEOUT);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(device.clone().serve_tcp(listener));
    let mut link = Bus::new(addr.into(), Duration::ZERO).link(1, TIMEOUT);
    let a = link.read(Table::Holding, 100, 2).await.unwrap_err();
    assert_eq!(fault(&a), &LinkFault::Timeout(TIMEOUT), "{a}");
    // B is answered before A's late answer comes
    assert_eq!(link.read(Table::Holding, 200, 2).await.unwrap(), truths(200));
    // A's answer is now on the connection, ahead of C's; C is also preceded by a stale frame
    tokio::time::sleep(TIMEOUT).await;
    assert_eq!(link.read(Table::Holding, 300, 2).await.unwrap(), truths(300));
    assert_eq!(link.read(Table::Holding, 400, 2).await.unwrap(), truths(400));
    // all on one connection: the late answers were read and dropped, not cut off by a reconnect
    assert_eq!(device.state.lock().unwrap().accepted, 1);
}
