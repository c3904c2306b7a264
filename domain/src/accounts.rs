//! On-chain accounts of participants: where one without an address of its own is paid.

use crate::envelope::keccak256;
use crate::ids::ParticipantId;

/// The placeholder EVM address of a participant without one of its own:
/// `keccak256("gridshare:participant:" ‖ id as 8 big-endian bytes)[12..]`. Settlement pays
/// such a participant's balance to it and epochs reward it there; nobody holds a key for it
/// until the service's custody does.
pub fn derived_address(p: ParticipantId) -> [u8; 20] {
    let mut buf = b"gridshare:participant:".to_vec();
    buf.extend_from_slice(&p.0.to_be_bytes());
    let h = keccak256(&buf);
    let mut out = [0u8; 20];
    out.copy_from_slice(&h[12..]);
    out
}
