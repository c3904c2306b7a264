//! Property-based fuzzing of the envelope parser: whatever bytes arrive from
//! the network, `Verifier::open` returns a typed error and never panics, and a
//! tampered valid envelope is never accepted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use gridshare_domain::envelope::{FreshnessPolicy, GatewayKey, ReplayWindow, Verifier};
use gridshare_domain::wire::{CancelOrder, Message};
use gridshare_domain::{GatewayId, OrderId, Timestamp};
use proptest::prelude::*;

fn verifier(key: &GatewayKey) -> Verifier {
    let mut v = Verifier::new(FreshnessPolicy::default());
    v.register(GatewayId(1), key.public(), ReplayWindow::default());
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let key = GatewayKey::from_bytes(&[7u8; 32]).unwrap();
        let _ = verifier(&key).open(&bytes, Timestamp(0));
    }

    #[test]
    fn any_single_byte_change_is_rejected(pos in any::<prop::sample::Index>(), new in any::<u8>()) {
        let key = GatewayKey::from_bytes(&[7u8; 32]).unwrap();
        let env = key.seal(GatewayId(1), 1, Timestamp(0), &Message::Cancel(CancelOrder { order_id: OrderId(9) })).unwrap();
        let mut bytes = serde_json::to_vec(&env).unwrap();
        let i = pos.index(bytes.len());
        prop_assume!(bytes[i] != new);
        bytes[i] = new;
        if let Ok((opened, _)) = verifier(&key).open(&bytes, Timestamp(0)) {
            // Only a change JSON parsing cannot see may pass (e.g. whitespace
            // or a hex digit's case); what was signed must be unchanged.
            prop_assert_eq!(opened.payload, env.payload);
            prop_assert_eq!((opened.gateway, opened.seq, opened.ts), (env.gateway, env.seq, env.ts));
        }
    }
}
