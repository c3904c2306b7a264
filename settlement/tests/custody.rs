//! Custodial accounts on chain, on the in-process EVM and on anvil: the tokens a custodial
//! account holds move only with its own key (derived from the custody seed), as far as its
//! permit says, and the account itself never sends a transaction or holds gas — the service
//! sends the signed permit. A neighbour's custodial key, a replayed permit, a permit for more
//! than it says or one past its deadline move nothing. The same keys make each custodial
//! account's tokens count as its own votes, once, and a delegation moves only its signer's votes.
//! A custodial account bonds its tokens for its own gateway (the bond is its own) and never for
//! another's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::str::FromStr;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use gridshare_domain::ParticipantId;
use gridshare_settlement::chain::{Chain, EVM_CHAIN_ID, EvmChain, Receipt, RpcChain};
use gridshare_settlement::contracts::{GatewayRegistry, GatewayStaking, RewardToken};
use gridshare_settlement::custody;
use gridshare_settlement::onchain::{SubmitError, Submitter, Wallet, view};
use gridshare_settlement::rewards::{self, Emission};
use gridshare_testkit::{ANVIL_KEY_0, Anvil};

/// Far in the future (unix seconds).
const LATER: u64 = 4_000_000_000;

fn key() -> PrivateKeySigner {
    PrivateKeySigner::from_str(ANVIL_KEY_0).unwrap()
}

async fn balance<C: Chain>(chain: &C, token: Address, account: Address) -> U256 {
    view(chain, token, RewardToken::balanceOfCall { account })
        .await
        .unwrap()
}

/// Refused with the token's named error (the revert reason names it).
fn refused(r: Result<Receipt, SubmitError>, error: &str) {
    match r {
        Err(e) => assert!(e.to_string().contains(error), "expected {error}, got {e}"),
        Ok(_) => panic!("expected {error}, the transaction went through"),
    }
}

/// The scenario on `chain`; returns the final balances (home 1, home 2, the recipient) and home
/// 1's votes.
async fn scenario<C: Chain>(chain: &C, wallet: Wallet) -> (U256, U256, U256, U256) {
    let mut s = Submitter::new(chain, wallet).await.unwrap();
    let service = s.address();
    let token = rewards::deploy(
        &mut s,
        Emission {
            cap: 1_000_000_000,
            initial_budget: 50_000_000,
            halving_epochs: 2,
        },
    )
    .await
    .unwrap()
    .token;
    let seed = common::custody();
    let (home1, home2) = (ParticipantId(1), ParticipantId(2));
    let (key1, key2) = (
        custody::signer(&seed, home1).unwrap(),
        custody::signer(&seed, home2).unwrap(),
    );
    assert_eq!(
        key1.address(),
        Address::from(seed.address(home1)),
        "the key is the account's"
    );
    let (account1, account2) = (key1.address(), key2.address());
    let recipient = Address::repeat_byte(0x42);
    // the service's tokens go to the custodial accounts (as its reward claims do)
    common::mint_to_self(&mut s, token, 3_000).await;
    for (to, amount) in [(account1, 1_000u64), (account2, 1_000)] {
        s.send(
            token,
            RewardToken::transferCall {
                to,
                value: U256::from(amount),
            },
        )
        .await
        .unwrap();
    }

    // home 1's key permits the service to take 400; the service sends it and takes them
    let p = custody::permit(chain, token, &key1, service, U256::from(400), U256::from(LATER))
        .await
        .unwrap();
    s.send(token, p.clone()).await.unwrap();
    s.send(
        token,
        RewardToken::transferFromCall {
            from: account1,
            to: recipient,
            value: U256::from(400),
        },
    )
    .await
    .unwrap();

    // the same permit again (a replay): its nonce is used
    refused(s.send(token, p).await, "ERC2612InvalidSigner");
    // home 2's key signing for home 1's tokens (a neighbour's key, or a forged permit)
    let mut forged = custody::permit(chain, token, &key2, service, U256::from(500), U256::from(LATER))
        .await
        .unwrap();
    forged.owner = account1;
    refused(s.send(token, forged).await, "ERC2612InvalidSigner");
    // a permit past its deadline
    let expired = custody::permit(chain, token, &key2, service, U256::from(500), U256::from(1))
        .await
        .unwrap();
    refused(s.send(token, expired).await, "ERC2612ExpiredSignature");
    // more than the permit said
    let small = custody::permit(chain, token, &key2, service, U256::from(100), U256::from(LATER))
        .await
        .unwrap();
    s.send(token, small).await.unwrap();
    refused(
        s.send(
            token,
            RewardToken::transferFromCall {
                from: account2,
                to: recipient,
                value: U256::from(101),
            },
        )
        .await,
        "ERC20InsufficientAllowance",
    );
    // without any permit, the service cannot take a custodial account's tokens at all
    refused(
        s.send(
            token,
            RewardToken::transferFromCall {
                from: account1,
                to: recipient,
                value: U256::from(1),
            },
        )
        .await,
        "ERC20InsufficientAllowance",
    );

    // votes: every held account with tokens delegates them to itself, signed with its own key;
    // one without tokens, and one whose recorded address is not this seed's, are left alone
    let home3 = ParticipantId(3);
    let held = [
        (home1, account1),
        (home2, account2),
        (home3, Address::from(seed.address(home3))),
        (ParticipantId(4), Address::repeat_byte(0x44)),
    ];
    let delegated = custody::delegate_held(&mut s, token, &seed, &held, U256::from(LATER))
        .await
        .unwrap();
    assert_eq!(delegated, vec![account1, account2]);
    assert!(
        custody::delegate_held(&mut s, token, &seed, &held, U256::from(LATER))
            .await
            .unwrap()
            .is_empty(),
        "delegated once"
    );
    // a delegation signed by home 2's key only ever moves home 2's votes: home 1's stay its own
    let by_two = custody::delegation(chain, token, &key2, recipient, U256::from(LATER))
        .await
        .unwrap();
    s.send(token, by_two.clone()).await.unwrap();
    refused(s.send(token, by_two).await, "InvalidAccountNonce");
    let delegate_of = |account| async move {
        view(chain, token, RewardToken::delegatesCall { account })
            .await
            .unwrap()
    };
    assert_eq!(delegate_of(account1).await, account1);
    assert_eq!(
        delegate_of(account2).await,
        recipient,
        "home 2 chose (signed) another delegate"
    );

    // bonds: home 2's tokens bond for home 2's own gateway, with its permit; the bond is its own
    let gateways = gridshare_settlement::slashing::deploy(&mut s, token, 100, 86_400)
        .await
        .unwrap();
    let (gw1, gw2) = (Address::repeat_byte(0x61), Address::repeat_byte(0x62));
    for (gateway, owner) in [(gw1, account1), (gw2, account2)] {
        s.send(
            gateways.registry,
            GatewayRegistry::commissionCall {
                gatewayKey: gateway,
                owner,
                site: alloy::primitives::B256::repeat_byte(0x5e),
            },
        )
        .await
        .unwrap();
    }
    custody::bond(&mut s, token, gateways.staking, &key2, gw2, U256::from(100))
        .await
        .unwrap();
    let bonded = |gateway| async move {
        view(chain, gateways.staking, GatewayStaking::isBondedCall { gateway })
            .await
            .unwrap()
    };
    assert!(bonded(gw2).await, "home 2's gateway is bonded");
    let mine = view(
        chain,
        gateways.staking,
        GatewayStaking::bondOfCall {
            gateway: gw2,
            bonder: account2,
        },
    )
    .await
    .unwrap();
    assert_eq!(mine.active, U256::from(100), "the bond is home 2's own");
    // home 2's key cannot bond its tokens for home 1's gateway, nor home 1's for its own
    refused(
        custody::bond(&mut s, token, gateways.staking, &key2, gw1, U256::from(100)).await,
        "NotGatewayOwner",
    );
    assert!(!bonded(gw1).await);

    // the custodial accounts never sent a transaction: the service paid every gas
    for a in [account1, account2] {
        assert_eq!(chain.nonce(a).await.unwrap(), 0, "{a} sent a transaction");
    }
    let votes = view(chain, token, RewardToken::getVotesCall { account: account1 })
        .await
        .unwrap();
    (
        balance(chain, token, account1).await,
        balance(chain, token, account2).await,
        balance(chain, token, recipient).await,
        votes,
    )
}

#[tokio::test]
async fn a_custodial_accounts_tokens_move_only_with_its_own_key_and_it_needs_no_gas_on_both_chains() {
    let evm = EvmChain::in_memory(&[key().address()]);
    let on_evm = scenario(&evm, Wallet::new(key(), EVM_CHAIN_ID)).await;
    assert_eq!(
        on_evm,
        (U256::from(600), U256::from(900), U256::from(400), U256::from(600))
    );
    let Some(anvil) = Anvil::start(&[]) else { return };
    let anvil = anvil.unwrap();
    let rpc = RpcChain::new(&anvil.url, std::time::Duration::from_secs(10)).unwrap();
    let on_anvil = scenario(&rpc, Wallet::new(key(), rpc.chain_id().await.unwrap())).await;
    assert_eq!(on_evm, on_anvil, "identical outcomes on both chains");
}
