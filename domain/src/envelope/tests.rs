use std::collections::HashMap;

use super::verify::PreparedKey;
use super::*;
use crate::ids::OrderId;
use crate::topics::Channel;
use crate::wire::CancelOrder;

// Anvil's first development key: a well-known key whose address any EVM tool confirms.
const ANVIL_KEY_0: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const ANVIL_ADDR_0: &str = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";

fn setup() -> (GatewayKey, Verifier) {
    let key = GatewayKey::from_hex(ANVIL_KEY_0).unwrap();
    let mut v = Verifier::new(FreshnessPolicy::default());
    v.register(GatewayId(7), key.public(), ReplayWindow::default());
    (key, v)
}

fn cancel() -> Message {
    Message::Cancel(CancelOrder { order_id: OrderId(5) })
}

fn bytes(env: &SignedEnvelope) -> Vec<u8> {
    serde_json::to_vec(env).unwrap()
}

#[test]
fn address_matches_the_evm() {
    let key = GatewayKey::from_hex(ANVIL_KEY_0).unwrap();
    assert_eq!(key.public().address_hex(), ANVIL_ADDR_0);
    let again = GatewayPublicKey::from_hex(&key.public().to_hex()).unwrap();
    assert_eq!(again, key.public());
    assert!(!format!("{key:?}").contains(ANVIL_KEY_0));
}

#[test]
fn seal_then_open() {
    let (key, mut v) = setup();
    let now = Timestamp(1_000_000);
    let env = key.seal(GatewayId(7), 1, now, &cancel()).unwrap();
    let (opened, msg) = v.open(&bytes(&env), now).unwrap();
    assert_eq!(opened, env);
    assert_eq!(msg, cancel());
}

#[test]
fn rejects_tampering_and_strangers() {
    let (key, mut v) = setup();
    let now = Timestamp(1_000_000);
    let mut env = key.seal(GatewayId(7), 1, now, &cancel()).unwrap();
    env.payload = env.payload.replace('5', "6");
    assert_eq!(
        v.open(&bytes(&env), now),
        Err(EnvelopeError::BadSignature(GatewayId(7)))
    );
    let env = key.seal(GatewayId(8), 1, now, &cancel()).unwrap();
    assert_eq!(
        v.open(&bytes(&env), now),
        Err(EnvelopeError::UnknownGateway(GatewayId(8)))
    );
    // A revoked gateway is refused as revoked, before and after its check; registered again,
    // it is taken
    let checked = v
        .checker()
        .check(&bytes(&key.seal(GatewayId(7), 1, now, &cancel()).unwrap()), now, None);
    v.revoke(GatewayId(7));
    let env = key.seal(GatewayId(7), 2, now, &cancel()).unwrap();
    assert_eq!(v.open(&bytes(&env), now), Err(EnvelopeError::Revoked(GatewayId(7))));
    assert_eq!(EnvelopeError::Revoked(GatewayId(7)).reason(), "revoked");
    assert_eq!(v.accept(checked.unwrap()), Err(EnvelopeError::Revoked(GatewayId(7))));
    v.register(GatewayId(7), key.public(), ReplayWindow::default());
    assert!(v.open(&bytes(&env), now).is_ok());
    // A signature by another key for gateway 7.
    let other = GatewayKey::from_bytes(&[3u8; 32]).unwrap();
    let env = other.seal(GatewayId(7), 1, now, &cancel()).unwrap();
    assert_eq!(
        v.open(&bytes(&env), now),
        Err(EnvelopeError::BadSignature(GatewayId(7)))
    );
    // The same signature claimed under another sequence number.
    let mut env = key.seal(GatewayId(7), 1, now, &cancel()).unwrap();
    env.seq = 2;
    assert_eq!(
        v.open(&bytes(&env), now),
        Err(EnvelopeError::BadSignature(GatewayId(7)))
    );
}

#[test]
fn a_gateway_not_on_chain_yet_is_refused_as_such_until_registered_and_its_message_taken_then() {
    let key = GatewayKey::from_hex(ANVIL_KEY_0).unwrap();
    let mut v = Verifier::new(FreshnessPolicy::default());
    let now = Timestamp(1_000_000);
    v.hold(GatewayId(9));
    let env = key.seal(GatewayId(9), 1, now, &cancel()).unwrap();
    assert_eq!(v.open(&bytes(&env), now), Err(EnvelopeError::NotOnChain(GatewayId(9))));
    assert_eq!(EnvelopeError::NotOnChain(GatewayId(9)).reason(), "not_on_chain");
    // its sequence number was not used up: the same message, sent again once the key is on
    // chain, is taken
    v.register(GatewayId(9), key.public(), ReplayWindow::default());
    assert!(v.open(&bytes(&env), now).is_ok());
    // holding a gateway already taken changes nothing; revoked, it is refused as revoked
    v.hold(GatewayId(9));
    assert!(
        v.open(&bytes(&key.seal(GatewayId(9), 2, now, &cancel()).unwrap()), now)
            .is_ok()
    );
    v.revoke(GatewayId(9));
    v.hold(GatewayId(9));
    assert_eq!(
        v.open(&bytes(&key.seal(GatewayId(9), 3, now, &cancel()).unwrap()), now),
        Err(EnvelopeError::Revoked(GatewayId(9)))
    );
}

/// Both verifiers agree on good signatures and on every kind of bad one (tampered payload,
/// sequence or signature, another gateway's key, high s, bad v).
#[test]
fn libsecp256k1_and_k256_agree() {
    let now = Timestamp(1_000_000);
    for i in 1..=40u8 {
        let key = GatewayKey::from_bytes(&[i; 32]).unwrap();
        let other = GatewayKey::from_bytes(&[i.wrapping_add(100); 32]).unwrap().public();
        let good = key.seal(GatewayId(7), u64::from(i), now, &cancel()).unwrap();
        let mut variants = vec![(good.clone(), true)];
        let mut e = good.clone();
        e.payload.push(' ');
        variants.push((e, false));
        let mut e = good.clone();
        e.seq += 1;
        variants.push((e, false));
        let mut raw = decode_hex(&good.sig).unwrap();
        raw[10] ^= 1;
        let mut e = good.clone();
        e.sig = format!("0x{}", hex::encode(&raw));
        variants.push((e, false));
        let mut raw = decode_hex(&good.sig).unwrap();
        raw[64] = 29;
        let mut e = good.clone();
        e.sig = format!("0x{}", hex::encode(&raw));
        variants.push((e, false));
        let raw = decode_hex(&good.sig).unwrap();
        let (r, s) = Signature::from_slice(&raw[..64]).unwrap().split_scalars();
        let mut high = Signature::from_scalars(r, -*s).unwrap().to_bytes().to_vec();
        high.push(raw[64] ^ 1);
        let mut e = good.clone();
        e.sig = format!("0x{}", hex::encode(high));
        variants.push((e, false));
        for (env, want) in variants {
            let prepared = PreparedKey::new(key.public());
            assert_eq!(key.public().verify(&env), want, "k256 on {env:?}");
            assert_eq!(prepared.verify(&env), want, "prepared on {env:?}");
            assert!(!PreparedKey::new(other).verify(&env), "another key on {env:?}");
        }
    }
}

#[test]
fn rejects_high_s_malleated_signature() {
    let (key, mut v) = setup();
    let now = Timestamp(1_000_000);
    let mut env = key.seal(GatewayId(7), 1, now, &cancel()).unwrap();
    let raw = decode_hex(&env.sig).unwrap();
    let sig = Signature::from_slice(&raw[..64]).unwrap();
    let (r, s) = sig.split_scalars();
    let high = Signature::from_scalars(r, -*s).unwrap();
    let mut out = high.to_bytes().to_vec();
    out.push(raw[64] ^ 1);
    env.sig = format!("0x{}", hex::encode(out));
    assert_eq!(
        v.open(&bytes(&env), now),
        Err(EnvelopeError::BadSignature(GatewayId(7)))
    );
}

#[test]
fn rejects_replay_and_allows_reorder_within_window() {
    let (key, mut v) = setup();
    let now = Timestamp(1_000_000);
    let seal = |seq| bytes(&key.seal(GatewayId(7), seq, now, &cancel()).unwrap());
    assert!(v.open(&seal(10), now).is_ok());
    assert!(v.open(&seal(8), now).is_ok(), "late by 2 is fine once");
    assert!(matches!(
        v.open(&seal(8), now),
        Err(EnvelopeError::Replayed { seq: 8, .. })
    ));
    assert!(matches!(
        v.open(&seal(10), now),
        Err(EnvelopeError::Replayed { seq: 10, .. })
    ));
    assert!(v.open(&seal(100), now).is_ok());
    assert!(matches!(
        v.open(&seal(36), now),
        Err(EnvelopeError::SequenceTooOld { .. })
    ));
    assert!(v.open(&seal(37), now).is_ok());
    assert!(matches!(
        v.open(&seal(0), now),
        Err(EnvelopeError::SequenceTooOld { .. })
    ));
}

#[test]
fn wrong_sender_does_not_use_up_the_sequence() {
    let (key, mut v) = setup();
    let now = Timestamp(1_000_000);
    let env = bytes(&key.seal(GatewayId(7), 1, now, &cancel()).unwrap());
    assert_eq!(
        v.open_from(GatewayId(8), &env, now),
        Err(EnvelopeError::WrongSender {
            expected: GatewayId(8),
            signed: GatewayId(7)
        })
    );
    assert!(v.open_from(GatewayId(7), &env, now).is_ok());
}

#[test]
fn rejects_stale_and_future() {
    let (key, mut v) = setup();
    let now = Timestamp(10_000_000);
    let env = key.seal(GatewayId(7), 1, Timestamp(now.0 - 61_000), &cancel()).unwrap();
    assert!(matches!(
        v.open(&bytes(&env), now),
        Err(EnvelopeError::Stale { kind: "cancel", .. })
    ));
    let env = key.seal(GatewayId(7), 2, Timestamp(now.0 + 31_000), &cancel()).unwrap();
    assert!(matches!(
        v.open(&bytes(&env), now),
        Err(EnvelopeError::FromTheFuture { .. })
    ));
    // a rejected message does not consume its sequence number
    let env = key.seal(GatewayId(7), 1, now, &cancel()).unwrap();
    assert!(v.open(&bytes(&env), now).is_ok());
}

#[test]
fn freshness_is_real_time_on_an_accelerated_clock() {
    // at 90x, an order sent 30 s (real) ago is 2,700 s of market time old: fresh
    let key = GatewayKey::from_hex(ANVIL_KEY_0).unwrap();
    let policy = FreshnessPolicy::default().at_speed(90.0);
    assert_eq!(policy.max_order_age_ms, 90 * 60_000);
    assert_eq!(policy.max_future_ms, 90 * 30_000);
    let mut v = Verifier::new(policy);
    v.register(GatewayId(7), key.public(), ReplayWindow::default());
    let now = Timestamp(100_000_000);
    let env = key
        .seal(GatewayId(7), 1, Timestamp(now.0 - 2_700_000), &cancel())
        .unwrap();
    assert!(v.open(&bytes(&env), now).is_ok());
    // and 61 s real (5,490 s market) is stale there as on the wall clock
    let env = key
        .seal(GatewayId(7), 2, Timestamp(now.0 - 5_490_000), &cancel())
        .unwrap();
    assert!(matches!(
        v.open(&bytes(&env), now),
        Err(EnvelopeError::Stale { kind: "cancel", .. })
    ));
    // the wall clock, a slowed clock and nonsense leave the policy alone; no overflow
    for speed in [1.0, 0.5, 0.0, -3.0, f64::NAN] {
        assert_eq!(FreshnessPolicy::default().at_speed(speed), FreshnessPolicy::default());
    }
    assert_eq!(
        FreshnessPolicy::default().at_speed(f64::INFINITY).max_data_age_ms,
        i64::MAX
    );
}

#[test]
fn rejects_oversize_malformed_and_unknown_version() {
    let (key, mut v) = setup();
    let now = Timestamp(0);
    let big = vec![b' '; MAX_ENVELOPE_BYTES + 1];
    assert!(matches!(v.open(&big, now), Err(EnvelopeError::TooLarge { .. })));
    assert!(matches!(v.open(b"{\"v\":1", now), Err(EnvelopeError::Malformed(_))));
    let mut env = key.seal(GatewayId(7), 1, now, &cancel()).unwrap();
    env.v = 2;
    assert_eq!(v.open(&bytes(&env), now), Err(EnvelopeError::UnsupportedVersion(2)));
    let env = key
        .seal_raw(GatewayId(7), 1, now, "{\"type\":\"nope\"}".into())
        .unwrap();
    assert!(matches!(v.open(&bytes(&env), now), Err(EnvelopeError::BadPayload(_))));
}

/// A downlink opens only at the gateway and on the channel it was signed for, once, and
/// only with the market's key; refusals record nothing.
#[test]
fn downlinks_are_bound_to_gateway_channel_and_sequence() {
    let market = GatewayKey::from_bytes(&[11u8; 32]).unwrap();
    let forger = GatewayKey::from_bytes(&[12u8; 32]).unwrap();
    let ts = Timestamp(1_000);
    let seal = |k: &GatewayKey, gw, ch, seq| {
        serde_json::to_vec(&k.seal_downlink(GatewayId(gw), ch, seq, ts, "{\"x\":1}".into()).unwrap()).unwrap()
    };
    let mut a = DownlinkVerifier::new(Some(market.public()), GatewayId(1), HashMap::new());
    let mut b = DownlinkVerifier::new(Some(market.public()), GatewayId(2), HashMap::new());
    let for_a = seal(&market, 1, Channel::DrEvent, 10);
    let reason = |r: Result<SignedEnvelope, DownlinkError>| r.unwrap_err().reason();
    assert_eq!(reason(b.open(Channel::DrEvent, &for_a)), "misaddressed");
    assert_eq!(
        reason(a.open(Channel::Command, &for_a)),
        "bad_signature",
        "moved to another channel"
    );
    assert_eq!(
        reason(a.open(Channel::DrEvent, &seal(&forger, 1, Channel::DrEvent, 11))),
        "bad_signature"
    );
    assert_eq!(reason(a.open(Channel::DrEvent, b"{\"type\":\"dr_event\"}")), "unsigned");
    assert_eq!(a.open(Channel::DrEvent, &for_a).unwrap().payload, "{\"x\":1}");
    assert_eq!(reason(a.open(Channel::DrEvent, &for_a)), "replayed");
    assert!(
        a.open(Channel::DrEvent, &seal(&market, 1, Channel::DrEvent, 200))
            .is_ok()
    );
    assert_eq!(
        reason(a.open(Channel::DrEvent, &seal(&market, 1, Channel::DrEvent, 100))),
        "sequence_too_old"
    );
    // windows are per channel: an older sequence on another channel is still new there
    assert!(
        a.open(Channel::Preferences, &seal(&market, 1, Channel::Preferences, 5))
            .is_ok()
    );
    // kept windows survive a restart
    let mut again = DownlinkVerifier::new(Some(market.public()), GatewayId(1), a.windows().clone());
    assert_eq!(reason(again.open(Channel::DrEvent, &for_a)), "sequence_too_old");
    let mut keyless = DownlinkVerifier::new(None, GatewayId(1), HashMap::new());
    assert_eq!(
        reason(keyless.open(Channel::DrEvent, &seal(&market, 1, Channel::DrEvent, 300))),
        "no_market_key"
    );
    // an upstream envelope signature does not pass as a downlink's
    let mut up = market.seal_raw(GatewayId(1), 400, ts, "{\"x\":1}".into()).unwrap();
    assert_eq!(
        reason(a.open(Channel::DrEvent, &serde_json::to_vec(&up).unwrap())),
        "bad_signature"
    );
    up.seq = 401;
    assert_eq!(
        reason(a.open(Channel::DrEvent, &serde_json::to_vec(&up).unwrap())),
        "bad_signature"
    );
}

#[test]
fn merged_windows_refuse_what_either_accepted() {
    let g = GatewayId(7);
    let (mut stored, mut journaled) = (ReplayWindow::default(), ReplayWindow::default());
    for seq in [1, 2, 3, 10] {
        stored.record(seq);
    }
    for seq in [11, 12, 70] {
        journaled.record(seq);
    }
    let mut both = stored;
    both.merge(&journaled);
    assert_eq!(both.highest, 70);
    for seq in [10, 11, 12, 70] {
        assert!(
            matches!(both.check(g, seq), Err(EnvelopeError::Replayed { .. })),
            "seq {seq}"
        );
    }
    for seq in [13, 69, 71] {
        assert!(both.check(g, seq).is_ok(), "seq {seq}");
    }
    // 1-3 fell out of the window: too old, as in either window alone
    assert!(matches!(both.check(g, 3), Err(EnvelopeError::SequenceTooOld { .. })));
    // merging is the same from either side, and an empty window changes nothing
    let mut other_way = journaled;
    other_way.merge(&stored);
    assert_eq!(other_way, both);
    let mut unchanged = both;
    unchanged.merge(&ReplayWindow::default());
    assert_eq!(unchanged, both);
}
