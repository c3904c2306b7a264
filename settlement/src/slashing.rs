//! Gateways on chain, and the slashing of those that equivocate (issue 22).
//!
//! **Registry mirror.** The market's database is where installers commission gateways; the
//! `GatewayRegistry` on chain mirrors it so that anyone can check a proof against a gateway's key
//! ([`Mirror`]): every active gateway, and every gateway with a proof still to take on chain, is
//! commissioned under its key's address for its owner's account (their own address, or the one
//! the service holds for them), with its feeder node as the site. Commissioning is idempotent: the
//! registry is read first, and a key is registered once. A gateway whose key is found on chain
//! (registered now, or before) is marked so (`gateways.on_chain_at`): with the incentive
//! contracts deployed, the intake takes nothing from a gateway before that. Revocations cross both ways with the
//! chain as the authority ([`Mirror::sync_revocations`]): a key revoked on chain (by its
//! installer, an admin or a slash) is revoked in the market, which then refuses its messages; a
//! gateway revoked in the market is revoked on chain.
//!
//! **Slashing.** A proof found at intake (two different envelopes signed by one gateway with one
//! sequence number, `gridshare_storage::evidence`) is sent to `GatewayStaking.slashEquivocation`
//! exactly once ([`Slasher`], through [`crate::once`]: stored signed before broadcast; the chain's
//! `evidenceUsed` says whether it happened). The contract checks both signatures with `ecrecover`
//! against the registered key, burns the bond (a share to the reporter, the service) and revokes
//! the key. A proof the contract refuses (the key was revoked by its installer first, say) is
//! marked with the contract's reason and not sent again.

use std::collections::HashSet;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::{SolCall, SolConstructor};
use gridshare_domain::envelope::SignedEnvelope;
use gridshare_storage::evidence::{self, Equivocation};
use gridshare_storage::{Db, gateways, participants};

use crate::chain::Chain;
use crate::contracts::{GatewayRegistry, GatewayStaking};
use crate::once::{Effect, Once, OnceError};
use crate::onchain::{SubmitError, Submitter, Wallet, view};
use crate::queue::CrashPoint;

/// The gateway contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayContracts {
    /// The registry of gateway keys.
    pub registry: Address,
    /// The bonds, and the slashing of equivocation.
    pub staking: Address,
}

/// Deploys the registry and the staking contract over `token` (the reward token), with the
/// submitter's account as admin and installer (it mirrors the market's commissioning); the
/// staking contract may revoke keys it slashes.
pub async fn deploy<C: Chain>(
    s: &mut Submitter<'_, C>,
    token: Address,
    min_bond: u64,
    cooldown_seconds: u64,
) -> Result<GatewayContracts, SubmitError> {
    let admin = s.address();
    let registry = s
        .deploy(
            &GatewayRegistry::BYTECODE,
            GatewayRegistry::constructorCall { admin }.abi_encode(),
        )
        .await?;
    let staking = s
        .deploy(
            &GatewayStaking::BYTECODE,
            GatewayStaking::constructorCall {
                token_: token,
                registry_: registry,
                admin,
                minBond_: U256::from(min_bond),
                cooldownSeconds_: cooldown_seconds,
            }
            .abi_encode(),
        )
        .await?;
    let installer = view(s.chain(), registry, GatewayRegistry::INSTALLER_ROLECall {}).await?;
    s.send(
        registry,
        GatewayRegistry::grantRoleCall {
            role: installer,
            account: admin,
        },
    )
    .await?;
    let slasher = view(s.chain(), registry, GatewayRegistry::SLASHER_ROLECall {}).await?;
    s.send(
        registry,
        GatewayRegistry::grantRoleCall {
            role: slasher,
            account: staking,
        },
    )
    .await?;
    Ok(GatewayContracts { registry, staking })
}

/// Errors of mirroring and slashing.
#[derive(Debug, thiserror::Error)]
pub enum SlashingError {
    /// Signing, sending or a call failed.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// Database failure.
    #[error(transparent)]
    Storage(#[from] gridshare_storage::StorageError),
    /// Taking a proof on chain failed (tried again on the next run).
    #[error("slashing for evidence {evidence}: {source}")]
    Proof {
        /// The proof's evidence key.
        evidence: String,
        /// Why.
        source: Box<OnceError>,
    },
    /// A contract answered a call with something it cannot mean.
    #[error("the chain answered {call} with {reason}")]
    Answer {
        /// The call.
        call: &'static str,
        /// What was wrong with the answer.
        reason: String,
    },
    /// A stored proof that cannot be sent as it is.
    #[error("evidence {evidence}: {reason}")]
    Corrupt {
        /// The proof's evidence key.
        evidence: String,
        /// What is wrong.
        reason: String,
    },
    /// A participant's stored address is not an address.
    #[error("participant {participant}: stored address {value:?} is not an address")]
    Address {
        /// The participant.
        participant: u64,
        /// The stored value.
        value: String,
    },
    /// A gateway's owner has neither an address of their own nor a custodial account yet.
    #[error("participant {participant} has no on-chain account yet (no evm_address, no custodial account)")]
    NoAccount {
        /// The participant.
        participant: u64,
    },
}

/// The on-chain account of a participant: their own address, or the one the service holds.
pub fn account_of(p: &participants::Participant) -> Result<Address, SlashingError> {
    let a = p.account().ok_or(SlashingError::NoAccount { participant: p.id.0 })?;
    a.parse().map_err(|_| SlashingError::Address {
        participant: p.id.0,
        value: a.to_owned(),
    })
}

/// Mirrors the market's gateways into the registry (see the module's documentation).
#[derive(Debug, Default)]
pub struct Mirror {
    /// Keys known to be commissioned on chain.
    known: HashSet<Address>,
    /// Gateways found registered on chain for another owner, and revoked in the market for it.
    pub taken: Vec<gridshare_domain::GatewayId>,
}

impl Mirror {
    /// Commissions the gateways not yet on chain; returns how many it commissioned.
    ///
    /// A key the registry already holds, registered by another installer for another owner, is
    /// not the market's gateway to vouch for (whoever registered it could revoke it there, and the
    /// market follows the chain's revocations): the chain being the authority, the gateway is
    /// revoked in the market (its messages refused from the intake's next reload) and listed in
    /// [`Mirror::taken`], with an error in the log. One the service registered itself is its own,
    /// whatever owner it was registered for (a homeowner may have set their own address since).
    pub async fn commission_pending<C: Chain>(
        &mut self,
        s: &mut Submitter<'_, C>,
        registry: Address,
        db: &Db,
        now: gridshare_domain::Timestamp,
    ) -> Result<usize, SlashingError> {
        let accused: HashSet<u64> = evidence::unslashed(db).await?.iter().map(|p| p.gateway.0).collect();
        let mut owners = std::collections::HashMap::new();
        let mut done = 0;
        for g in gateways::all(db).await? {
            if g.revoked_at.is_some() && !accused.contains(&g.id.0) {
                continue;
            }
            let key = Address::from(g.public_key.address());
            if self.known.contains(&key) {
                continue;
            }
            let owner = match owners.get(&g.owner) {
                Some(&a) => a,
                None => {
                    let a = account_of(&participants::get(db, g.owner).await?)?;
                    owners.insert(g.owner, a);
                    a
                }
            };
            let record = view(s.chain(), registry, GatewayRegistry::gatewayCall { gatewayKey: key }).await?;
            if record.commissionedAt != 0 {
                if record.installer != s.address() && record.owner != owner && g.revoked_at.is_none() {
                    gateways::revoke(db, g.id, now).await?;
                    tracing::error!(
                        gateway = %g.id, %key, market_owner = %owner, chain_owner = %record.owner,
                        installer = %record.installer,
                        "the gateway's key is registered on chain by another installer for another owner: revoked in the market"
                    );
                    self.taken.push(g.id);
                } else {
                    // ours, or another installer's for the same owner: the chain has the key
                    gateways::mark_on_chain(db, g.id, now).await?;
                }
                self.known.insert(key);
                continue;
            }
            let mut site = [0u8; 32];
            site[28..].copy_from_slice(&g.feeder_node.0.to_be_bytes());
            s.send(
                registry,
                GatewayRegistry::commissionCall {
                    gatewayKey: key,
                    owner,
                    site: B256::from(site),
                },
            )
            .await?;
            tracing::info!(gateway = %g.id, %key, %owner, "gateway commissioned on chain");
            gateways::mark_on_chain(db, g.id, now).await?;
            self.known.insert(key);
            done += 1;
        }
        Ok(done)
    }
}

/// What [`Mirror::sync_revocations`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    /// Gateways revoked in the market and now on chain too.
    pub to_chain: Vec<gridshare_domain::GatewayId>,
    /// Gateways the chain had revoked (by their installer, an admin or a slash) and the market
    /// had not: revoked in the market now, so it refuses their messages.
    pub from_chain: Vec<gridshare_domain::GatewayId>,
}

impl Mirror {
    /// Brings revocations across both ways, the chain being the authority: a key revoked on
    /// chain is revoked in the market's database (the intake drops it at its next reload), and
    /// a gateway revoked in the market is revoked on chain from the service's installer account
    /// (one with a proof still to take is left to the slash, which revokes it itself). Reads the
    /// whole registry, a page of [`Mirror::PAGE`] keys a call.
    pub async fn sync_revocations<C: Chain>(
        &mut self,
        s: &mut Submitter<'_, C>,
        registry: Address,
        db: &Db,
        now: gridshare_domain::Timestamp,
    ) -> Result<Revocations, SlashingError> {
        let count = view(s.chain(), registry, GatewayRegistry::gatewayCountCall {}).await?;
        let count = u64::try_from(count).unwrap_or(u64::MAX);
        let mut revoked_on_chain = std::collections::HashMap::new();
        let mut start = 0u64;
        while start < count {
            let page = view(
                s.chain(),
                registry,
                GatewayRegistry::listGatewaysCall {
                    start: U256::from(start),
                    count: U256::from(Self::PAGE),
                },
            )
            .await?;
            if page.keys.is_empty() {
                break;
            }
            start += page.keys.len() as u64;
            for (key, record) in page.keys.into_iter().zip(page.records) {
                revoked_on_chain.insert(key, record.revokedAt != 0);
            }
        }
        let accused: HashSet<u64> = evidence::unslashed(db).await?.iter().map(|p| p.gateway.0).collect();
        let mut done = Revocations::default();
        for g in gateways::all(db).await? {
            let key = Address::from(g.public_key.address());
            match (g.revoked_at.is_some(), revoked_on_chain.get(&key)) {
                (false, Some(true)) => {
                    gateways::revoke(db, g.id, now).await?;
                    tracing::warn!(gateway = %g.id, %key, "gateway revoked on chain: the market refuses it from now on");
                    done.from_chain.push(g.id);
                }
                (true, Some(false)) if !accused.contains(&g.id.0) => {
                    s.send(registry, GatewayRegistry::revokeCall { gatewayKey: key })
                        .await?;
                    tracing::info!(gateway = %g.id, %key, "gateway revoked on chain");
                    done.to_chain.push(g.id);
                }
                _ => {}
            }
        }
        Ok(done)
    }

    /// Keys read from the registry a call.
    pub const PAGE: u64 = 256;
}

/// Which active gateways the staking contract counts as bonded: `None` when its minimum bond is
/// zero (every gateway counts, even one nobody bonded for; one call), else the ids of the
/// market's active gateways whose active bond reaches the minimum (`bondedAmong`, one call per
/// [`BONDED_PAGE`] gateways).
pub async fn bonded<C: Chain>(
    chain: &C,
    staking: Address,
    db: &Db,
) -> Result<Option<std::collections::BTreeSet<gridshare_domain::GatewayId>>, SlashingError> {
    let min = view(chain, staking, GatewayStaking::minBondCall {}).await?;
    if min.is_zero() {
        return Ok(None);
    }
    let mut out = std::collections::BTreeSet::new();
    for page in gateways::active(db).await?.chunks(BONDED_PAGE) {
        let keys: Vec<Address> = page.iter().map(|g| Address::from(g.public_key.address())).collect();
        let answers = view(chain, staking, GatewayStaking::bondedAmongCall { gateways: keys }).await?;
        if answers.len() != page.len() {
            return Err(SlashingError::Answer {
                call: "bondedAmong",
                reason: format!("{} answers for {} gateways", answers.len(), page.len()),
            });
        }
        out.extend(
            page.iter()
                .zip(answers)
                .filter(|(_, bonded)| *bonded)
                .map(|(g, _)| g.id),
        );
    }
    Ok(Some(out))
}

/// Gateways asked about a call by [`bonded`] (about 2.5 million gas of cold reads, under any
/// node's limit for a call).
pub const BONDED_PAGE: usize = 1_000;

/// An envelope as the staking contract takes it.
fn on_chain(evidence: &str, json: &str) -> Result<GatewayStaking::Envelope, SlashingError> {
    let corrupt = |reason: String| SlashingError::Corrupt {
        evidence: evidence.to_owned(),
        reason,
    };
    let env: SignedEnvelope = serde_json::from_str(json).map_err(|e| corrupt(format!("an envelope: {e}")))?;
    let sig: Bytes = env
        .sig
        .parse()
        .map_err(|_| corrupt(format!("signature {:?} is not hex", env.sig)))?;
    Ok(GatewayStaking::Envelope {
        gateway: env.gateway.0,
        seq: env.seq,
        ts: env.ts.0,
        payload: Bytes::from(env.payload.into_bytes()),
        sig,
    })
}

/// Takes stored proofs on chain, oldest first, exactly once each.
#[derive(Debug)]
pub struct Slasher<'a, C> {
    chain: &'a C,
    db: &'a Db,
    wallet: Wallet,
    staking: Address,
    /// Poll interval for receipts.
    pub poll: Duration,
    /// How long to wait for a receipt before returning (the next run sends the same bytes).
    pub wait: Duration,
    /// Gas limit of a proof (two envelopes of up to a few kB each).
    pub gas_limit: u64,
    /// Test hook: stop here once.
    pub crash_at: Option<CrashPoint>,
}

/// What became of a proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// On chain: by this transaction (None: by another one).
    Slashed(Option<B256>),
    /// The contract refused it, for this reason (stored; not sent again).
    Refused(String),
}

impl<'a, C: Chain> Slasher<'a, C> {
    /// A slasher sending from `wallet`.
    pub fn new(chain: &'a C, db: &'a Db, wallet: Wallet, staking: Address) -> Self {
        Self {
            chain,
            db,
            wallet,
            staking,
            poll: Duration::from_millis(20),
            wait: Duration::from_secs(60),
            gas_limit: 1_000_000,
            crash_at: None,
        }
    }

    /// Takes every stored proof not yet on chain (nor refused) there; returns what became of
    /// each, by evidence key.
    pub async fn slash_pending(&mut self) -> Result<Vec<(String, Outcome)>, SlashingError> {
        let mut done = Vec::new();
        for p in evidence::unslashed(self.db).await? {
            let outcome = self.slash(&p).await?;
            done.push((p.evidence, outcome));
        }
        Ok(done)
    }

    /// Takes one proof on chain.
    pub async fn slash(&mut self, p: &Equivocation) -> Result<Outcome, SlashingError> {
        let call = GatewayStaking::slashEquivocationCall {
            a: on_chain(&p.evidence, &p.first)?,
            b: on_chain(&p.evidence, &p.second)?,
        };
        let key: B256 = p.evidence.parse().map_err(|_| SlashingError::Corrupt {
            evidence: p.evidence.clone(),
            reason: "the evidence key is not 32 bytes of hex".into(),
        })?;
        let mut once = Once {
            chain: self.chain,
            db: self.db,
            wallet: self.wallet.clone(),
            to: self.staking,
            gas_limit: self.gas_limit,
            poll: self.poll,
            wait: self.wait,
            crash_at: self.crash_at.take(),
        };
        let effect = Proof {
            chain: self.chain,
            db: self.db,
            staking: self.staking,
            evidence: &p.evidence,
            key,
        };
        let sent = once.send(call.abi_encode().into(), p.signed.clone(), &effect).await;
        self.crash_at = once.crash_at;
        match sent {
            Ok(tx) => {
                tracing::info!(gateway = %p.gateway, evidence = %p.evidence, tx = ?tx, "gateway slashed on chain for equivocation");
                Ok(Outcome::Slashed(tx))
            }
            Err(OnceError::Refused(reason)) => {
                evidence::set_refused(self.db, &p.evidence, &reason).await?;
                tracing::warn!(gateway = %p.gateway, evidence = %p.evidence, %reason, "the staking contract refused a proof of equivocation");
                Ok(Outcome::Refused(reason))
            }
            Err(source) => Err(SlashingError::Proof {
                evidence: p.evidence.clone(),
                source: Box::new(source),
            }),
        }
    }
}

/// A proof, as [`Once`] sees it: done when the staking contract has used its evidence.
struct Proof<'p, C> {
    chain: &'p C,
    db: &'p Db,
    staking: Address,
    evidence: &'p str,
    key: B256,
}

impl<C: Chain> Effect for Proof<'_, C> {
    async fn done(&self) -> Result<bool, OnceError> {
        Ok(view(
            self.chain,
            self.staking,
            GatewayStaking::evidenceUsedCall { evidence: self.key },
        )
        .await?)
    }
    async fn save(&self, nonce: u64, tx_hash: &str, raw_hex: &str) -> Result<(), OnceError> {
        Ok(evidence::save_slash_tx(self.db, self.evidence, nonce, tx_hash, raw_hex).await?)
    }
    async fn finish(&self, by: &str) -> Result<(), OnceError> {
        Ok(evidence::set_slashed(self.db, self.evidence, by).await?)
    }
}
