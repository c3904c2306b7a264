//! Settles real batches on anvil and on the in-process EVM and checks that both end with the same
//! balances, the state hash computed off chain, Merkle proofs the vault accepts, and that a batch
//! too big for one transaction settles in chunks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeMap;
use std::str::FromStr;

use alloy::primitives::{Address, B256, I256, U256};
use alloy::signers::local::PrivateKeySigner;
use gridshare_domain::ids::{ParticipantId, TradeId};
use gridshare_domain::interval::Timestamp;
use gridshare_domain::money::Account;
use gridshare_domain::units::{MicroPerKwh, Wh};
use gridshare_settlement::chain::{Chain, ChainError, EVM_CHAIN_ID, EvmChain, RpcChain};
use gridshare_settlement::contracts::EnergySettlementVault;
use gridshare_settlement::ledger::{BatchBuilder, SettledTrade, Tariff, position};
use gridshare_settlement::merkle::{self, MerkleTree};
use gridshare_settlement::onchain::{
    AccountIndex, Deployment, OnchainBatch, Submitter, Wallet, deploy, next_state_hash, settle_batch, vault_state, view,
};
use gridshare_testkit::{ANVIL_KEY_0, Anvil};

const TARIFF: Tariff = Tariff {
    import: MicroPerKwh(320_000),
    export: MicroPerKwh(70_000),
};

fn admin_key() -> PrivateKeySigner {
    PrivateKeySigner::from_str(ANVIL_KEY_0).unwrap()
}

fn home_address(p: ParticipantId) -> Address {
    let mut b = [0u8; 20];
    b[0] = 0x40;
    b[12..].copy_from_slice(&p.0.to_be_bytes());
    Address::from(b)
}

fn account_address(a: &Account) -> Address {
    match a {
        Account::Participant(p) => home_address(*p),
        Account::CommunityFee => Address::with_last_byte(0xC0),
        Account::GridOperator => Address::with_last_byte(0x60),
        Account::Utility => Address::with_last_byte(0x01),
    }
}

/// A deterministic interval of trades among `homes` homes.
fn trades(interval: i64, homes: u64, n: u64) -> Vec<SettledTrade> {
    (0..n)
        .map(|i| {
            let seller = (i * 7 + interval as u64) % homes;
            let buyer = (seller + 1 + i % (homes - 1)) % homes;
            SettledTrade {
                trade_id: TradeId(interval as u64 * 10_000 + i),
                interval_start: Timestamp(interval * 900_000),
                buyer: ParticipantId(buyer),
                seller: ParticipantId(seller),
                quantity: Wh(137 + (i as i64 * 53) % 900),
                price: MicroPerKwh(90_000 + (i as i64 * 7_919) % 150_000),
                grid_fee: MicroPerKwh(5_000 + (i as i64 % 3) * 2_500),
            }
        })
        .collect()
}

fn leaf_trade(t: &SettledTrade) -> EnergySettlementVault::Trade {
    let cash = t.cash().unwrap();
    EnergySettlementVault::Trade {
        tradeId: t.trade_id.0,
        intervalStartMs: t.interval_start.0 as u64,
        buyer: home_address(t.buyer),
        seller: home_address(t.seller),
        energyWh: t.quantity.0 as u64,
        priceMicroPerKwh: t.price.0,
        gridFeeMicroPerKwh: t.grid_fee.0 as u64,
        buyerPaysMicro: i128::from(cash.buyer_pays.0),
        sellerReceivesMicro: i128::from(cash.seller_receives.0),
    }
}

/// Builds, nets and settles `intervals` batches; returns every account's final vault balance.
async fn run_scenario<C: Chain>(chain: &C) -> BTreeMap<Address, I256> {
    let wallet = Wallet::new(admin_key(), chain.chain_id().await.unwrap());
    let mut s = Submitter::new(chain, wallet).await.unwrap();
    let Deployment { vault, .. } = deploy(&mut s, 500_000_000).await.unwrap();
    let mut index = AccountIndex::load(chain, vault).await.unwrap();
    let homes = 12;
    let mut all_accounts = Vec::new();
    for interval in 1..=3i64 {
        let ts = trades(interval, homes, 25);
        let mut b = BatchBuilder::new();
        for t in &ts {
            b.add_trade(t).unwrap();
        }
        for h in 0..homes {
            let who = ParticipantId(h);
            let metered = (h % 4 != 0).then_some(Wh((h as i64 - 6) * 211));
            let p = position(who, Timestamp(interval * 900_000), &ts, metered, Some(Wh(50)), TARIFF).unwrap();
            b.add_position(&p);
        }
        let netted = b.finish().unwrap();
        assert_eq!(netted.sum(), 0);
        let addresses: Vec<Address> = netted.deltas.keys().map(account_address).collect();
        index.ensure(&mut s, vault, addresses.clone()).await.unwrap();
        all_accounts.extend(addresses);
        let mut deltas: Vec<(u32, i128)> = netted
            .deltas
            .iter()
            .map(|(a, d)| (index.get(&account_address(a)).unwrap(), i128::from(d.0)))
            .collect();
        deltas.sort();
        let leaves: Vec<_> = ts.iter().map(leaf_trade).collect();
        let tree = MerkleTree::from_trades(&leaves);
        let batch = OnchainBatch {
            batch_id: interval as u64,
            trades_root: tree.root(),
            deltas,
        };
        let before = vault_state(chain, vault).await.unwrap();
        settle_batch(&mut s, vault, &batch, 1_000).await.unwrap();
        let after = vault_state(chain, vault).await.unwrap();
        assert_eq!(after.last_batch_id, interval as u64);
        let expected = next_state_hash(
            before.state_hash,
            batch.batch_id,
            0,
            1,
            batch.trades_root,
            &batch.words(),
        );
        assert_eq!(after.state_hash, expected, "state hash computed off chain");

        // every trade proves against the vault; a tampered one does not
        for (i, leaf) in leaves.iter().enumerate() {
            let proof = tree.proof(i).unwrap();
            assert!(merkle::verify(&proof, tree.root(), merkle::leaf(leaf)));
            let ok = view(
                chain,
                vault,
                EnergySettlementVault::verifyTradeCall {
                    batchId: batch.batch_id,
                    trade: leaf.clone(),
                    proof: proof.clone(),
                },
            )
            .await
            .unwrap();
            assert!(ok, "vault accepts proof of trade {i}");
        }
        let mut forged = leaves[0].clone();
        forged.energyWh += 1;
        let ok = view(
            chain,
            vault,
            EnergySettlementVault::verifyTradeCall {
                batchId: batch.batch_id,
                trade: forged,
                proof: tree.proof(0).unwrap(),
            },
        )
        .await
        .unwrap();
        assert!(!ok, "vault refuses a forged trade");
    }
    // replaying batch 1 is refused with a clear error
    let st = vault_state(chain, vault).await.unwrap();
    let err = s
        .send(
            vault,
            EnergySettlementVault::settleIntervalCall {
                batchId: 1,
                chunk: 0,
                chunkCount: 1,
                prevStateHash: st.state_hash,
                root: B256::ZERO,
                deltas: vec![U256::from(1u8)],
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("BatchOutOfOrder"), "{err}");

    all_accounts.sort();
    all_accounts.dedup();
    let mut balances = BTreeMap::new();
    let mut sum = I256::ZERO;
    for a in all_accounts {
        let bal = view(chain, vault, EnergySettlementVault::balanceOfCall { account: a })
            .await
            .unwrap();
        sum += bal;
        balances.insert(a, bal);
    }
    assert_eq!(sum, I256::ZERO, "no deposits: balances sum to zero");
    balances
}

#[tokio::test]
async fn anvil_and_in_process_evm_settle_to_identical_balances() {
    let Some(anvil) = Anvil::start(&[]) else { return };
    let anvil = anvil.unwrap();
    let rpc = RpcChain::new(&anvil.url, std::time::Duration::from_secs(10)).unwrap();
    let on_anvil = run_scenario(&rpc).await;

    let evm = EvmChain::in_memory(&[admin_key().address()]);
    let in_process = run_scenario(&evm).await;

    assert!(on_anvil.len() >= 12);
    assert_eq!(on_anvil, in_process);
}

/// A batch among 3 000 accounts needs more than EIP-7825's 2^24 gas in one transaction: it is
/// refused whole and settles in chunks.
async fn big_batch_settles_in_chunks<C: Chain>(chain: &C) {
    let wallet = Wallet::new(admin_key(), chain.chain_id().await.unwrap());
    let mut s = Submitter::new(chain, wallet).await.unwrap();
    let Deployment { vault, .. } = deploy(&mut s, 1_000_000).await.unwrap();
    let mut index = AccountIndex::default();
    let accounts: Vec<Address> = (0..3_000u64).map(|i| home_address(ParticipantId(i))).collect();
    index.ensure(&mut s, vault, accounts.clone()).await.unwrap();
    let mut deltas: Vec<(u32, i128)> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            (
                index.get(a).unwrap(),
                if i % 2 == 0 {
                    -1_000 - i as i128
                } else {
                    1_000 + i as i128 - 1
                },
            )
        })
        .collect();
    deltas.sort();
    let batch = OnchainBatch {
        batch_id: 1,
        trades_root: B256::repeat_byte(7),
        deltas,
    };
    let st = vault_state(chain, vault).await.unwrap();
    let whole = EnergySettlementVault::settleIntervalCall {
        batchId: 1,
        chunk: 0,
        chunkCount: 1,
        prevStateHash: st.state_hash,
        root: batch.trades_root,
        deltas: batch.words(),
    };
    let estimate = chain
        .estimate_gas(
            s.address(),
            Some(vault),
            alloy::sol_types::SolCall::abi_encode(&whole).into(),
        )
        .await;
    match estimate {
        Ok(gas) => assert!(gas > 1 << 24, "one transaction would need {gas} gas"),
        Err(e) if e.refuses_transaction() || matches!(e, ChainError::Rpc { .. } | ChainError::CallReverted(_)) => {}
        Err(e) => panic!("unexpected error {e}"),
    }
    let receipts = settle_batch(&mut s, vault, &batch, 1_000).await.unwrap();
    assert_eq!(receipts.len(), 3);
    assert!(receipts.iter().all(|r| r.gas_used < 1 << 24));
    let st = vault_state(chain, vault).await.unwrap();
    assert_eq!((st.last_batch_id, st.next_chunk), (1, 0));
    for (i, a) in accounts.iter().enumerate().step_by(499) {
        let bal = view(chain, vault, EnergySettlementVault::balanceOfCall { account: *a })
            .await
            .unwrap();
        let want = if i % 2 == 0 {
            -1_000 - i as i64
        } else {
            1_000 + i as i64 - 1
        };
        assert_eq!(bal, I256::try_from(want).unwrap());
    }
}

#[tokio::test]
async fn big_batch_is_chunked_under_the_gas_cap_on_anvil() {
    let Some(anvil) = Anvil::start(&["--enable-tx-gas-limit"]) else {
        return;
    };
    let anvil = anvil.unwrap();
    let rpc = RpcChain::new(&anvil.url, std::time::Duration::from_secs(30)).unwrap();
    big_batch_settles_in_chunks(&rpc).await;
}

#[tokio::test]
async fn big_batch_is_chunked_under_the_gas_cap_in_process() {
    let evm = EvmChain::in_memory(&[admin_key().address()]);
    big_batch_settles_in_chunks(&evm).await;
}

#[tokio::test]
async fn in_process_chain_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("chain.log");
    let admin = admin_key().address();
    let (vault, state) = {
        let evm = EvmChain::open(&log, &[admin]).unwrap();
        let mut s = Submitter::new(&evm, Wallet::new(admin_key(), EVM_CHAIN_ID))
            .await
            .unwrap();
        let d = deploy(&mut s, 1_000).await.unwrap();
        let mut index = AccountIndex::default();
        let a = home_address(ParticipantId(1));
        let b = home_address(ParticipantId(2));
        index.ensure(&mut s, d.vault, [a, b]).await.unwrap();
        let mut deltas = vec![(index.get(&a).unwrap(), -5i128), (index.get(&b).unwrap(), 5)];
        deltas.sort();
        let batch = OnchainBatch {
            batch_id: 1,
            trades_root: B256::repeat_byte(1),
            deltas,
        };
        settle_batch(&mut s, d.vault, &batch, 100).await.unwrap();
        (d.vault, vault_state(&evm, d.vault).await.unwrap())
    };
    let reopened = EvmChain::open(&log, &[admin]).unwrap();
    assert_eq!(vault_state(&reopened, vault).await.unwrap(), state);
    let bal = view(
        &reopened,
        vault,
        EnergySettlementVault::balanceOfCall {
            account: home_address(ParticipantId(2)),
        },
    )
    .await
    .unwrap();
    assert_eq!(bal, I256::try_from(5).unwrap());
    // the nonce carries on: a new submitter continues where the old one stopped
    assert!(reopened.nonce(admin).await.unwrap() >= 4);
}

#[tokio::test]
async fn in_process_chain_recovers_a_torn_last_line_and_refuses_damage_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("chain.log");
    let admin = admin_key().address();
    let vault = {
        let evm = EvmChain::open(&log, &[admin]).unwrap();
        let mut s = Submitter::new(&evm, Wallet::new(admin_key(), EVM_CHAIN_ID))
            .await
            .unwrap();
        deploy(&mut s, 1_000).await.unwrap().vault
    };
    let whole = std::fs::read(&log).unwrap();
    let state = vault_state(&EvmChain::open(&log, &[admin]).unwrap(), vault)
        .await
        .unwrap();

    // a crash in the middle of writing the next transaction: half a line, no newline
    let mut torn = whole.clone();
    torn.extend_from_slice(b"02f8b1827a6980843b9aca00");
    std::fs::write(&log, &torn).unwrap();
    let reopened = EvmChain::open(&log, &[admin]).expect("a torn tail must not block the restart");
    assert_eq!(vault_state(&reopened, vault).await.unwrap(), state);
    assert_eq!(
        std::fs::read(&log).unwrap(),
        whole,
        "the torn line is cut off, the rest kept"
    );
    drop(reopened);

    // a damaged line that is not the last is not guessed at: the error names the line
    let mut damaged = b"zz\n".to_vec();
    damaged.extend_from_slice(&whole);
    std::fs::write(&log, &damaged).unwrap();
    let err = match EvmChain::open(&log, &[admin]) {
        Ok(_) => panic!("damage before the tail is refused"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("line 1"), "{err}");
}
