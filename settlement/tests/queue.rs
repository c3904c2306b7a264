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

/// anvil with the contracts deployed and four accounts registered, and a fresh database.
struct Rig {
    anvil: gridshare_testkit::Anvil,
    chain: RpcChain,
    vault: Address,
    idx: Vec<u32>,
    db: Db,
    _dir: tempfile::TempDir,
}

/// None when anvil is not installed outside CI (under CI=true that panics instead).
async fn rig() -> Option<Rig> {
    let anvil = Anvil::start(&[])?.unwrap();
    let chain = RpcChain::new(&anvil.url, std::time::Duration::from_secs(10)).unwrap();
    let (vault, idx) = setup(&chain).await;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    Some(Rig {
        anvil,
        chain,
        vault,
        idx,
        db,
        _dir: dir,
    })
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
            trades: Vec::new(),
            positions: Vec::new(),
            true_ups: Vec::new(),
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
        let Some(Rig {
            anvil: _anvil,
            chain,
            vault,
            idx,
            db,
            _dir,
        }) = rig().await
        else {
            return;
        };
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
    let Some(Rig {
        anvil: _anvil,
        chain,
        vault,
        idx,
        db,
        _dir,
    }) = rig().await
    else {
        return;
    };
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

/// A raw JSON-RPC request (anvil's test methods).
async fn rpc(url: &str, method: &'static str, params: serde_json::Value) -> serde_json::Value {
    use alloy::providers::Provider;
    let p = alloy::providers::ProviderBuilder::new().connect_http(url.parse().unwrap());
    p.raw_request::<_, serde_json::Value>(method.into(), params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

fn two_way(idx: &[u32], batch_id: u64) -> OnchainBatch {
    let mut deltas = vec![(idx[0], -500i128), (idx[1], 500)];
    deltas.sort();
    OnchainBatch {
        batch_id,
        trades_root: B256::repeat_byte(batch_id as u8),
        deltas,
    }
}

#[tokio::test]
async fn an_unreachable_node_and_a_settler_without_gas_are_recorded_then_retried() {
    let Some(Rig {
        anvil,
        chain,
        vault,
        idx,
        db,
        _dir,
    }) = rig().await
    else {
        return;
    };
    let batch = two_way(&idx, 1);
    stored_batch(&db, &batch).await;

    // a node that accepts connections and never answers
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let slow = RpcChain::new(&silent_url, std::time::Duration::from_millis(300)).unwrap();
    let mut q = TxQueue::new(&slow, &db, Wallet::new(key(), 31_337), vault);
    let err = q.settle(&batch, 100).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    let (status, error) = chain_txs::batch_status(&db, 1).await.unwrap().unwrap();
    assert_eq!(status, "submitting");
    assert!(error.as_deref().unwrap().contains("timed out after 300ms"), "{error:?}");

    // a node that is down
    drop(silent);
    let down = RpcChain::new(&silent_url, std::time::Duration::from_secs(2)).unwrap();
    let mut q = TxQueue::new(&down, &db, Wallet::new(key(), 31_337), vault);
    let err = q.settle(&batch, 100).await.unwrap_err();
    let (_, error) = chain_txs::batch_status(&db, 1).await.unwrap().unwrap();
    assert!(error.as_deref().unwrap().contains("unreachable"), "{err} / {error:?}");

    // the settler account cannot pay for gas
    let settler = key().address();
    let balance = rpc(&anvil.url, "eth_getBalance", serde_json::json!([settler, "latest"])).await;
    rpc(&anvil.url, "anvil_setBalance", serde_json::json!([settler, "0x0"])).await;
    let mut q = TxQueue::new(&chain, &db, Wallet::new(key(), 31_337), vault);
    let err = q.settle(&batch, 100).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    let (status, error) = chain_txs::batch_status(&db, 1).await.unwrap().unwrap();
    assert_eq!(status, "submitting");
    let error = error.unwrap();
    assert!(
        error.contains("insufficient funds") && error.contains(&settler.to_string()),
        "{error}"
    );
    assert_eq!(vault_state(&chain, vault).await.unwrap().last_batch_id, 0);

    // funds arrive while the queue is retrying: it settles, once
    q.retry_initial = std::time::Duration::from_millis(200);
    let url = anvil.url.clone();
    let (settled, ()) = tokio::join!(q.settle_retrying(&batch, 100, 4), async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        rpc(&url, "anvil_setBalance", serde_json::json!([settler, balance])).await;
    });
    settled.unwrap();
    assert_eq!(
        chain_txs::batch_status(&db, 1).await.unwrap().unwrap(),
        ("confirmed".to_owned(), None)
    );
    assert_eq!(vault_state(&chain, vault).await.unwrap().last_batch_id, 1);
    let txs = chain_txs::txs_of_batch(&db, 1).await.unwrap();
    assert_eq!(
        txs.iter().filter(|t| t.status == TxStatus::Confirmed).count(),
        1,
        "{txs:#?}"
    );
    assert!(
        txs.iter()
            .filter(|t| t.status != TxStatus::Confirmed)
            .all(|t| t.status == TxStatus::Failed && t.last_error.as_deref().unwrap().contains("insufficient funds")),
        "versions the node refused are kept, marked failed with the reason: {txs:#?}"
    );
}

#[tokio::test]
async fn a_transaction_not_mined_in_time_is_re_signed_with_higher_fees_on_the_same_nonce() {
    let Some(Rig {
        anvil,
        chain,
        vault,
        idx,
        db,
        _dir,
    }) = rig().await
    else {
        return;
    };
    let batch = two_way(&idx, 1);
    stored_batch(&db, &batch).await;
    let nonce = chain.nonce(key().address()).await.unwrap();

    rpc(&anvil.url, "evm_setAutomine", serde_json::json!([false])).await;
    let mut q = TxQueue::new(&chain, &db, Wallet::new(key(), 31_337), vault);
    q.bump_after = std::time::Duration::from_millis(300);
    let url = anvil.url.clone();
    let (settled, ()) = tokio::join!(q.settle(&batch, 100), async {
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        rpc(&url, "evm_mine", serde_json::json!([])).await;
    });
    settled.unwrap();

    let txs = chain_txs::txs_of_batch(&db, 1).await.unwrap();
    assert!(txs.len() >= 3, "at least two fee bumps in 1.1 s: {txs:#?}");
    assert!(txs.iter().all(|t| t.nonce == nonce), "every version has the same nonce");
    let fees: Vec<u128> = txs.iter().map(|t| t.max_fee_per_gas.parse().unwrap()).collect();
    assert!(
        fees.windows(2).all(|w| w[1] >= w[0] + w[0] / 8),
        "each version offers ≥ 12.5 % more: {fees:?}"
    );
    let confirmed: Vec<_> = txs.iter().filter(|t| t.status == TxStatus::Confirmed).collect();
    assert_eq!(confirmed.len(), 1, "{txs:#?}");
    assert_eq!(
        confirmed[0].tx_hash,
        txs.last().unwrap().tx_hash,
        "the newest version is mined"
    );
    assert!(
        txs.iter()
            .filter(|t| t.status != TxStatus::Confirmed)
            .all(|t| t.status == TxStatus::Replaced),
        "{txs:#?}"
    );
    assert_eq!(chain.nonce(key().address()).await.unwrap(), nonce + 1);
    assert_eq!(vault_state(&chain, vault).await.unwrap().last_batch_id, 1);
}

#[tokio::test]
async fn a_reorg_that_drops_the_settlement_makes_the_queue_send_it_again() {
    let Some(Rig {
        anvil,
        chain,
        vault,
        idx,
        db,
        _dir,
    }) = rig().await
    else {
        return;
    };
    let batch = two_way(&idx, 1);
    stored_batch(&db, &batch).await;

    let mut q = TxQueue::new(&chain, &db, Wallet::new(key(), 31_337), vault);
    q.crash_at = Some(CrashPoint::BeforeConfirmation);
    assert!(matches!(q.settle(&batch, 100).await, Err(QueueError::Crashed(_))));
    let first = chain_txs::txs_of_batch(&db, 1).await.unwrap();
    assert_eq!(first[0].status, TxStatus::Mined);
    assert_eq!(vault_state(&chain, vault).await.unwrap().last_batch_id, 1);

    // the block holding the settlement is replaced by an empty one
    rpc(&anvil.url, "anvil_reorg", serde_json::json!([1, []])).await;
    assert_eq!(
        vault_state(&chain, vault).await.unwrap().last_batch_id,
        0,
        "the reorg undid the settlement"
    );

    let mut q = TxQueue::new(&chain, &db, Wallet::new(key(), 31_337), vault);
    q.settle(&batch, 100).await.unwrap();
    let st = vault_state(&chain, vault).await.unwrap();
    assert_eq!(st.last_batch_id, 1, "settled again, once");
    let txs = chain_txs::txs_of_batch(&db, 1).await.unwrap();
    assert_eq!(txs.len(), 1, "the same signed bytes were sent again: {txs:#?}");
    assert_eq!(txs[0].status, TxStatus::Confirmed);
    assert_ne!(txs[0].block_hash, first[0].block_hash, "now in the new chain's block");
    assert_eq!(
        chain_txs::batch_status(&db, 1).await.unwrap().unwrap(),
        ("confirmed".to_owned(), None)
    );
}

#[tokio::test]
async fn a_nonce_gap_strands_nothing() {
    let Some(Rig {
        anvil: _anvil,
        chain,
        vault,
        idx,
        db,
        _dir,
    }) = rig().await
    else {
        return;
    };
    let nonce = chain.nonce(key().address()).await.unwrap();
    // the database believes a transaction with a higher nonce is in flight (restored from a
    // backup taken on another chain, say), so the next one would be signed past a gap
    let ghost = two_way(&idx, 9);
    stored_batch(&db, &ghost).await;
    chain_txs::insert_signed(&db, 9, 0, nonce + 2, &[0x02], "0x0bad", 1, 1, 0)
        .await
        .unwrap();
    chain_txs::set_tx_status(&db, "0x0bad", TxStatus::Broadcast, None, None, 0)
        .await
        .unwrap();

    let batch = two_way(&idx, 1);
    stored_batch(&db, &batch).await;
    let mut q = TxQueue::new(&chain, &db, Wallet::new(key(), 31_337), vault);
    q.bump_after = std::time::Duration::from_millis(300);
    q.settle(&batch, 100).await.unwrap();

    assert_eq!(vault_state(&chain, vault).await.unwrap().last_batch_id, 1);
    let txs = chain_txs::txs_of_batch(&db, 1).await.unwrap();
    let stranded: Vec<_> = txs.iter().filter(|t| t.status == TxStatus::Replaced).collect();
    assert_eq!(stranded.len(), 1, "{txs:#?}");
    assert_eq!(stranded[0].nonce, nonce + 3);
    assert!(
        stranded[0].last_error.as_deref().unwrap().contains("nonce gap"),
        "{txs:#?}"
    );
    let confirmed: Vec<_> = txs.iter().filter(|t| t.status == TxStatus::Confirmed).collect();
    assert_eq!(confirmed.len(), 1, "{txs:#?}");
    assert_eq!(confirmed[0].nonce, nonce, "re-signed at the account's nonce");
    let ghost_tx = &chain_txs::txs_of_batch(&db, 9).await.unwrap()[0];
    assert_eq!(ghost_tx.status, TxStatus::Replaced, "the ghost no longer holds a nonce");
}

#[tokio::test]
async fn an_https_node_is_reached_over_tls() {
    // a plain TCP server that answers the TLS hello with garbage: the error must come from the
    // TLS layer (so https is supported), name the method and be transient
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let chain = RpcChain::new(&format!("https://{addr}"), std::time::Duration::from_secs(5)).unwrap();
    let err = chain.block_number().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("eth_blockNumber") && text.contains("unreachable"),
        "{text}"
    );
    assert!(
        text.contains("InvalidContentType"),
        "the TLS handshake saw the plain answer: {text}"
    );
}
