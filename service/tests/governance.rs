//! Governance reaching the market (issue 22), on the in-process EVM and on anvil: the service
//! deploys the parameters from its configuration (version 0: the feeder tree's configured fees
//! keep applying), a proposal to change the per-hop grid fee goes propose → vote → queue →
//! execute, the service's governance step reads the new version, stores it and hands the fees to
//! the market; the book opened before the execution charges the old fee, the first book opened
//! after it the new one. A step that runs again changes nothing. A proposal that raises the
//! minimum bond raises the staking contract's in the same execution.
//!
//! A proposal made through the service passes on the votes of homes without a wallet: each asks
//! the service to vote (as `POST /api/v1/governance/proposals/{id}/votes` stores it) and the
//! service casts a ballot signed by the home's custodial account, once the vote opens, with the
//! home's delegated tokens as its weight. A participant with a wallet of their own, one whose
//! recorded account this service holds no key for and one who asks after the vote closed are
//! refused, saying why; a ballot sent again, or signed by a neighbour for another account, is
//! refused by the governor.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::future::Future;
use std::str::FromStr;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use gridshare::config::Config;
use gridshare::governance::{GovernanceStep, initial, settings};
use gridshare_domain::accounts::Custody;
use gridshare_domain::{
    DeliveryInterval, IntervalLength, MicroPerKwh, NodeId, OrderMode, ParticipantId, Side, TimeInForce, Timestamp, Wh,
    ZoneId,
};
use gridshare_market::{Clock, Market, NewOrder, add_participants};
use gridshare_matching_engine::{Command, Event, GridFees, MarketConfig, NodeConfig};
use gridshare_settlement::chain::{Chain, EVM_CHAIN_ID, EvmChain, RpcChain};
use gridshare_settlement::contracts::RewardToken;
use gridshare_settlement::custody;
use gridshare_settlement::governance::{self, Proposal, Support};
use gridshare_settlement::onchain::{Submitter, Wallet, view};
use gridshare_settlement::rewards::{self, Emission};
use gridshare_storage::Db;
use gridshare_testkit::{ANVIL_KEY_0, Anvil};

/// Substation 1 ← feeder 2 ← transformers 3 and 4 ← homes 10 (under 3) and 20 (under 4):
/// four edges between the two homes, each with a configured fee of 1,000 µ/kWh.
fn network() -> Vec<NodeConfig> {
    let node = |id: u32, parent: Option<u32>| NodeConfig {
        id: NodeId(id),
        parent: parent.map(NodeId),
        capacity: None,
        fee: MicroPerKwh(if parent.is_some() { 1_000 } else { 0 }),
    };
    vec![
        node(1, None),
        node(2, Some(1)),
        node(3, Some(2)),
        node(4, Some(2)),
        node(10, Some(3)),
        node(20, Some(4)),
    ]
}

fn config() -> Config {
    let mut cfg = Config::default();
    cfg.market.engine = MarketConfig {
        network: Some(network()),
        ..MarketConfig::default()
    };
    cfg.governance.voting_delay_s = 120;
    cfg.governance.voting_period_s = 60;
    cfg.governance.timelock_delay_s = 60;
    cfg
}

fn iv(start: &str) -> DeliveryInterval {
    DeliveryInterval::new(Timestamp::parse_rfc3339(start).unwrap(), IntervalLength::Min15).unwrap()
}

/// The grid fee of the one trade a sell at home 10 and a buy at home 20 make in `interval`.
async fn fee_of_a_trade(m: &Market, interval: DeliveryInterval) -> i64 {
    let order = |owner: u64, side: Side, price: i64| NewOrder {
        owner: ParticipantId(owner),
        origin: None,
        zone: ZoneId(1),
        interval,
        side,
        quantity: Wh(100),
        price: MicroPerKwh(price),
        tif: TimeInForce::GoodTillGateClosure,
        mode: OrderMode::Continuous,
    };
    m.submit(order(1, Side::Sell, 100_000)).await.unwrap();
    let out = m.submit(order(2, Side::Buy, 200_000)).await.unwrap();
    let fees: Vec<i64> = out
        .events
        .iter()
        .filter_map(|e| match *e {
            Event::Trade { grid_fee, .. } => Some(grid_fee.0),
            _ => None,
        })
        .collect();
    assert_eq!(fees.len(), 1, "{:?}", out.events);
    fees[0]
}

/// The scenario on `chain`, `advance(seconds)` moving its clock on; returns the two books' fees.
/// The fees of a trade before and after the change, and the votes the homes' ballots carried
/// (for, against) with each vote's state, by participant.
type Outcome = ((i64, i64), (String, String), Vec<(u64, String)>);

async fn scenario<C: Chain, F: Future<Output = ()>>(chain: &C, wallet: Wallet, advance: impl Fn(u64) -> F) -> Outcome {
    let cfg = config();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    let (market, _recorder) = Market::start(cfg.market.engine.clone(), None, db.clone(), Clock::wall())
        .await
        .unwrap();
    add_participants(
        &market,
        [(ParticipantId(1), NodeId(10)), (ParticipantId(2), NodeId(20))],
    )
    .await
    .unwrap();

    // the contracts, as the service deploys them, and votes for the wallet
    let mut s = Submitter::new(chain, wallet.clone()).await.unwrap();
    let me = s.address();
    let emission = Emission {
        cap: cfg.rewards.cap,
        initial_budget: cfg.rewards.initial_budget,
        halving_epochs: cfg.rewards.halving_epochs,
    };
    let token = rewards::deploy(&mut s, emission).await.unwrap().token;
    let minter = view(chain, token, RewardToken::MINTER_ROLECall {}).await.unwrap();
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
            amount: U256::from(1_000_000u64),
        },
    )
    .await
    .unwrap();
    s.send(token, RewardToken::delegateCall { delegatee: me })
        .await
        .unwrap();
    // homes 1 and 2 have no wallet: the service holds their accounts, which hold reward tokens
    // (600,000 and 100,000 µ-token) counted as their own votes
    let seed = Custody::from_bytes([9u8; 32]);
    for id in [1, 2] {
        let home = gridshare_storage::participants::Participant {
            id: ParticipantId(id),
            name: format!("home {id}"),
            role: "homeowner".into(),
            evm_address: None,
            feeder_node: None,
            custody_address: None,
        };
        gridshare_storage::participants::upsert(&db, &home, Timestamp(0))
            .await
            .unwrap();
    }
    gridshare_storage::participants::assign_custody(&db, |p| seed.address_hex(p))
        .await
        .unwrap();
    let held = |p: u64| {
        let a: Address = seed.address_hex(ParticipantId(p)).parse().unwrap();
        (ParticipantId(p), a)
    };
    for (p, amount) in [(1, 600_000u64), (2, 100_000)] {
        s.send(
            token,
            RewardToken::mintCall {
                to: held(p).1,
                amount: U256::from(amount),
            },
        )
        .await
        .unwrap();
    }
    custody::delegate_held(&mut s, token, &seed, &[held(1), held(2)], U256::MAX)
        .await
        .unwrap();
    let (init, min, max) = initial(&cfg);
    assert_eq!(init.feePerHop, U256::from(1_000), "the configured tree's uniform fee");
    // the staking contract follows the bond rules the community sets
    let staking = gridshare_settlement::slashing::deploy(&mut s, token, 0, 86_400)
        .await
        .unwrap()
        .staking;
    let g = governance::deploy(&mut s, token, staking, settings(&cfg), init, min, max)
        .await
        .unwrap();
    assert!(governance::bind_staking(&mut s, g.parameters, staking).await.unwrap());
    // once is enough: a second run grants nothing
    assert!(!governance::bind_staking(&mut s, g.parameters, staking).await.unwrap());

    // version 0: the configured tree's fees, and the book opened now keeps them
    let mut step = GovernanceStep::default();
    step.run(chain, &db, &market, g.parameters).await.unwrap();
    assert_eq!(market.grid_fees(), None);
    let (before, after) = (iv("2026-11-25T10:15:00Z"), iv("2026-11-25T10:30:00Z"));
    let open = |interval| Command::OpenBook {
        zone: ZoneId(1),
        interval,
        fees: market.grid_fees(),
    };
    market.command(open(before)).await.unwrap();

    // the community raises the per-hop fee and adds a per-kWh network fee
    let proposal = Proposal {
        parameters: g.parameters,
        changes: vec![
            (governance::key("feePerHop"), U256::from(3_000)),
            (governance::key("networkFee"), U256::from(500)),
        ],
        description: "Per-hop fee 0.003 and network fee 0.0005 per kWh".into(),
    };
    advance(1).await;
    let id = proposal.propose(&mut s, g.governor).await.unwrap();
    advance(cfg.governance.voting_delay_s + 1).await;
    governance::vote(&mut s, g.governor, id, Support::For).await.unwrap();
    advance(cfg.governance.voting_period_s + 1).await;
    proposal.queue(&mut s, g.governor).await.unwrap();
    advance(cfg.governance.timelock_delay_s + 1).await;
    // executed, but not yet read: a book opened now still gets the old fees
    proposal.execute(&mut s, g.governor).await.unwrap();
    // one version per parameter changed
    assert_eq!(governance::read(chain, g.parameters).await.unwrap().0, 2);

    step.run(chain, &db, &market, g.parameters).await.unwrap();
    let new = GridFees {
        per_hop: MicroPerKwh(3_000),
        per_kwh: MicroPerKwh(500),
    };
    assert_eq!(market.grid_fees(), Some(new));
    market.command(open(after)).await.unwrap();
    // a second run reads the same version and changes nothing
    step.run(chain, &db, &market, g.parameters).await.unwrap();
    let history = gridshare_storage::parameters::history(&db, 10).await.unwrap();
    assert_eq!(history.iter().map(|v| v.version).collect::<Vec<_>>(), vec![2, 0]);
    let stored: serde_json::Value = serde_json::from_str(&history[0].params).unwrap();
    assert_eq!(
        (stored["feePerHop"].as_str(), stored["networkFee"].as_str()),
        (Some("3000"), Some("500"))
    );

    let fees = (
        fee_of_a_trade(&market, before).await,
        fee_of_a_trade(&market, after).await,
    );
    // before: the configured 4 × 1,000; after: 500 + 4 × 3,000
    assert_eq!(fees, (4_000, 12_500));

    // a proposal made through the service (as `POST /api/v1/governance/proposals` stores it): the
    // service proposes it, the holder votes, the service queues and executes it as it comes due
    let operator = gridshare_storage::participants::Participant {
        id: ParticipantId(100),
        name: "grid operator".into(),
        role: "operator".into(),
        evm_address: None,
        feeder_node: None,
        custody_address: None,
    };
    gridshare_storage::participants::upsert(&db, &operator, Timestamp(0))
        .await
        .unwrap();
    // participant 3 has a wallet of their own; participant 4's recorded account is another
    // seed's (say, a database restored next to the wrong custody file)
    let other = Custody::from_bytes([8u8; 32]);
    for (id, evm_address, custody_address) in [
        (3, Some("0x00000000000000000000000000000000000a0a0a".to_owned()), None),
        (4, None, Some(other.address_hex(ParticipantId(4)))),
    ] {
        let p = gridshare_storage::participants::Participant {
            id: ParticipantId(id),
            name: format!("participant {id}"),
            role: "homeowner".into(),
            evm_address,
            feeder_node: None,
            custody_address,
        };
        gridshare_storage::participants::upsert(&db, &p, Timestamp(0))
            .await
            .unwrap();
    }
    let changes = r#"[{"parameter":"networkFee","value":"700"},{"parameter":"minBond","value":"5000000"}]"#;
    let number = gridshare_storage::parameters::propose(&db, operator.id, "Network fee 0.0007", changes, Timestamp(0))
        .await
        .unwrap();
    let latest = || async {
        gridshare_storage::parameters::proposals(&db, 1)
            .await
            .unwrap()
            .remove(0)
    };
    step.follow_proposals(chain, &db, &wallet, g, &seed, Timestamp(0))
        .await
        .unwrap();
    let p = latest().await;
    assert_eq!(p.id, number);
    assert!(matches!(p.state.as_str(), "pending" | "active"), "{p:?}");
    let id: U256 = p.chain_id.as_deref().unwrap().parse().unwrap();
    // the homes ask the service to vote (the wallet, holding most votes, does not vote)
    use gridshare_storage::parameters::{request_vote, votes_of};
    for (who, support) in [(1, 1), (2, 0), (3, 1), (4, 1)] {
        assert!(
            request_vote(&db, number, ParticipantId(who), support, Timestamp(0))
                .await
                .unwrap()
        );
    }
    // not open yet: nothing is cast
    step.follow_proposals(chain, &db, &wallet, g, &seed, Timestamp(0))
        .await
        .unwrap();
    let vote = |who: u64| {
        let db = db.clone();
        async move { votes_of(&db, ParticipantId(who), 1).await.unwrap().remove(0) }
    };
    assert_eq!(vote(1).await.state, "waiting");
    advance(cfg.governance.voting_delay_s + 1).await;
    // home 2's ballot reached the chain but the service crashed before recording it: the next
    // run finds it cast (and sends nothing twice)
    let key = |p: u64| custody::signer(&seed, ParticipantId(p)).unwrap();
    let mut crashed = Submitter::new(chain, wallet.clone()).await.unwrap();
    let sent = custody::ballot(chain, g.governor, &key(2), id, 0).await.unwrap();
    crashed.send(g.governor, sent).await.unwrap();
    step.follow_proposals(chain, &db, &wallet, g, &seed, Timestamp(0))
        .await
        .unwrap();
    let (home1, home2) = (vote(1).await, vote(2).await);
    assert_eq!(home2.tx_hash, None, "found on chain, not sent again: {home2:?}");
    assert_eq!(
        (home1.state.as_str(), home1.weight.as_deref()),
        ("cast", Some("600000")),
        "{home1:?}"
    );
    assert_eq!(
        (home2.state.as_str(), home2.weight.as_deref()),
        ("cast", Some("100000")),
        "{home2:?}"
    );
    assert!(home1.tx_hash.is_some());
    let (own, foreign) = (vote(3).await, vote(4).await);
    assert_eq!(own.state, "refused");
    assert!(own.error.as_deref().unwrap().contains("own wallet"), "{own:?}");
    assert_eq!(foreign.state, "refused");
    assert!(
        foreign.error.as_deref().unwrap().contains("holds the key"),
        "{foreign:?}"
    );
    // home 1's ballot again (a fresh one: the service never sends one twice) is refused by the
    // governor, and so is home 2 signing a ballot that names home 1's account
    let mut other_sender = Submitter::new(chain, wallet.clone()).await.unwrap();
    let again = custody::ballot(chain, g.governor, &key(1), id, 0).await.unwrap();
    let e = other_sender.send(g.governor, again).await.unwrap_err();
    assert!(e.to_string().contains("GovernorAlreadyCastVote"), "{e}");
    let mut forged = custody::ballot(chain, g.governor, &key(2), id, 0).await.unwrap();
    forged.voter = held(1).1;
    let e = other_sender.send(g.governor, forged).await.unwrap_err();
    assert!(e.to_string().contains("GovernorInvalidSignature"), "{e}");
    advance(cfg.governance.voting_period_s + 1).await;
    // the operator asks to vote too late: refused, saying why
    assert!(request_vote(&db, number, operator.id, 1, Timestamp(0)).await.unwrap());
    step.follow_proposals(chain, &db, &wallet, g, &seed, Timestamp(0))
        .await
        .unwrap();
    let late = vote(operator.id.0).await;
    assert_eq!(late.state, "refused");
    assert!(
        late.error.as_deref().unwrap().contains("the vote closed (succeeded)"),
        "{late:?}"
    );
    let p = latest().await;
    assert_eq!(
        (p.state.as_str(), p.votes.0.as_str(), p.votes.1.as_str()),
        ("queued", "600000", "100000"),
        "{p:?}"
    );
    // too early to execute: still queued, and no error
    step.follow_proposals(chain, &db, &wallet, g, &seed, Timestamp(0))
        .await
        .unwrap();
    let p = latest().await;
    assert_eq!((p.state.as_str(), p.error.as_deref()), ("queued", None), "{p:?}");
    advance(cfg.governance.timelock_delay_s + 1).await;
    step.follow_proposals(chain, &db, &wallet, g, &seed, Timestamp(0))
        .await
        .unwrap();
    let p = latest().await;
    assert_eq!(p.state, "executed", "{p:?}");
    assert_eq!(
        governance::read(chain, g.parameters).await.unwrap().1.networkFee,
        U256::from(700)
    );
    step.run(chain, &db, &market, g.parameters).await.unwrap();
    assert_eq!(market.grid_fees().map(|f| f.per_kwh), Some(MicroPerKwh(700)));
    // the same proposal raised the minimum bond, and the staking contract enforces it
    use gridshare_settlement::contracts::GatewayStaking;
    let min_bond = view(chain, staking, GatewayStaking::minBondCall {}).await.unwrap();
    assert_eq!(min_bond, U256::from(5_000_000u64));
    // a proposal outside the bounds is refused before it reaches the chain (the API checks them),
    // and one whose stored changes do not read is marked refused, not sent
    gridshare_storage::parameters::propose(&db, operator.id, "garbage", "[not json", Timestamp(0))
        .await
        .unwrap();
    step.follow_proposals(chain, &db, &wallet, g, &seed, Timestamp(0))
        .await
        .unwrap();
    assert_eq!(latest().await.state, "refused");
    let mut states = Vec::new();
    for who in [1, 2, 3, 4, operator.id.0] {
        states.push((who, vote(who).await.state));
    }
    (fees, (home1.weight.unwrap(), home2.weight.unwrap()), states)
}

fn key() -> PrivateKeySigner {
    PrivateKeySigner::from_str(ANVIL_KEY_0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_governed_fee_change_reaches_the_first_book_opened_after_it_on_both_chains() {
    // the in-process chain makes a 12 s block per transaction: a second account moves time on
    let ticker = PrivateKeySigner::from_bytes(&[7u8; 32].into()).unwrap();
    let evm = EvmChain::in_memory(&[key().address(), ticker.address()]);
    let ticker = Wallet::new(ticker, EVM_CHAIN_ID);
    let evm_ref = &evm;
    let on_evm = scenario(evm_ref, Wallet::new(key(), EVM_CHAIN_ID), move |seconds: u64| {
        let ticker = ticker.clone();
        async move {
            let mut s = Submitter::new(evm_ref, ticker).await.unwrap();
            let me: Address = s.address();
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
    .await;
    let Some(anvil) = Anvil::start(&[]) else { return };
    let anvil = anvil.unwrap();
    let rpc = RpcChain::new(&anvil.url, std::time::Duration::from_secs(10)).unwrap();
    let wallet = Wallet::new(key(), rpc.chain_id().await.unwrap());
    let anvil = &anvil;
    let on_anvil = scenario(&rpc, wallet, move |seconds: u64| async move {
        anvil.increase_time(seconds).unwrap();
    })
    .await;
    assert_eq!(on_evm, on_anvil);
}
