//! Messages exchanged between two nodes over their DataChannel.
//!
//! ```text
//! message = version:u8 (=1) tag:u8 body
//! 1 AuthHello  node_id:[32] nonce:[32] genesis:[32]
//! 2 AuthProof  signature:[64]
//! 3 Hello      author:[32] text:str(<= 1000 B) signature:[64]
//! 4 Ping       id:u64
//! 5 Pong       id:u64
//! 6 Blob       data:bytes(<= 4 MiB)          (bulk transfer / throughput)
//! 7 PeerRecord node_id:[32] issued_ms:u64 n:u16 neighbors:[32]*n (n <= 64) signature:[64]
//! 8 Relay      from:[32] to:[32] ttl:u8 payload:bytes(<= 20 KiB) signature:[64]
//! 9 SnapAsk    epoch_min:u64 index:u32
//! 10 SnapPart  epoch:u64 index:u32 count:u32 bytes:bytes(<= 4 MiB)
//! ```
//! `SnapAsk`/`SnapPart` carry a final checkpoint to a joining node
//! (`snapshot_sync.rs`): part 0 is the record and the chunk manifest, parts
//! `1..=count` the snapshot chunks; `count = 0` means "I have none".
//! Every message is decoded strictly (no trailing bytes, capped lengths).

use crate::codec::{DecodeError, Reader, Writer};
use crate::identity::{Identity, NodeId};

/// The only wire version this node speaks.
pub const WIRE_VERSION: u8 = 1;
/// Longest hello text, in bytes.
pub const MAX_HELLO_BYTES: usize = 1000;
/// Largest blob accepted.
pub const MAX_BLOB: usize = 4 * 1024 * 1024;
/// Largest message accepted from a peer (a blob plus headers).
pub const MAX_MESSAGE: usize = MAX_BLOB + 64;
/// Domain of the signature over a hello.
pub const HELLO_DOMAIN: &[u8] = b"synapse-ng/hello/v1";
/// Domain of a node's signed list of its proven neighbours.
pub const PEER_RECORD_DOMAIN: &[u8] = b"synapse-ng/peer-record/v1";
/// Domain of a signal relayed through peers.
pub const RELAY_DOMAIN: &[u8] = b"synapse-ng/relay-signal/v1";
/// Neighbours listed in one peer record.
pub const MAX_NEIGHBORS: usize = 64;
/// Largest relayed signal payload (an SDP is at most 16 KiB).
pub const MAX_RELAY_PAYLOAD: usize = 20 * 1024;

/// One message between peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireMsg {
    /// `genesis`: the hash naming the sender's network (rule
    /// `same_genesis`: peers of another network are refused).
    AuthHello {
        node_id: NodeId,
        nonce: [u8; 32],
        genesis: [u8; 32],
    },
    AuthProof {
        signature: [u8; 64],
    },
    Hello(SignedHello),
    Ping(u64),
    Pong(u64),
    Blob(Vec<u8>),
    PeerRecord(PeerRecord),
    Relay(RelaySignal),
    /// Asks for part `index` of the sender's last final checkpoint, if its
    /// epoch is at least `epoch_min`.
    SnapAsk {
        epoch_min: u64,
        index: u32,
    },
    SnapPart(SnapPart),
}

/// One part of a final checkpoint sent to a joining node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapPart {
    pub epoch: u64,
    pub index: u32,
    /// Snapshot chunks (parts `1..=count`); 0: the sender has no checkpoint.
    pub count: u32,
    pub bytes: Vec<u8>,
}

/// A node's signed statement of which peers it is connected to (proven),
/// at a time of its own clock. Peers use it to find more peers and to route
/// signals when the rendezvous is gone. `issued_ms` only orders a node's
/// own records; nobody compares it with their clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRecord {
    pub node_id: NodeId,
    pub issued_ms: u64,
    pub neighbors: Vec<NodeId>,
    pub signature: [u8; 64],
}

impl PeerRecord {
    /// Signs a record for `identity` (at most [`MAX_NEIGHBORS`] neighbours
    /// are kept).
    pub fn sign(identity: &Identity, issued_ms: u64, mut neighbors: Vec<NodeId>) -> PeerRecord {
        neighbors.truncate(MAX_NEIGHBORS);
        let node_id = identity.node_id();
        let signature = identity.sign(PEER_RECORD_DOMAIN, &record_payload(&node_id, issued_ms, &neighbors));
        PeerRecord { node_id, issued_ms, neighbors, signature }
    }

    /// Checks the author's signature.
    pub fn verify(&self) -> bool {
        self.neighbors.len() <= MAX_NEIGHBORS
            && self
                .node_id
                .verify(
                    PEER_RECORD_DOMAIN,
                    &record_payload(&self.node_id, self.issued_ms, &self.neighbors),
                    &self.signature,
                )
                .is_ok()
    }
}

fn record_payload(node_id: &NodeId, issued_ms: u64, neighbors: &[NodeId]) -> Vec<u8> {
    let mut w = Writer::with_capacity(44 + 32 * neighbors.len());
    w.raw(&node_id.0).u64(issued_ms).u16(neighbors.len() as u16);
    for n in neighbors {
        w.raw(&n.0);
    }
    w.finish()
}

/// A WebRTC signal (a JSON [`crate::signaling::PeerSignal`]) from `from` to
/// `to`, carried through a common peer when the rendezvous is unreachable.
/// Signed by `from`, so the relay cannot forge or alter it; `ttl` (not
/// signed) bounds how far it travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySignal {
    pub from: NodeId,
    pub to: NodeId,
    pub ttl: u8,
    pub payload: Vec<u8>,
    pub signature: [u8; 64],
}

impl RelaySignal {
    pub fn sign(identity: &Identity, to: NodeId, ttl: u8, payload: Vec<u8>) -> RelaySignal {
        let from = identity.node_id();
        let signature = identity.sign(RELAY_DOMAIN, &relay_payload(&from, &to, &payload));
        RelaySignal { from, to, ttl, payload, signature }
    }

    pub fn verify(&self) -> bool {
        self.payload.len() <= MAX_RELAY_PAYLOAD
            && self
                .from
                .verify(RELAY_DOMAIN, &relay_payload(&self.from, &self.to, &self.payload), &self.signature)
                .is_ok()
    }
}

fn relay_payload(from: &NodeId, to: &NodeId, payload: &[u8]) -> Vec<u8> {
    let mut w = Writer::with_capacity(68 + payload.len());
    w.raw(&from.0).raw(&to.0).bytes(payload);
    w.finish()
}

/// A short text signed by its author; peers show it with the verified author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHello {
    pub author: NodeId,
    pub text: String,
    pub signature: [u8; 64],
}

/// Why a hello was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloError {
    Empty,
    TooLong(usize),
    BadSignature,
}

impl std::fmt::Display for HelloError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HelloError::Empty => f.write_str("hello text is empty"),
            HelloError::TooLong(n) => {
                write!(f, "hello text is {n} bytes, the limit is {MAX_HELLO_BYTES}")
            }
            HelloError::BadSignature => f.write_str("hello signature does not verify"),
        }
    }
}

impl std::error::Error for HelloError {}

impl SignedHello {
    /// Signs `text` as `identity`. Refuses empty or over-long text.
    pub fn sign(identity: &Identity, text: &str) -> Result<SignedHello, HelloError> {
        check_hello_text(text)?;
        let author = identity.node_id();
        let signature = identity.sign(HELLO_DOMAIN, &hello_payload(&author, text));
        Ok(SignedHello { author, text: text.to_owned(), signature })
    }

    /// Checks the text limits and the author's signature.
    pub fn verify(&self) -> Result<(), HelloError> {
        check_hello_text(&self.text)?;
        self.author
            .verify(HELLO_DOMAIN, &hello_payload(&self.author, &self.text), &self.signature)
            .map_err(|_| HelloError::BadSignature)
    }
}

fn check_hello_text(text: &str) -> Result<(), HelloError> {
    if text.trim().is_empty() {
        return Err(HelloError::Empty);
    }
    if text.len() > MAX_HELLO_BYTES {
        return Err(HelloError::TooLong(text.len()));
    }
    Ok(())
}

fn hello_payload(author: &NodeId, text: &str) -> Vec<u8> {
    let mut w = Writer::with_capacity(36 + text.len());
    w.raw(&author.0).str(text);
    w.finish()
}

impl WireMsg {
    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(WIRE_VERSION);
        match self {
            WireMsg::AuthHello { node_id, nonce, genesis } => {
                w.u8(1).raw(&node_id.0).raw(nonce).raw(genesis);
            }
            WireMsg::AuthProof { signature } => {
                w.u8(2).raw(signature);
            }
            WireMsg::Hello(h) => {
                w.u8(3).raw(&h.author.0).str(&h.text).raw(&h.signature);
            }
            WireMsg::Ping(id) => {
                w.u8(4).u64(*id);
            }
            WireMsg::Pong(id) => {
                w.u8(5).u64(*id);
            }
            WireMsg::Blob(data) => {
                w.u8(6).bytes(data);
            }
            WireMsg::PeerRecord(r) => {
                w.u8(7).raw(&r.node_id.0).u64(r.issued_ms).u16(r.neighbors.len() as u16);
                for n in &r.neighbors {
                    w.raw(&n.0);
                }
                w.raw(&r.signature);
            }
            WireMsg::Relay(r) => {
                w.u8(8).raw(&r.from.0).raw(&r.to.0).u8(r.ttl).bytes(&r.payload).raw(&r.signature);
            }
            WireMsg::SnapAsk { epoch_min, index } => {
                w.u8(9).u64(*epoch_min).u32(*index);
            }
            WireMsg::SnapPart(p) => {
                w.u8(10).u64(p.epoch).u32(p.index).u32(p.count).bytes(&p.bytes);
            }
        }
        w.finish()
    }

    /// Strict decoding of a message from a peer.
    pub fn decode(buf: &[u8]) -> Result<WireMsg, DecodeError> {
        let mut r = Reader::new(buf);
        let v = r.u8()?;
        if v != WIRE_VERSION {
            return Err(DecodeError::UnknownVersion(v));
        }
        let msg = match r.u8()? {
            1 => WireMsg::AuthHello { node_id: NodeId(r.array()?), nonce: r.array()?, genesis: r.array()? },
            2 => WireMsg::AuthProof { signature: r.array()? },
            3 => WireMsg::Hello(SignedHello {
                author: NodeId(r.array()?),
                text: r.str("hello text", MAX_HELLO_BYTES)?.to_owned(),
                signature: r.array()?,
            }),
            4 => WireMsg::Ping(r.u64()?),
            5 => WireMsg::Pong(r.u64()?),
            6 => WireMsg::Blob(r.bytes("blob", MAX_BLOB)?.to_vec()),
            7 => {
                let node_id = NodeId(r.array()?);
                let issued_ms = r.u64()?;
                let n = r.u16()? as usize;
                if n > MAX_NEIGHBORS {
                    return Err(DecodeError::TooLong { field: "neighbors", len: n, max: MAX_NEIGHBORS });
                }
                let mut neighbors = Vec::with_capacity(n);
                for _ in 0..n {
                    neighbors.push(NodeId(r.array()?));
                }
                WireMsg::PeerRecord(PeerRecord { node_id, issued_ms, neighbors, signature: r.array()? })
            }
            8 => WireMsg::Relay(RelaySignal {
                from: NodeId(r.array()?),
                to: NodeId(r.array()?),
                ttl: r.u8()?,
                payload: r.bytes("relay payload", MAX_RELAY_PAYLOAD)?.to_vec(),
                signature: r.array()?,
            }),
            9 => WireMsg::SnapAsk { epoch_min: r.u64()?, index: r.u32()? },
            10 => WireMsg::SnapPart(SnapPart {
                epoch: r.u64()?,
                index: r.u32()?,
                count: r.u32()?,
                bytes: r.bytes("snapshot part", MAX_BLOB)?.to_vec(),
            }),
            t => return Err(DecodeError::UnknownTag(t)),
        };
        r.finish()?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        let me = Identity::from_seed([1; 32]);
        let msgs = vec![
            WireMsg::AuthHello { node_id: me.node_id(), nonce: [3; 32], genesis: [4; 32] },
            WireMsg::AuthProof { signature: [4; 64] },
            WireMsg::Hello(SignedHello::sign(&me, "hi there").unwrap()),
            WireMsg::Ping(7),
            WireMsg::Pong(8),
            WireMsg::Blob(vec![1, 2, 3]),
            WireMsg::SnapAsk { epoch_min: 3, index: 4 },
            WireMsg::SnapPart(SnapPart { epoch: 3, index: 1, count: 2, bytes: vec![5; 10] }),
            WireMsg::PeerRecord(PeerRecord::sign(&me, 5, vec![Identity::from_seed([2; 32]).node_id()])),
            WireMsg::Relay(RelaySignal::sign(&me, Identity::from_seed([2; 32]).node_id(), 1, b"{}".to_vec())),
        ];
        for m in msgs {
            assert_eq!(WireMsg::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn decoding_is_strict() {
        assert_eq!(WireMsg::decode(&[2, 4]), Err(DecodeError::UnknownVersion(2)));
        assert_eq!(WireMsg::decode(&[1, 99]), Err(DecodeError::UnknownTag(99)));
        assert_eq!(WireMsg::decode(&[1, 4, 0]), Err(DecodeError::Truncated));
        let mut ping = WireMsg::Ping(1).encode();
        ping.push(0);
        assert_eq!(WireMsg::decode(&ping), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn peer_records_and_relays_are_signed_by_their_author() {
        let me = Identity::from_seed([1; 32]);
        let other = Identity::from_seed([2; 32]).node_id();
        let r = PeerRecord::sign(&me, 9, vec![other]);
        assert!(r.verify());
        let mut forged = r.clone();
        forged.neighbors.push(me.node_id());
        assert!(!forged.verify());
        let relay = RelaySignal::sign(&me, other, 1, b"{\"a\":1}".to_vec());
        assert!(relay.verify());
        let mut redirected = relay.clone();
        redirected.to = me.node_id();
        assert!(!redirected.verify());
        let mut ttl_changed = relay.clone();
        ttl_changed.ttl = 0;
        assert!(ttl_changed.verify(), "ttl is hop bookkeeping, not signed");
        let too_many = WireMsg::PeerRecord(PeerRecord { neighbors: vec![other; 65], ..r });
        assert!(matches!(WireMsg::decode(&too_many.encode()), Err(DecodeError::TooLong { .. })));
    }

    #[test]
    fn hello_signature_binds_author_and_text() {
        let me = Identity::from_seed([1; 32]);
        let h = SignedHello::sign(&me, "hello").unwrap();
        assert!(h.verify().is_ok());
        let mut forged = h.clone();
        forged.text = "hellO".into();
        assert_eq!(forged.verify(), Err(HelloError::BadSignature));
        let mut stolen = h.clone();
        stolen.author = Identity::from_seed([2; 32]).node_id();
        assert_eq!(stolen.verify(), Err(HelloError::BadSignature));
        assert_eq!(SignedHello::sign(&me, "  ").unwrap_err(), HelloError::Empty);
        assert!(matches!(SignedHello::sign(&me, &"x".repeat(1001)), Err(HelloError::TooLong(1001))));
    }
}
