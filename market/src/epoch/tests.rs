//! Tests of the epoch computation and its report: determinism, the check of a report from the
//! document alone, and that every kind of tampering is caught.

use gridshare_domain::{GatewayId, ParticipantId};
use proptest::prelude::*;

use super::report::{self, verify};
use super::*;

fn addr(i: u64) -> String {
    format!("0x{:040x}", 0xabc0_0000u64 + i)
}

fn params() -> Params {
    Params {
        epoch_ms: 3_600_000,
        uptime_period_ms: 60_000,
        ..Params::defaults(1_700_000_000_000)
    }
}

/// `homes` homes, each with one gateway (bonded unless its id is a multiple of 5), trading and
/// exporting in every 15-minute interval of epoch 1.
fn inputs(homes: u64, seed: u64) -> Inputs {
    let p = params();
    let (start, end) = p.span(1);
    let mut i = Inputs::default();
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut rnd = |m: i64| {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((x >> 33) as i64).rem_euclid(m)
    };
    for h in 1..=homes {
        let (pid, gid) = (ParticipantId(h), GatewayId(100 + h));
        i.gateways.push(GatewayInfo {
            id: gid,
            owner: pid,
            bonded: h % 5 != 0,
        });
        i.accounts.insert(pid, addr(h));
        let mut at = start;
        while at < end {
            i.sold.push((pid, at, rnd(800)));
            i.exported.push((gid, at, rnd(1000) - 50));
            at += 900_000;
        }
        i.uptime.push((gid, 55 + rnd(6) as u64, 60));
        if h % 3 == 0 {
            i.demand_response.push((
                pid,
                DrItem {
                    event: 7,
                    gateway: gid.0,
                    interval_start_ms: start,
                    wh: rnd(500),
                },
            ));
        }
    }
    i.previous.insert(addr(1), 5_000);
    i.previous.insert(addr(999), 42); // an account rewarded before, not this time
    i
}

#[test]
fn the_same_inputs_give_a_byte_identical_report_that_verifies() {
    let a = compute(1, &params(), &inputs(50, 1));
    let b = compute(1, &params(), &inputs(50, 1));
    assert_eq!(a.canonical_json(), b.canonical_json());
    assert_eq!(a.hash(), b.hash());
    let (root, hash) = verify(&a).expect("a computed report verifies");
    assert_eq!(report::hex32(&root), a.root);
    assert_eq!(hash, a.hash());
    // the previous-only account keeps its total; every participant's account is a leaf
    assert!(a.accounts.iter().any(|t| t.account == addr(999) && t.cumulative == 42));
    assert!(a.paid > 0 && a.paid == a.raw_total, "a small epoch fits its budget");
    // re-read from its JSON, the report is the same document
    let back: Report = serde_json::from_str(&a.canonical_json()).unwrap();
    assert_eq!(back, a);
}

#[test]
fn every_account_can_prove_its_cumulative_total() {
    let r = compute(1, &params(), &inputs(40, 2));
    let (root, _) = verify(&r).unwrap();
    for a in &r.accounts {
        let (cumulative, proof) = r.proof_of(&a.account).unwrap();
        let who = report::parse_address(&a.account).unwrap();
        assert!(report::verify_proof(root, &who, cumulative, &proof));
        assert!(
            !report::verify_proof(root, &who, cumulative + 1, &proof),
            "more than the total never proves"
        );
    }
}

#[test]
fn unbonded_gateways_earn_no_uptime_or_generation_but_demand_response_still_pays() {
    let r = compute(1, &params(), &inputs(30, 3));
    for p in &r.participants {
        if p.participant % 5 == 0 {
            assert!(
                p.local_renewable.intervals.is_empty() && p.uptime.gateways.is_empty(),
                "{p:?}"
            );
            assert!(p.demand_response.wh > 0 || p.raw == 0);
        }
    }
    assert!(
        r.participants
            .iter()
            .any(|p| p.participant == 15 && p.demand_response.raw > 0)
    );
}

#[test]
fn an_epoch_over_budget_is_scaled_and_never_pays_more_than_its_budget() {
    let p = Params {
        initial_budget: 10_000,
        ..params()
    };
    let r = compute(1, &p, &inputs(200, 4));
    assert!(r.raw_total > r.budget);
    assert!(r.paid <= r.budget && r.paid + r.participants.len() as u64 >= r.budget);
    verify(&r).unwrap();
    // the cap bounds it too: what the cap leaves is all an epoch can pay
    let p = Params {
        cap: 5_042 + 700,
        ..params()
    };
    let r = compute(1, &p, &inputs(200, 4));
    assert_eq!(r.available, 700);
    assert!(r.paid <= 700);
    assert!(r.cumulative_total <= p.cap);
    verify(&r).unwrap();
}

#[test]
fn participants_without_an_account_are_left_out_and_named() {
    let mut i = inputs(10, 5);
    i.accounts.remove(&ParticipantId(4));
    let r = compute(1, &params(), &i);
    assert_eq!(r.unaccounted, vec![4]);
    assert!(r.participants.iter().all(|p| p.participant != 4));
    verify(&r).unwrap();
}

#[test]
fn tampering_with_any_figure_is_caught() {
    let good = compute(1, &params(), &inputs(20, 6));
    type Tamper = Box<dyn Fn(&mut Report)>;
    let tamper: Vec<(&str, Tamper)> = vec![
        (
            "interval energy",
            Box::new(|r| r.participants[0].local_renewable.intervals[0].wh += 1),
        ),
        (
            "sold",
            Box::new(|r| r.participants[0].local_renewable.intervals[0].sold_wh += 10_000),
        ),
        ("uptime", Box::new(|r| r.participants[0].uptime.gateways[0].good = 60)),
        ("raw", Box::new(|r| r.participants[0].raw += 1)),
        ("reward", Box::new(|r| r.participants[0].reward += 1)),
        ("account", Box::new(|r| r.participants[0].account = addr(77))),
        ("cumulative", Box::new(|r| r.accounts[0].cumulative += 1)),
        ("previous", Box::new(|r| r.accounts[0].previous += 1)),
        ("root", Box::new(|r| r.root = report::hex32(&[7; 32]))),
        ("budget", Box::new(|r| r.budget *= 2)),
        ("rate", Box::new(|r| r.params.local_renewable_per_kwh += 1)),
        ("paid", Box::new(|r| r.paid -= 1)),
        ("epoch", Box::new(|r| r.epoch = 2)),
        ("dropped leaf", Box::new(|r| drop(r.accounts.remove(0)))),
    ];
    for (what, f) in tamper {
        let mut r = good.clone();
        f(&mut r);
        assert!(verify(&r).is_err(), "tampered {what} was not caught");
        assert_ne!(r.hash(), good.hash(), "tampered {what} kept the hash");
    }
}

#[test]
fn canonical_json_sorts_keys_and_has_no_white_space() {
    // every struct of the report present: intervals, demand response, uptime, accounts, and a
    // participant left out for want of an account
    let mut i = inputs(6, 7);
    i.accounts.remove(&ParticipantId(4));
    let r = compute(1, &params(), &i);
    assert!(!r.unaccounted.is_empty() && r.participants.iter().any(|p| !p.demand_response.items.is_empty()));
    let j = r.canonical_json();
    // written directly by serde, it is the document's canonical form
    assert_eq!(j, super::report::canonical(&serde_json::to_value(&r).unwrap()));
    assert!(!j.contains(' ') && !j.contains('\n'));
    assert!(j.starts_with("{\"accounts\":["), "{}", &j[..40]);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_epoch_pays_within_budget_and_cap_and_verifies(homes in 1u64..60, seed in any::<u64>(), budget in 0u64..5_000_000, n in 1u64..800) {
        let p = Params { initial_budget: budget, ..params() };
        let mut i = inputs(homes, seed);
        let (start, _) = p.span(n);
        let (s1, _) = p.span(1);
        for s in &mut i.sold { s.1 += start - s1; }
        for e in &mut i.exported { e.1 += start - s1; }
        let r = compute(n, &p, &i);
        prop_assert!(r.paid <= rules::budget(&p, n));
        prop_assert!(r.cumulative_total <= p.cap.max(r.previous_total));
        prop_assert!(r.paid + r.participants.len() as u64 >= r.available.min(r.raw_total));
        for a in &r.participants {
            prop_assert!(a.local_renewable.intervals.iter().all(|x| x.wh <= x.sold_wh && x.wh <= x.exported_wh));
        }
        prop_assert!(verify(&r).is_ok());
    }
}

#[test]
fn an_account_shared_by_two_participants_sums_both() {
    let mut i = inputs(4, 8);
    i.accounts.insert(ParticipantId(2), addr(1));
    let r = compute(1, &params(), &i);
    let both: u64 = r
        .participants
        .iter()
        .filter(|p| p.account == addr(1))
        .map(|p| p.reward)
        .sum();
    let leaf = r.accounts.iter().find(|a| a.account == addr(1)).unwrap();
    assert_eq!(leaf.cumulative, leaf.previous + both);
    assert_eq!(r.accounts.iter().filter(|a| a.account == addr(1)).count(), 1);
    verify(&r).unwrap();
}
