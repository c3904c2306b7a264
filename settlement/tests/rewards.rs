//! Reward epochs on chain, on the in-process EVM and on anvil: each epoch's root goes up exactly
//! once even when the poster dies after signing, after broadcasting or before it records the
//! receipt; the minted supply is exactly the cumulative total; custodial claims pay each account
//! its cumulative total once; an epoch over its budget and a claim with a wrong proof are refused
//! with the contract's named error; both chains end with identical balances.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use gridshare_domain::{GatewayId, ParticipantId};
use gridshare_market::epoch::{self, GatewayInfo, Inputs, Params, Report, report};
use gridshare_settlement::chain::{Chain, EVM_CHAIN_ID, EvmChain, RpcChain};
use gridshare_settlement::contracts::{RewardDistributor, RewardToken};
use gridshare_settlement::onchain::{SubmitError, Submitter, Wallet, view};
use gridshare_settlement::queue::CrashPoint;
use gridshare_settlement::rewards::{self, Emission, Poster, RewardContracts, RewardsError, claim_batches, claim_for};
use gridshare_storage::Db;
use gridshare_storage::epochs as stored;
use gridshare_testkit::{ANVIL_KEY_0, Anvil};

const EMISSION: Emission = Emission {
    cap: 1_000_000_000,
    initial_budget: 50_000_000,
    halving_epochs: 2,
};

fn params() -> Params {
    Params {
        epoch_ms: 3_600_000,
        initial_budget: EMISSION.initial_budget,
        halving_epochs: EMISSION.halving_epochs,
        cap: EMISSION.cap,
        ..Params::defaults(1_767_225_600_000)
    }
}

fn account(p: u64) -> String {
    report::hex20(&common::custody().address(ParticipantId(p)))
}

/// Epoch `n`'s inputs: 20 homes selling and exporting `n × 100 + home` Wh in its first interval.
fn inputs(n: u64, previous: &BTreeMap<String, u64>) -> Inputs {
    let (start, _) = params().span(n);
    let mut i = Inputs {
        previous: previous.clone(),
        ..Inputs::default()
    };
    for h in 1..=20u64 {
        let (p, g) = (ParticipantId(h), GatewayId(100 + h));
        i.gateways.push(GatewayInfo {
            id: g,
            owner: p,
            bonded: true,
        });
        i.accounts.insert(p, account(h));
        let wh = (n * 100 + h) as i64;
        i.sold.push((p, start, wh));
        i.exported.push((g, start, wh + 5));
    }
    i
}

async fn store(db: &Db, r: &Report) {
    let row = gridshare_market::epoch::collect::stored(r, r.end_ms);
    stored::insert(db, &row, &r.canonical_json(), &[]).await.unwrap();
}

fn leaves(r: &Report) -> Vec<(Address, u64)> {
    r.accounts
        .iter()
        .map(|a| (Address::from(report::parse_address(&a.account).unwrap()), a.cumulative))
        .collect()
}

async fn balance<C: Chain>(chain: &C, token: Address, who: Address) -> U256 {
    view(chain, token, RewardToken::balanceOfCall { account: who })
        .await
        .unwrap()
}

/// The whole scenario on `chain`; returns every account's balance at the end.
async fn scenario<C: Chain>(chain: &C, wallet: Wallet) -> Vec<U256> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    let mut s = Submitter::new(chain, wallet.clone()).await.unwrap();
    let RewardContracts { token, distributor } = rewards::deploy(&mut s, EMISSION).await.unwrap();
    let last = || async {
        view(chain, distributor, RewardDistributor::lastEpochCall {})
            .await
            .unwrap()
    };

    // three epochs, the poster dying at a different step of each
    let mut previous = BTreeMap::new();
    let mut reports = Vec::new();
    for (n, crash) in [
        (1u64, CrashPoint::AfterSign),
        (2, CrashPoint::AfterBroadcast),
        (3, CrashPoint::BeforeConfirmation),
    ] {
        let r = epoch::compute(n, &params(), &inputs(n, &previous));
        report::verify(&r).unwrap();
        store(&db, &r).await;
        let mut dying = Poster::new(chain, &db, wallet.clone(), distributor);
        dying.crash_at = Some(crash);
        assert!(matches!(dying.post_pending().await, Err(RewardsError::Crashed(c)) if c == crash));
        let posted = Poster::new(chain, &db, wallet.clone(), distributor)
            .post_pending()
            .await
            .unwrap();
        assert_eq!(
            posted,
            vec![n],
            "after a crash {crash:?} epoch {n} is posted by the next run"
        );
        assert_eq!(last().await, n);
        let root = view(chain, distributor, RewardDistributor::rootOfCall { epoch: n })
            .await
            .unwrap();
        assert_eq!(root, r.root.parse::<B256>().unwrap());
        let hash = view(chain, distributor, RewardDistributor::reportHashOfCall { epoch: n })
            .await
            .unwrap();
        assert_eq!(hash, B256::from(r.hash()));
        let supply = view(chain, token, RewardToken::totalSupplyCall {}).await.unwrap();
        assert_eq!(supply, U256::from(r.cumulative_total), "minted exactly once per epoch");
        let row = stored::list(&db, 1).await.unwrap().remove(0);
        assert!(row.posted_tx.as_deref().is_some_and(|t| t.starts_with("0x")), "{row:?}");
        // nothing left to post: a further run sends nothing
        assert!(
            Poster::new(chain, &db, wallet.clone(), distributor)
                .post_pending()
                .await
                .unwrap()
                .is_empty()
        );
        previous = r.accounts.iter().map(|a| (a.account.clone(), a.cumulative)).collect();
        reports.push(r);
    }

    // custodial claims against the latest root: each account gets its cumulative total, once
    let r3 = reports.last().unwrap();
    let held: BTreeSet<Address> = leaves(r3).into_iter().map(|(a, _)| a).collect();
    let mut s = Submitter::new(chain, wallet.clone()).await.unwrap();
    assert_eq!(claim_for(&mut s, distributor, &leaves(r3), &held, 7).await.unwrap(), 20);
    for (a, cumulative) in leaves(r3) {
        assert_eq!(balance(chain, token, a).await, U256::from(cumulative));
    }
    assert_eq!(
        claim_for(&mut s, distributor, &leaves(r3), &held, 7).await.unwrap(),
        0,
        "nothing twice"
    );

    // a claim batch with one total raised is refused whole, with the contract's error
    let mut forged = leaves(r3);
    forged[3].1 += 1_000;
    let b = claim_batches(&forged, &[2, 3, 4], 10).remove(0);
    let e = s
        .send(
            distributor,
            RewardDistributor::claimManyCall {
                accounts: b.accounts,
                cumulatives: b.cumulatives,
                proof: b.proof,
                proofFlags: b.flags,
            },
        )
        .await
        .unwrap_err();
    let named = match &e {
        SubmitError::Reverted { reason, .. } | SubmitError::CallReverted(reason) => {
            reason.contains("InvalidMultiproof")
        }
        _ => false,
    };
    assert!(named, "{e}");

    // an epoch paying more than the chain's budget for it is refused by name, and stays unposted
    let greedy = Params {
        initial_budget: EMISSION.initial_budget * 1000,
        local_renewable_per_kwh: 1_000_000_000,
        ..params()
    };
    let r4 = epoch::compute(4, &greedy, &inputs(4, &previous));
    assert!(r4.paid > EMISSION.initial_budget / 4);
    store(&db, &r4).await;
    let e = Poster::new(chain, &db, wallet.clone(), distributor)
        .post_pending()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RewardsError::Refused { epoch: 4, reason } if reason.contains("OverBudget")),
        "{e}"
    );
    assert_eq!(last().await, 3);

    let mut out = Vec::new();
    for (a, _) in leaves(r3) {
        out.push(balance(chain, token, a).await);
    }
    out
}

fn key() -> PrivateKeySigner {
    PrivateKeySigner::from_str(ANVIL_KEY_0).unwrap()
}

#[tokio::test]
async fn epochs_are_posted_once_and_claimed_once_on_both_chains() {
    let evm = EvmChain::in_memory(&[key().address()]);
    let on_evm = scenario(&evm, Wallet::new(key(), EVM_CHAIN_ID)).await;
    let Some(anvil) = Anvil::start(&[]) else { return };
    let anvil = anvil.unwrap();
    let rpc = RpcChain::new(&anvil.url, std::time::Duration::from_secs(10)).unwrap();
    let on_anvil = scenario(&rpc, Wallet::new(key(), rpc.chain_id().await.unwrap())).await;
    assert_eq!(on_evm, on_anvil, "identical balances on both chains");
    assert!(on_evm.iter().all(|b| *b > U256::ZERO));
}
