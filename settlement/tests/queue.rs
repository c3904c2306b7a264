//! The transaction queue settles each batch exactly once even when the process dies after
//! signing, after broadcasting, or before confirmation (against anvil), and parks a batch the
//! vault refuses with the contract's error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::str::FromStr;

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use gridshare_settlement::chain::{Chain, RpcChain};
use gridshare_settlement::onchain::{AccountIndex, OnchainBatch, Submitter, Wallet, deploy, vault_state};
use gridshare_settlement::queue::{CrashPoint, QueueError, TxQueue};
use gridshare_storage::Db;
use gridshare_storage::chain_txs::{self, NewBatch, TxStatus};
use gridshare_testkit::{ANVIL_KEY_0, Anvil};

fn key() -> PrivateKeySigner {
    PrivateKeySigner::from_str(ANVIL_KEY_0).unwrap()
}

async fn setup(chain: &RpcChain) -> (Address, Vec<u32>) {
    let wallet = Wallet::new(key(), chain.chain_id().await.unwrap());
    let mut s = Submitter::new(chain, wallet).await.unwrap();
    let d = deploy(&mut s, 1_000_000).await.unwrap();
    let accounts: Vec<Address> = (1..=4u8).map(Address::repeat_byte).collect();
    let mut index = AccountIndex::default();
    index.ensure(&mut s, d.vault, accounts.clone()).await.unwrap();
    (d.vault, accounts.iter().map(|a| index.get(a).unwrap()).collect())
}

async fn stored_batch(db: &Db, batch: &OnchainBatch) {
    chain_txs::insert_batch(
        db,
        &NewBatch {
            batch_id: batch.batch_id,
            first_interval_start: 0,
            last_interval_end: 900_000,
            prev_state_hash: B256::ZERO.to_string(),
            trades_root: batch.trades_root.to_string(),
            trade_count: 2,
            deltas: batch.deltas.iter().map(|(i, d)| (i.to_string(), *d as i64)).collect(),
        },
        0,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_crash_at_any_step_settles_each_batch_exactly_once() {
    for crash in [
        CrashPoint::AfterSign,
        CrashPoint::AfterBroadcast,
        CrashPoint::BeforeConfirmation,
    ] {
        let Some(anvil) = Anvil::start(&[]) else { return };
        let anvil = anvil.unwrap();
        let chain = RpcChain::new(&anvil.url, std::time::Duration::from_secs(10)).unwrap();
        let (vault, idx) = setup(&chain).await;
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
        let mut deltas = vec![(idx[0], -700i128), (idx[1], 400), (idx[2], 300)];
        deltas.sort();
        let batch = OnchainBatch {
            batch_id: 1,
            trades_root: B256::repeat_byte(9),
            deltas,
        };
        stored_batch(&db, &batch).await;
        let nonce_before = chain.nonce(key().address()).await.unwrap();

        let mut q = TxQueue::new(&chain, &db, Wallet::new(key(), 31_337), vault);
        q.crash_at = Some(crash);
        match q.settle(&batch, 100).await {
            Err(QueueError::Crashed(at)) => assert_eq!(at, crash),
            other => panic!("expected the injected crash, got {other:?}"),
        }
        drop(q);

        // "restart": a new queue on the same database
        let mut q = TxQueue::new(&chain, &db, Wallet::new(key(), 31_337), vault);
        q.confirmations = 1;
        q.settle(&batch, 100).await.unwrap();
        // a second run is a no-op
        q.settle(&batch, 100).await.unwrap();

        let st = vault_state(&chain, vault).await.unwrap();
        assert_eq!(st.last_batch_id, 1, "{crash:?}");
        assert_eq!(
            chain.nonce(key().address()).await.unwrap(),
            nonce_before + 1,
            "{crash:?}: exactly one settlement transaction mined"
        );
        let txs = chain_txs::txs_of_batch(&db, 1).await.unwrap();
        assert_eq!(txs.len(), 1, "{crash:?}: signed once, re-sent from storage");
        assert_eq!(txs[0].status, TxStatus::Confirmed, "{crash:?}");
        let (status, err) = chain_txs::batch_status(&db, 1).await.unwrap().unwrap();
        assert_eq!((status.as_str(), err), ("confirmed", None), "{crash:?}");
    }
}

#[tokio::test]
async fn a_refused_batch_is_parked_with_the_contract_error() {
    let Some(anvil) = Anvil::start(&[]) else { return };
    let anvil = anvil.unwrap();
    let chain = RpcChain::new(&anvil.url, std::time::Duration::from_secs(10)).unwrap();
    let (vault, idx) = setup(&chain).await;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    // debit beyond the 1 000 000 µ credit line
    let mut deltas = vec![(idx[0], -2_000_000i128), (idx[1], 2_000_000)];
    deltas.sort();
    let batch = OnchainBatch {
        batch_id: 1,
        trades_root: B256::ZERO,
        deltas,
    };
    stored_batch(&db, &batch).await;
    let mut q = TxQueue::new(&chain, &db, Wallet::new(key(), 31_337), vault);
    let err = q.settle(&batch, 100).await.unwrap_err().to_string();
    assert!(err.contains("DebitExceedsCredit"), "{err}");
    let (status, reason) = chain_txs::batch_status(&db, 1).await.unwrap().unwrap();
    assert_eq!(status, "parked");
    assert!(reason.unwrap().contains("DebitExceedsCredit"));
    assert_eq!(vault_state(&chain, vault).await.unwrap().last_batch_id, 0);
}
