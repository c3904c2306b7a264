//! Gateways on chain and the slashing of those that equivocate, run by the settlement task
//! between its steps (one sender, so its nonces never race). Every step, the registry mirror
//! commissions the gateways the chain does not know yet (so that any proof can be checked against
//! a registered key), then every proof of equivocation the intake stored goes to the staking
//! contract exactly once (`gridshare_settlement::slashing`). Every [`CHAIN_READ_EVERY`] (and at
//! the first step), it also reads what only the chain knows: which gateways are bonded (the
//! staking contract's minimum and each active gateway's `isBonded`), for the epoch task, and the
//! revocations to carry across (a key revoked on chain is refused by the market from its next
//! gateway reload; one revoked in the market is revoked on chain).

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
        now: gridshare_domain::Timestamp,
    ) -> Result<(), SlashingError> {
        let due = self.last_read.is_none_or(|t| t.elapsed() >= CHAIN_READ_EVERY);
        if due {
            // on its own: the epochs wait for the bonds, so nothing else may hold them up
            match gridshare_settlement::slashing::bonded(chain, contracts.staking, db).await {
                Ok(set) => {
                    let bonds = set.map_or(Bonds::NoMinimum, Bonds::Bonded);
                    self.bonds.send_if_modified(|old| {
                        let changed = old.as_ref() != Some(&bonds);
                        if changed {
                            tracing::info!(?bonds, "bonded gateways read from chain");
                            *old = Some(bonds);
                        }
                        changed
                    });
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
