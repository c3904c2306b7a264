//! Slashing for equivocation on chain, on the in-process EVM and on anvil: the market's gateways
//! are mirrored into the registry, a stored proof (two different envelopes a gateway signed with
//! one sequence number) is taken to `GatewayStaking.slashEquivocation` exactly once even when the
//! slasher dies after signing, after broadcasting or before it records the receipt; the bond is
//! burnt (90 %) and the reporter paid (10 %), the key revoked. A tampered proof (the second
//! envelope signed by another key: someone trying to frame a neighbour) is refused by the
//! contract with its named error, stored as refused, and the framed gateway keeps its bond.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::str::FromStr;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use gridshare_domain::envelope::{Equivocation, GatewayKey, ReplayWindow, SignedEnvelope};
use gridshare_domain::wire::{Message, Presence};
use gridshare_domain::{GatewayId, NodeId, ParticipantId, Timestamp};
use gridshare_settlement::chain::{Chain, EVM_CHAIN_ID, EvmChain, RpcChain};
use gridshare_settlement::contracts::{GatewayRegistry, GatewayStaking, RewardToken};
use gridshare_settlement::onchain::{Submitter, Wallet, view};
use gridshare_settlement::queue::CrashPoint;
use gridshare_settlement::rewards::{self, Emission};
use gridshare_settlement::slashing::{self, Mirror, Slasher, SlashingError};
use gridshare_storage::gateways::{self, Gateway};
use gridshare_storage::participants::{self, Participant};
use gridshare_storage::{Db, evidence};
use gridshare_testkit::{ANVIL_KEY_0, Anvil};

const NOW: Timestamp = Timestamp(1_767_225_600_000);
const BOND: u64 = 5_000_000;

fn gateway_key(n: u8) -> GatewayKey {
    GatewayKey::from_bytes(&[n; 32]).unwrap()
}

/// An envelope of gateway `g` signed by `key` with sequence `seq`: a presence (any message
/// serves: the contract checks signatures, not content) sealed at `NOW + at`.
fn envelope(key: &GatewayKey, g: u64, seq: u64, at: i64) -> (SignedEnvelope, String) {
    let env = key
        .seal(
            GatewayId(g),
            seq,
            Timestamp(NOW.0 + at),
            &Message::Status(Presence { online: at % 2 == 0 }),
        )
        .unwrap();
    let json = serde_json::to_string(&env).unwrap();
    (env, json)
}

async fn home(db: &Db, n: u64, key: &GatewayKey) {
    let p = Participant {
        id: ParticipantId(n),
        name: format!("home {n}"),
        role: "homeowner".into(),
        evm_address: None,
        feeder_node: Some(n as u32),
        custody_address: common::custody_address(n),
    };
    participants::upsert(db, &p, NOW).await.unwrap();
    let g = Gateway {
        id: GatewayId(n),
        owner: p.id,
        installer: None,
        public_key: key.public(),
        feeder_node: NodeId(n as u32),
        window: ReplayWindow::default(),
        revoked_at: None,
    };
    gateways::register(db, &g, NOW).await.unwrap();
}

/// Stores the proof of `first` and `second` (as the intake does); returns its evidence key.
async fn accuse(db: &Db, first: (SignedEnvelope, String), second: (SignedEnvelope, String)) -> String {
    let proof = Equivocation::of(first.0.clone(), second.0.clone()).expect("a pair that differs");
    let evidence = proof.evidence_hex();
    evidence::record(db, first.0.gateway, first.0.seq, &evidence, &first.1, &second.1, NOW)
        .await
        .unwrap();
    evidence
}

async fn bonded<C: Chain>(chain: &C, staking: Address, key: &GatewayKey) -> U256 {
    view(
        chain,
        staking,
        GatewayStaking::activeBondCall {
            gateway: Address::from(key.public().address()),
        },
    )
    .await
    .unwrap()
}

/// Mints `amount` to the submitter's account (granting it the minter role) and lets `staking`
/// take it, for bonding.
async fn fund<C: Chain>(s: &mut Submitter<'_, C>, token: Address, staking: Address, amount: u64) {
    common::mint_to_self(s, token, amount).await;
    s.send(
        token,
        RewardToken::approveCall {
            spender: staking,
            value: U256::from(amount),
        },
    )
    .await
    .unwrap();
}

/// The whole scenario on `chain`; returns (supply, reporter's balance, framed gateway's bond).
async fn scenario<C: Chain>(chain: &C, wallet: Wallet) -> (U256, U256, U256) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    let (liar, honest, stranger) = (gateway_key(7), gateway_key(8), gateway_key(9));
    home(&db, 1, &liar).await;
    home(&db, 2, &honest).await;

    let mut s = Submitter::new(chain, wallet.clone()).await.unwrap();
    let me = s.address();
    let (token, contracts) = deploy(&mut s, 0).await;

    // both gateways are commissioned (once: a second run finds them on chain) and marked so for
    // the intake, then bonded
    assert!(
        gateways::on_chain(&db).await.unwrap().is_empty(),
        "nothing is on chain yet"
    );
    let mut mirror = Mirror::default();
    assert_eq!(
        mirror
            .commission_pending(&mut s, contracts.registry, &db, NOW)
            .await
            .unwrap(),
        2
    );
    assert_eq!(gateways::on_chain(&db).await.unwrap().len(), 2);
    assert_eq!(
        Mirror::default()
            .commission_pending(&mut s, contracts.registry, &db, NOW)
            .await
            .unwrap(),
        0
    );
    let record = view(
        chain,
        contracts.registry,
        GatewayRegistry::gatewayCall {
            gatewayKey: Address::from(liar.public().address()),
        },
    )
    .await
    .unwrap();
    assert_eq!(record.owner, Address::from(common::custody().address(ParticipantId(1))));
    fund(&mut s, token, contracts.staking, 2 * BOND).await;
    for k in [&liar, &honest] {
        let gateway = Address::from(k.public().address());
        s.send(
            contracts.staking,
            GatewayStaking::bondCall {
                gateway,
                amount: U256::from(BOND),
            },
        )
        .await
        .unwrap();
    }

    // a framing attempt: the honest gateway's envelope against one the stranger signed
    let framed = accuse(&db, envelope(&honest, 2, 5, 0), envelope(&stranger, 2, 5, 1)).await;
    // the liar's real equivocation
    let proof = accuse(&db, envelope(&liar, 1, 42, 0), envelope(&liar, 1, 42, 1)).await;

    // the slasher dies at each step in turn; the next run finishes, and nothing happens twice
    for crash in [
        CrashPoint::AfterSign,
        CrashPoint::AfterBroadcast,
        CrashPoint::BeforeConfirmation,
    ] {
        let pending: Vec<String> = evidence::unslashed(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.evidence)
            .collect();
        if pending.is_empty() {
            break;
        }
        let mut dying = Slasher::new(chain, &db, wallet.clone(), contracts.staking);
        dying.crash_at = Some(crash);
        let _ = dying.slash_pending().await;
    }
    let mut slasher = Slasher::new(chain, &db, wallet.clone(), contracts.staking);
    slasher.slash_pending().await.unwrap();
    assert!(
        slasher.slash_pending().await.unwrap().is_empty(),
        "nothing left to send"
    );

    let stored = evidence::list(&db, None, 10).await.unwrap();
    let of = |e: &str| stored.iter().find(|p| p.evidence == e).unwrap().clone();
    let framed_row = of(&framed);
    assert!(framed_row.slashed_tx.is_none());
    assert!(
        framed_row.slash_error.as_deref().unwrap().contains("DifferentSigners"),
        "{framed_row:?}"
    );
    assert!(of(&proof).slashed_tx.is_some());

    let used = view(
        chain,
        contracts.staking,
        GatewayStaking::evidenceUsedCall {
            evidence: proof.parse().unwrap(),
        },
    )
    .await
    .unwrap();
    assert!(used);
    let active = |k: &GatewayKey| {
        let key = Address::from(k.public().address());
        async move {
            view(
                chain,
                contracts.registry,
                GatewayRegistry::isActiveCall { gatewayKey: key },
            )
            .await
            .unwrap()
        }
    };
    assert!(!active(&liar).await, "the liar is revoked on chain");
    assert!(active(&honest).await, "the framed gateway is not");
    assert_eq!(
        bonded(chain, contracts.staking, &liar).await,
        U256::ZERO,
        "the whole bond is taken"
    );
    let supply = view(chain, token, RewardToken::totalSupplyCall {}).await.unwrap();
    let reporter = view(chain, token, RewardToken::balanceOfCall { account: me })
        .await
        .unwrap();
    // minted 2 × BOND; the liar's BOND: 90 % burnt, 10 % to the reporter
    assert_eq!(supply, U256::from(2 * BOND - BOND * 9 / 10));
    assert_eq!(reporter, U256::from(BOND / 10));

    // a presence pair is never sent: the domain refuses to call it a proof
    let a = envelope(&honest, 2, Presence::ONLINE_SEQ, 0).0;
    let b = envelope(&honest, 2, Presence::ONLINE_SEQ, 2).0;
    assert!(Equivocation::of(a, b).is_none());
    // a stored proof whose envelope is not JSON names itself
    evidence::record(&db, GatewayId(2), 6, "0x01", "not json", "{}", NOW)
        .await
        .unwrap();
    let err = Slasher::new(chain, &db, wallet.clone(), contracts.staking)
        .slash_pending()
        .await
        .unwrap_err();
    assert!(
        matches!(err, SlashingError::Corrupt { ref evidence, .. } if evidence == "0x01"),
        "{err}"
    );

    (supply, reporter, bonded(chain, contracts.staking, &honest).await)
}

/// The reward token and the gateway contracts (registry and staking, with `min_bond` and a day's
/// cool-down), deployed from the submitter's account.
async fn deploy<C: Chain>(s: &mut Submitter<'_, C>, min_bond: u64) -> (Address, slashing::GatewayContracts) {
    let emission = Emission {
        cap: 1_000_000_000,
        initial_budget: 50_000_000,
        halving_epochs: 2,
    };
    let token = rewards::deploy(s, emission).await.unwrap().token;
    (token, slashing::deploy(s, token, min_bond, 86_400).await.unwrap())
}

fn key() -> PrivateKeySigner {
    PrivateKeySigner::from_str(ANVIL_KEY_0).unwrap()
}

#[tokio::test]
async fn an_equivocating_gateway_is_slashed_once_and_a_framed_one_is_not_on_both_chains() {
    let evm = EvmChain::in_memory(&[key().address()]);
    let on_evm = scenario(&evm, Wallet::new(key(), EVM_CHAIN_ID)).await;
    assert_eq!(on_evm.2, U256::from(BOND), "the framed gateway keeps its bond");
    let Some(anvil) = Anvil::start(&[]) else { return };
    let anvil = anvil.unwrap();
    let rpc = RpcChain::new(&anvil.url, std::time::Duration::from_secs(10)).unwrap();
    let on_anvil = scenario(&rpc, Wallet::new(key(), rpc.chain_id().await.unwrap())).await;
    assert_eq!(on_evm, on_anvil, "identical outcomes on both chains");
}

/// Bonds and revocations as the service reads them from chain: with a minimum bond, only a
/// gateway bonded for at least the minimum counts as bonded (a smaller first bond is refused).
/// Revocations cross between the market and the registry, the chain being the authority: a
/// gateway its installer revokes on chain is revoked in the market (which then refuses it); one
/// revoked in the market is revoked on chain; one with a proof pending is left to the slash; a
/// second run finds nothing to do.
async fn revocations<C: Chain>(chain: &C, wallet: Wallet) -> Vec<bool> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    let keys: Vec<GatewayKey> = (1..=4).map(gateway_key).collect();
    for (n, k) in keys.iter().enumerate() {
        home(&db, n as u64 + 1, k).await;
    }
    let mut s = Submitter::new(chain, wallet.clone()).await.unwrap();
    let (token, contracts) = deploy(&mut s, BOND).await;
    let mut mirror = Mirror::default();
    assert_eq!(
        mirror
            .commission_pending(&mut s, contracts.registry, &db, NOW)
            .await
            .unwrap(),
        4
    );
    let key_of = |k: &GatewayKey| Address::from(k.public().address());

    // with a minimum bond, only the gateway bonded for (4) counts as bonded; 3 has half of it
    fund(&mut s, token, contracts.staking, 2 * BOND).await;
    s.send(
        contracts.staking,
        GatewayStaking::bondCall {
            gateway: key_of(&keys[3]),
            amount: U256::from(BOND),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        slashing::bonded(chain, contracts.staking, &db).await.unwrap(),
        Some([GatewayId(4)].into_iter().collect()),
        "only the gateway bonded for"
    );
    let refused = s
        .send(
            contracts.staking,
            GatewayStaking::bondCall {
                gateway: key_of(&keys[2]),
                amount: U256::from(BOND / 2),
            },
        )
        .await;
    assert!(refused.is_err(), "a first bond below the minimum is refused");
    assert_eq!(
        slashing::bonded(chain, contracts.staking, &db).await.unwrap(),
        Some([GatewayId(4)].into_iter().collect())
    );

    // gateway 1 revoked on chain by its installer (the service's account, which commissioned it)
    s.send(
        contracts.registry,
        GatewayRegistry::revokeCall {
            gatewayKey: key_of(&keys[0]),
        },
    )
    .await
    .unwrap();
    // gateway 2 revoked in the market; gateway 3 too, by the proof of its equivocation the
    // intake stored (which revokes it), still to take on chain
    gateways::revoke(&db, GatewayId(2), NOW).await.unwrap();
    accuse(&db, envelope(&keys[2], 3, 9, 0), envelope(&keys[2], 3, 9, 1)).await;

    let later = Timestamp(NOW.0 + 60_000);
    let done = mirror
        .sync_revocations(&mut s, contracts.registry, &db, later)
        .await
        .unwrap();
    assert_eq!(done.from_chain, vec![GatewayId(1)]);
    assert_eq!(done.to_chain, vec![GatewayId(2)]);
    let active: Vec<GatewayId> = gateways::active(&db).await.unwrap().iter().map(|g| g.id).collect();
    assert_eq!(active, vec![GatewayId(4)], "the market refuses gateway 1 now");
    let g1 = gateways::all(&db)
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.id == GatewayId(1))
        .unwrap();
    assert_eq!(g1.revoked_at, Some(later));
    let again = Mirror::default()
        .sync_revocations(&mut s, contracts.registry, &db, later)
        .await
        .unwrap();
    assert_eq!(again, Default::default(), "nothing left to carry across");
    let mut on_chain = Vec::new();
    for k in &keys {
        on_chain.push(
            view(
                chain,
                contracts.registry,
                GatewayRegistry::isActiveCall { gatewayKey: key_of(k) },
            )
            .await
            .unwrap(),
        );
    }
    // 1 and 2 revoked; 3 still active on chain, for the slash to revoke; 4 active
    assert_eq!(on_chain, vec![false, false, true, true]);
    on_chain
}

#[tokio::test]
async fn revocations_cross_between_market_and_registry_on_both_chains() {
    let evm = EvmChain::in_memory(&[key().address()]);
    let on_evm = revocations(&evm, Wallet::new(key(), EVM_CHAIN_ID)).await;
    let Some(anvil) = Anvil::start(&[]) else { return };
    let anvil = anvil.unwrap();
    let rpc = RpcChain::new(&anvil.url, std::time::Duration::from_secs(10)).unwrap();
    let on_anvil = revocations(&rpc, Wallet::new(key(), rpc.chain_id().await.unwrap())).await;
    assert_eq!(on_evm, on_anvil);
}

/// anvil's second well-known account (funded there; funded here on the in-process chain too).
const OTHER_INSTALLER_KEY: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

/// Another installer registers home 1's gateway key on chain for someone else before the
/// market's mirror gets to it: the market revokes that gateway (the chain is the authority, and
/// that installer could revoke the key there at will) and says which. Home 2's key, registered by
/// the service itself for another address (as after a homeowner set their own address), stays.
async fn taken<C: Chain>(chain: &C, wallet: Wallet, other: Wallet) -> (Vec<GatewayId>, Vec<bool>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    let keys: Vec<GatewayKey> = (1..=2).map(gateway_key).collect();
    for (n, k) in keys.iter().enumerate() {
        home(&db, n as u64 + 1, k).await;
    }
    let mut s = Submitter::new(chain, wallet).await.unwrap();
    let (_, contracts) = deploy(&mut s, 0).await;
    let installer = view(chain, contracts.registry, GatewayRegistry::INSTALLER_ROLECall {})
        .await
        .unwrap();
    let mut o = Submitter::new(chain, other).await.unwrap();
    s.send(
        contracts.registry,
        GatewayRegistry::grantRoleCall {
            role: installer,
            account: o.address(),
        },
    )
    .await
    .unwrap();
    let stranger = Address::repeat_byte(0x5a);
    let commission = |k: &GatewayKey| GatewayRegistry::commissionCall {
        gatewayKey: Address::from(k.public().address()),
        owner: stranger,
        site: Default::default(),
    };
    o.send(contracts.registry, commission(&keys[0])).await.unwrap();
    s.send(contracts.registry, commission(&keys[1])).await.unwrap();

    let mut mirror = Mirror::default();
    let commissioned = mirror
        .commission_pending(&mut s, contracts.registry, &db, NOW)
        .await
        .unwrap();
    assert_eq!(commissioned, 0, "both keys were on chain already");
    let revoked: Vec<bool> = gateways::all(&db)
        .await
        .unwrap()
        .iter()
        .map(|g| g.revoked_at.is_some())
        .collect();
    assert_eq!(revoked, [true, false], "only the key another installer registered");
    // the key another installer took is not the market's on chain: never marked as there
    let on: Vec<u64> = gateways::on_chain(&db).await.unwrap().iter().map(|g| g.0).collect();
    assert_eq!(on, [2], "only the service's own registration counts for the intake");
    let mut again = Mirror::default();
    again
        .commission_pending(&mut s, contracts.registry, &db, NOW)
        .await
        .unwrap();
    assert!(
        again.taken.is_empty(),
        "a second run finds nothing new: {:?}",
        again.taken
    );
    (mirror.taken, revoked)
}

#[tokio::test]
async fn a_key_another_installer_registered_for_someone_else_is_revoked_in_the_market_on_both_chains() {
    let other = PrivateKeySigner::from_str(OTHER_INSTALLER_KEY).unwrap();
    let evm = EvmChain::in_memory(&[key().address(), other.address()]);
    let on_evm = taken(
        &evm,
        Wallet::new(key(), EVM_CHAIN_ID),
        Wallet::new(other.clone(), EVM_CHAIN_ID),
    )
    .await;
    assert_eq!(on_evm.0, [GatewayId(1)]);
    let Some(anvil) = Anvil::start(&[]) else { return };
    let anvil = anvil.unwrap();
    let rpc = RpcChain::new(&anvil.url, std::time::Duration::from_secs(10)).unwrap();
    let id = rpc.chain_id().await.unwrap();
    let on_anvil = taken(&rpc, Wallet::new(key(), id), Wallet::new(other, id)).await;
    assert_eq!(on_evm, on_anvil, "identical outcomes on both chains");
}
