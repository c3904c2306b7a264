//! Acting on chain for a custodial account without giving it gas.
//!
//! A participant without an EVM address of their own has a custodial account whose key the
//! service derives from its custody seed ([`gridshare_domain::accounts::Custody`]). That account
//! never sends a transaction and never holds ether: it *signs* (an EIP-2612 permit on the reward
//! token, [`permit`]), and the service sends the signed authorisation from its own funded
//! account. The contracts check the signature against the account, so the service can move a
//! custodial account's tokens only with that account's key, and only as far as the permit says
//! (one spender, one amount, one nonce, a deadline). The same way, [`delegation`] makes a
//! custodial account's tokens count as its own votes in governance (ERC-20 votes count only
//! delegated tokens), [`delegate_held`] does it for every custodial account holding tokens, and
//! [`ballot`] casts the vote a homeowner chose, signed by their account (the governor counts it
//! as that account's, once: the ballot carries the account's next nonce on the governor), and
//! [`bond`] bonds the account's tokens for its own gateway (the bond is the account's).

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct};
use gridshare_domain::ParticipantId;
use gridshare_domain::accounts::Custody;

use crate::chain::Chain;
use crate::chain::Receipt;
use crate::contracts::{GatewayStaking, GridGovernor, RewardToken};
use crate::onchain::{SubmitError, Submitter, view};

alloy::sol! {
    /// ERC-5805's delegation, as the token hashes it.
    struct Delegation {
        address delegatee;
        uint256 nonce;
        uint256 expiry;
    }

    /// OpenZeppelin Governor 5.x's ballot, as the governor hashes it.
    struct Ballot {
        uint256 proposalId;
        uint8 support;
        address voter;
        uint256 nonce;
    }

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

/// A contract's EIP-712 domain (the token's, the governor's), read from chain: ERC-5267's
/// `eip712Domain()`, the same call on either.
async fn domain<C: Chain>(chain: &C, contract: Address) -> Result<Eip712Domain, SubmitError> {
    let d = view(chain, contract, RewardToken::eip712DomainCall {}).await?;
    Ok(Eip712Domain::new(
        Some(d.name.into()),
        Some(d.version.into()),
        Some(d.chainId),
        Some(d.verifyingContract),
        None,
    ))
}

/// `owner`'s signature of `message` in `domain`, as the contracts take it: (v, r, s).
fn sign<T: SolStruct>(
    owner: &PrivateKeySigner,
    message: &T,
    domain: &Eip712Domain,
) -> Result<(u8, B256, B256), SubmitError> {
    let sig = owner
        .sign_hash_sync(&message.eip712_signing_hash(domain))
        .map_err(SubmitError::Sign)?;
    Ok((27 + u8::from(sig.v()), B256::from(sig.r()), B256::from(sig.s())))
}

/// `owner`'s next nonce on `token` (permits and delegations share it).
async fn nonce<C: Chain>(chain: &C, token: Address, owner: Address) -> Result<U256, SubmitError> {
    view(chain, token, RewardToken::noncesCall { owner }).await
}

/// `owner`'s delegation of its votes to `delegatee` (itself, for a custodial account whose
/// homeowner votes through the service), valid until `expiry` (unix seconds), signed with
/// `owner`'s key over the token's domain and its next nonce: the call anyone may send.
pub async fn delegation<C: Chain>(
    chain: &C,
    token: Address,
    owner: &PrivateKeySigner,
    delegatee: Address,
    expiry: U256,
) -> Result<RewardToken::delegateBySigCall, SubmitError> {
    let domain = domain(chain, token).await?;
    let nonce = nonce(chain, token, owner.address()).await?;
    let message = Delegation {
        delegatee,
        nonce,
        expiry,
    };
    let (v, r, s) = sign(owner, &message, &domain)?;
    Ok(RewardToken::delegateBySigCall {
        delegatee,
        nonce,
        expiry,
        v,
        r,
        s,
    })
}

/// Makes the tokens of every custodial account in `held` that holds some and has not delegated
/// them count as its own votes: one `delegateBySig` each, sent (and paid) by `s`. Returns the
/// accounts delegated. A held account is a participant's; its key is derived from `custody`.
pub async fn delegate_held<C: Chain>(
    s: &mut Submitter<'_, C>,
    token: Address,
    custody: &Custody,
    held: &[(ParticipantId, Address)],
    expiry: U256,
) -> Result<Vec<Address>, SubmitError> {
    let mut done = Vec::new();
    for &(p, account) in held {
        let delegate = view(s.chain(), token, RewardToken::delegatesCall { account }).await?;
        if delegate != Address::ZERO {
            continue;
        }
        let balance = view(s.chain(), token, RewardToken::balanceOfCall { account }).await?;
        if balance.is_zero() {
            continue;
        }
        let key = signer(custody, p).map_err(|e| SubmitError::Sign(alloy::signers::Error::other(e)))?;
        if key.address() != account {
            // the database's address is not this seed's: never sign for an account we do not hold
            continue;
        }
        let call = delegation(s.chain(), token, &key, account, expiry).await?;
        s.send(token, call).await?;
        done.push(account);
    }
    Ok(done)
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
    let domain = domain(chain, token).await?;
    let nonce = nonce(chain, token, owner.address()).await?;
    let message = Permit {
        owner: owner.address(),
        spender,
        value,
        nonce,
        deadline,
    };
    let (v, r, s) = sign(owner, &message, &domain)?;
    Ok(RewardToken::permitCall {
        owner: owner.address(),
        spender,
        value,
        deadline,
        v,
        r,
        s,
    })
}

/// `voter`'s ballot on the governor's proposal `proposal`: `support` 0 against, 1 for, 2 abstain,
/// signed with `voter`'s key over the governor's EIP-712 domain and the voter's next nonce there
/// (read from chain): the `castVoteBySig` call anyone may send. The governor counts it as
/// `voter`'s vote with the votes delegated to it at the proposal's snapshot; the nonce makes the
/// same ballot useless a second time.
pub async fn ballot<C: Chain>(
    chain: &C,
    governor: Address,
    voter: &PrivateKeySigner,
    proposal: U256,
    support: u8,
) -> Result<GridGovernor::castVoteBySigCall, SubmitError> {
    let domain = domain(chain, governor).await?;
    let owner = voter.address();
    let nonce = view(chain, governor, GridGovernor::noncesCall { owner }).await?;
    let message = Ballot {
        proposalId: proposal,
        support,
        voter: owner,
        nonce,
    };
    let (v, r, s) = sign(voter, &message, &domain)?;
    // the governor takes the signature as bytes: r ‖ s ‖ v
    let mut signature = Vec::with_capacity(65);
    signature.extend_from_slice(r.as_slice());
    signature.extend_from_slice(s.as_slice());
    signature.push(v);
    Ok(GridGovernor::castVoteBySigCall {
        proposalId: proposal,
        support,
        voter: owner,
        signature: Bytes::from(signature),
    })
}

/// Bonds `amount` of `owner`'s reward tokens for `gateway`, which `owner` must own in the
/// registry: a permit signed with `owner`'s key for exactly `amount` to the staking contract, and
/// `bondWithPermit` sent (and paid) by `s`. The bond is `owner`'s own: only it can unbond it.
pub async fn bond<C: Chain>(
    s: &mut Submitter<'_, C>,
    token: Address,
    staking: Address,
    owner: &PrivateKeySigner,
    gateway: Address,
    amount: U256,
) -> Result<Receipt, SubmitError> {
    let p = permit(s.chain(), token, owner, staking, amount, U256::MAX).await?;
    s.send(
        staking,
        GatewayStaking::bondWithPermitCall {
            owner: p.owner,
            gateway,
            amount,
            deadline: p.deadline,
            v: p.v,
            r: p.r,
            s: p.s,
        },
    )
    .await
}
