//! The reward-tree vectors shared with the contracts (`contracts/test/vectors/rewards_v1.json`,
//! written by `contracts/tools/rewards-vectors.mjs` and checked on chain by
//! `contracts/test/RewardVectors.t.sol`): the epoch code must compute the same leaves, root,
//! proofs, multiproof and budgets, or a report's root would not be the one the distributor pays.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use gridshare_domain::merkle;
use gridshare_market::epoch::report::{self, AccountTotal};
use gridshare_market::epoch::{Params, rules};
use serde_json::Value;

fn hex(v: &Value) -> [u8; 32] {
    let s = v.as_str().unwrap().trim_start_matches("0x");
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn the_epoch_code_computes_the_contracts_reward_vectors() {
    let path = gridshare_testkit::workspace_root().join("contracts/test/vectors/rewards_v1.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let accounts: Vec<AccountTotal> = v["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| AccountTotal {
            account: a["account"].as_str().unwrap().to_owned(),
            previous: 0,
            cumulative: a["cumulative"].as_u64().unwrap(),
        })
        .collect();
    assert!(
        accounts.windows(2).all(|w| w[0].account < w[1].account),
        "vectors are in address order"
    );
    let tree = report::tree(&accounts).unwrap();
    assert_eq!(report::hex32(&tree.root()), v["root"].as_str().unwrap());
    for (i, (a, j)) in accounts.iter().zip(v["accounts"].as_array().unwrap()).enumerate() {
        let addr = report::parse_address(&a.account).unwrap();
        assert_eq!(report::leaf(&addr, a.cumulative), hex(&j["leaf"]), "leaf {i}");
        let proof: Vec<[u8; 32]> = j["proof"].as_array().unwrap().iter().map(hex).collect();
        assert_eq!(tree.proof(i).unwrap(), proof, "proof {i}");
        assert!(report::verify_proof(tree.root(), &addr, a.cumulative, &proof));
    }
    let m = &v["multiproof"];
    let positions: Vec<usize> = m["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap() as usize)
        .collect();
    let (proof, flags) = tree.multiproof(&positions).unwrap();
    let want_proof: Vec<[u8; 32]> = m["proof"].as_array().unwrap().iter().map(hex).collect();
    let want_flags: Vec<bool> = m["proofFlags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_bool().unwrap())
        .collect();
    assert_eq!((proof.clone(), flags.clone()), (want_proof, want_flags));
    let leaves: Vec<[u8; 32]> = m["leaves"].as_array().unwrap().iter().map(hex).collect();
    assert_eq!(merkle::process_multiproof(&leaves, &proof, &flags), Some(tree.root()));
    for b in v["budget"].as_array().unwrap() {
        let p = Params {
            initial_budget: b["initialBudget"].as_u64().unwrap(),
            halving_epochs: b["halvingEpochs"].as_u64().unwrap(),
            ..Params::defaults(0)
        };
        assert_eq!(
            rules::budget(&p, b["epoch"].as_u64().unwrap()),
            b["budget"].as_u64().unwrap(),
            "{b}"
        );
    }
}
