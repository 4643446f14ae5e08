//! State snapshots and checkpoint records: what a node persists to reload
//! in constant time and what a joining node fetches instead of the whole
//! history (`docs/PROTOCOL.md` "Finality", "Snapshot join").
//!
//! **Snapshot bytes** are the state's JSON (deterministic: every map is a
//! `BTreeMap`, every number an integer) followed by what the JSON leaves
//! out: assembled module bytes (checked against their content hash) and
//! pending module pieces. Validators sign SHA-256 of exactly these bytes,
//! so a snapshot is verified by hashing it: any change to any field is a
//! different hash, whichever fields the canonical state hash covers.
//!
//! **A checkpoint record** is the final checkpoint with its certificate:
//! epoch, frontier (each author's last op, with its HLC), equivocators,
//! and the quorum's signed vote ops. [`verify`] checks it against the
//! snapshot and the rules.

use crate::codec::{DecodeError, Reader, Writer};
use crate::core::finality::{Final, Forks, Frontier, Head, finality_quorum, frontier_hash};
use crate::core::genesis::Genesis;
use crate::core::hlc::Hlc;
use crate::core::op::{OpBody, OpId, SignedOp, VerifiedOp};
use crate::core::state::State;
use crate::core::upgrade::{MAX_MODULE_BYTES, MAX_PIECE_BYTES, ModuleHash, module_hash};
use crate::identity::NodeId;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Largest snapshot accepted (decoded into memory at once).
pub const MAX_SNAPSHOT_BYTES: usize = 128 * 1024 * 1024;
/// Most votes a certificate carries (far above any validator set).
pub const MAX_CERTIFICATE_VOTES: usize = 1_024;
/// Most heads or equivocators a record lists.
pub const MAX_RECORD_AUTHORS: usize = 10_000_000;

const SNAPSHOT_MAGIC: &[u8; 8] = b"SNGSNAP1";
const RECORD_MAGIC: &[u8; 8] = b"SNGCKPT1";

/// SHA-256 of snapshot bytes: what validators sign as `state`.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The snapshot bytes of `state`.
pub fn encode_state(state: &State) -> Vec<u8> {
    // Serializing a state of integers, strings and BTreeMaps cannot fail.
    let json = serde_json::to_vec(state).unwrap_or_default();
    let mut w = Writer::with_capacity(json.len() + 64);
    w.raw(SNAPSHOT_MAGIC).bytes(&json);
    let up = &state.upgrades;
    w.u32(up.modules.len() as u32);
    for (h, m) in &up.modules {
        w.raw(&h.0).bytes(&m.bytes);
    }
    let pieces: Vec<_> = up
        .pending
        .iter()
        .flat_map(|(h, by)| by.iter().flat_map(move |(a, pm)| pm.pieces.iter().map(move |(i, b)| (h, a, *i, b))))
        .collect();
    w.u32(pieces.len() as u32);
    for (h, a, i, b) in pieces {
        w.raw(&h.0).raw(&a.0).u16(i).bytes(b);
    }
    w.finish()
}

fn bad(e: impl std::fmt::Display) -> String {
    format!("snapshot: {e}")
}

/// Decodes snapshot bytes; every module's bytes must hash to its key.
pub fn decode_state(bytes: &[u8]) -> Result<State, String> {
    if bytes.len() > MAX_SNAPSHOT_BYTES {
        return Err(bad(format!("{} bytes, at most {MAX_SNAPSHOT_BYTES}", bytes.len())));
    }
    let mut r = Reader::new(bytes);
    if &r.array::<8>().map_err(bad)? != SNAPSHOT_MAGIC {
        return Err(bad("not a Synapse-NG state snapshot"));
    }
    let json = r.bytes("state", MAX_SNAPSHOT_BYTES).map_err(bad)?;
    let mut state: State = serde_json::from_slice(json).map_err(bad)?;
    let n = r.u32().map_err(bad)? as usize;
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        let h = ModuleHash(r.array().map_err(bad)?);
        let b = r.bytes("module", MAX_MODULE_BYTES).map_err(bad)?;
        if module_hash(b) != h.0 || !seen.insert(h) {
            return Err(bad("a module's bytes do not match its hash"));
        }
        let Some(m) = state.upgrades.modules.get_mut(&h) else {
            return Err(bad("bytes of a module the state does not list"));
        };
        m.bytes = Arc::new(b.to_vec());
    }
    if seen.len() != state.upgrades.modules.len() {
        return Err(bad("a listed module's bytes are missing"));
    }
    let n = r.u32().map_err(bad)? as usize;
    for _ in 0..n {
        let h = ModuleHash(r.array().map_err(bad)?);
        let a = NodeId(r.array().map_err(bad)?);
        let i = r.u16().map_err(bad)?;
        let b = r.bytes("piece", MAX_PIECE_BYTES).map_err(bad)?;
        let Some(pm) = state.upgrades.pending.get_mut(&h).and_then(|by| by.get_mut(&a)) else {
            return Err(bad("a piece of a module the state does not list"));
        };
        if pm.pieces.insert(i, b.to_vec()).is_some() {
            return Err(bad("a piece given twice"));
        }
    }
    r.finish().map_err(bad)?;
    Ok(state)
}

/// A final checkpoint with its certificate, as persisted and served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub epoch: u64,
    pub end_ms: u64,
    pub frontier: Frontier,
    pub forks: Forks,
    pub state_hash: [u8; 32],
    /// The quorum's vote ops (signed `checkpoint` ops).
    pub certificate: Vec<VerifiedOp>,
}

impl Record {
    pub fn of(f: &Final, certificate: Vec<VerifiedOp>) -> Record {
        Record {
            epoch: f.epoch,
            end_ms: f.end_ms,
            frontier: f.frontier.clone(),
            forks: f.forks.clone(),
            state_hash: f.state_hash,
            certificate,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64 + self.frontier.len() * 84);
        w.raw(RECORD_MAGIC).u64(self.epoch).u64(self.end_ms).raw(&self.state_hash);
        w.u32(self.frontier.len() as u32);
        for (a, h) in &self.frontier {
            w.raw(&a.0).u64(h.seq).raw(&h.id.0).u64(h.hlc.ms).u32(h.hlc.logical);
        }
        w.u32(self.forks.len() as u32);
        for (a, s) in &self.forks {
            w.raw(&a.0).u64(*s);
        }
        w.u32(self.certificate.len() as u32);
        for v in &self.certificate {
            w.bytes(v.bytes());
        }
        w.finish()
    }

    /// Decodes a record and checks its votes' signatures (not yet that they
    /// make a quorum: that needs the state, see [`verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Record, String> {
        let e = |e: DecodeError| format!("checkpoint record: {e}");
        let mut r = Reader::new(bytes);
        if &r.array::<8>().map_err(e)? != RECORD_MAGIC {
            return Err("checkpoint record: not a Synapse-NG checkpoint".into());
        }
        let epoch = r.u64().map_err(e)?;
        let end_ms = r.u64().map_err(e)?;
        let state_hash = r.array().map_err(e)?;
        let n = r.u32().map_err(e)? as usize;
        if n > MAX_RECORD_AUTHORS {
            return Err(format!("checkpoint record: {n} authors, at most {MAX_RECORD_AUTHORS}"));
        }
        let mut frontier = Frontier::new();
        for _ in 0..n {
            let a = NodeId(r.array().map_err(e)?);
            let head = Head {
                seq: r.u64().map_err(e)?,
                id: OpId(r.array().map_err(e)?),
                hlc: Hlc::new(r.u64().map_err(e)?, r.u32().map_err(e)?),
            };
            if frontier.insert(a, head).is_some() || head.seq == 0 {
                return Err("checkpoint record: a frontier author twice or at seq 0".into());
            }
        }
        let n = r.u32().map_err(e)? as usize;
        if n > MAX_RECORD_AUTHORS {
            return Err(format!("checkpoint record: {n} equivocators, at most {MAX_RECORD_AUTHORS}"));
        }
        let mut forks = Forks::new();
        for _ in 0..n {
            let a = NodeId(r.array().map_err(e)?);
            forks.insert(a, r.u64().map_err(e)?);
        }
        let n = r.u32().map_err(e)? as usize;
        if n > MAX_CERTIFICATE_VOTES {
            return Err(format!("checkpoint record: {n} votes, at most {MAX_CERTIFICATE_VOTES}"));
        }
        let mut certificate = Vec::with_capacity(n);
        for _ in 0..n {
            let b = r.bytes("vote", crate::core::op::MAX_OP_BYTES).map_err(e)?;
            let v = SignedOp::decode(b)
                .and_then(SignedOp::verify)
                .map_err(|x| format!("checkpoint record: a vote: {x}"))?;
            certificate.push(v);
        }
        r.finish().map_err(e)?;
        Ok(Record { epoch, end_ms, frontier, forks, state_hash, certificate })
    }
}

/// Checks a record and its snapshot against the network's genesis: the
/// snapshot hashes to the signed state, the frontier to the signed
/// frontier, and the votes are from a quorum (rule `finality_quorum`) of
/// the validators of that state, each signed in time for that epoch. The
/// validator set is the one the snapshot names: see "Snapshot join" in
/// `docs/PROTOCOL.md` for what that trusts.
pub fn verify(genesis: &Genesis, rec: &Record, snapshot: &[u8]) -> Result<(Final, State), String> {
    verify_digested(genesis, rec, snapshot, digest(snapshot))
}

/// [`verify`] with the snapshot's SHA-256 computed by the caller (the page
/// hashes with WebCrypto: native code, where wasm's SHA-256 runs in the
/// engine's baseline tier at start-up). `snapshot_digest` must be
/// [`digest`]`(snapshot)`; anything else is refused as a mismatch or, if a
/// caller lies, makes it trust bytes it did not hash.
pub fn verify_digested(
    genesis: &Genesis,
    rec: &Record,
    snapshot: &[u8],
    snapshot_digest: [u8; 32],
) -> Result<(Final, State), String> {
    let epochs = crate::core::finality::Epochs::of(&genesis.rules).ok_or("this network has no finality")?;
    if epochs.end_ms(rec.epoch) != rec.end_ms {
        return Err("checkpoint record: its end does not match its epoch".into());
    }
    if snapshot_digest != rec.state_hash {
        return Err("snapshot: its bytes do not hash to the signed state".into());
    }
    let state = decode_state(snapshot)?;
    if state.genesis != genesis.hash() {
        return Err("snapshot: it belongs to another network".into());
    }
    let fh = frontier_hash(&rec.frontier, &rec.forks);
    let validators: BTreeSet<NodeId> = state.compute_validators(rec.end_ms).into_iter().collect();
    let mut signers = BTreeMap::new();
    for v in &rec.certificate {
        let o = v.op();
        let OpBody::Checkpoint(c) = &o.body else {
            return Err("checkpoint record: a certificate op is not a vote".into());
        };
        if c.epoch != rec.epoch || c.frontier != fh || c.state != rec.state_hash {
            return Err("checkpoint record: a vote signs another checkpoint".into());
        }
        if !epochs.vote_in_time(c.epoch, o.hlc.ms) {
            return Err("checkpoint record: a vote is dated before its epoch could be signed".into());
        }
        if validators.contains(&o.author) {
            signers.insert(o.author, ());
        }
    }
    let quorum = finality_quorum(validators.len(), genesis.rules.validator_floor);
    if signers.len() < quorum {
        return Err(format!(
            "checkpoint record: {} of {} validators signed, {quorum} needed",
            signers.len(),
            validators.len()
        ));
    }
    let f = Final {
        epoch: rec.epoch,
        end_ms: rec.end_ms,
        frontier: rec.frontier.clone(),
        forks: rec.forks.clone(),
        frontier_hash: fh,
        state_hash: rec.state_hash,
        signers: signers.into_keys().collect(),
    };
    Ok((f, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::replica::Replica;

    #[test]
    fn snapshot_round_trips_the_golden_state_with_its_modules() {
        let mut r = Replica::open();
        for op in crate::core::vectors::golden_history() {
            r.receive_verified(op, u64::MAX / 2);
        }
        let s = r.state();
        assert!(!s.upgrades.modules.is_empty(), "the golden history assembles a module");
        let bytes = encode_state(s);
        let back = decode_state(&bytes).unwrap();
        assert_eq!(&back, s);
        assert_eq!(back.state_hash(), s.state_hash());
        assert_eq!(encode_state(&back), bytes, "one encoding per state");
    }

    #[test]
    fn snapshot_any_flipped_byte_is_refused_or_changes_the_digest() {
        let mut r = Replica::open();
        for op in crate::core::vectors::golden_history() {
            r.receive_verified(op, u64::MAX / 2);
        }
        let bytes = encode_state(r.state());
        let d = digest(&bytes);
        for i in (0..bytes.len()).step_by(97) {
            let mut b = bytes.clone();
            b[i] ^= 0x20;
            assert_ne!(digest(&b), d);
            let _ = decode_state(&b); // never panics
        }
        assert!(decode_state(&bytes[..bytes.len() - 1]).is_err());
    }
}
