//! Reward epochs on chain: deploying the capped reward token and the cumulative Merkle
//! distributor, posting each computed epoch's root and report hash exactly once, and claiming
//! for the accounts the service holds.
//!
//! **Posting** is crash-safe like the settlement queue: the transaction is signed with an explicit
//! nonce and stored on the epoch's row before it is broadcast; after a crash the same bytes are
//! sent again. The distributor takes epochs strictly in order (`epoch == lastEpoch + 1`), so the
//! chain itself refuses a second post of an epoch: whatever a crash left behind, reading
//! `lastEpoch` tells whether the post happened, and a version that lost its nonce to another
//! transaction is signed anew. Epochs go up in order, oldest first.
//!
//! **Claims** (`claimMany`, one multiproof per batch) are idempotent on chain: the distributor
//! pays each account its cumulative total minus what it has claimed and skips accounts with
//! nothing new, so a batch re-sent after a crash pays nothing twice.

use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::{SolCall, SolConstructor};
use gridshare_domain::merkle;
use gridshare_storage::Db;
use gridshare_storage::epochs::{self, Unposted};

use crate::chain::{Chain, ChainError};
use crate::contracts::{RewardDistributor, RewardToken};
use crate::once::{Effect, Once, OnceError};
use crate::onchain::{SubmitError, Submitter, Wallet, view};
use crate::queue::CrashPoint;

/// The reward contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewardContracts {
    /// The capped reward token.
    pub token: Address,
    /// The cumulative Merkle distributor.
    pub distributor: Address,
}

/// The emission parameters the contracts enforce (from the epoch parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emission {
    /// Cap on the token's supply, µ-token.
    pub cap: u64,
    /// Budget of epoch 1, µ-token.
    pub initial_budget: u64,
    /// The budget halves every this many epochs.
    pub halving_epochs: u64,
}

/// Deploys the token and the distributor with the submitter's account as admin and poster; the
/// distributor may mint.
pub async fn deploy<C: Chain>(s: &mut Submitter<'_, C>, e: Emission) -> Result<RewardContracts, SubmitError> {
    let admin = s.address();
    let token = s
        .deploy(
            &RewardToken::BYTECODE,
            RewardToken::constructorCall {
                admin,
                cap_: U256::from(e.cap),
            }
            .abi_encode(),
        )
        .await?;
    let distributor = s
        .deploy(
            &RewardDistributor::BYTECODE,
            RewardDistributor::constructorCall {
                token_: token,
                admin,
                initialBudget_: U256::from(e.initial_budget),
                halvingEpochs_: e.halving_epochs,
            }
            .abi_encode(),
        )
        .await?;
    let minter = view(s.chain(), token, RewardToken::MINTER_ROLECall {}).await?;
    s.send(
        token,
        RewardToken::grantRoleCall {
            role: minter,
            account: distributor,
        },
    )
    .await?;
    let poster = view(s.chain(), distributor, RewardDistributor::POSTER_ROLECall {}).await?;
    s.send(
        distributor,
        RewardDistributor::grantRoleCall {
            role: poster,
            account: admin,
        },
    )
    .await?;
    Ok(RewardContracts { token, distributor })
}

/// Errors of posting and claiming.
#[derive(Debug, thiserror::Error)]
pub enum RewardsError {
    /// Chain failure (try again later).
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Signing, sending or a call failed.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// Database failure.
    #[error(transparent)]
    Storage(#[from] gridshare_storage::StorageError),
    /// A stored epoch's root or hash is not 32 bytes of hex.
    #[error("epoch {epoch}: stored {what} {value:?} is not 32 bytes of hex")]
    Corrupt {
        /// The epoch.
        epoch: u64,
        /// Which field.
        what: &'static str,
        /// Its value.
        value: String,
    },
    /// The chain's last epoch is behind the next one stored: an epoch in between is missing.
    #[error("the distributor's last epoch is {on_chain}, but the next epoch to post is {next}")]
    Gap {
        /// `lastEpoch()` on chain.
        on_chain: u64,
        /// The oldest unposted epoch stored.
        next: u64,
    },
    /// The post reverted for a reason other than being late (over budget, wrong role…).
    #[error("posting epoch {epoch} reverted: {reason}")]
    Refused {
        /// The epoch.
        epoch: u64,
        /// The decoded contract error.
        reason: String,
    },
    /// Not mined in time (sent again on the next run).
    #[error("posting epoch {epoch}: transaction {tx_hash} not mined within {waited:?}")]
    NotMined {
        /// The epoch.
        epoch: u64,
        /// The transaction.
        tx_hash: B256,
        /// How long it waited.
        waited: Duration,
    },
    /// Stopped at an injected crash point (tests).
    #[error("stopped at {0:?}")]
    Crashed(CrashPoint),
}

fn b256(epoch: u64, what: &'static str, value: &str) -> Result<B256, RewardsError> {
    value.parse().map_err(|_| RewardsError::Corrupt {
        epoch,
        what,
        value: value.to_owned(),
    })
}

/// Posts stored epochs to the distributor, oldest first, exactly once each.
#[derive(Debug)]
pub struct Poster<'a, C> {
    chain: &'a C,
    db: &'a Db,
    wallet: Wallet,
    distributor: Address,
    /// Poll interval for receipts.
    pub poll: Duration,
    /// How long to wait for a receipt before returning (the next run sends the same bytes).
    pub wait: Duration,
    /// Gas limit of a post.
    pub gas_limit: u64,
    /// Test hook: stop here once.
    pub crash_at: Option<CrashPoint>,
}

impl<'a, C: Chain> Poster<'a, C> {
    /// A poster sending from `wallet` (which holds the distributor's poster role).
    pub fn new(chain: &'a C, db: &'a Db, wallet: Wallet, distributor: Address) -> Self {
        Self {
            chain,
            db,
            wallet,
            distributor,
            poll: Duration::from_millis(20),
            wait: Duration::from_secs(60),
            gas_limit: 400_000,
            crash_at: None,
        }
    }

    async fn last_epoch(&self) -> Result<u64, RewardsError> {
        Ok(view(self.chain, self.distributor, RewardDistributor::lastEpochCall {}).await?)
    }

    /// Posts every stored epoch not yet on chain; returns those posted by this run.
    pub async fn post_pending(&mut self) -> Result<Vec<u64>, RewardsError> {
        let mut done = Vec::new();
        for e in epochs::unposted(self.db).await? {
            self.post(&e).await?;
            done.push(e.epoch);
        }
        Ok(done)
    }

    /// Posts one epoch (every epoch before it must be on chain already).
    pub async fn post(&mut self, e: &Unposted) -> Result<(), RewardsError> {
        let call = RewardDistributor::postEpochCall {
            epoch: e.epoch,
            root: b256(e.epoch, "root", &e.root)?,
            reportHash: b256(e.epoch, "report hash", &e.report_hash)?,
            cumulativeTotal_: U256::from(e.cumulative_total.max(0) as u64),
        };
        let on_chain = self.last_epoch().await?;
        if on_chain < e.epoch && on_chain + 1 != e.epoch {
            return Err(RewardsError::Gap {
                on_chain,
                next: e.epoch,
            });
        }
        let mut once = Once {
            chain: self.chain,
            db: self.db,
            wallet: self.wallet.clone(),
            to: self.distributor,
            gas_limit: self.gas_limit,
            poll: self.poll,
            wait: self.wait,
            crash_at: self.crash_at.take(),
        };
        let effect = EpochPost {
            poster: self,
            epoch: e.epoch,
        };
        let sent = once.send(call.abi_encode().into(), e.signed.clone(), &effect).await;
        self.crash_at = once.crash_at;
        match sent {
            Ok(tx) => {
                if let Some(tx) = tx {
                    tracing::info!(epoch = e.epoch, %tx, "epoch root posted");
                }
                Ok(())
            }
            Err(err) => Err(RewardsError::from_once(e.epoch, err)),
        }
    }
}

/// An epoch's post, as [`Once`] sees it: done when the distributor's last epoch reached it.
struct EpochPost<'p, 'a, C> {
    poster: &'p Poster<'a, C>,
    epoch: u64,
}

impl<C: Chain> Effect for EpochPost<'_, '_, C> {
    async fn done(&self) -> Result<bool, OnceError> {
        let last = view(
            self.poster.chain,
            self.poster.distributor,
            RewardDistributor::lastEpochCall {},
        )
        .await?;
        Ok(last >= self.epoch)
    }
    async fn save(&self, nonce: u64, tx_hash: &str, raw_hex: &str) -> Result<(), OnceError> {
        Ok(epochs::save_post_tx(self.poster.db, self.epoch, nonce, tx_hash, raw_hex).await?)
    }
    async fn finish(&self, by: &str) -> Result<(), OnceError> {
        Ok(epochs::set_posted(self.poster.db, self.epoch, by).await?)
    }
}

impl RewardsError {
    fn from_once(epoch: u64, e: OnceError) -> Self {
        match e {
            OnceError::Chain(e) => Self::Chain(e),
            OnceError::Submit(e) => Self::Submit(e),
            OnceError::Storage(e) => Self::Storage(e),
            OnceError::Corrupt { what, value } => Self::Corrupt { epoch, what, value },
            OnceError::Refused(reason) => Self::Refused { epoch, reason },
            OnceError::NotMined { tx_hash, waited } => Self::NotMined { epoch, tx_hash, waited },
            OnceError::Crashed(at) => Self::Crashed(at),
        }
    }
}

/// One batch's claims: accounts (ascending leaf position), their cumulative totals, and the
/// multiproof against the root of the tree whose leaves are `leaves`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimBatch {
    /// The accounts.
    pub accounts: Vec<Address>,
    /// Their cumulative totals.
    pub cumulatives: Vec<U256>,
    /// The multiproof.
    pub proof: Vec<B256>,
    /// Its flags.
    pub flags: Vec<bool>,
}

/// Builds the claim batches (of at most `per_batch` accounts) for the leaves at `positions` of
/// the padded tree over `leaves` (`(account, cumulative)` in tree order).
pub fn claim_batches(leaves: &[(Address, u64)], positions: &[usize], per_batch: usize) -> Vec<ClaimBatch> {
    let tree = merkle::MerkleTree::padded(leaves.iter().map(|(a, c)| leaf(*a, *c)).collect());
    positions
        .chunks(per_batch.max(1))
        .filter_map(|chunk| {
            let (proof, flags) = tree.multiproof(chunk)?;
            Some(ClaimBatch {
                accounts: chunk.iter().map(|&i| leaves[i].0).collect(),
                cumulatives: chunk.iter().map(|&i| U256::from(leaves[i].1)).collect(),
                proof: proof.into_iter().map(B256::from).collect(),
                flags,
            })
        })
        .collect()
}

/// The distributor's leaf ([`merkle::reward_leaf`]).
pub fn leaf(account: Address, cumulative: u64) -> [u8; 32] {
    merkle::reward_leaf(&account.0.0, cumulative)
}

/// Claims for `accounts` (those the service holds) against the distributor's latest root, whose
/// leaves are `leaves` (`(account, cumulative)` in tree order): only accounts with something new
/// to claim, in batches of `per_batch`. Returns how many accounts were claimed for.
pub async fn claim_for<C: Chain>(
    s: &mut Submitter<'_, C>,
    distributor: Address,
    leaves: &[(Address, u64)],
    accounts: &std::collections::BTreeSet<Address>,
    per_batch: usize,
) -> Result<u64, RewardsError> {
    let mut positions = Vec::new();
    for (i, (a, cumulative)) in leaves.iter().enumerate() {
        if !accounts.contains(a) {
            continue;
        }
        let claimed = view(s.chain(), distributor, RewardDistributor::claimedCall { account: *a }).await?;
        if claimed < U256::from(*cumulative) {
            positions.push(i);
        }
    }
    let mut claimed_for = 0u64;
    for b in claim_batches(leaves, &positions, per_batch) {
        let n = b.accounts.len();
        let r = s
            .send(
                distributor,
                RewardDistributor::claimManyCall {
                    accounts: b.accounts,
                    cumulatives: b.cumulatives,
                    proof: b.proof,
                    proofFlags: b.flags,
                },
            )
            .await?;
        tracing::info!(accounts = n, gas = r.gas_used, tx = %r.tx_hash, "rewards claimed for held accounts");
        claimed_for += n as u64;
    }
    Ok(claimed_for)
}
