//! Set-up shared by the settlement tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test code

use alloy::primitives::{Address, U256};
use gridshare_settlement::chain::Chain;
use gridshare_settlement::contracts::RewardToken;
use gridshare_settlement::onchain::{Submitter, view};

/// The custody seed of the tests' homes (the service derives from its own seed file).
pub fn custody() -> gridshare_domain::accounts::Custody {
    gridshare_domain::accounts::Custody::from_bytes([0x5e; 32])
}

/// Home `p`'s custodial address, as the database keeps it.
pub fn custody_address(p: u64) -> Option<String> {
    Some(custody().address_hex(gridshare_domain::ParticipantId(p)))
}

/// Reward tokens for the submitter's own account: it grants itself the minter role (it deployed
/// the token, so it is its admin) and mints `amount` to itself — what a test needs to bond or to
/// hold votes.
pub async fn mint_to_self<C: Chain>(s: &mut Submitter<'_, C>, token: Address, amount: u64) {
    let me = s.address();
    let minter = view(s.chain(), token, RewardToken::MINTER_ROLECall {}).await.unwrap();
    s.send(
        token,
        RewardToken::grantRoleCall {
            role: minter,
            account: me,
        },
    )
    .await
    .unwrap();
    s.send(
        token,
        RewardToken::mintCall {
            to: me,
            amount: U256::from(amount),
        },
    )
    .await
    .unwrap();
}
