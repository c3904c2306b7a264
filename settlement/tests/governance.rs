//! Governance of the parameters on chain, on the in-process EVM and on anvil (time moved on by
//! blocks on the first, by `evm_increaseTime` on the second): a proposal changing the per-hop
//! grid fee goes propose → vote → queue → execute and the parameters change, once, at execution;
//! a proposal setting a value outside its bounds passes the vote but fails at execution with the
//! contract's named error and changes nothing; nobody — the deploying service included — can set
//! a parameter outside a proposal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::future::Future;
use std::str::FromStr;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use gridshare_settlement::chain::{Chain, EVM_CHAIN_ID, EvmChain, RpcChain};
use gridshare_settlement::contracts::{GridParameters, RewardToken};
use gridshare_settlement::governance::{self, Params, Proposal, Settings, Support};
use gridshare_settlement::onchain::{SubmitError, Submitter, Wallet};
use gridshare_settlement::rewards::{self, Emission};
use gridshare_testkit::{ANVIL_KEY_0, Anvil};

const SETTINGS: Settings = Settings {
    voting_delay_s: 1,
    voting_period_s: 60,
    timelock_delay_s: 60,
    proposal_threshold: 0,
    quorum_percent: 4,
};

fn params(fee_per_hop: u64) -> Params {
    let u = U256::from;
    Params {
        feePerHop: u(fee_per_hop),
        networkFee: u(0),
        importTariff: u(300_000),
        exportTariff: u(80_000),
        rewardGeneration: u(100_000),
        rewardDemandResponse: u(200_000),
        rewardUptime: u(1_000_000),
        epochInitialBudget: u(50_000_000),
        halvingEpochs: u(365),
        uptimeThresholdBps: u(9_500),
        minBond: u(0),
        unbondingCooldown: u(604_800),
        slashBurnBps: u(9_000),
        slashReporterBps: u(1_000),
        redemptionRate: u(0),
        redemptionBudget: u(0),
    }
}

fn maximum() -> Params {
    let mut m = params(10_000);
    let big = U256::from(u64::MAX);
    m.networkFee = U256::from(10_000);
    m.importTariff = big;
    m.exportTariff = big;
    m.rewardGeneration = big;
    m.rewardDemandResponse = big;
    m.rewardUptime = big;
    m.epochInitialBudget = big;
    m.halvingEpochs = big;
    m.uptimeThresholdBps = U256::from(10_000);
    m.minBond = big;
    m.unbondingCooldown = big;
    m.slashBurnBps = U256::from(10_000);
    m.slashReporterBps = U256::from(10_000);
    m.redemptionRate = big;
    m.redemptionBudget = big;
    m
}

fn minimum() -> Params {
    let mut m = params(0);
    let zero = U256::ZERO;
    (
        m.importTariff,
        m.exportTariff,
        m.rewardGeneration,
        m.rewardDemandResponse,
        m.rewardUptime,
    ) = (zero, zero, zero, zero, zero);
    (
        m.epochInitialBudget,
        m.halvingEpochs,
        m.uptimeThresholdBps,
        m.unbondingCooldown,
    ) = (zero, U256::from(1), zero, zero);
    (m.slashBurnBps, m.slashReporterBps) = (zero, zero);
    m
}

async fn fee<C: Chain>(chain: &C, parameters: Address) -> (u64, U256) {
    let (version, p) = governance::read(chain, parameters).await.unwrap();
    (version, p.feePerHop)
}

/// Drives `proposal` from proposal to execution; returns the error of the execution, if any.
async fn through<C: Chain, F: Future<Output = ()>>(
    s: &mut Submitter<'_, C>,
    governor: Address,
    proposal: &Proposal,
    advance: &impl Fn(u64) -> F,
) -> Result<(), SubmitError> {
    let id = proposal.propose(s, governor).await.unwrap();
    // pending until the voting delay passes (on the in-process chain a view already sees the
    // next block, 12 s later, so the vote may be open at once)
    assert!(governance::state(s.chain(), governor, id).await.unwrap() <= 1);
    advance(SETTINGS.voting_delay_s + 1).await;
    assert_eq!(governance::state(s.chain(), governor, id).await.unwrap(), 1, "active");
    governance::vote(s, governor, id, Support::For).await.unwrap();
    advance(SETTINGS.voting_period_s + 1).await;
    assert_eq!(
        governance::state(s.chain(), governor, id).await.unwrap(),
        4,
        "succeeded"
    );
    proposal.queue(s, governor).await.unwrap();
    assert_eq!(governance::state(s.chain(), governor, id).await.unwrap(), 5, "queued");
    // too early: the timelock's delay is not over
    assert!(proposal.execute(s, governor).await.is_err());
    advance(SETTINGS.timelock_delay_s + 1).await;
    proposal.execute(s, governor).await
}

/// The scenario on `chain`, `advance(seconds)` moving its clock on.
async fn scenario<C: Chain, F: Future<Output = ()>>(chain: &C, wallet: Wallet, advance: impl Fn(u64) -> F) -> Vec<u64> {
    let mut s = Submitter::new(chain, wallet.clone()).await.unwrap();
    let me = s.address();
    let emission = Emission {
        cap: 1_000_000_000_000,
        initial_budget: 50_000_000,
        halving_epochs: 2,
    };
    let token = rewards::deploy(&mut s, emission).await.unwrap().token;
    // votes: the service's account holds and delegates some (in the network: homes' rewards)
    common::mint_to_self(&mut s, token, 1_000_000_000).await;
    s.send(token, RewardToken::delegateCall { delegatee: me })
        .await
        .unwrap();
    let g = governance::deploy(
        &mut s,
        token,
        Address::ZERO,
        SETTINGS,
        params(1_000),
        minimum(),
        maximum(),
    )
    .await
    .unwrap();
    assert_eq!(fee(chain, g.parameters).await, (0, U256::from(1_000)));

    // nobody sets a parameter directly, not even the account that deployed it all
    let direct = s
        .send(
            g.parameters,
            GridParameters::setCall {
                key: governance::key("feePerHop"),
                value: U256::from(5),
            },
        )
        .await;
    assert!(direct.is_err(), "{direct:?}");

    let raise = Proposal {
        parameters: g.parameters,
        changes: vec![(governance::key("feePerHop"), U256::from(2_000))],
        description: "Raise the per-hop grid fee to 0.002 per kWh".into(),
    };
    advance(1).await; // the delegation is in the past for the snapshot
    through(&mut s, g.governor, &raise, &advance).await.unwrap();
    assert_eq!(fee(chain, g.parameters).await, (1, U256::from(2_000)));

    // out of bounds: passes the vote, fails at execution with the named error, changes nothing
    let too_high = Proposal {
        parameters: g.parameters,
        changes: vec![(governance::key("feePerHop"), U256::from(10_001))],
        description: "Raise the per-hop grid fee above its bound".into(),
    };
    let err = through(&mut s, g.governor, &too_high, &advance).await.unwrap_err();
    assert!(
        err.to_string().contains("OutOfBounds") || format!("{err:?}").contains("OutOfBounds"),
        "{err}"
    );
    assert_eq!(fee(chain, g.parameters).await, (1, U256::from(2_000)));
    let id = too_high.id(chain, g.governor).await.unwrap();
    assert_eq!(
        governance::state(chain, g.governor, id).await.unwrap(),
        5,
        "still queued"
    );

    let (version, p) = governance::read(chain, g.parameters).await.unwrap();
    vec![version, p.feePerHop.to::<u64>(), p.networkFee.to::<u64>()]
}

fn key() -> PrivateKeySigner {
    PrivateKeySigner::from_str(ANVIL_KEY_0).unwrap()
}

#[tokio::test]
async fn a_fee_change_goes_through_proposal_vote_queue_and_execution_on_both_chains() {
    // the in-process chain makes a block of 12 s per transaction: a second account moves time on
    // with transactions of its own (so the scenario's account keeps its nonces)
    let ticker = PrivateKeySigner::from_bytes(&[7u8; 32].into()).unwrap();
    let evm = EvmChain::in_memory(&[key().address(), ticker.address()]);
    let wallet = Wallet::new(key(), EVM_CHAIN_ID);
    let on_evm = {
        let evm = &evm;
        let ticker = Wallet::new(ticker, EVM_CHAIN_ID);
        scenario(evm, wallet.clone(), move |seconds: u64| {
            let ticker = ticker.clone();
            async move {
                let mut s = Submitter::new(evm, ticker).await.unwrap();
                let me = s.address();
                for _ in 0..seconds.div_ceil(12) {
                    s.send(
                        me,
                        RewardToken::transferCall {
                            to: me,
                            value: U256::ZERO,
                        },
                    )
                    .await
                    .ok();
                }
            }
        })
        .await
    };
    assert_eq!(on_evm, vec![1, 2_000, 0]);
    let Some(anvil) = Anvil::start(&[]) else { return };
    let anvil = anvil.unwrap();
    let rpc = RpcChain::new(&anvil.url, std::time::Duration::from_secs(10)).unwrap();
    let wallet = Wallet::new(key(), rpc.chain_id().await.unwrap());
    let anvil = &anvil;
    let on_anvil = scenario(&rpc, wallet, move |seconds: u64| async move {
        anvil.increase_time(seconds).unwrap();
    })
    .await;
    assert_eq!(on_evm, on_anvil, "the same outcome on both chains");
}
