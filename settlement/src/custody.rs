//! Acting on chain for a custodial account without giving it gas.
//!
//! A participant without an EVM address of their own has a custodial account whose key the
//! service derives from its custody seed ([`gridshare_domain::accounts::Custody`]). That account
//! never sends a transaction and never holds ether: it *signs* (an EIP-2612 permit on the reward
//! token, [`permit`]), and the service sends the signed authorisation from its own funded
//! account. The contracts check the signature against the account, so the service can move a
//! custodial account's tokens only with that account's key, and only as far as the permit says
//! (one spender, one amount, one nonce, a deadline).

use alloy::primitives::{Address, B256, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct};
use gridshare_domain::ParticipantId;
use gridshare_domain::accounts::Custody;

use crate::chain::Chain;
use crate::contracts::RewardToken;
use crate::onchain::{SubmitError, view};

alloy::sol! {
    /// EIP-2612's permit, as the token hashes it.
    struct Permit {
        address owner;
        address spender;
        uint256 value;
        uint256 nonce;
        uint256 deadline;
    }
}

/// The key of `p`'s custodial account (the derivation gives only valid secrets, so this fails
/// only if that guarantee is broken).
pub fn signer(custody: &Custody, p: ParticipantId) -> Result<PrivateKeySigner, alloy::signers::k256::ecdsa::Error> {
    PrivateKeySigner::from_bytes(&B256::from(custody.secret(p)))
}

/// `owner`'s permit for `spender` to take `value` of `token` until `deadline` (unix seconds),
/// signed with `owner`'s key over the token's own EIP-712 domain and the owner's next nonce, both
/// read from chain: the call anyone may send (the service, paying the gas).
pub async fn permit<C: Chain>(
    chain: &C,
    token: Address,
    owner: &PrivateKeySigner,
    spender: Address,
    value: U256,
    deadline: U256,
) -> Result<RewardToken::permitCall, SubmitError> {
    let d = view(chain, token, RewardToken::eip712DomainCall {}).await?;
    let domain = Eip712Domain::new(
        Some(d.name.into()),
        Some(d.version.into()),
        Some(d.chainId),
        Some(d.verifyingContract),
        None,
    );
    let nonce = view(chain, token, RewardToken::noncesCall { owner: owner.address() }).await?;
    let message = Permit {
        owner: owner.address(),
        spender,
        value,
        nonce,
        deadline,
    };
    let sig = owner
        .sign_hash_sync(&message.eip712_signing_hash(&domain))
        .map_err(SubmitError::Sign)?;
    Ok(RewardToken::permitCall {
        owner: owner.address(),
        spender,
        value,
        deadline,
        v: 27 + u8::from(sig.v()),
        r: B256::from(sig.r()),
        s: B256::from(sig.s()),
    })
}
