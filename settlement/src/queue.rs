//! The crash-safe transaction queue: each chunk of a batch is signed once with an explicit nonce,
//! stored in the database, then broadcast; after a crash at any step, [`TxQueue::settle`] on the
//! same database finds the stored transaction and re-sends the same bytes, so every batch is
//! settled on chain exactly once.
//!
//! Per chunk: read the vault's cursor (the chain is the truth about what is applied) → if a
//! transaction for this chunk is stored, re-broadcast its newest version; else sign a new one
//! with nonce `max(chain nonce, highest stored nonce + 1)`, store it (`signed`), broadcast it
//! (`broadcast`) → wait for a receipt of any stored version, re-signing the same nonce with fees
//! raised by 12.5 % when it is not mined within `bump_after` → `mined` → wait for
//! `confirmations` blocks and check the block hash is still the one it was mined in (after a
//! reorg the transaction goes back to `broadcast` and is re-sent) → `confirmed`. A revert marks
//! the transaction `failed` and parks the batch with the contract's decoded error for an operator;
//! nothing is dropped.

use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes};
use alloy::sol_types::SolCall;
use gridshare_storage::Db;
use gridshare_storage::chain_txs::{self, TxStatus};

use crate::chain::{Chain, ChainError};
use crate::contracts::EnergySettlementVault;
use crate::onchain::{OnchainBatch, SubmitError, Wallet, decode_revert, vault_state};

/// Where a test makes the queue stop as if the process died (after the step's database write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After the signed transaction is stored, before it is broadcast.
    AfterSign,
    /// After it is broadcast, before its receipt is seen.
    AfterBroadcast,
    /// After it is mined, before it is confirmed.
    BeforeConfirmation,
}

/// Errors of the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Chain or signing failure.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// Chain failure.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Database failure.
    #[error(transparent)]
    Storage(#[from] gridshare_storage::StorageError),
    /// The batch was parked: it needs an operator.
    #[error("batch {batch_id} parked: {reason}")]
    Parked {
        /// The batch.
        batch_id: u64,
        /// Why.
        reason: String,
    },
    /// Stopped at an injected crash point (tests).
    #[error("stopped at {0:?}")]
    Crashed(CrashPoint),
}

/// The queue of one settler account.
#[derive(Debug)]
pub struct TxQueue<'a, C> {
    chain: &'a C,
    db: &'a Db,
    wallet: Wallet,
    vault: Address,
    /// Blocks on top of the mining block before a transaction counts as confirmed (1 = mined).
    pub confirmations: u64,
    /// Poll interval.
    pub poll: Duration,
    /// Re-sign with higher fees after this long unmined.
    pub bump_after: Duration,
    /// Gas limit per chunk transaction.
    pub gas_limit: u64,
    /// Test hook: stop here once.
    pub crash_at: Option<CrashPoint>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl<'a, C: Chain> TxQueue<'a, C> {
    /// A queue sending from `wallet` to `vault`.
    pub fn new(chain: &'a C, db: &'a Db, wallet: Wallet, vault: Address) -> Self {
        Self {
            chain,
            db,
            wallet,
            vault,
            confirmations: 1,
            poll: Duration::from_millis(20),
            bump_after: Duration::from_secs(12),
            gas_limit: 1 << 24,
            crash_at: None,
        }
    }

    fn crash(&mut self, at: CrashPoint) -> Result<(), QueueError> {
        if self.crash_at == Some(at) {
            self.crash_at = None;
            return Err(QueueError::Crashed(at));
        }
        Ok(())
    }

    async fn next_nonce(&self) -> Result<u64, QueueError> {
        let chain = self.chain.nonce(self.wallet.address()).await?;
        let stored = chain_txs::max_nonce(self.db).await?.map_or(0, |n| n + 1);
        Ok(chain.max(stored))
    }

    async fn park(&self, batch_id: u64, reason: String) -> QueueError {
        let _ = chain_txs::set_batch_status(self.db, batch_id, "parked", None, Some(&reason), now_ms()).await;
        QueueError::Parked { batch_id, reason }
    }

    /// Settles `batch` (stored beforehand with [`chain_txs::insert_batch`]) in chunks of at most
    /// `max_accounts`, resuming from whatever a previous run left behind.
    pub async fn settle(&mut self, batch: &OnchainBatch, max_accounts: usize) -> Result<(), QueueError> {
        let chunks = batch.chunks(max_accounts);
        let count = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
        chain_txs::set_batch_status(self.db, batch.batch_id, "submitting", None, None, now_ms()).await?;
        loop {
            let st = vault_state(self.chain, self.vault).await?;
            let stored = chain_txs::txs_of_batch(self.db, batch.batch_id).await?;
            if st.last_batch_id >= batch.batch_id {
                // applied on chain: make sure every mined version is confirmed, then done
                for tx in stored
                    .iter()
                    .filter(|t| t.status == TxStatus::Mined || t.status == TxStatus::Broadcast)
                {
                    self.confirm(tx.tx_hash.parse().unwrap_or_default(), batch.batch_id)
                        .await?;
                }
                let hash = format!("{}", st.state_hash);
                chain_txs::set_batch_status(self.db, batch.batch_id, "confirmed", Some(&hash), None, now_ms()).await?;
                return Ok(());
            }
            let chunk = st.next_chunk;
            let Some(words) = chunks.get(chunk as usize) else {
                let reason = format!("vault expects chunk {chunk}, batch has {count}");
                return Err(self.park(batch.batch_id, reason).await);
            };
            let mine: Vec<_> = stored
                .iter()
                .filter(|t| t.chunk == chunk && t.status != TxStatus::Failed && t.status != TxStatus::Replaced)
                .collect();
            let mut hashes: Vec<B256> = mine.iter().filter_map(|t| t.tx_hash.parse().ok()).collect();
            let call = EnergySettlementVault::settleIntervalCall {
                batchId: batch.batch_id,
                chunk,
                chunkCount: count,
                prevStateHash: st.state_hash,
                root: batch.trades_root,
                deltas: words.clone(),
            };
            let input: Bytes = call.abi_encode().into();
            let (nonce, mut fees, gas) = if let Some(last) = mine.last() {
                // stored before a crash: send the same bytes again (harmless if already known)
                match self.chain.send_raw(Bytes::from(last.raw.clone())).await {
                    Ok(_) | Err(ChainError::NonceTooLow { .. }) => {}
                    Err(ChainError::Rejected(m)) if m.contains("nonce") || m.contains("known") => {}
                    Err(e) => return Err(e.into()),
                }
                chain_txs::set_tx_status(self.db, &last.tx_hash, TxStatus::Broadcast, None, None, now_ms()).await?;
                let fees = crate::chain::Fees {
                    max_fee_per_gas: last.max_fee_per_gas.parse().unwrap_or(0),
                    max_priority_fee_per_gas: last.max_priority_fee_per_gas.parse().unwrap_or(0),
                };
                (last.nonce, fees, self.gas_limit)
            } else {
                let gas = match self
                    .chain
                    .estimate_gas(self.wallet.address(), Some(self.vault), input.clone())
                    .await
                {
                    Ok(g) => (g + g / 5).min(self.gas_limit),
                    Err(ChainError::CallReverted(data)) => {
                        return Err(self.park(batch.batch_id, decode_revert(&data)).await);
                    }
                    Err(e) => return Err(e.into()),
                };
                let fees = self.chain.fees().await?;
                let nonce = self.next_nonce().await?;
                let hash = self
                    .sign_store_send(batch.batch_id, chunk, nonce, &input, gas, fees)
                    .await?;
                hashes.push(hash);
                (nonce, fees, gas)
            };
            // wait for any version of this nonce to be mined, re-signing the same nonce with
            // higher fees when it takes too long
            let mut since = tokio::time::Instant::now();
            let mined = loop {
                let mut found = None;
                for h in &hashes {
                    if let Some(r) = self.chain.receipt(*h).await? {
                        found = Some(r);
                        break;
                    }
                }
                if let Some(r) = found {
                    break r;
                }
                if since.elapsed() > self.bump_after {
                    fees = crate::chain::Fees {
                        max_fee_per_gas: fees.max_fee_per_gas + fees.max_fee_per_gas / 8 + 1,
                        max_priority_fee_per_gas: fees.max_priority_fee_per_gas + fees.max_priority_fee_per_gas / 8 + 1,
                    };
                    match self
                        .sign_store_send(batch.batch_id, chunk, nonce, &input, gas, fees)
                        .await
                    {
                        Ok(h) => hashes.push(h),
                        // an earlier version got mined meanwhile: the next poll finds it
                        Err(QueueError::Chain(ChainError::NonceTooLow { .. })) => {}
                        Err(QueueError::Chain(ChainError::Rejected(m))) if m.contains("nonce") => {}
                        Err(e) => return Err(e),
                    }
                    since = tokio::time::Instant::now();
                }
                tokio::time::sleep(self.poll).await;
            };
            let hash = mined.tx_hash.to_string();
            let block_hash = mined.block_hash.to_string();
            if !mined.success {
                let reason = match self
                    .chain
                    .estimate_gas(self.wallet.address(), Some(self.vault), input)
                    .await
                {
                    Err(ChainError::CallReverted(d)) => decode_revert(&d),
                    _ => "reverted".to_owned(),
                };
                chain_txs::set_tx_status(
                    self.db,
                    &hash,
                    TxStatus::Failed,
                    Some((mined.block_number, &block_hash)),
                    Some(&reason),
                    now_ms(),
                )
                .await?;
                return Err(self
                    .park(batch.batch_id, format!("transaction {hash} reverted: {reason}"))
                    .await);
            }
            chain_txs::set_tx_status(
                self.db,
                &hash,
                TxStatus::Mined,
                Some((mined.block_number, &block_hash)),
                None,
                now_ms(),
            )
            .await?;
            self.crash(CrashPoint::BeforeConfirmation)?;
            self.confirm(mined.tx_hash, batch.batch_id).await?;
        }
    }

    /// Signs `input` with `nonce`, stores it, then broadcasts it.
    async fn sign_store_send(
        &mut self,
        batch_id: u64,
        chunk: u32,
        nonce: u64,
        input: &Bytes,
        gas: u64,
        fees: crate::chain::Fees,
    ) -> Result<B256, QueueError> {
        let tx = self.wallet.sign(nonce, Some(self.vault), input.clone(), gas, fees)?;
        let hash = tx.hash.to_string();
        chain_txs::insert_signed(
            self.db,
            batch_id,
            chunk,
            nonce,
            &tx.raw,
            &hash,
            fees.max_fee_per_gas,
            fees.max_priority_fee_per_gas,
            now_ms(),
        )
        .await?;
        self.crash(CrashPoint::AfterSign)?;
        self.chain.send_raw(tx.raw.clone()).await?;
        chain_txs::set_tx_status(self.db, &hash, TxStatus::Broadcast, None, None, now_ms()).await?;
        self.crash(CrashPoint::AfterBroadcast)?;
        Ok(tx.hash)
    }

    /// Waits until `tx` is `confirmations` deep, re-checking its block; after a reorg it goes
    /// back to `broadcast` (the caller's loop re-sends it).
    async fn confirm(&self, tx: B256, batch_id: u64) -> Result<(), QueueError> {
        loop {
            let Some(r) = self.chain.receipt(tx).await? else {
                chain_txs::set_tx_status(self.db, &tx.to_string(), TxStatus::Broadcast, None, None, now_ms()).await?;
                return Ok(());
            };
            let head = self.chain.block_number().await?;
            if head + 1 >= r.block_number + self.confirmations {
                let canonical = self.chain.block_hash(r.block_number).await?;
                if canonical != Some(r.block_hash) {
                    chain_txs::set_tx_status(self.db, &tx.to_string(), TxStatus::Broadcast, None, None, now_ms())
                        .await?;
                    return Ok(());
                }
                let bh = r.block_hash.to_string();
                chain_txs::set_tx_status(
                    self.db,
                    &tx.to_string(),
                    TxStatus::Confirmed,
                    Some((r.block_number, &bh)),
                    None,
                    now_ms(),
                )
                .await?;
                tracing::debug!(batch_id, %tx, block = r.block_number, "settlement transaction confirmed");
                return Ok(());
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}
