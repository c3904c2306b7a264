//! Checked-in envelope test vectors: any other implementation (a gateway in
//! another language, a contract using `ecrecover`) can check itself against
//! `tests/vectors/envelope_v1.json`. The test re-derives every field, so a
//! change to the signing scheme fails here first.
//!
//! Regenerate after an intended change with
//! `GRIDSHARE_WRITE_VECTORS=1 cargo test -p gridshare-domain --test envelope_vectors`.
//!
//! It also writes the equivocation vectors shared with the contracts,
//! `contracts/test/vectors/envelopes_v1.json`: pairs of real envelopes sealed by fixed test keys
//! (an equivocating pair, the same envelope twice, a pair signed by two keys, a pair for two
//! sequence numbers), each with its digest and signature, which
//! `contracts/test/EquivocationVectors.t.sol` checks against `GatewayStaking.envelopeDigest` and
//! `slashEquivocation`. The test regenerates the file in memory and fails unless it is
//! byte-identical; rewrite it after an intended change with
//! `GRIDSHARE_UPDATE_VECTORS=1 cargo test -p gridshare-domain --test envelope_vectors`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a test failure

use gridshare_domain::envelope::{
    FreshnessPolicy, GatewayKey, GatewayPublicKey, ReplayWindow, SignedEnvelope, Verifier,
};
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

/// Anvil's first two development keys: well-known, so any EVM tool confirms their addresses.
const EVM_KEYS: [&str; 2] = [
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
];

const EQUIVOCATION_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../contracts/test/vectors/envelopes_v1.json"
);

/// One envelope as the contract takes it (fields in a fixed order: the file is compared byte
/// for byte, so no map whose order could depend on serde_json's features).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EvmEnvelope {
    key: String,
    gateway: u64,
    seq: u64,
    ts: i64,
    payload: String,
    payload_hex: String,
    sig: String,
    digest: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EvmKey {
    private_key: String,
    address: String,
}

#[derive(Serialize)]
struct EquivocationCase {
    name: &'static str,
    /// What `slashEquivocation(a, b)` does: `slash`, or the name of its error.
    expect: &'static str,
    a: EvmEnvelope,
    b: EvmEnvelope,
}

#[derive(Serialize)]
struct EquivocationVectors {
    version: u32,
    description: &'static str,
    keys: Vec<EvmKey>,
    cases: Vec<EquivocationCase>,
}

fn evm_envelope(key: usize, gateway: u64, seq: u64, ts: i64, payload: &str) -> EvmEnvelope {
    let k = GatewayKey::from_hex(EVM_KEYS[key]).unwrap();
    let env = k
        .seal_raw(GatewayId(gateway), seq, Timestamp(ts), payload.to_owned())
        .unwrap();
    assert_eq!(env.sig.len(), 132, "0x + r ‖ s ‖ v");
    let v = u8::from_str_radix(&env.sig[130..], 16).unwrap();
    assert!(v == 27 || v == 28, "v is 27 or 28");
    EvmEnvelope {
        key: k.public().address_hex(),
        gateway,
        seq,
        ts: env.ts.0,
        payload_hex: format!("0x{}", hex::encode(env.payload.as_bytes())),
        digest: format!("0x{}", hex::encode(env.signing_digest())),
        payload: env.payload,
        sig: env.sig,
    }
}

fn equivocation_vectors() -> EquivocationVectors {
    let order = r#"{"type":"order","order_id":9,"zone":1,"interval":"2026-11-25T10:15:00Z/PT15M","side":"sell","quantity":500,"limit_price":120000}"#;
    let unicode = r#"{"type":"note","text":"Grüße aus Köln ⚡ 電力 🔋"}"#;
    let cancel = r#"{"type":"cancel","order_id":5}"#;
    let cases = vec![
        EquivocationCase {
            name: "equivocation: two payloads for one sequence number (unicode; empty with a negative ts)",
            expect: "slash",
            a: evm_envelope(0, 7, 42, 1_764_064_800_000, unicode),
            b: evm_envelope(0, 7, 42, -1_000, ""),
        },
        EquivocationCase {
            name: "equivocation: same payload, another timestamp, large gateway id and sequence",
            expect: "slash",
            a: evm_envelope(1, 4_294_967_297, 4_294_967_296, 1_764_064_801_234, order),
            b: evm_envelope(1, 4_294_967_297, 4_294_967_296, 1_764_064_801_235, order),
        },
        EquivocationCase {
            name: "the same envelope twice",
            expect: "SameContent",
            a: evm_envelope(0, 7, 43, 1_764_064_802_000, cancel),
            b: evm_envelope(0, 7, 43, 1_764_064_802_000, cancel),
        },
        EquivocationCase {
            name: "one slot signed by two different keys",
            expect: "DifferentSigners",
            a: evm_envelope(0, 7, 44, 1_764_064_803_000, cancel),
            b: evm_envelope(1, 7, 44, 1_764_064_803_000, order),
        },
        EquivocationCase {
            name: "one key, two sequence numbers",
            expect: "NotSameSlot",
            a: evm_envelope(0, 7, 45, 1_764_064_804_000, cancel),
            b: evm_envelope(0, 7, 46, 1_764_064_804_000, order),
        },
    ];
    EquivocationVectors {
        version: 1,
        description: "Pairs of signed envelopes for GatewayStaking.slashEquivocation: digest = keccak256(\"GridShare envelope v1\\0\" || gateway u64 BE || seq u64 BE || ts i64 BE || payload), sig = r||s||v (v = 27 + recovery id), signed by the key at `key`; generated by domain/tests/envelope_vectors.rs",
        keys: EVM_KEYS
            .iter()
            .map(|sk| EvmKey {
                private_key: format!("0x{sk}"),
                address: GatewayKey::from_hex(sk).unwrap().public().address_hex(),
            })
            .collect(),
        cases,
    }
}

#[test]
fn equivocation_vectors_match_the_contracts_file() {
    let text = serde_json::to_string_pretty(&equivocation_vectors()).unwrap() + "\n";
    if std::env::var("GRIDSHARE_UPDATE_VECTORS").as_deref() == Ok("1") {
        std::fs::write(EQUIVOCATION_PATH, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(EQUIVOCATION_PATH).unwrap_or_default();
    assert!(
        on_disk == text,
        "{EQUIVOCATION_PATH} is stale: run with GRIDSHARE_UPDATE_VECTORS=1"
    );
}

/// Each recorded digest is the documented byte layout, recomputed here by hand, and each
/// signature recovers (as `ecrecover` would, from r ‖ s ‖ v) the address recorded for it.
#[test]
fn equivocation_vectors_recover_their_keys() {
    use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
    use sha3::{Digest, Keccak256};
    for case in equivocation_vectors().cases {
        for e in [&case.a, &case.b] {
            let mut h = Keccak256::new();
            h.update(b"GridShare envelope v1\0");
            h.update(e.gateway.to_be_bytes());
            h.update(e.seq.to_be_bytes());
            h.update(e.ts.to_be_bytes());
            h.update(e.payload.as_bytes());
            let digest: [u8; 32] = h.finalize().into();
            assert_eq!(format!("0x{}", hex::encode(digest)), e.digest, "{}", case.name);
            let raw = hex::decode(&e.sig[2..]).unwrap();
            let sig = Signature::from_slice(&raw[..64]).unwrap();
            assert!(sig.normalize_s().is_none(), "low s");
            let recid = RecoveryId::from_byte(raw[64] - 27).unwrap();
            let key = VerifyingKey::recover_from_prehash(&digest, &sig, recid).unwrap();
            let public = GatewayPublicKey::from_hex(&hex::encode(key.to_encoded_point(true).as_bytes())).unwrap();
            assert_eq!(public.address_hex(), e.key, "{}", case.name);
        }
    }
}
