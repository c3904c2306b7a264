//! The crash-safe transaction queue: each chunk of a batch is signed once with an explicit nonce,
//! stored in the database, then broadcast; after a crash at any step, [`TxQueue::settle`] on the
//! same database finds the stored transaction and re-sends the same bytes, so every batch is
//! settled on chain exactly once.
//!
//! Per chunk: read the vault's cursor (the chain is the truth about what is applied) → if a
//! transaction for this chunk is in flight, re-broadcast its newest version; else sign a new one
//! with nonce `max(chain nonce, highest in-flight nonce + 1)`, store it (`signed`), broadcast it
//! (`broadcast`) → wait for a receipt of any stored version, re-signing the same nonce with fees
//! raised by 12.5 % when it is not mined within `bump_after` → `mined` (the other versions become
//! `replaced`) → wait for `confirmations` blocks and check the block hash is still the one it was
//! mined in (after a reorg the transaction goes back to `broadcast` and is re-sent) →
//! `confirmed`.
//!
//! Failures never lose a batch. A transient one (node unreachable or slow, insufficient funds for
//! gas, a nonce that does not fit) is logged, written on the batch (status `submitting` with the
//! error) and returned; [`TxQueue::settle_retrying`] tries again with backoff. A nonce gap (the
//! account's nonce on chain stays below ours, so ours can never be mined) abandons the stranded
//! versions and re-signs at the chain's nonce; the vault's state-hash chain makes a late
//! stranded version revert rather than settle twice. A refusal (a revert, a transaction the node
//! or the vault will never take) parks the batch with the decoded reason for an operator.
//!
//! One queue per settler key: batches are settled one after another, never two at once.

use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes};
use alloy::sol_types::SolCall;
use gridshare_storage::Db;
use gridshare_storage::chain_txs::{self, ChainTx, TxStatus};

use crate::chain::{Chain, ChainError, Fees, Receipt};
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

impl QueueError {
    /// True when trying again later may settle the batch without an operator.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Chain(e) | Self::Submit(SubmitError::Chain(e)) => e.is_transient(),
            Self::Storage(_) => true,
            Self::Submit(_) | Self::Parked { .. } | Self::Crashed(_) => false,
        }
    }
}

/// How waiting for a chunk's transaction ended.
enum Waited {
    /// A version was mined.
    Mined(Receipt),
    /// The stored versions can never be mined (nonce gap or nonce taken): sign anew.
    Stranded,
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
    /// First wait of [`Self::settle_retrying`] after a transient failure (doubles each time).
    pub retry_initial: Duration,
    /// Longest wait of [`Self::settle_retrying`].
    pub retry_max: Duration,
    /// Test hook: stop here once.
    pub crash_at: Option<CrashPoint>,
}

/// A chunk's transaction as it is signed, whatever fees a version of it offers.
#[derive(Debug, Clone, Copy)]
struct ChunkTx<'a> {
    batch_id: u64,
    chunk: u32,
    nonce: u64,
    input: &'a Bytes,
    gas: u64,
}

/// Milliseconds since the epoch now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn is_live(t: &ChainTx) -> bool {
    matches!(t.status, TxStatus::Signed | TxStatus::Broadcast | TxStatus::Mined)
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
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
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
        let stored = chain_txs::max_pending_nonce(self.db).await?.map_or(0, |n| n + 1);
        Ok(chain.max(stored))
    }

    async fn park(&self, batch_id: u64, reason: String) -> QueueError {
        tracing::error!(batch_id, %reason, "settlement batch parked for an operator");
        if let Err(e) = chain_txs::set_batch_status(self.db, batch_id, "parked", None, Some(&reason), now_ms()).await {
            tracing::error!(batch_id, error = %e, "cannot record the parked batch");
        }
        QueueError::Parked { batch_id, reason }
    }

    /// Settles `batch` (stored beforehand with [`chain_txs::insert_batch`]) in chunks of at most
    /// `max_accounts`, resuming from whatever a previous run left behind. A transient failure is
    /// logged and written on the batch before it is returned (call again, or use
    /// [`Self::settle_retrying`]); any other failure parks the batch.
    pub async fn settle(&mut self, batch: &OnchainBatch, max_accounts: usize) -> Result<(), QueueError> {
        match self.run(batch, max_accounts).await {
            Ok(()) => Ok(()),
            Err(e @ (QueueError::Parked { .. } | QueueError::Crashed(_))) => Err(e),
            Err(e) if e.is_transient() => {
                tracing::warn!(batch_id = batch.batch_id, error = %e, "settlement batch not settled yet; will retry");
                let message = e.to_string();
                if let Err(db) =
                    chain_txs::set_batch_status(self.db, batch.batch_id, "submitting", None, Some(&message), now_ms())
                        .await
                {
                    tracing::error!(batch_id = batch.batch_id, error = %db, "cannot record the failure");
                }
                Err(e)
            }
            Err(e) => Err(self.park(batch.batch_id, e.to_string()).await),
        }
    }

    /// [`Self::settle`], trying again after transient failures (waiting `retry_initial`, doubling
    /// up to `retry_max`) for at most `attempts` runs. Returns the last error when it gives up.
    pub async fn settle_retrying(
        &mut self,
        batch: &OnchainBatch,
        max_accounts: usize,
        attempts: u32,
    ) -> Result<(), QueueError> {
        let mut wait = self.retry_initial;
        let mut attempt = 1;
        loop {
            match self.settle(batch, max_accounts).await {
                Err(e) if e.is_transient() && attempt < attempts => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(self.retry_max);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn run(&mut self, batch: &OnchainBatch, max_accounts: usize) -> Result<(), QueueError> {
        let chunks = batch.chunks(max_accounts);
        if chain_txs::batch_status(self.db, batch.batch_id)
            .await?
            .is_none_or(|(status, _)| status != "submitting")
        {
            chain_txs::set_batch_status(self.db, batch.batch_id, "submitting", None, None, now_ms()).await?;
        }
        loop {
            let st = vault_state(self.chain, self.vault).await?;
            let stored = chain_txs::txs_of_batch(self.db, batch.batch_id).await?;
            if st.last_batch_id >= batch.batch_id {
                // applied on chain: confirm the versions that were mined, the rest were replaced
                if !self.confirm_applied(&stored, batch.batch_id).await? {
                    continue; // a reorg took a chunk back out
                }
                let hash = st.state_hash.to_string();
                chain_txs::set_batch_status(self.db, batch.batch_id, "confirmed", Some(&hash), None, now_ms()).await?;
                tracing::info!(batch_id = batch.batch_id, state_hash = %hash, "settlement batch confirmed");
                return Ok(());
            }
            let chunk = st.next_chunk;
            let Some(call) = batch.chunk_call(&chunks, chunk, st.state_hash) else {
                let reason = format!("vault expects chunk {chunk}, batch has {}", chunks.len());
                return Err(self.park(batch.batch_id, reason).await);
            };
            let input: Bytes = call.abi_encode().into();
            let version = |nonce, gas| ChunkTx {
                batch_id: batch.batch_id,
                chunk,
                nonce,
                input: &input,
                gas,
            };
            let live: Vec<&ChainTx> = stored.iter().filter(|t| t.chunk == chunk && is_live(t)).collect();
            let (nonce, fees, gas, hashes) = if let Some(last) = live.last() {
                // stored before a crash (or taken out by a reorg): send the same bytes again
                if !self.resend(last).await? {
                    continue;
                }
                let fees = Fees {
                    max_fee_per_gas: last.max_fee_per_gas.parse().unwrap_or(0),
                    max_priority_fee_per_gas: last.max_priority_fee_per_gas.parse().unwrap_or(0),
                };
                let hashes = live.iter().filter_map(|t| t.tx_hash.parse().ok()).collect();
                (last.nonce, fees, self.gas_limit, hashes)
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
                let hash = self.sign_store_send(version(nonce, gas), fees).await?;
                (nonce, fees, gas, vec![hash])
            };
            let mined = match self.wait_mined(version(nonce, gas), fees, hashes).await? {
                Waited::Mined(r) => r,
                Waited::Stranded => continue,
            };
            let hash = mined.tx_hash.to_string();
            let block_hash = mined.block_hash.to_string();
            let block = Some((mined.block_number, block_hash.as_str()));
            for other in live.iter().filter(|t| t.nonce == nonce && t.tx_hash != hash) {
                let why = format!("{hash} mined for the same nonce");
                chain_txs::set_tx_status(self.db, &other.tx_hash, TxStatus::Replaced, None, Some(&why), now_ms())
                    .await?;
            }
            if !mined.success {
                let reason = match self
                    .chain
                    .estimate_gas(self.wallet.address(), Some(self.vault), input)
                    .await
                {
                    Err(ChainError::CallReverted(d)) => decode_revert(&d),
                    _ => "reverted".to_owned(),
                };
                chain_txs::set_tx_status(self.db, &hash, TxStatus::Failed, block, Some(&reason), now_ms()).await?;
                return Err(self
                    .park(batch.batch_id, format!("transaction {hash} reverted: {reason}"))
                    .await);
            }
            chain_txs::set_tx_status(self.db, &hash, TxStatus::Mined, block, None, now_ms()).await?;
            self.crash(CrashPoint::BeforeConfirmation)?;
            self.confirm(mined.tx_hash, batch.batch_id).await?;
        }
    }

    /// Re-broadcasts a stored version. False when the node refused it for good (it is marked
    /// `failed` and the chunk is signed anew).
    async fn resend(&self, tx: &ChainTx) -> Result<bool, QueueError> {
        match self.chain.send_raw(Bytes::from(tx.raw.clone())).await {
            // its nonce is used: by this very transaction (the receipt shows) or by another one
            // (waiting finds that out)
            Ok(_) | Err(ChainError::NonceTooLow { .. }) => {}
            Err(e) if e.refuses_transaction() || matches!(e, ChainError::Rpc { .. }) => {
                let why = e.to_string();
                tracing::warn!(tx = %tx.tx_hash, error = %why, "node refused a stored transaction; signing anew");
                chain_txs::set_tx_status(self.db, &tx.tx_hash, TxStatus::Failed, None, Some(&why), now_ms()).await?;
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
        if tx.status != TxStatus::Broadcast {
            chain_txs::set_tx_status(self.db, &tx.tx_hash, TxStatus::Broadcast, None, None, now_ms()).await?;
        }
        Ok(true)
    }

    /// Waits for any version of `nonce` to be mined, re-signing it with higher fees when it takes
    /// longer than `bump_after`, and giving up on it when the account's nonce shows it can never
    /// be mined.
    async fn wait_mined(
        &mut self,
        tx: ChunkTx<'_>,
        mut fees: Fees,
        mut hashes: Vec<B256>,
    ) -> Result<Waited, QueueError> {
        let ChunkTx {
            batch_id, chunk, nonce, ..
        } = tx;
        let mut since = tokio::time::Instant::now();
        loop {
            for h in &hashes {
                if let Some(r) = self.chain.receipt(*h).await? {
                    return Ok(Waited::Mined(r));
                }
            }
            if since.elapsed() > self.bump_after {
                let account = self.wallet.address();
                let on_chain = self.chain.nonce(account).await?;
                let stranded = if on_chain < nonce {
                    Some(
                        ChainError::NonceGap {
                            account,
                            expected: on_chain,
                            got: nonce,
                        }
                        .to_string(),
                    )
                } else if on_chain > nonce && !self.any_mined(&hashes).await? {
                    Some(format!(
                        "nonce {nonce} of {account} was used by a transaction not in this queue"
                    ))
                } else {
                    None
                };
                if let Some(reason) = stranded {
                    tracing::warn!(batch_id, chunk, %reason, "settlement transaction stranded; signing anew");
                    chain_txs::abandon_from_nonce(self.db, nonce.min(on_chain), &reason, now_ms()).await?;
                    for h in &hashes {
                        let h = h.to_string();
                        chain_txs::set_tx_status(self.db, &h, TxStatus::Replaced, None, Some(&reason), now_ms())
                            .await?;
                    }
                    chain_txs::set_batch_status(self.db, batch_id, "submitting", None, Some(&reason), now_ms()).await?;
                    return Ok(Waited::Stranded);
                }
                fees = Fees {
                    max_fee_per_gas: fees.max_fee_per_gas + fees.max_fee_per_gas / 8 + 1,
                    max_priority_fee_per_gas: fees.max_priority_fee_per_gas + fees.max_priority_fee_per_gas / 8 + 1,
                };
                tracing::info!(
                    batch_id,
                    chunk,
                    nonce,
                    max_fee_per_gas = fees.max_fee_per_gas,
                    "not mined yet: raising fees"
                );
                match self.sign_store_send(tx, fees).await {
                    Ok(h) => hashes.push(h),
                    // an earlier version got mined meanwhile: the next poll finds it
                    Err(QueueError::Chain(ChainError::NonceTooLow { .. })) => {}
                    Err(e) => return Err(e),
                }
                since = tokio::time::Instant::now();
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    async fn any_mined(&self, hashes: &[B256]) -> Result<bool, QueueError> {
        for h in hashes {
            if self.chain.receipt(*h).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Signs `input` with `nonce`, stores it, then broadcasts it. A version the node refuses is
    /// marked `failed` (it will never be sent again) and the error returned.
    async fn sign_store_send(&mut self, version: ChunkTx<'_>, fees: Fees) -> Result<B256, QueueError> {
        let ChunkTx {
            batch_id,
            chunk,
            nonce,
            input,
            gas,
        } = version;
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
        match self.chain.send_raw(tx.raw.clone()).await {
            Ok(_) => {}
            // no answer: the node may have it; the stored bytes are sent again on the next run
            Err(e @ (ChainError::Timeout { .. } | ChainError::Unreachable { .. })) => return Err(e.into()),
            Err(e) => {
                let why = e.to_string();
                chain_txs::set_tx_status(self.db, &hash, TxStatus::Failed, None, Some(&why), now_ms()).await?;
                return Err(e.into());
            }
        }
        chain_txs::set_tx_status(self.db, &hash, TxStatus::Broadcast, None, None, now_ms()).await?;
        self.crash(CrashPoint::AfterBroadcast)?;
        Ok(tx.hash)
    }

    /// For a batch the vault shows as applied: confirms each chunk's mined version and marks the
    /// versions that were never mined `replaced`. False when a reorg took a version out.
    async fn confirm_applied(&self, stored: &[ChainTx], batch_id: u64) -> Result<bool, QueueError> {
        for tx in stored.iter().filter(|t| is_live(t)) {
            let hash: B256 = tx.tx_hash.parse().unwrap_or_default();
            if self.chain.receipt(hash).await?.is_some() {
                if !self.confirm(hash, batch_id).await? {
                    return Ok(false);
                }
            } else {
                let why = "another version was mined";
                chain_txs::set_tx_status(self.db, &tx.tx_hash, TxStatus::Replaced, None, Some(why), now_ms()).await?;
            }
        }
        Ok(true)
    }

    /// Waits until `tx` is `confirmations` deep, re-checking its block. False after a reorg took
    /// it out (it goes back to `broadcast` and the caller's loop re-sends it).
    async fn confirm(&self, tx: B256, batch_id: u64) -> Result<bool, QueueError> {
        let hash = tx.to_string();
        loop {
            let Some(r) = self.chain.receipt(tx).await? else {
                tracing::warn!(batch_id, %tx, "settlement transaction no longer in the chain (reorg); re-sending");
                chain_txs::set_tx_status(self.db, &hash, TxStatus::Broadcast, None, None, now_ms()).await?;
                return Ok(false);
            };
            let head = self.chain.block_number().await?;
            if head + 1 >= r.block_number + self.confirmations {
                let canonical = self.chain.block_hash(r.block_number).await?;
                if canonical != Some(r.block_hash) {
                    tracing::warn!(batch_id, %tx, "settlement transaction's block was replaced (reorg); re-sending");
                    chain_txs::set_tx_status(self.db, &hash, TxStatus::Broadcast, None, None, now_ms()).await?;
                    return Ok(false);
                }
                let bh = r.block_hash.to_string();
                let block = Some((r.block_number, bh.as_str()));
                chain_txs::set_tx_status(self.db, &hash, TxStatus::Confirmed, block, None, now_ms()).await?;
                tracing::debug!(batch_id, %tx, block = r.block_number, "settlement transaction confirmed");
                return Ok(true);
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}
