//! Recovery: a database that lost its last writes is rebuilt from the engine's journal, and
//! order ids continue after the journal's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::http::{Method, StatusCode};
use common::{TRADERS, call, key, order, start_market, traders};
use gridshare_domain::ParticipantId;
use gridshare_market::{Clock, JournalConfig, Market};
use gridshare_matching_engine::MarketConfig;
use gridshare_matching_engine::journal::Durability;
use gridshare_storage::{Db, orders};
use gridshare_web::AppState;

#[tokio::test]
async fn the_database_is_rebuilt_from_the_journal_and_ids_continue() {
    let dir = tempfile::tempdir().unwrap();
    let journal = JournalConfig {
        dir: dir.path().join("engine"),
        durability: Durability::EveryCommand,
    };
    let db1 = Db::open(dir.path().join("db1").to_str().unwrap()).await.unwrap();
    traders(&db1).await;
    let market = start_market(&db1, Some(journal.clone()), TRADERS.map(|(id, _)| (id, id as u32))).await;
    let key1 = key(&db1, 1, "read,trade").await;
    let key2 = key(&db1, 2, "read,trade").await;
    let state = AppState {
        db: Some(db1.clone()),
        market: Some(market.clone()),
        ..AppState::default()
    };
    call(
        &state,
        Method::POST,
        "/api/v1/orders",
        Some(&key1),
        Some(order("sell", 500, 100_000)),
    )
    .await;
    let (_, ack) = call(
        &state,
        Method::POST,
        "/api/v1/orders",
        Some(&key2),
        Some(order("buy", 200, 100_000)),
    )
    .await;
    assert_eq!(ack["order_id"], 2);
    market.flush().await.unwrap();
    drop(state);
    drop(market);

    // a new database (as if the first lost its last writes): everything comes back
    let db2 = Db::open(dir.path().join("db2").to_str().unwrap()).await.unwrap();
    traders(&db2).await;
    let (market, _) = Market::start(MarketConfig::default(), Some(journal), db2.clone(), Clock::wall())
        .await
        .unwrap();
    let o1 = orders::get(&db2, gridshare_domain::OrderId(1)).await.unwrap().unwrap();
    assert_eq!((o1.filled.0, o1.status), (200, orders::OrderStatus::Open));
    assert_eq!(
        orders::trades_of_participant(&db2, ParticipantId(2), None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let key2 = key(&db2, 2, "read,trade").await;
    let state = AppState {
        db: Some(db2),
        market: Some(market),
        ..AppState::default()
    };
    let (st, ack) = call(
        &state,
        Method::POST,
        "/api/v1/orders",
        Some(&key2),
        Some(order("buy", 100, 100_000)),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{ack}");
    assert_eq!(ack["order_id"], 3, "ids continue after the journal's");
    assert_eq!(
        ack["status"], "filled",
        "the recovered book still holds the rest of order 1"
    );
}
