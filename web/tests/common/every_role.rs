//! One participant of every role (and a second home), for tests of who may reach what: keys
//! with all the scopes each role may have, gateways 11 (home 1's, commissioned by the installer)
//! and 12 (home 2's), a settled trade between home 2 and the trader with its batch and
//! positions, a running market with a resting order of home 2's, and a feeder.

use axum::http::{Method, StatusCode};
use gridshare_domain::wire::TradeReport;
use gridshare_domain::{
    DeliveryInterval, IntervalLength, Micro, MicroPerKwh, OrderId, ParticipantId, Timestamp, TradeId, Wh, ZoneId,
};
use gridshare_market::Downlinks;
use gridshare_settlement::merkle::MerkleTree;
use gridshare_settlement::step::{Accounts, OnchainTrade, leaf_trade};
use gridshare_storage::chain_txs::{self, NewBatch};
use gridshare_storage::market;
use gridshare_storage::positions::NewPosition;
use gridshare_web::AppState;
use gridshare_web::api::role_scopes;
use gridshare_web::auth::Role;

use super::{NOW, call, gateway, key, order, participant, start_market, temp_db};

/// The callers, in the order of every row's expectations.
pub const ROLES: [(u64, &str); 5] = [
    (1, "homeowner"),
    (5, "installer"),
    (4, "operator"),
    (3, "trader"),
    (6, "admin"),
];

#[derive(Debug)]
pub struct World {
    pub state: AppState,
    pub keys: Vec<String>,
    /// Home 2's key, and a resting order of home 2's that nobody else may cancel.
    pub home2: String,
    pub home2_order: u64,
    pub _dir: tempfile::TempDir,
}

/// The world: see the module's description.
pub async fn world() -> World {
    let (db, dir) = temp_db().await;
    // home 2 is the other homeowner, whose data home 1 must not see
    for (id, role) in ROLES.iter().copied().chain([(2, "homeowner")]) {
        participant(&db, id, role, Some(1)).await;
    }
    let mut keys = Vec::new();
    for (id, role) in ROLES {
        let scopes: Vec<String> = role_scopes(Role::parse(role).unwrap())
            .iter()
            .map(|s| serde_json::to_value(s).unwrap().as_str().unwrap().to_owned())
            .collect();
        keys.push(key(&db, id, &scopes.join(",")).await);
    }
    // gateway 11: home 1's, commissioned by the installer; gateway 12: home 2's, by nobody
    for (gw, owner, installer) in [(11u64, 1u64, Some(5u64)), (12, 2, None)] {
        gateway(&db, gw, owner, installer, 1).await;
    }
    // a settled trade between home 2 (buyer) and the trader (seller), with its proof data
    let trade = TradeReport {
        trade_id: TradeId(1),
        zone: ZoneId(1),
        interval: DeliveryInterval::new(Timestamp(1_764_064_800_000), IntervalLength::Min15).unwrap(),
        buy_order: OrderId(900),
        sell_order: OrderId(901),
        buyer: ParticipantId(2),
        seller: ParticipantId(3),
        quantity: Wh(500),
        price: MicroPerKwh(120_000),
        grid_fee: MicroPerKwh(7_000),
        at: NOW,
    };
    market::insert_trades(&db, std::slice::from_ref(&trade)).await.unwrap();
    let accounts = Accounts::load(
        &db,
        "0x00000000000000000000000000000000000000c0".parse().unwrap(),
        "0x0000000000000000000000000000000000000060".parse().unwrap(),
        "0x0000000000000000000000000000000000000001".parse().unwrap(),
    )
    .await
    .unwrap();
    let leaf = leaf_trade(&trade, &accounts).unwrap();
    chain_txs::insert_batch(
        &db,
        &NewBatch {
            batch_id: 1,
            first_interval_start: trade.interval.start().0,
            last_interval_end: trade.interval.end().0,
            prev_state_hash: format!("0x{}", "00".repeat(32)),
            trades_root: MerkleTree::from_trades(std::slice::from_ref(&leaf)).root().to_string(),
            trade_count: 1,
            deltas: vec![],
            trades: vec![(1, OnchainTrade::from(&leaf).to_json())],
            // home 2's readings were late (settled as traded); the trader's meter agreed
            positions: vec![
                settled_position(ParticipantId(2), Wh(500), Wh(0), true),
                settled_position(ParticipantId(3), Wh(0), Wh(500), false),
            ],
            true_ups: Vec::new(),
        },
        NOW.0,
    )
    .await
    .unwrap();

    let market = start_market(&db, None, (1..=6).map(|p| (p, 1))).await;
    let home2 = key(&db, 2, "read,trade").await;
    let feeder = vec![gridshare_matching_engine::NodeConfig {
        id: gridshare_domain::NodeId(1),
        parent: None,
        capacity: Some(Wh(10_000)),
        fee: MicroPerKwh(0),
    }];
    // what goes down to gateways is kept for the test's life, unread
    let (downlink, kept) = Downlinks::channel();
    std::mem::forget(kept);
    let mut w = World {
        state: AppState {
            db: Some(db),
            market: Some(market),
            network: Some(std::sync::Arc::new(feeder)),
            downlink,
            ..AppState::default()
        },
        keys,
        home2,
        home2_order: 0,
        _dir: dir,
    };
    let (st, v) = call(
        &w.state,
        Method::POST,
        "/api/v1/orders",
        Some(&w.home2),
        Some(order("buy", 100, 50_000)),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    w.home2_order = v["order_id"].as_u64().unwrap();
    w
}

fn settled_position(who: ParticipantId, bought: Wh, sold: Wh, estimated: bool) -> NewPosition {
    let iv = DeliveryInterval::new(Timestamp(1_764_064_800_000), IntervalLength::Min15).unwrap();
    NewPosition {
        interval_start: iv.start(),
        interval_end: iv.end(),
        participant: who,
        bought,
        sold,
        metered_net_import: Wh(bought.0 - sold.0),
        estimated,
        imbalance: Wh(0),
        imbalance_cash: Micro(0),
        import_tariff: MicroPerKwh(300_000),
        export_tariff: MicroPerKwh(80_000),
    }
}
