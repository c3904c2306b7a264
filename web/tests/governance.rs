//! Governance over HTTP and on the dashboard (issue 22): the grid operator proposes within the
//! bounds the contract enforces; homeowners vote with their custodial account's tokens, once per
//! proposal, on proposals whose vote is not over; the service casts those votes later (its side
//! is tested in `service/tests/governance.rs`). Abuse: a second vote, a vote on a closed or
//! unknown proposal, a homeowner with a wallet of their own, another role, a key without the
//! `vote` scope, a bad body and a vote posted to a neighbour's page are each refused by name and
//! store nothing; a participant sees only their own votes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::http::{Method, StatusCode};
use common::{NOW, call, code, key, participant, request, sign_in, state_with, temp_db, user};
use gridshare_domain::ParticipantId;
use gridshare_storage::{Db, parameters, participants};
use serde_json::json;

/// The parameters as the service records them after reading the chain, with the per-hop fee's
/// bounds 0 to 10,000.
async fn parameters_read(db: &Db) {
    let params = json!({"feePerHop": "1000", "networkFee": "0"}).to_string();
    let bounds = json!({"feePerHop": ["0", "10000"], "networkFee": ["0", "1000000"]}).to_string();
    assert!(parameters::record(db, 0, NOW, &params, &bounds).await.unwrap());
}

#[tokio::test]
async fn homeowners_vote_once_on_open_proposals_and_everyone_else_is_refused() {
    let (db, _dir) = temp_db().await;
    let state = state_with(&db);
    parameters_read(&db).await;
    participant(&db, 1, "homeowner", None).await;
    participant(&db, 2, "homeowner", None).await;
    participant(&db, 4, "operator", None).await;
    participant(&db, 6, "admin", None).await;
    // homeowner 7 has a wallet of their own
    participants::upsert(
        &db,
        &participants::Participant {
            id: ParticipantId(7),
            name: "P7".into(),
            role: "homeowner".into(),
            evm_address: Some("0x00000000000000000000000000000000000a0a0a".into()),
            feeder_node: None,
            custody_address: None,
        },
        NOW,
    )
    .await
    .unwrap();
    let (home, neighbour, operator, admin, own) = (
        key(&db, 1, "read,vote").await,
        key(&db, 2, "read,vote").await,
        key(&db, 4, "read,govern").await,
        key(&db, 6, "read,govern,vote").await,
        key(&db, 7, "read,vote").await,
    );
    let read_only = key(&db, 1, "read").await;

    // the operator proposes; out of the bounds is refused by name
    let body = |v: &str| {
        Some(json!({"description": "a lower fee", "changes": [{"parameter": "feePerHop", "value": v}]}).to_string())
    };
    let (st, v) = call(
        &state,
        Method::POST,
        "/api/v1/governance/proposals",
        Some(&operator),
        body("20000"),
    )
    .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "out_of_bounds"),
        "{v}"
    );
    let (st, v) = call(
        &state,
        Method::POST,
        "/api/v1/governance/proposals",
        Some(&operator),
        body("500"),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_u64().unwrap();
    let votes = format!("/api/v1/governance/proposals/{id}/votes");

    // the homeowner votes for it: stored, waiting for the vote to open
    let vote = |support: &str| Some(json!({"support": support}).to_string());
    let (st, v) = call(&state, Method::POST, &votes, Some(&home), vote("for")).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(
        (v["proposal"].as_u64(), v["support"].as_str(), v["state"].as_str()),
        (Some(id), Some("for"), Some("waiting"))
    );

    // a second vote, even another way, is refused and the first stands
    let (st, v) = call(&state, Method::POST, &votes, Some(&home), vote("against")).await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "already_voted"), "{v}");
    // not a way to vote, or an unknown field: the body is refused by name
    let (st, v) = call(&state, Method::POST, &votes, Some(&neighbour), vote("maybe")).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("support"), "{v}");
    let (st, _) = call(
        &state,
        Method::POST,
        &votes,
        Some(&neighbour),
        Some(r#"{"support":"for","weight":"9999999"}"#.into()),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    // no such proposal
    let (st, v) = call(
        &state,
        Method::POST,
        "/api/v1/governance/proposals/999/votes",
        Some(&neighbour),
        vote("for"),
    )
    .await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
    // a key without the vote scope, the operator, an admin: refused
    for k in [&read_only, &operator, &admin] {
        let (st, v) = call(&state, Method::POST, &votes, Some(k), vote("for")).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    }
    // a homeowner with their own address votes with their own wallet
    let (st, v) = call(&state, Method::POST, &votes, Some(&own), vote("for")).await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "own_wallet"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("0x00000000000000000000000000000000000a0a0a")
    );

    // each sees their own votes only
    let (st, mine) = call(&state, Method::GET, "/api/v1/governance/votes", Some(&home), None).await;
    assert_eq!((st, mine.as_array().unwrap().len()), (StatusCode::OK, 1), "{mine}");
    let (_, theirs) = call(&state, Method::GET, "/api/v1/governance/votes", Some(&neighbour), None).await;
    assert_eq!(theirs, json!([]));
    let (st, _) = call(&state, Method::GET, "/api/v1/governance/votes", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // once the vote is over, nobody votes any more
    parameters::update(&db, id, Some("42"), "defeated", ("0", "0", "0"), None, NOW)
        .await
        .unwrap();
    let (st, v) = call(&state, Method::POST, &votes, Some(&neighbour), vote("against")).await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "vote_closed"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("defeated"), "{v}");
    let mut counts = Vec::new();
    for p in [1, 2, 4, 6, 7] {
        counts.push(parameters::votes_of(&db, ParticipantId(p), 10).await.unwrap().len());
    }
    assert_eq!(counts, vec![1, 0, 0, 0, 0], "only the homeowner's first vote is stored");
}

#[tokio::test]
async fn the_home_page_offers_the_vote_and_shows_what_became_of_it() {
    let (db, _dir) = temp_db().await;
    let state = state_with(&db);
    parameters_read(&db).await;
    user(&db, 1, "homeowner", "alice").await;
    user(&db, 2, "homeowner", "bob").await;
    participant(&db, 4, "operator", None).await;
    let changes = r#"[{"parameter":"feePerHop","value":"500"}]"#;
    let id = parameters::propose(&db, ParticipantId(4), "A lower per-hop fee", changes, NOW)
        .await
        .unwrap();
    let (_, alice) = sign_in(&state, "alice").await;
    let (_, bob) = sign_in(&state, "bob").await;

    // the open proposal, with the three buttons
    let page = request(Method::GET, "/home/1").cookie(&alice).send(&state).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains("A lower per-hop fee") && page.text.contains("feePerHop = 500"),
        "{}",
        page.text
    );
    assert!(page.text.contains(r#"action="/home/1/votes""#) && page.text.contains("Vote for"));

    // Bob posting a vote to Alice's page is refused, and stores nothing
    let form = format!("proposal={id}&support=for");
    let r = request(Method::POST, "/home/1/votes")
        .cookie(&bob)
        .form(form.clone())
        .send(&state)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        parameters::votes_of(&db, ParticipantId(2), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        parameters::votes_of(&db, ParticipantId(1), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Alice votes: back to her page, which says so and offers no button any more
    let r = request(Method::POST, "/home/1/votes")
        .cookie(&alice)
        .form(form.clone())
        .send(&state)
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let back = r.header("location").unwrap();
    assert!(
        back.starts_with("/home/1?ok=") && back.ends_with("#governance"),
        "{back}"
    );
    let page = request(Method::GET, &back).cookie(&alice).send(&state).await;
    assert!(page.text.contains("You voted for on proposal"), "{}", page.text);
    assert!(page.text.contains("it is cast on chain when the vote opens"));
    assert!(!page.text.contains(r#"action="/home/1/votes""#));
    // a second vote through the page: refused, said on the page
    let r = request(Method::POST, "/home/1/votes")
        .cookie(&alice)
        .form(format!("proposal={id}&support=against"))
        .send(&state)
        .await;
    let back = r.header("location").unwrap();
    assert!(back.contains("err=") && back.contains("already%20voted"), "{back}");

    // cast by the service: the page shows the votes it carried
    parameters::vote_done(
        &db,
        (id, ParticipantId(1)),
        "cast",
        (Some("1500000"), Some("0xabc"), None),
        NOW,
    )
    .await
    .unwrap();
    let page = request(Method::GET, "/home/1").cookie(&alice).send(&state).await;
    assert!(
        page.text.contains("You voted for: counted on chain with"),
        "{}",
        page.text
    );
}

#[tokio::test]
async fn the_operator_proposes_from_the_network_page_within_the_bounds() {
    let (db, _dir) = temp_db().await;
    let state = state_with(&db);
    parameters_read(&db).await;
    user(&db, 1, "homeowner", "alice").await;
    user(&db, 4, "operator", "grid").await;
    let (_, alice) = sign_in(&state, "alice").await;
    let (_, grid) = sign_in(&state, "grid").await;

    // everyone sees the parameters in force and their bounds; only the operator the form
    let public = request(Method::GET, "/network").send(&state).await;
    assert_eq!(public.status, StatusCode::OK);
    assert!(
        public.text.contains("Parameters in force") && public.text.contains("0 – 10000"),
        "{}",
        public.text
    );
    assert!(!public.text.contains(r#"action="/network/proposals""#));
    let home = request(Method::GET, "/network").cookie(&alice).send(&state).await;
    assert!(!home.text.contains(r#"action="/network/proposals""#));
    let page = request(Method::GET, "/network").cookie(&grid).send(&state).await;
    assert!(page.text.contains(r#"action="/network/proposals""#), "{}", page.text);

    let post = |cookie: Option<&str>, value: &str| {
        let form = format!("description=A%20lower%20fee&parameter=feePerHop&value={value}");
        let mut r = request(Method::POST, "/network/proposals").form(form);
        if let Some(c) = cookie {
            r = r.cookie(c);
        }
        r.send(&state)
    };
    // out of the bounds, not a number, a homeowner, nobody signed in: nothing stored
    let r = post(Some(&grid), "20000").await;
    let back = r.header("location").unwrap();
    assert!(
        back.contains("err=") && back.contains("outside%20its%20bounds"),
        "{back}"
    );
    let r = post(Some(&grid), "-1").await;
    assert!(r.header("location").unwrap().contains("err="));
    let r = post(Some(&alice), "500").await;
    let back = r.header("location").unwrap();
    assert!(back.contains("err=") && back.contains("may%20not%20propose"), "{back}");
    let r = post(None, "500").await;
    assert_eq!(
        (r.status, r.header("location").as_deref()),
        (StatusCode::SEE_OTHER, Some("/login"))
    );
    assert!(parameters::proposals(&db, 10).await.unwrap().is_empty());

    // within the bounds: stored, and the page says so
    let r = post(Some(&grid), "500").await;
    let back = r.header("location").unwrap();
    assert!(
        back.starts_with("/network?ok=") && back.ends_with("#proposals"),
        "{back}"
    );
    let stored = parameters::proposals(&db, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].proposer, stored[0].state.as_str()),
        (ParticipantId(4), "waiting")
    );
    let page = request(Method::GET, &back).cookie(&grid).send(&state).await;
    assert!(
        page.text.contains("Proposal 1 stored") && page.text.contains("feePerHop = 500"),
        "{}",
        page.text
    );
}

#[tokio::test]
async fn bond_states_reach_the_installer_admin_and_network_pages() {
    use gridshare_domain::GatewayId;
    let (db, _dir) = temp_db().await;
    let state = state_with(&db);
    user(&db, 5, "installer", "ian").await;
    user(&db, 6, "admin", "root").await;
    user(&db, 1, "homeowner", "alice").await;
    participant(&db, 2, "homeowner", Some(20)).await;
    common::gateway(&db, 11, 1, Some(5), 10).await;
    common::gateway(&db, 12, 2, Some(5), 20).await;
    let (_, ian) = sign_in(&state, "ian").await;
    let (_, root) = sign_in(&state, "root").await;

    // not read from chain yet: said so, and no count on the network page
    let page = request(Method::GET, "/installer").cookie(&ian).send(&state).await;
    assert!(page.text.contains("not read from chain"), "{}", page.text);
    let public = request(Method::GET, "/network").send(&state).await;
    assert!(public.text.contains("2 active gateways<"), "{}", public.text);

    // no minimum yet
    gridshare_storage::gateways::record_bonds(&db, None).await.unwrap();
    let public = request(Method::GET, "/network").send(&state).await;
    assert!(
        public.text.contains("2 active gateways, no bond required yet"),
        "{}",
        public.text
    );
    let page = request(Method::GET, "/installer").cookie(&ian).send(&state).await;
    assert!(page.text.contains("no bond required yet"), "{}", page.text);

    // a minimum is set and only gateway 11 reaches it
    let bonded = [GatewayId(11)].into_iter().collect();
    gridshare_storage::gateways::record_bonds(&db, Some(&bonded))
        .await
        .unwrap();
    let page = request(Method::GET, "/installer").cookie(&ian).send(&state).await;
    assert!(page.text.contains(">bonded<"), "{}", page.text);
    assert!(page.text.contains("below the minimum bond"), "{}", page.text);
    // and the API says the same to the installer
    let ian_key = key(&db, 5, "read").await;
    let (st, list) = call(&state, Method::GET, "/api/v1/gateways", Some(&ian_key), None).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let bond_of = |id: u64| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"] == id)
            .map(|g| g["bond"].clone())
    };
    assert_eq!(
        (bond_of(11), bond_of(12)),
        (Some(json!("bonded")), Some(json!("unbonded"))),
        "{list}"
    );
    let admin = request(Method::GET, "/admin").cookie(&root).send(&state).await;
    assert!(admin.text.contains("below the minimum bond"), "{}", admin.text);
    let public = request(Method::GET, "/network").send(&state).await;
    assert!(public.text.contains("2 active gateways, 1 bonded"), "{}", public.text);
    // the homeowner sees their own gateway's, and not the neighbour's
    let (_, alice) = sign_in(&state, "alice").await;
    let home = request(Method::GET, "/home/1").cookie(&alice).send(&state).await;
    assert!(home.text.contains("Gateway 11: bonded"), "{}", home.text);
    assert!(!home.text.contains("Gateway 12"), "{}", home.text);
}
