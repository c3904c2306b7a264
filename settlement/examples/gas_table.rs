//! Gas per settlement batch and per trade on anvil, with real transactions.
//!
//! `cargo run --release -p gridshare-settlement --example gas_table` (anvil on PATH, or
//! `GRIDSHARE_ANVIL_BIN`). For 1, 10, 100 and 500 trades among min(2 × trades, 40) homes it
//! deploys a fresh vault, registers the accounts, and settles two consecutive intervals among the
//! same homes: the first is *cold* (every balance slot written for the first time), the second
//! *warm* (the normal case every 15 minutes). Prints a Markdown table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // a measuring tool

use std::str::FromStr;

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use gridshare_domain::ids::{ParticipantId, TradeId};
use gridshare_domain::interval::Timestamp;
use gridshare_domain::money::Account;
use gridshare_domain::units::{MicroPerKwh, Wh};
use gridshare_settlement::chain::{Chain, RpcChain};
use gridshare_settlement::ledger::{BatchBuilder, SettledTrade};
use gridshare_settlement::onchain::{AccountIndex, OnchainBatch, Submitter, Wallet, deploy, settle_batch};
use gridshare_testkit::{ANVIL_KEY_0, Anvil};

fn address(a: &Account) -> Address {
    match a {
        Account::Participant(p) => {
            let mut b = [0u8; 20];
            b[0] = 0x40;
            b[12..].copy_from_slice(&p.0.to_be_bytes());
            Address::from(b)
        }
        Account::CommunityFee => Address::with_last_byte(0xC0),
        Account::GridOperator => Address::with_last_byte(0x60),
        Account::Utility => Address::with_last_byte(0x01),
    }
}

fn interval_trades(interval: u64, homes: u64, n: u64) -> Vec<SettledTrade> {
    (0..n)
        .map(|i| {
            let seller = (i + interval) % homes;
            let buyer = (seller + 1 + (i / homes) % (homes - 1)) % homes;
            SettledTrade {
                trade_id: TradeId(interval * 100_000 + i),
                interval_start: Timestamp(interval as i64 * 900_000),
                buyer: ParticipantId(buyer),
                seller: ParticipantId(seller),
                quantity: Wh(100 + (i as i64 * 37) % 700),
                price: MicroPerKwh(100_000 + (i as i64 * 7_919) % 120_000),
                grid_fee: MicroPerKwh(8_000),
            }
        })
        .collect()
}

async fn measure<C: Chain>(chain: &C, trades: u64) -> (u64, u64, usize) {
    let homes = (2 * trades).clamp(2, 40);
    let wallet = Wallet::new(
        PrivateKeySigner::from_str(ANVIL_KEY_0).unwrap(),
        chain.chain_id().await.unwrap(),
    );
    let mut s = Submitter::new(chain, wallet).await.unwrap();
    let d = deploy(&mut s, 1_000_000_000).await.unwrap();
    let mut index = AccountIndex::default();
    let mut gas = Vec::new();
    let mut accounts = 0;
    for interval in 1..=2u64 {
        let mut b = BatchBuilder::new();
        for t in interval_trades(interval, homes, trades) {
            b.add_trade(&t).unwrap();
        }
        let netted = b.finish().unwrap();
        index
            .ensure(&mut s, d.vault, netted.deltas.keys().map(address))
            .await
            .unwrap();
        let mut deltas: Vec<(u32, i128)> = netted
            .deltas
            .iter()
            .map(|(a, m)| (index.get(&address(a)).unwrap(), i128::from(m.0)))
            .collect();
        deltas.sort();
        accounts = deltas.len();
        let batch = OnchainBatch {
            batch_id: interval,
            trades_root: B256::repeat_byte(interval as u8),
            deltas,
        };
        let receipts = settle_batch(&mut s, d.vault, &batch, 1_000).await.unwrap();
        gas.push(receipts.iter().map(|r| r.gas_used).sum::<u64>());
    }
    (gas[0], gas[1], accounts)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let anvil = Anvil::start(&["--enable-tx-gas-limit"])
        .expect("anvil not found: set GRIDSHARE_ANVIL_BIN or put it on PATH")
        .unwrap();
    let chain = RpcChain::new(&anvil.url, std::time::Duration::from_secs(30)).unwrap();
    println!(
        "| trades | homes | accounts in batch | cold gas/batch | cold gas/trade | warm gas/batch | warm gas/trade |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for trades in [1u64, 10, 100, 500] {
        let (cold, warm, accounts) = measure(&chain, trades).await;
        println!(
            "| {trades} | {} | {accounts} | {cold} | {} | {warm} | {} |",
            (2 * trades).clamp(2, 40),
            cold / trades,
            warm / trades
        );
    }
}
