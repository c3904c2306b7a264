//! The settlement step end to end on the in-process EVM: due intervals become sequential
//! batches whose on-chain balances equal the ledger, intervals still in their metering window
//! wait, a second run settles nothing twice, and a trade's Merkle proof verifies on the vault.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::str::FromStr;

use alloy::primitives::{Address, I256};
use alloy::signers::local::PrivateKeySigner;
use gridshare_domain::wire::TradeReport;
use gridshare_domain::{
    DeliveryInterval, IntervalLength, IntervalRules, MicroPerKwh, OrderId, ParticipantId, Timestamp, TradeId, Wh,
    ZoneId,
};
use gridshare_settlement::chain::{Chain, EvmChain};
use gridshare_settlement::contracts::EnergySettlementVault;
use gridshare_settlement::ledger::Tariff;
use gridshare_settlement::merkle::MerkleTree;
use gridshare_settlement::onchain::{Submitter, Wallet, deploy, view};
use gridshare_settlement::step::{Accounts, SettlementStep, StepConfig, leaf_trade};
use gridshare_storage::participants::{self, Participant};
use gridshare_storage::{Db, chain_txs, market};
use gridshare_testkit::ANVIL_KEY_0;

const T0: i64 = 1_764_064_800_000; // an interval start

fn iv(n: i64) -> DeliveryInterval {
    DeliveryInterval::new(Timestamp(T0 + n * 900_000), IntervalLength::Min15).unwrap()
}

fn trade(id: u64, n: i64, buyer: u64, seller: u64, wh: i64, price: i64) -> TradeReport {
    TradeReport {
        trade_id: TradeId(id),
        zone: ZoneId(1),
        interval: iv(n),
        buy_order: OrderId(id * 10),
        sell_order: OrderId(id * 10 + 1),
        buyer: ParticipantId(buyer),
        seller: ParticipantId(seller),
        quantity: Wh(wh),
        price: MicroPerKwh(price),
        grid_fee: MicroPerKwh(7_000),
        at: Timestamp(T0 + n * 900_000 - 600_000),
    }
}

async fn balance(chain: &EvmChain, vault: Address, who: Address) -> i128 {
    let b: I256 = view(chain, vault, EnergySettlementVault::balanceOfCall { account: who })
        .await
        .unwrap();
    i128::try_from(b).unwrap()
}

/// The step's settings in these tests: imports at 0.30/kWh, exports at 0.08, 15-minute intervals
/// with a 15-minute metering window, true-ups for a week.
fn step_config() -> StepConfig {
    StepConfig {
        tariff: Tariff {
            import: MicroPerKwh(300_000),
            export: MicroPerKwh(80_000),
        },
        rules: IntervalRules::default(),
        max_accounts: 500,
        confirmations: 1,
        true_up_window_ms: 7 * 24 * 3_600_000,
    }
}

/// The utility's account (0x…01) and the accounts of these tests (community 0x…C0, grid 0x…60).
async fn utility_and_accounts(db: &Db) -> (Address, Accounts) {
    let utility = Address::with_last_byte(0x01);
    let accounts = Accounts::load(
        db,
        Address::with_last_byte(0xC0),
        Address::with_last_byte(0x60),
        utility,
    )
    .await
    .unwrap();
    (utility, accounts)
}

/// A fresh in-process chain with the contracts deployed: the chain, the settler's wallet and the
/// deployment.
async fn chain_with_vault() -> (EvmChain, Wallet, gridshare_settlement::onchain::Deployment) {
    let key = PrivateKeySigner::from_str(ANVIL_KEY_0).unwrap();
    let chain = EvmChain::in_memory(&[key.address()]);
    let wallet = Wallet::new(key, chain.chain_id().await.unwrap());
    let mut s = Submitter::new(&chain, wallet.clone()).await.unwrap();
    let d = deploy(&mut s, 10_000_000).await.unwrap();
    (chain, wallet, d)
}

/// Homeowners `(id, whether they have a gateway)` on feeder node 1; home n's gateway is 10 + n.
async fn homes(db: &Db, homes: &[(u64, bool)]) {
    use gridshare_domain::envelope::{GatewayKey, ReplayWindow};
    use gridshare_domain::{GatewayId, NodeId};
    use gridshare_storage::gateways::{self, Gateway};
    for &(id, gateway) in homes {
        participants::upsert(
            db,
            &Participant {
                id: ParticipantId(id),
                name: format!("home {id}"),
                role: "homeowner".into(),
                evm_address: None,
                feeder_node: Some(1),
                custody_address: common::custody_address(id),
            },
            Timestamp(0),
        )
        .await
        .unwrap();
        if gateway {
            gateways::register(
                db,
                &Gateway {
                    id: GatewayId(10 + id),
                    owner: ParticipantId(id),
                    installer: None,
                    public_key: GatewayKey::from_bytes(&[10 + id as u8; 32]).unwrap().public(),
                    feeder_node: NodeId(1),
                    window: ReplayWindow::default(),
                    revoked_at: None,
                },
                Timestamp(0),
            )
            .await
            .unwrap();
        }
    }
}

/// Gateway `g`'s grid-meter reading number `seq`: its import and export counters at `at`.
fn grid_reading(g: u64, seq: u64, at: i64, import: i64, export: i64) -> gridshare_storage::readings::Reading {
    use gridshare_domain::wire::{DeviceKind, DeviceStatus, Quality, TelemetrySample};
    use gridshare_domain::{DeviceId, GatewayId, W};
    gridshare_storage::readings::Reading {
        gateway: GatewayId(g),
        seq,
        sample: TelemetrySample {
            device: DeviceId::new("grid").unwrap(),
            kind: DeviceKind::GridMeter,
            at: Timestamp(at),
            power_w: Some(W(0)),
            energy_in_wh: Some(Wh(import)),
            energy_out_wh: Some(Wh(export)),
            soc_permille: None,
            status: DeviceStatus::Ok,
            quality: Quality::Good,
        },
    }
}

#[tokio::test]
async fn due_intervals_settle_once_in_sequence_and_match_the_ledger() {
    let (chain, wallet, d) = chain_with_vault().await;

    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    let ada: Address = "0x00000000000000000000000000000000000a0a0a".parse().unwrap();
    for (id, addr) in [(1u64, Some(ada.to_string())), (2, None), (3, None)] {
        participants::upsert(
            &db,
            &Participant {
                id: ParticipantId(id),
                name: format!("home {id}"),
                role: "homeowner".into(),
                evm_address: addr,
                feeder_node: Some(id as u32),
                custody_address: common::custody_address(id),
            },
            Timestamp(0),
        )
        .await
        .unwrap();
    }
    market::insert_trades(
        &db,
        &[
            trade(1, 0, 2, 1, 1_500, 120_000),
            trade(2, 0, 3, 1, 333, 118_000),
            trade(3, 1, 1, 2, 700, 90_000),
            trade(4, 5, 2, 3, 100, 100_000),
        ],
    )
    .await
    .unwrap();

    let (community, grid, utility) = (
        Address::with_last_byte(0xC0),
        Address::with_last_byte(0x60),
        Address::with_last_byte(0x01),
    );
    let accounts = Accounts::load(&db, community, grid, utility).await.unwrap();
    let cfg = step_config();
    let mut step = SettlementStep::new(&chain, &db, wallet.clone(), d.vault, cfg, accounts.clone())
        .await
        .unwrap();

    // interval 1 ends at T0 + 30 min; with a 15-minute metering window it is due at T0 + 45 min
    let now = Timestamp(T0 + 44 * 60_000);
    assert_eq!(step.run(now).await.unwrap(), vec![1], "only interval 0 is due");
    let now = Timestamp(T0 + 45 * 60_000);
    assert_eq!(step.run(now).await.unwrap(), vec![2]);
    assert_eq!(step.run(now).await.unwrap(), Vec::<u64>::new(), "nothing twice");

    // balances: ada sold 1 500 + 333 Wh and bought 700 Wh
    let sold = 1_500 * 120_000 / 1_000 + 333 * 118_000 / 1_000; // sellers round down
    let bought = (700i128 * 97_000 + 999) / 1_000; // buyer pays price + fee, rounded up
    assert_eq!(balance(&chain, d.vault, ada).await, sold - bought);
    let fees: i128 = (1_500 * 7_000 + 333 * 7_000 + 700 * 7_000) / 1_000;
    assert_eq!(
        balance(&chain, d.vault, grid).await,
        fees,
        "network fees go to the grid operator"
    );
    let homes2 = balance(&chain, d.vault, custody_of(ParticipantId(2))).await;
    let homes3 = balance(&chain, d.vault, custody_of(ParticipantId(3))).await;
    let total = balance(&chain, d.vault, ada).await
        + homes2
        + homes3
        + fees
        + balance(&chain, d.vault, community).await
        + balance(&chain, d.vault, utility).await;
    assert_eq!(total, 0, "every batch sums to zero");

    let stored = chain_txs::batches(&db, None, 10, false).await.unwrap();
    assert_eq!(
        stored.iter().map(|b| b.status.as_str()).collect::<Vec<_>>(),
        ["confirmed", "confirmed"]
    );
    assert_eq!(stored[1].trade_count, 2);

    // a trade of batch 1 proves against the vault
    let trades = market::trades_of_batch(&db, 1).await.unwrap();
    let leaves: Vec<_> = trades.iter().map(|t| leaf_trade(t, &accounts).unwrap()).collect();
    let tree = MerkleTree::from_trades(&leaves);
    let ok = view(
        &chain,
        d.vault,
        EnergySettlementVault::verifyTradeCall {
            batchId: 1,
            trade: leaves[1].clone(),
            proof: tree.proof(1).unwrap(),
        },
    )
    .await
    .unwrap();
    assert!(ok);
    // and the proof served from storage is the same one
    let stored = market::onchain_trades_of_batch(&db, 1).await.unwrap();
    let (t, proof, root) = gridshare_settlement::step::proof_of(&stored, 2).unwrap().unwrap();
    assert_eq!(root, tree.root());
    assert_eq!(t.to_trade().unwrap(), leaves[1]);
    assert_eq!(proof, tree.proof(1).unwrap());
    assert!(gridshare_settlement::step::proof_of(&stored, 99).unwrap().is_none());
    assert_eq!(
        market::batch_of_trade(&db, 4).await.unwrap(),
        None,
        "interval 5 is not due yet"
    );
}

/// Meter readings decide the positions: the difference between what a home's grid meter counted
/// over the interval and what it traded is charged at the utility tariff; a home without
/// readings at both ends is settled as traded.
#[tokio::test]
async fn metered_positions_charge_the_imbalance_at_the_tariff() {
    use gridshare_domain::GatewayId;
    use gridshare_storage::readings;

    let (chain, wallet, d) = chain_with_vault().await;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    // homes 1 and 2 have gateways 11 and 12; home 3 has none
    homes(&db, &[(1, true), (2, true), (3, false)]).await;
    let reading = grid_reading;
    let (start, end) = (iv(0).start().0, iv(0).end().0);
    readings::insert_batch(
        &db,
        &[
            // home 1 exported 400 Wh (but sold 500): 100 Wh short, bought from the utility
            reading(11, 1, start - 20_000, 0, 5_000),
            reading(11, 2, start + 450_000, 0, 5_200), // mid-interval: not an end point
            reading(11, 3, end + 30_000, 0, 5_400),
            // home 2 imported 800 Wh (but bought 500): 300 Wh from the utility
            reading(12, 1, start + 10_000, 10_000, 0),
            reading(12, 2, end - 5_000, 10_800, 0),
            // outside the tolerance (a fifteenth of the interval, 60 s): ignored
            reading(12, 3, end + 120_000, 99_999, 0),
        ],
    )
    .await
    .unwrap();
    market::insert_trades(&db, &[trade(1, 0, 2, 1, 500, 120_000), trade(2, 0, 3, 1, 100, 120_000)])
        .await
        .unwrap();
    let (utility, accounts) = utility_and_accounts(&db).await;
    let cfg = step_config();
    let mut step = SettlementStep::new(&chain, &db, wallet, d.vault, cfg, accounts)
        .await
        .unwrap();
    assert_eq!(step.run(Timestamp(end + 15 * 60_000)).await.unwrap(), vec![1]);

    // home 1 sold 600 and exported 400 net (metered −400 vs traded −600): 200 Wh drawn
    // home 2: metered +800 vs traded +500: 300 Wh drawn; home 3 (no gateway): as traded
    let drawn = 200 * 300_000 / 1_000 + 300 * 300_000 / 1_000;
    assert_eq!(balance(&chain, d.vault, utility).await, drawn);
    let home2 = balance(&chain, d.vault, custody_of(ParticipantId(2))).await;
    let paid_for_trade = (500i128 * 127_000 + 999) / 1_000;
    assert_eq!(home2, -paid_for_trade - 300 * 300);

    // a counter that went backwards (a replaced meter) is not a measurement
    readings::insert_batch(
        &db,
        &[
            reading(12, 4, iv(2).start().0 + 1_000, 20_000, 0),
            reading(12, 5, iv(2).end().0 - 1_000, 100, 0),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        gridshare_settlement::step::metered_net_import(&db, &[GatewayId(12)], iv(2))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        gridshare_settlement::step::metered_net_import(&db, &[GatewayId(11), GatewayId(12)], iv(0))
            .await
            .unwrap(),
        Some(Wh(400)),
        "two gateways add up"
    );
}

/// Issue 22: the tariffs the community governs price imbalance from the first interval that
/// begins after the service saw the new version; an interval that began before keeps the
/// configured (version 0) tariff, and each position keeps the tariff it was settled at.
#[tokio::test]
async fn a_governed_tariff_prices_the_intervals_that_begin_after_it() {
    use gridshare_storage::{parameters, positions, readings};

    let (chain, wallet, d) = chain_with_vault().await;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    homes(&db, &[(2, true), (3, false)]).await;
    // home 2 imports 800 Wh in each of intervals 0 and 1, and buys 500 Wh in each: 300 Wh drawn
    let reading = grid_reading;
    readings::insert_batch(
        &db,
        &[
            reading(12, 1, iv(0).start().0, 10_000, 0),
            reading(12, 2, iv(1).start().0, 10_800, 0),
            reading(12, 3, iv(1).end().0, 11_600, 0),
        ],
    )
    .await
    .unwrap();
    market::insert_trades(&db, &[trade(1, 0, 2, 3, 500, 120_000), trade(2, 1, 2, 3, 500, 120_000)])
        .await
        .unwrap();
    // version 0 (the configuration's) at deployment; version 1 (imports at 0.50/kWh, exports at
    // 0.05) seen a millisecond before interval 1 began
    let params = |import: u64, export: u64| format!(r#"{{"importTariff":"{import}","exportTariff":"{export}"}}"#);
    parameters::record(&db, 0, Timestamp(T0 - 3_600_000), &params(300_000, 80_000), "{}")
        .await
        .unwrap();
    parameters::record(&db, 1, Timestamp(iv(1).start().0 - 1), &params(500_000, 50_000), "{}")
        .await
        .unwrap();
    let (utility, accounts) = utility_and_accounts(&db).await;
    let mut step = SettlementStep::new(&chain, &db, wallet, d.vault, step_config(), accounts)
        .await
        .unwrap();
    assert_eq!(
        step.run(Timestamp(iv(1).end().0 + 15 * 60_000)).await.unwrap(),
        vec![1, 2]
    );
    assert_eq!(
        balance(&chain, d.vault, utility).await,
        300 * 300 + 300 * 500,
        "300 Wh at the configured 0.30, then 300 Wh at the governed 0.50"
    );
    let settled: Vec<(i64, i64, i64)> = positions::of_participant(&db, ParticipantId(2), None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| {
            let p = p.settled;
            (p.interval_start.0, p.import_tariff.0, p.export_tariff.0)
        })
        .collect();
    assert!(settled.contains(&(iv(0).start().0, 300_000, 80_000)), "{settled:?}");
    assert!(settled.contains(&(iv(1).start().0, 500_000, 50_000)), "{settled:?}");
}

/// Readings that arrive after their interval was settled true up the estimated positions: the
/// correction rides in the next due interval's batch, or in a batch of its own (no trades) when
/// none is due; a correction of zero is recorded without moving money; nothing is trued up twice.
#[tokio::test]
async fn late_readings_true_up_estimated_positions_in_the_next_batch() {
    use gridshare_domain::Micro;
    use gridshare_storage::positions;
    use gridshare_storage::readings;

    let (chain, wallet, d) = chain_with_vault().await;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    homes(&db, &[(1, true), (2, true), (3, true)]).await;
    let reading = grid_reading;
    let minute = 60_000;
    // home 1 sells 500 Wh to home 2 and 100 Wh to home 3 in interval 0, and 200 Wh to home 2 in
    // interval 2; its meter is read throughout and shows what it sold
    market::insert_trades(
        &db,
        &[
            trade(1, 0, 2, 1, 500, 120_000),
            trade(2, 0, 3, 1, 100, 120_000),
            trade(3, 2, 2, 1, 200, 120_000),
        ],
    )
    .await
    .unwrap();
    readings::insert_batch(
        &db,
        &[
            reading(11, 1, iv(0).start().0, 0, 0),
            reading(11, 2, iv(0).end().0, 0, 600),
            reading(11, 3, iv(2).start().0, 0, 1_000),
            reading(11, 4, iv(2).end().0, 0, 1_200),
            // homes 2 and 3: only the start of interval 0 so far (their gateways are offline)
            reading(12, 1, iv(0).start().0, 10_000, 0),
            reading(13, 1, iv(0).start().0, 0, 0),
        ],
    )
    .await
    .unwrap();
    let (utility, accounts) = utility_and_accounts(&db).await;
    let cfg = step_config();
    let mut step = SettlementStep::new(&chain, &db, wallet, d.vault, cfg, accounts)
        .await
        .unwrap();
    let home = |p: u64| custody_of(ParticipantId(p));

    // interval 0 is settled with homes 2 and 3 as traded
    assert_eq!(step.run(Timestamp(T0 + 30 * minute)).await.unwrap(), vec![1]);
    assert_eq!(balance(&chain, d.vault, home(2)).await, -63_500);
    assert_eq!(
        balance(&chain, d.vault, utility).await,
        0,
        "no imbalance charged on an estimate"
    );
    let waiting = positions::awaiting_readings(&db, Timestamp(0), None, 10).await.unwrap();
    assert_eq!(
        waiting.iter().map(|p| p.settled.participant.0).collect::<Vec<_>>(),
        [2, 3]
    );

    // the gateways come back and forward what they read: home 2 drew 800 Wh (300 Wh more than it
    // bought), home 3 exactly the 100 Wh it bought; home 2 has read the start of interval 2 too
    readings::insert_batch(
        &db,
        &[
            reading(12, 2, iv(0).end().0 + 20_000, 10_800, 0),
            reading(12, 3, iv(2).start().0 - 5_000, 11_000, 0),
            reading(13, 2, iv(0).end().0 - 10_000, 100, 0),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        step.run(Timestamp(T0 + 30 * minute + 30_000)).await.unwrap(),
        Vec::<u64>::new(),
        "late readings are looked for once a minute"
    );
    // interval 2 is due: its batch carries home 2's correction for interval 0
    assert_eq!(step.run(Timestamp(T0 + 60 * minute)).await.unwrap(), vec![2]);
    let drawn = 300 * 300; // 300 Wh at the import tariff
    assert_eq!(balance(&chain, d.vault, utility).await, drawn);
    assert_eq!(balance(&chain, d.vault, home(2)).await, -63_500 - drawn - 25_400);
    assert_eq!(
        balance(&chain, d.vault, home(3)).await,
        -12_700,
        "a zero correction moves nothing"
    );
    let home3 = positions::of_participant(&db, ParticipantId(3), None, 10)
        .await
        .unwrap();
    assert_eq!(
        home3[0].true_up.map(|t| (t.real_net_import, t.cash)),
        Some((Wh(100), Micro(0)))
    );
    assert_eq!(home3[0].true_up_batch_id, None);

    // home 2's interval 2 was an estimate too; its end reading arrives with no interval due: a
    // batch of true-ups only (it drew 100 Wh of the 200 it bought: 100 Wh to the utility)
    readings::insert_batch(&db, &[reading(12, 4, iv(2).end().0 + 1_000, 11_100, 0)])
        .await
        .unwrap();
    assert_eq!(step.run(Timestamp(T0 + 61 * minute)).await.unwrap(), vec![3]);
    let exported = 100 * 80; // 100 Wh at the export tariff
    assert_eq!(balance(&chain, d.vault, utility).await, drawn - exported);
    assert_eq!(
        balance(&chain, d.vault, home(2)).await,
        -63_500 - drawn - 25_400 + exported
    );
    let stored = chain_txs::batches(&db, None, 10, false).await.unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|b| (b.batch_id, b.status.as_str(), b.trade_count))
            .collect::<Vec<_>>(),
        [(3, "confirmed", 0), (2, "confirmed", 1), (1, "confirmed", 2)]
    );
    assert_eq!(
        (stored[0].first_interval_start, stored[0].last_interval_end),
        (iv(2).start().0, iv(2).end().0)
    );
    let home2 = positions::of_participant(&db, ParticipantId(2), None, 10)
        .await
        .unwrap();
    assert_eq!(
        home2
            .iter()
            .map(|p| (
                p.settled.interval_start,
                p.batch_id,
                p.true_up.map(|t| t.cash),
                p.true_up_batch_id
            ))
            .collect::<Vec<_>>(),
        [
            (iv(2).start(), 2, Some(Micro(exported as i64)), Some(3)),
            (iv(0).start(), 1, Some(Micro(-drawn as i64)), Some(2)),
        ]
    );

    // nothing twice, and the ledger still sums to zero
    assert_eq!(step.run(Timestamp(T0 + 70 * minute)).await.unwrap(), Vec::<u64>::new());
    let mut total = 0;
    for a in [
        home(1),
        home(2),
        home(3),
        utility,
        Address::with_last_byte(0xC0),
        Address::with_last_byte(0x60),
    ] {
        total += balance(&chain, d.vault, a).await;
    }
    assert_eq!(total, 0);
}

/// Home `p`'s custodial account on chain.
fn custody_of(p: ParticipantId) -> Address {
    Address::from(common::custody().address(p))
}
