//! The reward epochs' chain side, run by the settlement task between its steps (one sender, so
//! its nonces never race): post every computed epoch's root and report hash to the distributor,
//! oldest first, exactly once ([`Poster`]); then claim, in batched multiproof transactions, for the
//! accounts the service holds — participants without an address of their own, whose rewards go to
//! their custodial account (`crate::custody`) — so that they need neither a wallet nor gas. A homeowner with an address of their own claims with their own wallet (the
//! dashboard and `GET /api/v1/epochs/{n}/proof` give the proof); anyone may claim for anyone, the
//! distributor pays only the account.

use std::collections::BTreeSet;

use alloy::primitives::{Address, U256};
use gridshare_domain::ParticipantId;
use gridshare_domain::accounts::Custody;
use gridshare_market::epoch::report::{self, Report};
use gridshare_settlement::chain::Chain;
use gridshare_settlement::custody;
use gridshare_settlement::onchain::{Submitter, Wallet, view};
use gridshare_settlement::rewards::{Poster, RewardContracts, RewardsError, claim_for};
use gridshare_storage::Db;

/// Accounts per claim transaction: a warm claim costs ~16,000 gas, a first one ~50,000, and a
/// transaction may use at most 2^24 gas (EIP-7825), so 250 first claims fit with room to spare.
pub const CLAIMS_PER_TX: usize = 250;

/// What the step keeps between runs.
#[derive(Debug, Default)]
pub struct RewardsStep {
    /// The last epoch claimed for (claims are checked again after a restart, and for each new
    /// epoch).
    claimed_epoch: u64,
}

impl RewardsStep {
    /// Posts pending epochs, then claims for held accounts against the latest posted epoch, and
    /// makes the tokens of held accounts count as their own votes (once each).
    pub async fn run<C: Chain>(
        &mut self,
        chain: &C,
        db: &Db,
        wallet: &Wallet,
        contracts: RewardContracts,
        custody: &Custody,
    ) -> Result<(), RewardsError> {
        let posted = Poster::new(chain, db, wallet.clone(), contracts.distributor)
            .post_pending()
            .await?;
        if !posted.is_empty() {
            tracing::info!(epochs = ?posted, "reward epochs posted on chain");
        }
        let last = view(
            chain,
            contracts.distributor,
            gridshare_settlement::contracts::RewardDistributor::lastEpochCall {},
        )
        .await?;
        if last == 0 || last == self.claimed_epoch {
            return Ok(());
        }
        let Some(json) = gridshare_storage::epochs::report(db, last).await? else {
            return Ok(()); // posted by another instance that has not shared its database yet
        };
        let r: Report = serde_json::from_str(&json).map_err(|e| gridshare_storage::StorageError::Corrupt {
            field: "epochs.report",
            reason: format!("epoch {last}: {e}"),
        })?;
        let leaves: Vec<(Address, u64)> = r
            .accounts
            .iter()
            .filter(|a| a.cumulative > 0)
            .filter_map(|a| report::parse_address(&a.account).map(|b| (Address::from(b), a.cumulative)))
            .collect();
        let held: Vec<(ParticipantId, Address)> = gridshare_storage::participants::list(db)
            .await?
            .into_iter()
            .filter(|p| p.evm_address.is_none())
            .filter_map(|p| Some((p.id, p.custody_address?.parse::<Address>().ok()?)))
            .collect();
        let accounts: BTreeSet<Address> = held.iter().map(|&(_, a)| a).collect();
        let mut s = Submitter::new(chain, wallet.clone()).await?;
        let n = claim_for(&mut s, contracts.distributor, &leaves, &accounts, CLAIMS_PER_TX).await?;
        if n > 0 {
            tracing::info!(
                epoch = last,
                accounts = n,
                "rewards claimed for the accounts the service holds"
            );
        }
        // their tokens count as their own votes (ERC-20 votes count delegated tokens only);
        // casting a vote for the homeowner is not built yet. Idempotent: an account already
        // delegated is skipped, and a delegation sent twice after a crash is refused by its nonce
        // and found done at the next run
        let delegated = custody::delegate_held(&mut s, contracts.token, custody, &held, U256::MAX).await?;
        if !delegated.is_empty() {
            tracing::info!(
                accounts = delegated.len(),
                "held accounts' votes delegated to themselves"
            );
        }
        self.claimed_epoch = last;
        Ok(())
    }
}
