//! Set-up shared by the settlement tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test code

use alloy::primitives::{Address, U256};
use gridshare_settlement::chain::Chain;
use gridshare_settlement::contracts::RewardToken;
use gridshare_settlement::onchain::{Submitter, view};

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
