//! Gateways on chain and the slashing of those that equivocate, run by the settlement task
//! between its steps (one sender, so its nonces never race). Every step, the registry mirror
//! commissions the gateways the chain does not know yet (so that any proof can be checked against
//! a registered key), then every proof of equivocation the intake stored goes to the staking
//! contract exactly once (`gridshare_settlement::slashing`). Every [`CHAIN_READ_EVERY`] (and at
//! the first step), it also reads what only the chain knows: which gateways are bonded (the
//! staking contract's minimum and each active gateway's `isBonded`), for the epoch task, and the
//! revocations to carry across (a key revoked on chain is refused by the market from its next
//! gateway reload; one revoked in the market is revoked on chain). When the community has set a
//! minimum bond, the gateways of homes whose accounts the service holds that are below it are
//! bonded from the homes' own reward tokens ([`bond_held`]).

use alloy::primitives::Address;
use gridshare_domain::GatewayId;
use gridshare_domain::accounts::Custody;
use gridshare_market::epoch::collect::Bonds;
use gridshare_settlement::chain::Chain;
use gridshare_settlement::onchain::{Submitter, Wallet};
use gridshare_settlement::slashing::{GatewayContracts, Mirror, Outcome, Slasher, SlashingError};
use gridshare_storage::Db;

/// The bond below which a gateway earns nothing: none while the network is a pilot (every
/// gateway counts as bonded, as the epochs assume: `Bonds::NoMinimum`).
pub const MIN_BOND: u64 = 0;

/// How long bonded tokens cool down before they can be withdrawn (and stay slashable): a week.
pub const UNBONDING_COOLDOWN_S: u64 = 7 * 24 * 3_600;

/// How often the step reads the whole registry and the bonds from chain (a scan of every key,
/// and a call per gateway once the minimum bond is above zero): not at every 2-second step.
pub const CHAIN_READ_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// What the step keeps between runs.
#[derive(Debug)]
pub struct SlashingStep {
    mirror: Mirror,
    /// Where the bonds read from chain go (the epoch task computes nothing before the first).
    bonds: tokio::sync::watch::Sender<Option<Bonds>>,
    /// When the registry and the bonds were last read.
    last_read: Option<tokio::time::Instant>,
}

/// Bonds, for every active gateway on chain that is not `bonded` and whose owner's account the
/// service holds (a home without a wallet of its own), the shortfall to the staking contract's
/// minimum from the home's own reward tokens, when the account holds that much (else nothing yet:
/// its next rewards may). The account signs a permit, the service sends it and pays the gas, and
/// the bond is the home's own (`gridshare_settlement::custody::bond`). A gateway the chain
/// refuses to bond for (its key revoked meanwhile, say) is left with a warning. Returns the
/// gateways bonded.
pub async fn bond_held<C: Chain>(
    chain: &C,
    db: &Db,
    wallet: &Wallet,
    staking: Address,
    custody: &Custody,
    bonded: &std::collections::BTreeSet<GatewayId>,
) -> Result<Vec<GatewayId>, SlashingError> {
    use gridshare_settlement::contracts::{GatewayStaking, RewardToken};
    use gridshare_settlement::onchain::{SubmitError, view};
    let on_chain = gridshare_storage::gateways::on_chain(db).await?;
    let waiting: Vec<_> = gridshare_storage::gateways::active(db)
        .await?
        .into_iter()
        .filter(|g| on_chain.contains(&g.id) && !bonded.contains(&g.id))
        .collect();
    if waiting.is_empty() {
        return Ok(Vec::new());
    }
    let min = view(chain, staking, GatewayStaking::minBondCall {}).await?;
    let token = view(chain, staking, GatewayStaking::tokenCall {}).await?;
    let mut submitter = None;
    let mut done = Vec::new();
    for g in waiting {
        let p = gridshare_storage::participants::get(db, g.owner).await?;
        let Some(account) = p.custody_address.as_deref().filter(|_| p.evm_address.is_none()) else {
            continue; // a home with its own wallet bonds for itself
        };
        let Ok(key) = gridshare_settlement::custody::signer(custody, g.owner) else {
            continue;
        };
        if !account.eq_ignore_ascii_case(&key.address().to_string()) {
            continue; // never sign for an account this seed does not hold
        }
        let gateway = Address::from(g.public_key.address());
        let active = view(chain, staking, GatewayStaking::activeBondCall { gateway }).await?;
        let need = min.saturating_sub(active);
        let balance = view(chain, token, RewardToken::balanceOfCall { account: key.address() }).await?;
        if need.is_zero() || balance < need {
            continue;
        }
        let s = match submitter.as_mut() {
            Some(s) => s,
            None => submitter.insert(Submitter::new(chain, wallet.clone()).await?),
        };
        match gridshare_settlement::custody::bond(s, token, staking, &key, gateway, need).await {
            Ok(_) => done.push(g.id),
            Err(e @ (SubmitError::Reverted { .. } | SubmitError::CallReverted(_))) => {
                tracing::warn!(gateway = %g.id, error = %e, "the staking contract refused a bond for a home");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

impl SlashingStep {
    /// A step that publishes the bonds it reads on `bonds`.
    pub fn new(bonds: tokio::sync::watch::Sender<Option<Bonds>>) -> Self {
        Self {
            mirror: Mirror::default(),
            bonds,
            last_read: None,
        }
    }

    /// Reads the bonds for the epochs (when due), commissions new gateways on chain, carries
    /// revocations across (when due), then takes pending proofs there.
    pub async fn run<C: Chain>(
        &mut self,
        chain: &C,
        db: &Db,
        wallet: &Wallet,
        contracts: GatewayContracts,
        custody: &Custody,
        now: gridshare_domain::Timestamp,
    ) -> Result<(), SlashingError> {
        let due = self.last_read.is_none_or(|t| t.elapsed() >= CHAIN_READ_EVERY);
        if due {
            // on its own: the epochs wait for the bonds, so nothing else may hold them up
            match gridshare_settlement::slashing::bonded(chain, contracts.staking, db).await {
                Ok(set) => {
                    if let Some(bonded) = &set {
                        match bond_held(chain, db, wallet, contracts.staking, custody, bonded).await {
                            Ok(done) if !done.is_empty() => {
                                tracing::info!(gateways = ?done, "gateways bonded from their homes' rewards");
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "bonding for the homes the service holds: will try again")
                            }
                        }
                    }
                    let bonds = set.clone().map_or(Bonds::NoMinimum, Bonds::Bonded);
                    let changed = self.bonds.send_if_modified(|old| {
                        let changed = old.as_ref() != Some(&bonds);
                        if changed {
                            tracing::info!(?bonds, "bonded gateways read from chain");
                            *old = Some(bonds);
                        }
                        changed
                    });
                    // for the pages (installer, homeowner, admin, network)
                    if (changed || self.last_read.is_none())
                        && let Err(e) = gridshare_storage::gateways::record_bonds(db, set.as_ref()).await
                    {
                        tracing::warn!(error = %e, "recording the bonds read from chain");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading the bonds on chain: will try again"),
            }
        }
        let mut s = Submitter::new(chain, wallet.clone()).await?;
        let n = self
            .mirror
            .commission_pending(&mut s, contracts.registry, db, now)
            .await?;
        if n > 0 {
            tracing::info!(gateways = n, "gateways commissioned on chain");
        }
        if due {
            let r = self
                .mirror
                .sync_revocations(&mut s, contracts.registry, db, now)
                .await?;
            if !r.from_chain.is_empty() {
                tracing::warn!(gateways = ?r.from_chain, "gateways revoked on chain, now refused by the market");
            }
            self.last_read = Some(tokio::time::Instant::now());
        }
        for (evidence, outcome) in Slasher::new(chain, db, wallet.clone(), contracts.staking)
            .slash_pending()
            .await?
        {
            match outcome {
                Outcome::Slashed(tx) => tracing::warn!(%evidence, ?tx, "an equivocating gateway was slashed on chain"),
                Outcome::Refused(reason) => {
                    tracing::warn!(%evidence, %reason, "a proof of equivocation was refused on chain")
                }
            }
        }
        Ok(())
    }
}
