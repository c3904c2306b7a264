//! The service bonds the gateways of the homes it holds accounts for, from the homes' own reward
//! tokens, once the community has set a minimum bond (issue 20), on the in-process EVM and on
//! anvil: a home with enough tokens is bonded for exactly the shortfall, with a bond that is its
//! own; a home with too few tokens waits for its rewards; a home with a wallet of its own, one
//! whose recorded account this service holds no key for, and a gateway not on chain yet are left
//! alone; a gateway already bonded is not bonded again. The homes never send a transaction.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::collections::BTreeSet;
use std::str::FromStr;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use gridshare::slashing::bond_held;
use gridshare_domain::accounts::Custody;
use gridshare_domain::envelope::GatewayKey;
use gridshare_domain::{GatewayId, ParticipantId, Timestamp};
use gridshare_settlement::chain::{Chain, EVM_CHAIN_ID, EvmChain, RpcChain};
use gridshare_settlement::contracts::{GatewayStaking, RewardToken};
use gridshare_settlement::onchain::{Submitter, Wallet, view};
use gridshare_settlement::rewards::{self, Emission};
use gridshare_settlement::slashing::Mirror;
use gridshare_storage::Db;
use gridshare_storage::participants;
use gridshare_testkit::{ANVIL_KEY_0, Anvil};

const MIN_BOND: u64 = 100_000;

fn key() -> PrivateKeySigner {
    PrivateKeySigner::from_str(ANVIL_KEY_0).unwrap()
}

/// (gateways bonded by the first run, by the second, by the third after home 2's rewards came),
/// and home 1's own bond.
type Outcome = (Vec<GatewayId>, Vec<GatewayId>, Vec<GatewayId>, U256);

async fn scenario<C: Chain>(chain: &C, wallet: Wallet) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    let seed = Custody::from_bytes([3u8; 32]);
    let other = Custody::from_bytes([4u8; 32]);
    // homes 1 and 2 without a wallet, home 3 with its own, home 4 recorded with another seed's
    // account, home 5 not on chain yet
    for p in 1..=4u64 {
        common::home_with_gateway(&db, p, 10 + p, &GatewayKey::from_bytes(&[p as u8; 32]).unwrap()).await;
    }
    let mut home3 = participants::get(&db, ParticipantId(3)).await.unwrap();
    home3.evm_address = Some("0x00000000000000000000000000000000000a0a0a".into());
    participants::upsert(&db, &home3, Timestamp(0)).await.unwrap();
    let mut home4 = participants::get(&db, ParticipantId(4)).await.unwrap();
    home4.custody_address = Some(other.address_hex(ParticipantId(4)));
    participants::upsert(&db, &home4, Timestamp(0)).await.unwrap();
    participants::assign_custody(&db, |p| seed.address_hex(p))
        .await
        .unwrap();
    let account = |p: u64| Address::from(seed.address(ParticipantId(p)));

    let mut s = Submitter::new(chain, wallet.clone()).await.unwrap();
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
    let minter = view(chain, token, RewardToken::MINTER_ROLECall {}).await.unwrap();
    let me = s.address();
    s.send(
        token,
        RewardToken::grantRoleCall {
            role: minter,
            account: me,
        },
    )
    .await
    .unwrap();
    let mint = |to: Address, amount: u64| RewardToken::mintCall {
        to,
        amount: U256::from(amount),
    };
    // home 1 earned 250,000, home 2 only 40,000; homes 3 and 4's accounts hold plenty
    for (to, amount) in [
        (account(1), 250_000),
        (account(2), 40_000),
        (account(3), 500_000),
        (Address::from(other.address(ParticipantId(4))), 500_000),
    ] {
        s.send(token, mint(to, amount)).await.unwrap();
    }
    let gateways = gridshare_settlement::slashing::deploy(&mut s, token, MIN_BOND, 86_400)
        .await
        .unwrap();
    // the registry mirror puts homes 1 to 4's gateways on chain, each for its owner's account;
    // home 5's gateway is commissioned after that: not on chain yet
    Mirror::default()
        .commission_pending(&mut s, gateways.registry, &db, Timestamp(0))
        .await
        .unwrap();
    common::home_with_gateway(&db, 5, 15, &GatewayKey::from_bytes(&[5u8; 32]).unwrap()).await;
    participants::assign_custody(&db, |p| seed.address_hex(p))
        .await
        .unwrap();
    s.send(token, mint(account(5), 500_000)).await.unwrap();

    let none = BTreeSet::new();
    let first = bond_held(chain, &db, &wallet, gateways.staking, &seed, &none)
        .await
        .unwrap();
    let gw = |g: u64| Address::from(GatewayKey::from_bytes(&[g as u8; 32]).unwrap().public().address());
    let bonded = |gateway| async move {
        view(chain, gateways.staking, GatewayStaking::isBondedCall { gateway })
            .await
            .unwrap()
    };
    assert!(bonded(gw(1)).await);
    for g in 2..=5 {
        assert!(!bonded(gw(g)).await, "gateway of home {g}");
    }
    let own = view(
        chain,
        gateways.staking,
        GatewayStaking::bondOfCall {
            gateway: gw(1),
            bonder: account(1),
        },
    )
    .await
    .unwrap()
    .active;
    let balance = |a: Address| async move {
        view(chain, token, RewardToken::balanceOfCall { account: a })
            .await
            .unwrap()
    };
    assert_eq!(
        balance(account(1)).await,
        U256::from(150_000),
        "the shortfall, from home 1's tokens"
    );
    assert_eq!(balance(account(2)).await, U256::from(40_000), "home 2 keeps its tokens");
    // run again (the bonds not read since): nothing is bonded twice
    let second = bond_held(chain, &db, &wallet, gateways.staking, &seed, &none)
        .await
        .unwrap();
    // home 2's next rewards come: now it is bonded too
    s = Submitter::new(chain, wallet.clone()).await.unwrap();
    s.send(token, mint(account(2), 70_000)).await.unwrap();
    let third = bond_held(chain, &db, &wallet, gateways.staking, &seed, &none)
        .await
        .unwrap();
    assert!(bonded(gw(2)).await);
    assert_eq!(balance(account(2)).await, U256::from(10_000));
    // the homes never sent a transaction
    for p in [1, 2] {
        assert_eq!(chain.nonce(account(p)).await.unwrap(), 0);
    }
    (first, second, third, own)
}

#[tokio::test]
async fn the_service_bonds_the_gateways_of_the_homes_it_holds_from_their_own_rewards_on_both_chains() {
    let evm = EvmChain::in_memory(&[key().address()]);
    let on_evm = scenario(&evm, Wallet::new(key(), EVM_CHAIN_ID)).await;
    assert_eq!(
        on_evm,
        (vec![GatewayId(11)], vec![], vec![GatewayId(12)], U256::from(MIN_BOND))
    );
    let Some(anvil) = Anvil::start(&[]) else { return };
    let anvil = anvil.unwrap();
    let rpc = RpcChain::new(&anvil.url, std::time::Duration::from_secs(10)).unwrap();
    let on_anvil = scenario(&rpc, Wallet::new(key(), rpc.chain_id().await.unwrap())).await;
    assert_eq!(on_evm, on_anvil, "identical outcomes on both chains");
}
