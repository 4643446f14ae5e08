//! Entry points for fuzzing (the `fuzz/` cargo-fuzz targets call these) and
//! for the in-crate robustness tests. Both must never panic on any input;
//! `apply_unverified` additionally asserts SP conservation after every op, so
//! the fuzzer also hunts for economic bugs, not just crashes.

use crate::core::op::SignedOp;
use crate::core::replica::Replica;
use crate::core::state::State;
use crate::core::upgrades::CompiledModules;

/// Decodes `data` as a signed op, verifies it and folds it into a fresh
/// replica.
pub fn decode_verify_apply(data: &[u8]) {
    let mut r = Replica::open();
    let _ = r.receive(data, u64::MAX / 2);
}

/// Splits `data` into `u16`-length-prefixed signed ops, decodes each and
/// applies it to one state in order **without checking signatures** (so the
/// fuzzer can reach the fold's rules without forging Ed25519). Panics if SP
/// are not conserved.
///
/// An odd first byte folds under the default rules (quorum, members,
/// custody; with a 1-bit admission ticket so the fuzzer finds tickets),
/// an even one under the open rules (everything reachable without
/// reputation).
pub fn apply_unverified(data: &[u8]) {
    let mut state = if data.first().is_some_and(|b| b & 1 == 1) {
        use crate::core::genesis::Genesis;
        use crate::core::rules::Rules;
        State::from_genesis(&Genesis { rules: Rules { admission_bits: 1, ..Rules::default() }, ..Genesis::default() })
    } else {
        State::open()
    };
    let modules = CompiledModules::default();
    let mut rest = data.get(1..).unwrap_or_default();
    while rest.len() >= 2 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        rest = &rest[2..];
        let take = len.min(rest.len());
        let (payload, tail) = rest.split_at(take);
        rest = tail;
        if let Ok(op) = SignedOp::decode(payload) {
            let _ = state.apply(op.id(), op.op(), &modules);
            assert!(state.sp_conserved(), "SP not conserved");
        }
    }
}

/// Own actions (rule `refused_action_signs_nothing`): `data` is read as
/// [`apply_unverified`] reads it; each op's channel and body become an
/// action of one of three local identities (the author's first byte picks
/// which), 10 ms apart, on a replica with fold checkpoints every 4 ops.
/// Panics if a refused action changes the state, the store or the head, or
/// if the state differs from a replay of the accepted ops alone.
pub fn own_actions(data: &[u8]) {
    use crate::core::genesis::Genesis;
    use crate::identity::Identity;
    let g = Genesis::open("fuzz");
    let keys: Vec<Identity> = (1..=3u8).map(|i| Identity::from_seed([i; 32])).collect();
    let mut r = Replica::with_genesis_every(&g, 4);
    let mut accepted = Vec::new();
    let mut rest = data.get(1..).unwrap_or_default();
    let mut now = 1_700_000_000_000u64;
    while rest.len() >= 2 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        rest = &rest[2..];
        let (payload, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        let Ok(op) = SignedOp::decode(payload) else { continue };
        let me = &keys[usize::from(op.op().author.0[0]) % keys.len()];
        now += 10;
        let before = (r.state_hash(), r.store().len(), r.store().head(&me.node_id()));
        match r.act(me, &op.op().channel, op.op().body.clone(), now) {
            Ok(signed) => accepted.push(signed),
            Err(_) => {
                let after = (r.state_hash(), r.store().len(), r.store().head(&me.node_id()));
                assert_eq!(before, after, "a refused action changed something");
            }
        }
    }
    let mut replay = Replica::with_genesis_every(&g, 4);
    for op in accepted {
        replay.receive_verified(op, u64::MAX / 2);
    }
    assert_eq!(r.state_hash(), replay.state_hash(), "the fold differs from a replay of the accepted actions");
}

/// Checkpoint records and state snapshots from a peer: strict decoding and
/// verification against a network with finality. Must not panic.
pub fn decode_checkpoint(data: &[u8]) {
    use crate::core::genesis::Genesis;
    use crate::core::rules::Rules;
    use crate::core::snapshot::{Record, decode_state, verify};
    let _ = decode_state(data);
    let Some((&split, rest)) = data.split_first() else { return };
    let at = (usize::from(split) * rest.len()) / 256;
    let (record, snapshot) = rest.split_at(at);
    if let Ok(rec) = Record::decode(record) {
        let g = Genesis { rules: Rules { epoch_seconds: 10, ..Rules::open() }, ..Genesis::open("fuzz") };
        let _ = verify(&g, &rec, snapshot);
    }
}

/// Frames ops the way [`apply_unverified`] reads them (seed corpora),
/// under the open rules (first byte 0).
pub fn frame(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0];
    for p in payloads {
        out.extend_from_slice(&(p.len().min(u16::MAX as usize) as u16).to_be_bytes());
        out.extend_from_slice(&p[..p.len().min(u16::MAX as usize)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::vectors::golden_history;

    #[test]
    fn fuzz_entry_points_survive_mutated_seeds() {
        let ops = golden_history();
        let payloads: Vec<Vec<u8>> = ops.iter().map(|o| o.bytes().to_vec()).collect();
        let seed = frame(&payloads);
        // The unmutated seed exercises the real flows.
        apply_unverified(&seed);
        let mut s = State::open();
        let modules = CompiledModules::default();
        for op in &ops {
            let _ = s.apply(op.id(), op.op(), &modules);
        }
        assert!(s.tasks.values().any(|t| t.status == crate::core::state::TaskStatus::Completed));
        let mut x: u64 = 0x1234_5678_9ABC_DEF1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..3_000 {
            let mut b = seed.clone();
            for _ in 0..1 + next() % 6 {
                let pos = (next() as usize) % b.len();
                b[pos] = next() as u8;
            }
            apply_unverified(&b);
        }
        own_actions(&seed);
        for _ in 0..200 {
            let mut b = seed.clone();
            for _ in 0..1 + next() % 6 {
                let pos = (next() as usize) % b.len();
                b[pos] = next() as u8;
            }
            own_actions(&b);
        }
        for op in ops.iter().take(5) {
            let mut b = op.bytes().to_vec();
            let pos = (next() as usize) % b.len();
            b[pos] ^= 0x55;
            decode_verify_apply(&b);
            decode_verify_apply(op.bytes());
        }
    }
}
