//! One transaction whose effect must happen exactly once, crash-safe like the settlement queue:
//! signed with an explicit nonce and stored by the caller *before* it is broadcast, re-sent as
//! the same bytes after a crash, and signed anew only when its nonce went to another transaction
//! while its effect is still missing. Whether the effect happened is asked of the chain itself
//! ([`Effect::done`]: an epoch's root is there, a proof's evidence is used), never inferred from
//! what was sent, so no crash point can make it happen twice or not at all.
//!
//! Used for posting reward epochs ([`crate::rewards::Poster`]) and for slashing proofs
//! ([`crate::slashing::Slasher`]).

use std::future::Future;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes};

use crate::chain::{Chain, ChainError};
use crate::onchain::{SubmitError, Wallet, decode_revert};
use crate::queue::CrashPoint;

/// What the caller keeps of one effect: whether it is on chain, and the transaction stored for it.
pub trait Effect {
    /// True when the effect is on chain, by whatever transaction.
    fn done(&self) -> impl Future<Output = Result<bool, OnceError>>;
    /// Stores the signed transaction (before it is broadcast).
    fn save(&self, nonce: u64, tx_hash: &str, raw_hex: &str) -> impl Future<Output = Result<(), OnceError>>;
    /// Records the effect as on chain: `by` is the transaction's hash, or a sentence when
    /// another transaction did it.
    fn finish(&self, by: &str) -> impl Future<Output = Result<(), OnceError>>;
}

/// Why an effect is not on chain (yet).
#[derive(Debug, thiserror::Error)]
pub enum OnceError {
    /// Chain failure (try again later).
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Signing or a call failed.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// Database failure.
    #[error(transparent)]
    Storage(#[from] gridshare_storage::StorageError),
    /// A stored value is not what it should be.
    #[error("stored {what} {value:?} is not valid")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// The transaction reverted and the effect is still missing: the contract's reason.
    #[error("reverted: {0}")]
    Refused(String),
    /// Not mined in time (sent again on the next run).
    #[error("transaction {tx_hash} not mined within {waited:?}")]
    NotMined {
        /// The transaction.
        tx_hash: B256,
        /// How long it waited.
        waited: Duration,
    },
    /// Stopped at an injected crash point (tests).
    #[error("stopped at {0:?}")]
    Crashed(CrashPoint),
}

/// Sends one call to `to` from `wallet` until its effect is on chain.
#[derive(Debug)]
pub struct Once<'a, C> {
    /// The chain.
    pub chain: &'a C,
    /// The database (the settlement queue's transactions in flight hold nonces too).
    pub db: &'a gridshare_storage::Db,
    /// The sender.
    pub wallet: Wallet,
    /// The contract called.
    pub to: Address,
    /// Gas limit.
    pub gas_limit: u64,
    /// Poll interval for receipts.
    pub poll: Duration,
    /// How long to wait for a receipt before returning (the next run sends the same bytes).
    pub wait: Duration,
    /// Test hook: stop here once.
    pub crash_at: Option<CrashPoint>,
}

impl<C: Chain> Once<'_, C> {
    fn crash(&mut self, at: CrashPoint) -> Result<(), OnceError> {
        if self.crash_at == Some(at) {
            self.crash_at = None;
            return Err(OnceError::Crashed(at));
        }
        Ok(())
    }

    /// Makes the effect of calling `input` happen, once; `stored` is the transaction the caller
    /// stored for it before, if any: `(nonce, hash, raw hex)`. Returns the hash of the
    /// transaction that did it (None: another one did).
    pub async fn send(
        &mut self,
        input: Bytes,
        mut stored: Option<(u64, String, String)>,
        effect: &impl Effect,
    ) -> Result<Option<B256>, OnceError> {
        let corrupt = |what, value: &str| OnceError::Corrupt {
            what,
            value: value.to_owned(),
        };
        loop {
            if effect.done().await? {
                // on chain — by our stored transaction if its receipt says so
                if let Some((_, hash, _)) = &stored
                    && let Ok(h) = hash.parse::<B256>()
                    && self.succeeded(h).await?
                {
                    self.crash(CrashPoint::BeforeConfirmation)?;
                    effect.finish(hash).await?;
                    return Ok(Some(h));
                }
                effect.finish("done by another transaction").await?;
                return Ok(None);
            }
            let chain_nonce = self.chain.nonce(self.wallet.address()).await?;
            let (nonce, hash, raw) = match stored.as_ref().filter(|(n, _, _)| *n >= chain_nonce) {
                Some((n, h, raw)) => {
                    let raw: Bytes = raw.parse().map_err(|_| corrupt("signed transaction", raw))?;
                    (*n, h.parse::<B256>().map_err(|_| corrupt("transaction hash", h))?, raw)
                }
                None => {
                    let pending = gridshare_storage::chain_txs::max_pending_nonce(self.db)
                        .await?
                        .map_or(0, |n| n + 1);
                    let nonce = chain_nonce.max(pending);
                    let fees = self.chain.fees().await?;
                    let tx = self
                        .wallet
                        .sign(nonce, Some(self.to), input.clone(), self.gas_limit, fees)?;
                    let raw_hex = format!("{}", tx.raw);
                    effect.save(nonce, &tx.hash.to_string(), &raw_hex).await?;
                    stored = Some((nonce, tx.hash.to_string(), raw_hex));
                    self.crash(CrashPoint::AfterSign)?;
                    (nonce, tx.hash, tx.raw)
                }
            };
            match self.chain.send_raw(raw).await {
                Ok(_) => {}
                // already known, or its nonce is taken: the receipt (or its absence) decides
                Err(err) if !err.is_transient() || matches!(err, ChainError::NonceTooLow { .. }) => {
                    tracing::debug!(tx = %hash, error = %err, "re-sent transaction refused by the node");
                }
                Err(err) => return Err(err.into()),
            }
            self.crash(CrashPoint::AfterBroadcast)?;
            let started = tokio::time::Instant::now();
            loop {
                if let Some(r) = self.chain.receipt(hash).await? {
                    if r.success {
                        self.crash(CrashPoint::BeforeConfirmation)?;
                        effect.finish(&hash.to_string()).await?;
                        return Ok(Some(hash));
                    }
                    // reverted: late (another transaction did it) is checked at the loop's top
                    if effect.done().await? {
                        break;
                    }
                    return Err(OnceError::Refused(self.revert_reason(&input).await));
                }
                if self.chain.nonce(self.wallet.address()).await? > nonce {
                    // the nonce is used (by this transaction or another): look again
                    break;
                }
                if started.elapsed() > self.wait {
                    return Err(OnceError::NotMined {
                        tx_hash: hash,
                        waited: self.wait,
                    });
                }
                tokio::time::sleep(self.poll).await;
            }
        }
    }

    /// True when `tx` was mined and succeeded (its receipt may trail the nonce by a moment).
    async fn succeeded(&self, tx: B256) -> Result<bool, OnceError> {
        for _ in 0..50 {
            if let Some(r) = self.chain.receipt(tx).await? {
                return Ok(r.success);
            }
            tokio::time::sleep(self.poll).await;
        }
        Ok(false)
    }

    /// Why `input` reverts now (re-run from the sender as a gas estimate, which reports it).
    async fn revert_reason(&self, input: &Bytes) -> String {
        match self
            .chain
            .estimate_gas(self.wallet.address(), Some(self.to), input.clone())
            .await
        {
            Err(ChainError::CallReverted(data)) => decode_revert(&data),
            Err(e) => e.to_string(),
            Ok(_) => "reverted in its block, but the same call from the sender succeeds now".into(),
        }
    }
}
