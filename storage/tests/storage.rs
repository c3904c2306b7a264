//! Storage on both backends: migrations, typed constraint errors, all-or-
//! nothing batches, idempotent ingest and identical bucket queries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::{NOW, backends, home_with_gateway};
use gridshare_domain::envelope::ReplayWindow;
use gridshare_domain::wire::{DeviceKind, DeviceStatus, IntervalResult, Quality, TelemetrySample, TradeReport};
use gridshare_domain::{
    DeliveryInterval, DeviceId, GatewayId, IntervalLength, MicroPerKwh, OrderId, ParticipantId, Timestamp, TradeId, W,
    Wh, ZoneId,
};
use gridshare_storage::gateways;
use gridshare_storage::market;
use gridshare_storage::participants::{self, Participant};
use gridshare_storage::readings::{self, BucketSize, Reading};
use gridshare_storage::{Db, StorageError};

fn reading(gw: GatewayId, seq: u64, at: i64, power: i64, counter_in: i64) -> Reading {
    Reading {
        gateway: gw,
        seq,
        sample: TelemetrySample {
            device: DeviceId::new("meter").unwrap(),
            kind: DeviceKind::GridMeter,
            at: Timestamp(at),
            power_w: Some(W(power)),
            energy_in_wh: Some(Wh(counter_in)),
            energy_out_wh: None,
            soc_permille: None,
            status: DeviceStatus::Ok,
            quality: Quality::Good,
        },
    }
}

async fn count_readings(db: &Db, gw: GatewayId) -> usize {
    readings::list(db, gw, "meter", Timestamp(0), Timestamp(i64::MAX))
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn migrations_are_idempotent() {
    for t in backends().await {
        t.db.migrate().await.unwrap_or_else(|e| panic!("{}: {e}", t.name));
        t.db.migrate().await.unwrap_or_else(|e| panic!("{}: {e}", t.name));
        t.finish().await;
    }
}

#[tokio::test]
async fn participants_and_typed_errors() {
    for t in backends().await {
        let db = &t.db;
        let (home, _, _) = home_with_gateway(db, 1).await;
        assert_eq!(participants::get(db, home).await.unwrap().name, "Home 1");
        let missing = participants::get(db, ParticipantId(99)).await.unwrap_err();
        assert!(
            matches!(
                missing,
                StorageError::NotFound {
                    what: "participant",
                    ..
                }
            ),
            "{}: {missing}",
            t.name
        );

        let bad_role = Participant {
            id: ParticipantId(2),
            name: "x".into(),
            role: "king".into(),
            evm_address: None,
            feeder_node: None,
            custody_address: None,
        };
        let err = participants::upsert(db, &bad_role, NOW).await.unwrap_err();
        assert!(matches!(err, StorageError::Refused { .. }), "{}: {err}", t.name);

        participants::create_user(db, "alice", "$argon2id$x", home, NOW)
            .await
            .unwrap();
        let dup = participants::create_user(db, "alice", "$argon2id$y", home, NOW)
            .await
            .unwrap_err();
        match &dup {
            StorageError::Duplicate { constraint, .. } => assert!(constraint.contains("username"), "{}: {dup}", t.name),
            other => panic!("{}: expected Duplicate, got {other}", t.name),
        }
        let fk = participants::create_user(db, "bob", "h", ParticipantId(404), NOW)
            .await
            .unwrap_err();
        assert!(matches!(fk, StorageError::MissingReference { .. }), "{}: {fk}", t.name);
        assert_eq!(
            participants::find_user(db, "alice").await.unwrap().unwrap().participant,
            home
        );
        assert!(participants::find_user(db, "nobody").await.unwrap().is_none());
        t.finish().await;
    }
}

#[tokio::test]
async fn a_gateway_is_marked_on_chain_once() {
    for t in backends().await {
        let db = &t.db;
        let (_, first, _) = home_with_gateway(db, 1).await;
        let (_, second, _) = home_with_gateway(db, 2).await;
        assert!(gateways::on_chain(db).await.unwrap().is_empty(), "{}", t.name);
        assert!(gateways::mark_on_chain(db, first, NOW).await.unwrap(), "{}", t.name);
        assert!(
            !gateways::mark_on_chain(db, first, NOW).await.unwrap(),
            "{}: marked twice",
            t.name
        );
        assert!(
            !gateways::mark_on_chain(db, GatewayId(99), NOW).await.unwrap(),
            "{}: no such gateway",
            t.name
        );
        let on = gateways::on_chain(db).await.unwrap();
        assert!(on.contains(&first) && !on.contains(&second), "{}: {on:?}", t.name);
        t.finish().await;
    }
}

#[tokio::test]
async fn a_custodial_account_is_assigned_once_never_changed_and_never_shared() {
    for t in backends().await {
        let db = &t.db;
        let (home, _, _) = home_with_gateway(db, 1).await;
        let (other, _, _) = home_with_gateway(db, 2).await;
        assert_eq!(participants::get(db, home).await.unwrap().account(), None, "{}", t.name);
        let first = |p: ParticipantId| format!("0x{:040x}", 0xc0_0000 + p.0);
        let mut assigned = participants::assign_custody(db, first).await.unwrap();
        assigned.sort();
        assert_eq!(assigned, vec![home, other], "{}", t.name);
        let p = participants::get(db, home).await.unwrap();
        assert_eq!(p.account(), Some(first(home).as_str()), "{}", t.name);

        // assigned again (another seed, a second instance): nobody's account changes
        let second = |p: ParticipantId| format!("0x{:040x}", 0xd0_0000 + p.0);
        assert!(
            participants::assign_custody(db, second).await.unwrap().is_empty(),
            "{}",
            t.name
        );
        // an upsert (the CLI, the demo) with another custodial address does not move it either,
        // while name and the participant's own address do change
        let moved = Participant {
            name: "renamed".into(),
            custody_address: Some(second(home)),
            evm_address: Some("0x00000000000000000000000000000000000a0a0a".into()),
            ..p.clone()
        };
        participants::upsert(db, &moved, NOW).await.unwrap();
        let now = participants::get(db, home).await.unwrap();
        assert_eq!(now.custody_address, Some(first(home)), "{}", t.name);
        assert_eq!(now.name, "renamed", "{}", t.name);
        // their own address, when they have one, is where they are paid
        assert_eq!(now.account(), moved.evm_address.as_deref(), "{}", t.name);

        // two participants can never share a custodial account
        let third = Participant {
            id: ParticipantId(3),
            name: "Home 3".into(),
            role: "homeowner".into(),
            evm_address: None,
            feeder_node: None,
            custody_address: Some(first(home)),
        };
        let err = participants::upsert(db, &third, NOW).await.unwrap_err();
        match &err {
            StorageError::Duplicate { constraint, .. } => {
                assert!(constraint.contains("custody_address"), "{}: {err}", t.name)
            }
            other => panic!("{}: expected Duplicate, got {other}", t.name),
        }
        assert!(participants::get(db, ParticipantId(3)).await.is_err(), "{}", t.name);
        t.finish().await;
    }
}

#[tokio::test]
async fn gateways_register_revoke_and_keep_their_window() {
    for t in backends().await {
        let db = &t.db;
        let (_, gw, key) = home_with_gateway(db, 3).await;
        let active = gateways::active(db).await.unwrap();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].public_key, key.public());

        // a window with the top bit set survives the signed column
        let window = ReplayWindow {
            highest: u64::MAX - 1,
            seen: u64::MAX,
        };
        gateways::save_window(db, gw, window).await.unwrap();
        assert_eq!(gateways::active(db).await.unwrap()[0].window, window, "{}", t.name);

        let mut again = gateways::active(db).await.unwrap().remove(0);
        again.id = GatewayId(4);
        let dup = gateways::register(db, &again, NOW).await.unwrap_err();
        assert!(
            matches!(dup, StorageError::Duplicate { .. }),
            "{}: same key twice: {dup}",
            t.name
        );

        gateways::revoke(db, gw, NOW).await.unwrap();
        assert!(gateways::active(db).await.unwrap().is_empty());
        assert!(matches!(
            gateways::revoke(db, gw, NOW).await,
            Err(StorageError::NotFound { .. })
        ));
        t.finish().await;
    }
}

#[tokio::test]
async fn batched_ingest_is_idempotent() {
    for t in backends().await {
        let db = &t.db;
        let (_, gw, _) = home_with_gateway(db, 1).await;
        let batch: Vec<Reading> = (1..=2000)
            .map(|i| reading(gw, i, NOW.0 + i as i64 * 1000, 100, i as i64))
            .collect();
        assert_eq!(readings::insert_batch(db, &batch).await.unwrap(), 2000, "{}", t.name);
        assert_eq!(
            readings::insert_batch(db, &batch).await.unwrap(),
            0,
            "{}: re-sent batch",
            t.name
        );
        let overlap: Vec<Reading> = (1990..=2010)
            .map(|i| reading(gw, i, NOW.0 + i as i64 * 1000, 100, i as i64))
            .collect();
        assert_eq!(readings::insert_batch(db, &overlap).await.unwrap(), 10, "{}", t.name);
        assert_eq!(
            readings::insert_one(db, &reading(gw, 2011, NOW.0 + 2_011_000, 5, 2011))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            readings::insert_one(db, &reading(gw, 2011, NOW.0 + 2_011_000, 5, 2011))
                .await
                .unwrap(),
            0
        );
        let stored = readings::list(db, gw, "meter", Timestamp(0), Timestamp(i64::MAX))
            .await
            .unwrap();
        assert_eq!(stored.len(), 2011);
        assert_eq!(stored[0], batch[0], "{}: round trip", t.name);
        t.finish().await;
    }
}

#[tokio::test]
async fn a_failing_batch_writes_nothing() {
    for t in backends().await {
        let db = &t.db;
        let (_, gw, _) = home_with_gateway(db, 1).await;
        // 1500 good rows (two SQLite chunks) then one from an unregistered gateway
        let mut batch: Vec<Reading> = (1..=1500).map(|i| reading(gw, i, NOW.0 + i as i64, 1, 1)).collect();
        batch.push(reading(GatewayId(77), 1, NOW.0, 1, 1));
        let err = readings::insert_batch(db, &batch).await.unwrap_err();
        assert!(
            matches!(err, StorageError::MissingReference { .. }),
            "{}: {err}",
            t.name
        );
        assert_eq!(count_readings(db, gw).await, 0, "{}: nothing half-written", t.name);
        t.finish().await;
    }
}

/// Readings and their gateway's replay window are stored in one transaction: both, or, when the
/// batch fails, neither (a sequence number is never kept as seen without its readings).
#[tokio::test]
async fn readings_and_their_replay_window_are_stored_together() {
    for t in backends().await {
        let db = &t.db;
        let (_, gw, _) = home_with_gateway(db, 1).await;
        let window = |highest| ReplayWindow { highest, seen: 1 };
        let good: Vec<Reading> = (1..=3).map(|i| reading(gw, i, NOW.0 + i as i64, 1, 1)).collect();
        readings::insert_batch_with_windows(db, &good, &[(gw, window(3))], &[])
            .await
            .unwrap();
        assert_eq!(gateways::active(db).await.unwrap()[0].window, window(3), "{}", t.name);
        let mut bad: Vec<Reading> = (4..=6).map(|i| reading(gw, i, NOW.0 + i as i64, 1, 1)).collect();
        bad.push(reading(GatewayId(77), 1, NOW.0, 1, 1));
        assert!(
            readings::insert_batch_with_windows(db, &bad, &[(gw, window(6))], &[])
                .await
                .is_err()
        );
        assert_eq!(count_readings(db, gw).await, 3, "{}", t.name);
        assert_eq!(
            gateways::active(db).await.unwrap()[0].window,
            window(3),
            "{}: the failed batch's window is not kept",
            t.name
        );
        t.finish().await;
    }
}

#[tokio::test]
async fn buckets_agree_across_backends() {
    let mut results = Vec::new();
    for t in backends().await {
        let db = &t.db;
        let (_, gw, _) = home_with_gateway(db, 1).await;
        let day = 1_764_028_800_000; // 2026-11-25T00:00:00Z
        // Every 5 minutes for 3 hours; power alternates, the import counter grows 10 Wh per sample.
        let rows: Vec<Reading> = (0..36)
            .map(|i| {
                reading(
                    gw,
                    i + 1,
                    day + i as i64 * 300_000,
                    if i % 2 == 0 { 1000 } else { -501 },
                    10 * i as i64,
                )
            })
            .collect();
        readings::insert_batch(db, &rows).await.unwrap();
        let q = readings::buckets(
            db,
            gw,
            "meter",
            BucketSize::Quarter,
            Timestamp(day),
            Timestamp(day + 3 * 3_600_000),
        )
        .await
        .unwrap();
        assert_eq!(q.len(), 12, "{}", t.name);
        assert_eq!(q[0].samples, 3);
        assert_eq!(q[0].avg_power, Some(W((1000 - 501 + 1000) / 3)));
        assert_eq!(q[0].energy_in, Some(Wh(20)), "{}: first bucket: max - min", t.name);
        assert_eq!(
            q[1].energy_in,
            Some(Wh(30)),
            "{}: later buckets include the gap to the previous one",
            t.name
        );
        let total: i64 = q.iter().map(|b| b.energy_in.unwrap().0).sum();
        assert_eq!(total, 350, "{}: 35 steps of 10 Wh", t.name);
        let h = readings::buckets(
            db,
            gw,
            "meter",
            BucketSize::Hour,
            Timestamp(day),
            Timestamp(day + 86_400_000),
        )
        .await
        .unwrap();
        assert_eq!(h.len(), 3);
        let d = readings::buckets(db, gw, "meter", BucketSize::Day, Timestamp(0), Timestamp(i64::MAX))
            .await
            .unwrap();
        assert_eq!((d.len(), d[0].start, d[0].samples), (1, Timestamp(day), 36));
        results.push((q, h, d));
        t.finish().await;
    }
    if results.len() == 2 {
        assert_eq!(results[0], results[1], "SQLite and PostgreSQL disagree");
    }
}

#[tokio::test]
async fn trades_and_results_are_all_or_nothing() {
    for t in backends().await {
        let db = &t.db;
        let (buyer, _, _) = home_with_gateway(db, 1).await;
        let (seller, _, _) = home_with_gateway(db, 2).await;
        let interval = DeliveryInterval::new(Timestamp(1_764_064_800_000), IntervalLength::Min15).unwrap();
        let trade = |id| TradeReport {
            trade_id: TradeId(id),
            zone: ZoneId(1),
            interval,
            buy_order: OrderId(10),
            sell_order: OrderId(11),
            buyer,
            seller,
            quantity: Wh(500),
            price: MicroPerKwh(120_000),
            grid_fee: MicroPerKwh(10_000),
            at: NOW,
        };
        market::insert_trades(db, &[trade(1), trade(2)]).await.unwrap();
        let err = market::insert_trades(db, &[trade(3), trade(2)]).await.unwrap_err();
        assert!(matches!(err, StorageError::Duplicate { .. }), "{}: {err}", t.name);
        let stored = market::trades_of_interval(db, ZoneId(1), interval).await.unwrap();
        assert_eq!(
            stored,
            vec![trade(1), trade(2)],
            "{}: trade 3 rolled back with its batch",
            t.name
        );

        let result = IntervalResult {
            zone: ZoneId(1),
            interval,
            clearing_price: Some(MicroPerKwh(115_000)),
            auction_volume: Wh(700),
            total_volume: Wh(1000),
            trades: 2,
            node_prices: vec![],
        };
        market::insert_interval_result(db, &result, NOW).await.unwrap();
        assert!(matches!(
            market::insert_interval_result(db, &result, NOW).await,
            Err(StorageError::Duplicate { .. })
        ));
        let got = market::interval_results(db, ZoneId(1), Timestamp(0), Timestamp(i64::MAX), None)
            .await
            .unwrap();
        assert_eq!(got, vec![result]);
        t.finish().await;
    }
}

#[tokio::test]
async fn settlement_batches_and_their_transactions() {
    use gridshare_storage::chain_txs::{self, NewBatch, TxStatus};
    for t in backends().await {
        let db = &t.db;
        let batch = NewBatch {
            batch_id: 7,
            first_interval_start: 0,
            last_interval_end: 900_000,
            prev_state_hash: format!("0x{}", "00".repeat(32)),
            trades_root: format!("0x{}", "ab".repeat(32)),
            trade_count: 3,
            deltas: vec![("1".into(), -500), ("2".into(), 300), ("3".into(), 200)],
            trades: Vec::new(),
            positions: Vec::new(),
            true_ups: Vec::new(),
        };
        chain_txs::insert_batch(db, &batch, 1).await.unwrap();
        assert!(
            matches!(
                chain_txs::insert_batch(db, &batch, 2).await,
                Err(StorageError::Duplicate { .. })
            ),
            "{}: a batch id is stored once",
            t.name
        );
        assert_eq!(
            chain_txs::batch_status(db, 7).await.unwrap(),
            Some(("built".to_owned(), None))
        );
        assert!(matches!(
            chain_txs::set_batch_status(db, 8, "submitting", None, None, 3).await,
            Err(StorageError::NotFound { .. })
        ));
        chain_txs::set_batch_status(db, 7, "submitting", None, Some("RPC eth_call timed out"), 3)
            .await
            .unwrap();
        assert_eq!(
            chain_txs::batch_status(db, 7).await.unwrap(),
            Some(("submitting".to_owned(), Some("RPC eth_call timed out".to_owned())))
        );

        // two versions of nonce 4 (a fee bump), then one mined and confirmed
        assert_eq!(chain_txs::max_pending_nonce(db).await.unwrap(), None);
        let raw = vec![0x02u8, 0xf8, 0x01, 0x00, 0xff];
        chain_txs::insert_signed(db, 7, 0, 4, &raw, "0xa1", 2_000_000_000, 1_000_000_000, 4)
            .await
            .unwrap();
        chain_txs::insert_signed(db, 7, 0, 4, &raw, "0xa2", 2_250_000_001, 1_125_000_001, 5)
            .await
            .unwrap();
        assert_eq!(chain_txs::max_pending_nonce(db).await.unwrap(), Some(4));
        // the node refuses 0xa1; signing the identical transaction again revives its row
        chain_txs::set_tx_status(db, "0xa1", TxStatus::Failed, None, Some("insufficient funds"), 5)
            .await
            .unwrap();
        chain_txs::insert_signed(db, 7, 0, 4, &raw, "0xa1", 2_000_000_000, 1_000_000_000, 6)
            .await
            .unwrap();
        let txs = chain_txs::txs_of_batch(db, 7).await.unwrap();
        assert_eq!((txs.len(), txs[0].status), (2, TxStatus::Signed), "{}", t.name);
        chain_txs::set_tx_status(db, "0xa1", TxStatus::Replaced, None, None, 6)
            .await
            .unwrap();
        chain_txs::set_tx_status(db, "0xa2", TxStatus::Mined, Some((12, "0xb12")), None, 6)
            .await
            .unwrap();
        chain_txs::set_tx_status(db, "0xa2", TxStatus::Confirmed, Some((12, "0xb12")), None, 7)
            .await
            .unwrap();
        assert_eq!(
            chain_txs::max_pending_nonce(db).await.unwrap(),
            None,
            "{}: confirmed and replaced transactions no longer hold a nonce",
            t.name
        );
        assert!(matches!(
            chain_txs::set_tx_status(db, "0xdead", TxStatus::Mined, None, None, 8).await,
            Err(StorageError::NotFound { .. })
        ));
        let txs = chain_txs::txs_of_batch(db, 7).await.unwrap();
        assert_eq!(txs.len(), 2, "{}", t.name);
        assert_eq!(txs[0].status, TxStatus::Replaced);
        assert_eq!(txs[1].raw, raw, "{}: raw bytes round-trip", t.name);
        assert_eq!(txs[1].max_fee_per_gas, "2250000001");
        assert_eq!(
            (txs[1].block_number, txs[1].block_hash.as_deref()),
            (Some(12), Some("0xb12"))
        );
        assert_eq!(txs[1].status, TxStatus::Confirmed);
        t.finish().await;
    }
}

#[tokio::test]
async fn api_keys_are_scoped_listed_and_revoked() {
    use gridshare_storage::api_keys;
    for t in backends().await {
        let db = &t.db;
        let (home, _, _) = home_with_gateway(db, 1).await;
        let key = |id, token_hash, scopes, label| api_keys::NewKey {
            id,
            participant: home,
            token_hash,
            scopes,
            label,
            parent: None,
        };
        api_keys::create(db, &key("gsk_000000000001", "ab12", "read,trade", "bot"), NOW)
            .await
            .unwrap();
        api_keys::create(db, &key("gsk_000000000002", "cd34", "read", ""), Timestamp(NOW.0 + 1))
            .await
            .unwrap();
        assert!(matches!(
            api_keys::create(db, &key("gsk_000000000001", "ef", "read", ""), NOW).await,
            Err(StorageError::Duplicate { .. })
        ));
        let k = api_keys::find(db, "gsk_000000000001").await.unwrap().unwrap();
        assert_eq!(
            (
                k.participant,
                k.role.as_str(),
                k.token_hash.as_str(),
                k.scopes.as_str(),
                k.label.as_str()
            ),
            (home, "homeowner", "ab12", "read,trade", "bot"),
            "{}",
            t.name
        );
        assert_eq!(api_keys::find(db, "gsk_nope").await.unwrap(), None);
        let listed: Vec<String> = api_keys::list(db, home)
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.id)
            .collect();
        assert_eq!(listed, ["gsk_000000000002", "gsk_000000000001"], "newest first");
        api_keys::revoke(db, home, "gsk_000000000001", Timestamp(NOW.0 + 5))
            .await
            .unwrap();
        assert_eq!(
            api_keys::find(db, "gsk_000000000001")
                .await
                .unwrap()
                .unwrap()
                .revoked_at,
            Some(NOW.0 + 5)
        );
        assert!(
            matches!(
                api_keys::revoke(db, home, "gsk_000000000001", NOW).await,
                Err(StorageError::NotFound { .. })
            ),
            "{}: a key is revoked once",
            t.name
        );
        assert!(matches!(
            api_keys::revoke(db, ParticipantId(999), "gsk_000000000002", NOW).await,
            Err(StorageError::NotFound { .. })
        ));
        t.finish().await;
    }
}

#[tokio::test]
async fn orders_fills_and_results_are_recorded_idempotently() {
    use gridshare_domain::{OrderMode, Side, TimeInForce};
    use gridshare_storage::orders::{self, Change, OrderRecord, OrderStatus};
    for t in backends().await {
        let db = &t.db;
        let (buyer, gw, _) = home_with_gateway(db, 1).await;
        let (seller, _, _) = home_with_gateway(db, 2).await;
        let interval = DeliveryInterval::new(Timestamp(1_764_064_800_000), IntervalLength::Min15).unwrap();
        let order = |id, owner, side, qty| OrderRecord {
            id: OrderId(id),
            owner,
            gateway: (owner == buyer).then_some(gw),
            zone: ZoneId(1),
            interval,
            side,
            quantity: Wh(qty),
            price: MicroPerKwh(120_000),
            tif: TimeInForce::GoodTillGateClosure,
            mode: OrderMode::Continuous,
            status: OrderStatus::Open,
            filled: Wh(0),
            reason: None,
            created_at: NOW,
            updated_at: NOW,
        };
        let trade = TradeReport {
            trade_id: TradeId(1),
            zone: ZoneId(1),
            interval,
            buy_order: OrderId(10),
            sell_order: OrderId(11),
            buyer,
            seller,
            quantity: Wh(300),
            price: MicroPerKwh(120_000),
            grid_fee: MicroPerKwh(5_000),
            at: Timestamp(NOW.0 + 1),
        };
        let node_price = |node, price, flow, congestion| gridshare_domain::wire::NodePrice {
            zone: ZoneId(1),
            interval,
            node: gridshare_domain::NodeId(node),
            price: MicroPerKwh(price),
            flow: Wh(flow),
            congestion: MicroPerKwh(congestion),
        };
        let result = IntervalResult {
            zone: ZoneId(1),
            interval,
            clearing_price: None,
            auction_volume: Wh(0),
            total_volume: Wh(300),
            trades: 1,
            node_prices: vec![],
        };
        let changes = vec![
            Change::Accepted(order(10, buyer, Side::Buy, 500)),
            Change::Accepted(order(11, seller, Side::Sell, 300)),
            Change::Trade(trade.clone()),
            Change::Filled {
                id: OrderId(11),
                at: trade.at,
            },
            Change::Cancelled {
                id: OrderId(10),
                reason: "unmatched",
                at: Timestamp(NOW.0 + 2),
            },
            Change::NodePrice(node_price(2, 125_000, -300, 0)),
            Change::NodePrice(node_price(1, 50_000, 300, 70_000)),
            Change::Result {
                result: result.clone(),
                closed_at: Timestamp(NOW.0 + 2),
            },
        ];
        orders::record(db, &changes).await.unwrap();
        // a replay after a crash records the same changes again: nothing moves
        orders::record(db, &changes).await.unwrap();
        let buy = orders::get(db, OrderId(10)).await.unwrap().unwrap();
        assert_eq!(
            (buy.status, buy.filled, buy.reason.as_deref(), buy.gateway),
            (OrderStatus::Cancelled, Wh(300), Some("unmatched"), Some(gw)),
            "{}",
            t.name
        );
        let sell = orders::get(db, OrderId(11)).await.unwrap().unwrap();
        assert_eq!((sell.status, sell.filled), (OrderStatus::Filled, Wh(300)));
        assert_eq!(orders::max_id(db).await.unwrap(), Some(OrderId(11)));
        // gateway order ids: only open orders' links come back; a reused id names the newer order
        orders::record(db, &[Change::Accepted(order(12, seller, Side::Sell, 100))])
            .await
            .unwrap();
        orders::link_client_id(db, gw, OrderId(7), OrderId(10)).await.unwrap();
        orders::link_client_id(db, gw, OrderId(8), OrderId(11)).await.unwrap();
        assert_eq!(orders::open_client_ids(db).await.unwrap(), vec![], "{}", t.name);
        orders::link_client_id(db, gw, OrderId(7), OrderId(12)).await.unwrap();
        assert_eq!(
            orders::open_client_ids(db).await.unwrap(),
            vec![(gw, OrderId(7), OrderId(12))],
            "{}",
            t.name
        );
        assert_eq!(
            orders::trades_of_participant(db, buyer, None, 10).await.unwrap(),
            vec![trade.clone()]
        );
        assert_eq!(
            orders::trades_of_participant(db, buyer, Some(1), 10).await.unwrap(),
            vec![]
        );
        assert_eq!(
            market::trades_of_interval(db, ZoneId(1), interval).await.unwrap(),
            vec![trade]
        );
        let mine = orders::of_participant(db, buyer, None, 10).await.unwrap();
        assert_eq!(mine.len(), 1);
        // a result comes back with its book's node prices, by node (or one node's)
        let priced = IntervalResult {
            node_prices: vec![node_price(1, 50_000, 300, 70_000), node_price(2, 125_000, -300, 0)],
            ..result.clone()
        };
        assert_eq!(
            market::interval_results(db, ZoneId(1), Timestamp(0), Timestamp(i64::MAX), None)
                .await
                .unwrap(),
            vec![priced],
            "{}",
            t.name
        );
        let node_2 = IntervalResult {
            node_prices: vec![node_price(2, 125_000, -300, 0)],
            ..result.clone()
        };
        assert_eq!(
            market::interval_results(
                db,
                ZoneId(1),
                Timestamp(0),
                Timestamp(i64::MAX),
                Some(gridshare_domain::NodeId(2))
            )
            .await
            .unwrap(),
            vec![node_2],
            "{}",
            t.name
        );
        assert_eq!(
            market::node_prices(db, ZoneId(1), interval).await.unwrap(),
            vec![node_price(1, 50_000, 300, 70_000), node_price(2, 125_000, -300, 0)],
            "{}: by node, once",
            t.name
        );
        let hour = DeliveryInterval::new(interval.start(), IntervalLength::Min60).unwrap();
        assert_eq!(
            market::node_prices(db, ZoneId(1), hour).await.unwrap(),
            vec![],
            "another length's book"
        );
        t.finish().await;
    }
}

#[tokio::test]
async fn rewards_credit_once_and_mean_power_agrees_across_backends() {
    use gridshare_domain::EventId;
    use gridshare_storage::rewards::{self, Reward};
    for t in backends().await {
        let db = &t.db;
        let (home, gw, _) = home_with_gateway(db, 1).await;
        let rows: Vec<Reading> = (0..4)
            .map(|i| reading(gw, i + 1, NOW.0 + i as i64 * 1000, 1000 + i as i64 * 100, i as i64))
            .collect();
        readings::insert_batch(db, &rows).await.unwrap();
        assert_eq!(
            readings::mean_grid_power(db, gw, NOW, Timestamp(NOW.0 + 10_000))
                .await
                .unwrap(),
            Some(W(1150)),
            "{}",
            t.name
        );
        assert_eq!(
            readings::mean_grid_power(db, gw, Timestamp(0), Timestamp(1))
                .await
                .unwrap(),
            None
        );
        // counters closest to a time, within a tolerance; readings without an export counter
        // (as above) do not count
        assert_eq!(
            readings::grid_counters_near(db, gw, NOW, 5_000).await.unwrap(),
            None,
            "{}",
            t.name
        );
        let mut with_export: Vec<Reading> = (0..3)
            .map(|i| reading(gw, 10 + i, NOW.0 + 100_000 + i as i64 * 1000, 0, 50 + i as i64))
            .collect();
        for r in &mut with_export {
            r.sample.energy_out_wh = Some(Wh(7));
        }
        readings::insert_batch(db, &with_export).await.unwrap();
        assert_eq!(
            readings::grid_counters_near(db, gw, Timestamp(NOW.0 + 101_400), 5_000)
                .await
                .unwrap(),
            Some((Timestamp(NOW.0 + 101_000), Wh(51), Wh(7))),
            "{}",
            t.name
        );
        assert_eq!(
            readings::grid_counters_near(db, gw, Timestamp(NOW.0 + 110_000), 5_000)
                .await
                .unwrap(),
            None,
            "{}: outside the tolerance",
            t.name
        );
        let r = Reward {
            participant: home,
            kind: "demand_response".into(),
            amount: 400_000,
            interval_start: None,
            event: None::<EventId>,
            reference: "dr:1:1:0".into(),
            created_at: NOW.0,
            minted_tx: None,
        };
        assert!(rewards::credit(db, &r).await.unwrap());
        assert!(
            !rewards::credit(db, &r).await.unwrap(),
            "{}: once per reference",
            t.name
        );
        let mine = rewards::of_participant(db, home, 10).await.unwrap();
        assert_eq!(mine, vec![r]);
        t.finish().await;
    }
}

#[tokio::test]
async fn settled_totals_follow_confirmed_batches() {
    use gridshare_storage::chain_txs::{self, NewBatch};
    for t in backends().await {
        let db = &t.db;
        for (id, delta) in [(1u64, -500i64), (2, 200)] {
            chain_txs::insert_batch(
                db,
                &NewBatch {
                    batch_id: id,
                    first_interval_start: 0,
                    last_interval_end: 900_000,
                    prev_state_hash: "0x00".into(),
                    trades_root: "0x00".into(),
                    trade_count: 1,
                    deltas: vec![("3".into(), delta), ("4".into(), -delta)],
                    trades: Vec::new(),
                    positions: Vec::new(),
                    true_ups: Vec::new(),
                },
                1,
            )
            .await
            .unwrap();
        }
        chain_txs::save_account(db, 3, "0xAbc").await.unwrap();
        chain_txs::save_account(db, 3, "0xAbc").await.unwrap();
        assert_eq!(
            chain_txs::settled_total(db, "0xAbc").await.unwrap(),
            (0, 0),
            "{}: nothing confirmed",
            t.name
        );
        chain_txs::set_batch_status(db, 1, "confirmed", Some("0x01"), None, 2)
            .await
            .unwrap();
        assert_eq!(
            chain_txs::settled_total(db, "0xAbc").await.unwrap(),
            (-500, 1),
            "{}",
            t.name
        );
        chain_txs::set_batch_status(db, 2, "confirmed", Some("0x02"), None, 3)
            .await
            .unwrap();
        assert_eq!(chain_txs::settled_total(db, "0xAbc").await.unwrap(), (-300, 2));
        assert_eq!(chain_txs::settled_total(db, "0xnobody").await.unwrap(), (0, 0));
        t.finish().await;
    }
}

#[tokio::test]
async fn preferences_are_versioned_and_gateways_answers_kept() {
    use gridshare_domain::wire::{PreferencesApplied, TradingPreferences};
    use gridshare_storage::preferences;
    for t in backends().await {
        let db = &t.db;
        let (home, gw, _) = home_with_gateway(db, 1).await;
        assert_eq!(preferences::get(db, home).await.unwrap(), None, "{}", t.name);
        let p = TradingPreferences {
            version: 0,
            min_sell_price: MicroPerKwh(90_000),
            max_buy_price: MicroPerKwh(250_000),
            battery_reserve_percent: 30,
        };
        assert_eq!(preferences::save(db, home, &p, NOW).await.unwrap().version, 1);
        let second = TradingPreferences {
            battery_reserve_percent: 50,
            ..p.clone()
        };
        let saved = preferences::save(db, home, &second, Timestamp(NOW.0 + 1))
            .await
            .unwrap();
        assert_eq!(saved.version, 2, "{}", t.name);
        let (got, at) = preferences::get(db, home).await.unwrap().unwrap();
        assert_eq!((got, at), (saved.clone(), Timestamp(NOW.0 + 1)));
        assert_eq!(preferences::all(db).await.unwrap(), vec![(home, saved)]);
        // the database refuses a home that would sell below what it buys at
        let upside_down = TradingPreferences {
            min_sell_price: MicroPerKwh(300_000),
            ..p.clone()
        };
        assert!(
            matches!(
                preferences::save(db, home, &upside_down, NOW).await,
                Err(StorageError::Refused { .. })
            ),
            "{}",
            t.name
        );
        // answers: the newest version wins, a late answer to an older one is ignored
        let answer = |version, applied| PreferencesApplied {
            version,
            applied,
            reason: (!applied).then(|| "no battery".to_owned()),
        };
        preferences::record_answer(db, gw, &answer(2, true), NOW).await.unwrap();
        preferences::record_answer(db, gw, &answer(1, false), NOW)
            .await
            .unwrap();
        assert_eq!(
            preferences::answers(db, &[gw, GatewayId(99)]).await.unwrap(),
            vec![(gw, answer(2, true), NOW)]
        );
        t.finish().await;
    }
}

#[tokio::test]
async fn checks_are_asked_answered_and_kept() {
    use gridshare_domain::wire::{CheckResult, DeviceCheck, PointCheck};
    use gridshare_storage::checks;
    for t in backends().await {
        let db = &t.db;
        let (home, gw, _) = home_with_gateway(db, 1).await;
        let (_, other, _) = home_with_gateway(db, 2).await;
        assert_eq!(checks::latest(db, gw).await.unwrap(), None);
        let first = checks::request(db, gw, home, NOW).await.unwrap();
        let second = checks::request(db, gw, home, Timestamp(NOW.0 + 5)).await.unwrap();
        assert!(second > first, "{}", t.name);
        let pending = checks::latest(db, gw).await.unwrap().unwrap();
        assert_eq!((pending.id, pending.answered_at, pending.result), (second, None, None));
        let result = CheckResult {
            check_id: second,
            software: "0.1.0".into(),
            outbox: 3,
            preferences_version: Some(2),
            devices: vec![DeviceCheck {
                device: DeviceId::new("meter").unwrap(),
                kind: DeviceKind::GridMeter,
                model: "Eastron SDM630".into(),
                address: "127.0.0.1:502 unit 1".into(),
                elapsed_ms: 40,
                points: vec![PointCheck {
                    name: "power".into(),
                    value: None,
                    unit: "W".into(),
                    error: Some("timeout after 500 ms".into()),
                }],
                not_shown: 0,
            }],
        };
        // another gateway cannot answer this one's check
        assert!(matches!(
            checks::answer(db, other, &result, NOW).await,
            Err(StorageError::NotFound { .. })
        ));
        checks::answer(db, gw, &result, Timestamp(NOW.0 + 9)).await.unwrap();
        let done = checks::get(db, second).await.unwrap().unwrap();
        assert_eq!(done.answered_at, Some(Timestamp(NOW.0 + 9)));
        assert_eq!(done.result, Some(result), "{}", t.name);
        assert_eq!(checks::get(db, first).await.unwrap().unwrap().result, None);
        t.finish().await;
    }
}

#[tokio::test]
async fn demand_response_programs_and_events_are_numbered_on_both_backends() {
    use gridshare_storage::dr;
    for t in backends().await {
        let db = &t.db;
        let (home, _, _) = home_with_gateway(db, 1).await;
        let program = dr::create_program(db, "peak", "evening peak", NOW).await.unwrap();
        let event = dr::NewEvent {
            program,
            priority: 0,
            targets: "{}",
            intervals: "[]",
            starts_at: NOW,
            ends_at: Timestamp(NOW.0 + 900_000),
            created_by: home,
        };
        let a = dr::create_event(db, &event, NOW)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", t.name));
        let b = dr::create_event(db, &event, NOW).await.unwrap();
        assert!(b.0 > a.0);
        assert_eq!(dr::event(db, a).await.unwrap().unwrap().status, "scheduled");
        t.finish().await;
    }
}

#[tokio::test]
async fn positions_are_stored_with_their_batch_and_trued_up_once() {
    use gridshare_domain::Micro;
    use gridshare_storage::chain_txs::{self, NewBatch};
    use gridshare_storage::positions::{self, NewPosition, TrueUp};
    for t in backends().await {
        let db = &t.db;
        let (home1, _, _) = home_with_gateway(db, 1).await;
        let (home2, _, _) = home_with_gateway(db, 2).await;
        let trader = ParticipantId(9); // no gateway, no meter
        participants::upsert(
            db,
            &Participant {
                id: trader,
                name: "Trader".into(),
                role: "trader".into(),
                evm_address: None,
                feeder_node: None,
                custody_address: None,
            },
            NOW,
        )
        .await
        .unwrap();
        let position = |who: ParticipantId, start: i64, estimated: bool| NewPosition {
            interval_start: Timestamp(start),
            interval_end: Timestamp(start + 900_000),
            participant: who,
            bought: Wh(500),
            sold: Wh(0),
            metered_net_import: Wh(500),
            estimated,
            imbalance: Wh(0),
            imbalance_cash: Micro(0),
            import_tariff: MicroPerKwh(300_000),
            export_tariff: MicroPerKwh(80_000),
        };
        let batch = |id: u64, positions: Vec<NewPosition>, true_ups: Vec<TrueUp>| NewBatch {
            batch_id: id,
            first_interval_start: 0,
            last_interval_end: 900_000,
            prev_state_hash: "0x00".into(),
            trades_root: "0x00".into(),
            trade_count: 0,
            deltas: vec![("1".into(), 1), ("2".into(), -1)],
            trades: Vec::new(),
            positions,
            true_ups,
        };
        chain_txs::insert_batch(
            db,
            &batch(
                1,
                vec![
                    position(home1, 0, true),
                    position(home2, 0, false),
                    position(home1, 900_000, true),
                    position(trader, 0, true),
                ],
                vec![],
            ),
            10,
        )
        .await
        .unwrap();
        let waiting = positions::awaiting_readings(db, Timestamp(0), None, 10).await.unwrap();
        assert_eq!(
            waiting
                .iter()
                .map(|p| (p.settled.participant, p.settled.interval_start.0))
                .collect::<Vec<_>>(),
            [(home1, 0), (home1, 900_000)],
            "{}: only estimates of metered participants wait, oldest first",
            t.name
        );
        assert_eq!(waiting[0].settled, position(home1, 0, true), "{}", t.name);
        let after_first = positions::awaiting_readings(db, Timestamp(0), Some((Timestamp(0), home1)), 10)
            .await
            .unwrap();
        assert_eq!(
            after_first.len(),
            1,
            "{}: a scan goes on after the last one looked at",
            t.name
        );
        assert_eq!(after_first[0].settled.interval_start, Timestamp(900_000));
        assert_eq!(waiting[0].batch_id, 1);
        assert!(
            positions::awaiting_readings(db, Timestamp(900_001), None, 10)
                .await
                .unwrap()
                .is_empty(),
            "{}: older than the window",
            t.name
        );

        // a measured position has nothing to true up; a stored one is refused a second time
        let up = |who, start, cash| TrueUp {
            interval_start: Timestamp(start),
            participant: who,
            real_net_import: Wh(600),
            cash: Micro(cash),
        };
        assert!(matches!(
            chain_txs::insert_batch(db, &batch(2, vec![], vec![up(home2, 0, -30_000)]), 11).await,
            Err(StorageError::NotFound { .. })
        ));
        assert_eq!(
            chain_txs::max_batch_id(db).await.unwrap(),
            Some(1),
            "{}: nothing of batch 2",
            t.name
        );
        chain_txs::insert_batch(db, &batch(2, vec![], vec![up(home1, 0, -30_000)]), 12)
            .await
            .unwrap();
        positions::record_unposted_true_ups(db, &[up(home1, 900_000, 0)], Timestamp(13))
            .await
            .unwrap();
        assert!(matches!(
            positions::record_unposted_true_ups(db, &[up(home1, 900_000, 0)], Timestamp(14)).await,
            Err(StorageError::NotFound { .. })
        ));
        assert!(
            positions::awaiting_readings(db, Timestamp(0), None, 10)
                .await
                .unwrap()
                .is_empty()
        );

        let mine = positions::of_participant(db, home1, None, 10).await.unwrap();
        assert_eq!(mine.len(), 2);
        assert_eq!(
            mine[0].settled.interval_start,
            Timestamp(900_000),
            "{}: newest first",
            t.name
        );
        assert_eq!(mine[0].true_up, Some(up(home1, 900_000, 0)));
        assert_eq!(
            (mine[0].true_up_batch_id, mine[0].trued_up_at),
            (None, Some(Timestamp(13)))
        );
        assert_eq!(mine[1].true_up, Some(up(home1, 0, -30_000)));
        assert_eq!(
            (mine[1].true_up_batch_id, mine[1].trued_up_at),
            (Some(2), Some(Timestamp(12)))
        );
        assert_eq!(
            positions::of_participant(db, home1, Some(Timestamp(900_000)), 10)
                .await
                .unwrap()
                .len(),
            1
        );
        let of2 = positions::of_batch(db, 2).await.unwrap();
        assert_eq!(of2.len(), 1, "{}: batch 2 trued up one position of batch 1", t.name);
        assert_eq!(positions::of_batch(db, 1).await.unwrap().len(), 4);
        t.finish().await;
    }
}

#[tokio::test]
async fn parameter_versions_are_kept_and_the_one_in_force_is_found_on_both_backends() {
    use gridshare_storage::parameters;
    for t in backends().await {
        let db = &t.db;
        assert_eq!(parameters::in_force(db, NOW).await.unwrap(), None, "{}", t.name);
        let p = |import: u64| format!(r#"{{"importTariff":"{import}"}}"#);
        assert!(parameters::record(db, 0, NOW, &p(300_000), "{}").await.unwrap());
        assert!(
            parameters::record(db, 1, Timestamp(NOW.0 + 10), &p(450_000), "{}")
                .await
                .unwrap()
        );
        // a version seen again changes nothing
        assert!(
            !parameters::record(db, 1, Timestamp(NOW.0 + 99), &p(1), "{}")
                .await
                .unwrap()
        );
        let at = |ms: i64| async move { parameters::in_force(db, Timestamp(NOW.0 + ms)).await.unwrap() };
        assert_eq!(at(-1).await, None, "{}", t.name);
        let v0 = at(9).await.unwrap();
        assert_eq!((v0.version, v0.value("importTariff").unwrap()), (0, Some(300_000)));
        let v1 = at(10).await.unwrap();
        assert_eq!(
            (v1.version, v1.value("importTariff").unwrap()),
            (1, Some(450_000)),
            "{}",
            t.name
        );
        assert_eq!(v1.value("exportTariff").unwrap(), None);
        assert_eq!(parameters::latest(db).await.unwrap(), Some(v1));
        assert_eq!(parameters::history(db, 10).await.unwrap().len(), 2);
        t.finish().await;
    }
}

/// The bonds read from chain, recorded for the pages: every active gateway `not_required` while
/// the minimum is zero, else `bonded` or `unbonded`; a revoked gateway keeps what it had; on both
/// backends.
#[tokio::test]
async fn bond_states_follow_the_last_reading_on_both_backends() {
    use gridshare_storage::gateways;
    for t in backends().await {
        let db = &t.db;
        let (_, g1, _) = home_with_gateway(db, 1).await;
        let (_, g2, _) = home_with_gateway(db, 2).await;
        let (_, g3, _) = home_with_gateway(db, 3).await;
        assert!(gateways::bond_states(db).await.unwrap().is_empty(), "{}", t.name);
        gateways::record_bonds(db, None).await.unwrap();
        let states = gateways::bond_states(db).await.unwrap();
        assert_eq!(states.get(&g1).map(String::as_str), Some("not_required"), "{}", t.name);
        gateways::revoke(db, g3, NOW).await.unwrap();
        gateways::record_bonds(db, Some(&[g1].into_iter().collect()))
            .await
            .unwrap();
        let states = gateways::bond_states(db).await.unwrap();
        assert_eq!(
            (states[&g1].as_str(), states[&g2].as_str(), states[&g3].as_str()),
            ("bonded", "unbonded", "not_required"),
            "{}",
            t.name
        );
        t.finish().await;
    }
}

/// A homeowner's vote through the service: stored once per proposal and participant (the first
/// one stands, as on chain), cast or refused once, and listed for its owner only, on both backends.
#[tokio::test]
async fn votes_are_asked_for_once_and_recorded_once_on_both_backends() {
    use gridshare_storage::parameters;
    for t in backends().await {
        let db = &t.db;
        let (home, _, _) = home_with_gateway(db, 1).await;
        let (neighbour, _, _) = home_with_gateway(db, 2).await;
        let proposal = parameters::propose(db, home, "fee", r#"[{"parameter":"feePerHop","value":"1"}]"#, NOW)
            .await
            .unwrap();
        assert!(parameters::request_vote(db, proposal, home, 1, NOW).await.unwrap());
        // a second vote, even another way, changes nothing
        assert!(
            !parameters::request_vote(db, proposal, home, 0, NOW).await.unwrap(),
            "{}",
            t.name
        );
        assert!(
            parameters::request_vote(db, proposal, neighbour, 2, Timestamp(NOW.0 + 1))
                .await
                .unwrap()
        );
        // support outside 0..=2 is refused by name
        let e = parameters::request_vote(db, proposal, neighbour, 3, NOW)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("support"), "{e}");
        let waiting = parameters::waiting_votes(db, proposal).await.unwrap();
        assert_eq!(
            waiting.iter().map(|v| (v.participant, v.support)).collect::<Vec<_>>(),
            vec![(home, 1), (neighbour, 2)],
            "{}",
            t.name
        );
        let later = Timestamp(NOW.0 + 5);
        parameters::vote_done(
            db,
            (proposal, home),
            "cast",
            (Some("600000"), Some("0xabc"), None),
            later,
        )
        .await
        .unwrap();
        // recorded once: a later outcome for the same vote changes nothing
        parameters::vote_done(db, (proposal, home), "refused", (None, None, Some("late")), later)
            .await
            .unwrap();
        let mine = parameters::votes_of(db, home, 10).await.unwrap();
        assert_eq!(mine.len(), 1, "{}", t.name);
        assert_eq!(
            (
                mine[0].state.as_str(),
                mine[0].weight.as_deref(),
                mine[0].tx_hash.as_deref(),
                mine[0].error.as_deref()
            ),
            ("cast", Some("600000"), Some("0xabc"), None),
            "{}",
            t.name
        );
        assert_eq!((mine[0].support, mine[0].updated_at), (1, later));
        assert_eq!(parameters::waiting_votes(db, proposal).await.unwrap().len(), 1);
        assert_eq!(
            parameters::votes_of(db, neighbour, 10).await.unwrap()[0].state,
            "waiting"
        );
        t.finish().await;
    }
}

/// Readings of two gateways at pseudo-random times over two hours (gateway 1: a grid meter, some
/// readings suspect, and an inverter that skips some minutes; gateway 2: a grid meter), stored in
/// overlapping batches: the export per interval and the complete uptime periods read from the
/// five-minute blocks are those computed here from the readings themselves, on both backends; and
/// the migration's backfill of the blocks builds exactly the rows the ingest kept up.
#[tokio::test]
async fn reading_blocks_agree_with_the_readings_they_roll_up() {
    use gridshare_storage::epochs;
    use std::collections::{BTreeMap, BTreeSet};
    const QUARTER: i64 = 900_000;
    let start = NOW.0;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: i64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as i64
    };
    let mut all: Vec<Reading> = Vec::new();
    for gw in [GatewayId(1), GatewayId(2)] {
        let (mut seq, mut counter) = (0u64, 10_000i64);
        let mut at = start - QUARTER;
        while at < start + 8 * QUARTER {
            at += 20_000 + next(60_000);
            seq += 1;
            counter += next(50);
            let mut meter = reading(gw, seq, at, -500, 0);
            meter.sample.energy_out_wh = Some(Wh(counter));
            if next(10) == 0 {
                meter.sample.quality = Quality::Suspect;
                meter.sample.energy_out_wh = Some(Wh(counter + 1_000_000));
            }
            all.push(meter);
            if gw == GatewayId(1) && next(4) != 0 {
                let mut inverter = reading(gw, seq, at + next(30_000), 800, 0);
                inverter.sample.device = DeviceId::new("pv").unwrap();
                inverter.sample.kind = DeviceKind::PvInverter;
                inverter.sample.energy_out_wh = Some(Wh(counter));
                all.push(inverter);
            }
        }
    }
    // what the rules give, computed from the readings
    let (from, to) = (start, start + 8 * QUARTER);
    let mut last: BTreeMap<(u64, i64), i64> = BTreeMap::new(); // (gateway, interval) → highest counter
    for r in all
        .iter()
        .filter(|r| r.sample.kind == DeviceKind::GridMeter && r.sample.quality != Quality::Suspect)
    {
        let e = last
            .entry((r.gateway.0, r.sample.at.0.div_euclid(QUARTER)))
            .or_insert(0);
        *e = (*e).max(r.sample.energy_out_wh.unwrap().get());
    }
    let exported: Vec<(GatewayId, i64, i64)> = last
        .iter()
        .filter_map(|(&(g, i), &c)| {
            let before = last.get(&(g, i - 1))?;
            (i * QUARTER >= from && i * QUARTER < to).then_some((GatewayId(g), i * QUARTER, c - before))
        })
        .collect();
    let complete = |period: i64| -> Vec<(GatewayId, u64)> {
        let (first, end) = ((from + period - 1) / period, to / period);
        let mut seen: BTreeMap<u64, BTreeMap<i64, BTreeSet<&str>>> = BTreeMap::new();
        for r in &all {
            let p = r.sample.at.0.div_euclid(period);
            if p >= first && p < end {
                seen.entry(r.gateway.0)
                    .or_default()
                    .entry(p)
                    .or_default()
                    .insert(r.sample.device.as_str());
            }
        }
        seen.iter()
            .map(|(&g, periods)| {
                let devices = periods.values().flatten().collect::<BTreeSet<_>>().len();
                (
                    GatewayId(g),
                    periods.values().filter(|d| d.len() == devices).count() as u64,
                )
            })
            .collect()
    };
    assert!(
        exported.len() > 10 && complete(60_000)[0].1 > 10,
        "the data exercises the rules"
    );
    let backfill = |migration: &str| {
        migration[migration.find("SELECT gateway_id").unwrap()..migration.rfind(';').unwrap()].to_owned()
    };
    for t in backends().await {
        let db = &t.db;
        home_with_gateway(db, 1).await;
        home_with_gateway(db, 2).await;
        for (i, chunk) in all.chunks(37).enumerate() {
            readings::insert_batch(db, chunk).await.unwrap();
            if i % 3 == 0 {
                // a re-sent batch changes nothing
                readings::insert_batch(db, chunk).await.unwrap();
            }
        }
        let got = epochs::exported_per_interval(db, from, to, QUARTER).await.unwrap();
        assert_eq!(got, exported, "{}: export per interval", t.name);
        for period in [60_000, 35_000, 900_000] {
            let got = epochs::complete_periods(db, from, to, period).await.unwrap();
            assert_eq!(got, complete(period), "{}: complete {period} ms periods", t.name);
        }
        for (what, refused) in [
            ("period_ms", epochs::complete_periods(db, from, to, 7_000).await.err()),
            (
                "interval_ms",
                epochs::exported_per_interval(db, from, to, 420_000).await.err(),
            ),
            (
                "epoch bounds",
                epochs::exported_per_interval(db, from + 1, to, QUARTER).await.err(),
            ),
        ] {
            assert!(
                matches!(&refused, Some(StorageError::Refused { constraint, .. }) if constraint == what),
                "{}: {what}: {refused:?}",
                t.name
            );
        }
        // the backfill of migration 0026 (the same statement in both trees) rebuilds the blocks
        let rows = |sql: String| async move {
            let sql =
                format!("SELECT gateway_id, device, block, periods, export_max FROM ({sql}) AS b ORDER BY 1, 2, 3");
            match db {
                Db::Sqlite(pool) => sqlx::query_as::<_, (i64, String, i64, i64, Option<i64>)>(sqlx::AssertSqlSafe(sql))
                    .fetch_all(pool)
                    .await
                    .unwrap(),
                Db::Postgres(pool) => {
                    sqlx::query_as::<_, (i64, String, i64, i64, Option<i64>)>(sqlx::AssertSqlSafe(sql))
                        .fetch_all(pool)
                        .await
                        .unwrap()
                }
            }
        };
        let kept = rows("SELECT * FROM reading_blocks".into()).await;
        let select = match db {
            Db::Sqlite(_) => backfill(include_str!("../migrations/sqlite/0026_reading_blocks.sql")),
            Db::Postgres(_) => backfill(include_str!("../migrations/postgres/0026_reading_blocks.sql")),
        };
        assert_eq!(
            rows(select).await,
            kept,
            "{}: the backfill builds the blocks the ingest kept",
            t.name
        );
        t.finish().await;
    }
}
