//! Checked-in envelope test vectors: any other implementation (a gateway in
//! another language, a contract using `ecrecover`) can check itself against
//! `tests/vectors/envelope_v1.json`. The test re-derives every field, so a
//! change to the signing scheme fails here first.
//!
//! Regenerate after an intended change with
//! `GRIDSHARE_WRITE_VECTORS=1 cargo test -p gridshare-domain --test envelope_vectors`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a test failure

use gridshare_domain::envelope::{FreshnessPolicy, GatewayKey, ReplayWindow, SignedEnvelope, Verifier};
use gridshare_domain::{GatewayId, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Vector {
    description: String,
    secret_key: String,
    public_key: String,
    address: String,
    digest: String,
    envelope: SignedEnvelope,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Vectors {
    scheme: String,
    vectors: Vec<Vector>,
}

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/envelope_v1.json");

fn cases() -> Vec<(&'static str, &'static str, u64, u64, i64, &'static str)> {
    vec![
        (
            "cancel, anvil dev key 0",
            "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
            7,
            1,
            1_764_064_800_000,
            r#"{"type":"cancel","order_id":5}"#,
        ),
        (
            "telemetry with negative power",
            "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
            12,
            4_294_967_297,
            1_764_064_801_234,
            r#"{"type":"telemetry","samples":[{"device":"meter","kind":"grid_meter","at":1764064801000,"power_w":-1200,"energy_in_wh":10,"energy_out_wh":3456,"status":"ok","quality":"good"}]}"#,
        ),
        (
            "order with maximum gateway id and sequence",
            "0000000000000000000000000000000000000000000000000000000000000001",
            u64::MAX,
            u64::MAX,
            0,
            r#"{"type":"order","order_id":18446744073709551615,"zone":1,"interval":"2026-11-25T10:15:00Z/PT15M","side":"sell","quantity":500,"limit_price":120000}"#,
        ),
    ]
}

fn generate() -> Vectors {
    let vectors = cases()
        .into_iter()
        .map(|(description, sk, gw, seq, ts, payload)| {
            let key = GatewayKey::from_hex(sk).unwrap();
            let envelope = key
                .seal_raw(GatewayId(gw), seq, Timestamp(ts), payload.to_owned())
                .unwrap();
            Vector {
                description: description.to_owned(),
                secret_key: sk.to_owned(),
                public_key: key.public().to_hex(),
                address: key.public().address_hex(),
                digest: hex::encode(envelope.signing_digest()),
                envelope,
            }
        })
        .collect();
    Vectors {
        scheme: "keccak256(\"GridShare envelope v1\\0\" || gateway u64 BE || seq u64 BE || ts i64 BE || payload), secp256k1 RFC 6979 low-s, sig = r||s||v (v = 27 + recovery id)".to_owned(),
        vectors,
    }
}

#[test]
fn vectors_match_the_checked_in_file() {
    let fresh = generate();
    if std::env::var_os("GRIDSHARE_WRITE_VECTORS").is_some() {
        std::fs::write(PATH, serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
    }
    let text = std::fs::read_to_string(PATH).expect("vector file is checked in");
    let stored: Vectors = serde_json::from_str(&text).unwrap();
    assert_eq!(stored, fresh, "signing scheme changed: regenerate only if intended");
}

#[test]
fn checked_in_vectors_verify() {
    let text = std::fs::read_to_string(PATH).unwrap();
    let stored: Vectors = serde_json::from_str(&text).unwrap();
    assert_eq!(stored.vectors.len(), 3);
    for v in stored.vectors {
        let mut verifier = Verifier::new(FreshnessPolicy {
            max_future_ms: i64::MAX,
            max_order_age_ms: i64::MAX,
            max_data_age_ms: i64::MAX,
        });
        let key = gridshare_domain::envelope::GatewayPublicKey::from_hex(&v.public_key).unwrap();
        assert_eq!(key.address_hex(), v.address);
        verifier.register(v.envelope.gateway, key, ReplayWindow::default());
        let bytes = serde_json::to_vec(&v.envelope).unwrap();
        let (env, _msg) = verifier
            .open(&bytes, v.envelope.ts)
            .unwrap_or_else(|e| panic!("{}: {e}", v.description));
        assert_eq!(hex::encode(env.signing_digest()), v.digest);
    }
}
