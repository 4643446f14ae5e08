//! SynapseSub wire format: messages, control messages and their strict
//! binary encoding.
//!
//! ```text
//! packet = version:u8 (=2) tag:u8 body              (integers big-endian)
//! 0x10 ANNOUNCE    n:u16 (≤ 64) { subscribe:u8 (0|1) topic:str }
//! 0x11 MESSAGE     n:u16 (1..=64) { topic:str origin:[32] seq:u64 (≥ 1) hops:u8 payload:bytes (≤ 64 KiB) }
//! 0x12 I_HAVE      topic:str flags:u8 n:u16 (≤ 256) { id:[32] } m:u16 (≤ 128)
//!                  { origin:[32] seq:u64 linked:u64 (≤ seq) head:[32] }
//!                  [digest:[16] if flags & DIGEST]
//! 0x13 WANT_PIECE  n:u16 (≤ 256) { id:[32] } m:u16 (≤ 64) { topic:str origin:[32] from:u64 to:u64 }
//!                  (1 ≤ from ≤ to, to - from < 256)
//! 0x14 GRAFT       topic:str
//! 0x15 PRUNE       topic:str backoff_ms:u32
//! str = len:u32 utf8 (topic: 1..=128 bytes of [A-Za-z0-9:_.-])
//! ```
//!
//! The tags start at 0x10 so that they never collide with the transport
//! messages of `wire.rs` (1..=6) on the same DataChannel.
//!
//! A message's id is **not** on the wire: the receiver computes it as
//! SHA-256 of the payload, so a peer cannot make two different payloads
//! share an id (or one payload wear two ids) to poison the seen cache.
//! `hops` is informational (metrics only): it is not authenticated.

use crate::codec::{DecodeError, Reader, Writer};
use crate::identity::NodeId;
use sha2::{Digest, Sha256};
use std::fmt;

/// The only SynapseSub packet version this node speaks.
///
/// Version 2: version-vector entries carry the linked prefix and its head
/// id, and the digest is 16 bytes (content, not only seqs, is compared).
pub const PUBSUB_VERSION: u8 = 2;
pub const TAG_ANNOUNCE: u8 = 0x10;
pub const TAG_MESSAGE: u8 = 0x11;
pub const TAG_IHAVE: u8 = 0x12;
pub const TAG_WANT: u8 = 0x13;
pub const TAG_GRAFT: u8 = 0x14;
pub const TAG_PRUNE: u8 = 0x15;
/// One message in the stem phase (rule `stem_before_fluff`).
pub const TAG_STEM: u8 = 0x16;

/// Longest topic name, in bytes.
pub const MAX_TOPIC: usize = 128;
/// Largest message payload.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Largest packet accepted (checked before decoding anything).
pub const MAX_PACKET: usize = 256 * 1024;
/// Topics in one ANNOUNCE.
pub const MAX_ANNOUNCE: usize = 64;
/// Messages in one MESSAGE packet.
pub const MAX_BATCH: usize = 64;
/// Ids in one I_HAVE or WANT_PIECE.
pub const MAX_IDS: usize = 256;
/// Version-vector entries in one I_HAVE.
pub const MAX_VV: usize = 128;
/// Ranges in one WANT_PIECE.
pub const MAX_RANGES: usize = 64;
/// Seqs in one range.
pub const MAX_RANGE_LEN: u64 = 256;
/// I_HAVE flag: the sender wants the receiver's full version vector back.
pub const FLAG_REPLY: u8 = 1;
/// I_HAVE flag: a 16-byte digest of the sender's full version vector follows.
pub const FLAG_DIGEST: u8 = 2;

/// A message id: SHA-256 of the payload.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgId(pub [u8; 32]);

impl MsgId {
    pub fn of(payload: &[u8]) -> MsgId {
        MsgId(Sha256::digest(payload).into())
    }
}

impl fmt::Debug for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MsgId({})", hex::encode(&self.0[..4]))
    }
}

/// A published message: an opaque payload on a topic, numbered by its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    /// The node that published it (the app's validator checks that the
    /// payload really is that node's, e.g. by its signature).
    pub origin: NodeId,
    /// The origin's sequence number on this topic, from 1. Version vectors
    /// count contiguous seqs per origin.
    pub seq: u64,
    /// Hops travelled so far (informational).
    pub hops: u8,
    pub payload: Vec<u8>,
}

impl Message {
    pub fn id(&self) -> MsgId {
        MsgId::of(&self.payload)
    }

    /// Encoded size inside a MESSAGE packet.
    pub fn encoded_len(&self) -> usize {
        4 + self.topic.len() + 32 + 8 + 1 + 4 + self.payload.len()
    }
}

/// Length of a version-vector digest.
pub const DIGEST_LEN: usize = 16;

/// One origin's entry in a version vector: how far its messages are held,
/// and a commitment to their content.
///
/// - `seq`: highest contiguous seq (every seq in `1..=seq` is held);
/// - `linked`: the longest prefix `1..=linked` that is one hash-linked chain
///   (one message per seq, each naming the one before it as its
///   predecessor, see `Router::set_linker`); `linked ≤ seq`, and
///   `linked < seq` means the sender holds a fork or a broken link at
///   `linked + 1`;
/// - `head`: the id of the message at `linked` (zero when `linked` is 0).
///   With hash-linked payloads it commits to every message of the prefix,
///   so equal heads mean equal prefixes. A zero head with `linked > 0`
///   makes no claim and is not compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VvEntry {
    pub origin: NodeId,
    pub seq: u64,
    pub linked: u64,
    pub head: MsgId,
}

impl VvEntry {
    /// An entry that claims seqs only, no content (a zero head with
    /// `linked > 0` is never compared).
    pub fn seqs_only(origin: NodeId, seq: u64) -> VvEntry {
        VvEntry { origin, seq, linked: seq, head: MsgId([0; 32]) }
    }
}

/// One contiguous run of an origin's seqs on a topic, asked for in catch-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqRange {
    pub topic: String,
    pub origin: NodeId,
    pub from: u64,
    pub to: u64,
}

/// One SynapseSub packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Subscription changes: `(subscribe, topic)`.
    Announce(Vec<(bool, String)>),
    /// One live message, or a batch of catch-up replies.
    Message(Vec<Message>),
    /// Lazy gossip of recent ids, and/or a version-vector summary
    /// (see [`VvEntry`]), and/or a digest of the full one.
    IHave {
        topic: String,
        flags: u8,
        ids: Vec<MsgId>,
        vv: Vec<VvEntry>,
        digest: Option<[u8; DIGEST_LEN]>,
    },
    /// Asks for pieces by id and by seq range.
    Want {
        ids: Vec<MsgId>,
        ranges: Vec<SeqRange>,
    },
    Graft(String),
    Prune {
        topic: String,
        backoff_ms: u32,
    },
    /// One message in the stem phase: relayed to one peer, not delivered
    /// or gossiped until a node fluffs it (rule `stem_before_fluff`).
    Stem(Message),
}

/// Whether `t` is an acceptable topic name (`channel:{id}:ops`, `global:ops`, ...).
pub fn valid_topic(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= MAX_TOPIC
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.' | b'-'))
}

/// The topic carrying a channel's ops.
pub fn channel_topic(channel: &str) -> String {
    format!("channel:{channel}:ops")
}

/// The network-wide topic.
pub const GLOBAL_TOPIC: &str = "global:ops";

fn read_topic(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let t = r.str("topic", MAX_TOPIC)?;
    if !valid_topic(t) {
        return Err(DecodeError::Invalid("topic"));
    }
    Ok(t.to_owned())
}

fn write_message(w: &mut Writer, m: &Message) {
    w.str(&m.topic).raw(&m.origin.0).u64(m.seq).u8(m.hops).bytes(&m.payload);
}

fn read_message(r: &mut Reader<'_>) -> Result<Message, DecodeError> {
    let topic = read_topic(r)?;
    let origin = NodeId(r.array()?);
    let seq = r.u64()?;
    if seq == 0 {
        return Err(DecodeError::Invalid("seq"));
    }
    let hops = r.u8()?;
    let payload = r.bytes("payload", MAX_PAYLOAD)?.to_vec();
    Ok(Message { topic, origin, seq, hops, payload })
}

fn read_count(r: &mut Reader<'_>, field: &'static str, max: usize) -> Result<usize, DecodeError> {
    let n = r.u16()? as usize;
    if n > max {
        return Err(DecodeError::TooLong { field, len: n, max });
    }
    Ok(n)
}

impl Packet {
    /// The packet's tag byte (for counters).
    pub fn tag(&self) -> u8 {
        match self {
            Packet::Announce(_) => TAG_ANNOUNCE,
            Packet::Message(_) => TAG_MESSAGE,
            Packet::IHave { .. } => TAG_IHAVE,
            Packet::Want { .. } => TAG_WANT,
            Packet::Graft(_) => TAG_GRAFT,
            Packet::Prune { .. } => TAG_PRUNE,
            Packet::Stem(_) => TAG_STEM,
        }
    }

    /// Canonical encoding. Callers keep lists under the caps; `decode`
    /// enforces them.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64);
        w.u8(PUBSUB_VERSION).u8(self.tag());
        match self {
            Packet::Announce(subs) => {
                w.u16(subs.len() as u16);
                for (sub, topic) in subs {
                    w.u8(*sub as u8).str(topic);
                }
            }
            Packet::Message(msgs) => {
                w.u16(msgs.len() as u16);
                for m in msgs {
                    write_message(&mut w, m);
                }
            }
            Packet::IHave { topic, flags, ids, vv, digest } => {
                let flags = (flags & FLAG_REPLY) | if digest.is_some() { FLAG_DIGEST } else { 0 };
                w.str(topic).u8(flags).u16(ids.len() as u16);
                for id in ids {
                    w.raw(&id.0);
                }
                w.u16(vv.len() as u16);
                for e in vv {
                    w.raw(&e.origin.0).u64(e.seq).u64(e.linked).raw(&e.head.0);
                }
                if let Some(d) = digest {
                    w.raw(d);
                }
            }
            Packet::Want { ids, ranges } => {
                w.u16(ids.len() as u16);
                for id in ids {
                    w.raw(&id.0);
                }
                w.u16(ranges.len() as u16);
                for r in ranges {
                    w.str(&r.topic).raw(&r.origin.0).u64(r.from).u64(r.to);
                }
            }
            Packet::Graft(topic) => {
                w.str(topic);
            }
            Packet::Prune { topic, backoff_ms } => {
                w.str(topic).u32(*backoff_ms);
            }
            Packet::Stem(m) => write_message(&mut w, m),
        }
        w.finish()
    }

    /// Strict decoding of a packet from a peer: any violation is an error,
    /// never a panic, and no allocation exceeds the caps.
    pub fn decode(buf: &[u8]) -> Result<Packet, DecodeError> {
        if buf.len() > MAX_PACKET {
            return Err(DecodeError::TooLong { field: "packet", len: buf.len(), max: MAX_PACKET });
        }
        let mut r = Reader::new(buf);
        let v = r.u8()?;
        if v != PUBSUB_VERSION {
            return Err(DecodeError::UnknownVersion(v));
        }
        let p = match r.u8()? {
            TAG_ANNOUNCE => {
                let n = read_count(&mut r, "announce", MAX_ANNOUNCE)?;
                let mut subs = Vec::with_capacity(n);
                for _ in 0..n {
                    let sub = match r.u8()? {
                        0 => false,
                        1 => true,
                        _ => return Err(DecodeError::Invalid("subscribe flag")),
                    };
                    subs.push((sub, read_topic(&mut r)?));
                }
                Packet::Announce(subs)
            }
            TAG_MESSAGE => {
                let n = read_count(&mut r, "batch", MAX_BATCH)?;
                if n == 0 {
                    return Err(DecodeError::Invalid("empty batch"));
                }
                let mut msgs = Vec::with_capacity(n);
                for _ in 0..n {
                    msgs.push(read_message(&mut r)?);
                }
                Packet::Message(msgs)
            }
            TAG_STEM => Packet::Stem(read_message(&mut r)?),
            TAG_IHAVE => {
                let topic = read_topic(&mut r)?;
                let flags = r.u8()?;
                if flags & !(FLAG_REPLY | FLAG_DIGEST) != 0 {
                    return Err(DecodeError::Invalid("i_have flags"));
                }
                let n = read_count(&mut r, "i_have ids", MAX_IDS)?;
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    ids.push(MsgId(r.array()?));
                }
                let m = read_count(&mut r, "version vector", MAX_VV)?;
                let mut vv = Vec::with_capacity(m);
                for _ in 0..m {
                    let (origin, seq, linked, head) = (NodeId(r.array()?), r.u64()?, r.u64()?, MsgId(r.array()?));
                    if linked > seq {
                        return Err(DecodeError::Invalid("version vector linked beyond seq"));
                    }
                    vv.push(VvEntry { origin, seq, linked, head });
                }
                let digest = if flags & FLAG_DIGEST != 0 { Some(r.array()?) } else { None };
                Packet::IHave { topic, flags: flags & FLAG_REPLY, ids, vv, digest }
            }
            TAG_WANT => {
                let n = read_count(&mut r, "want ids", MAX_IDS)?;
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    ids.push(MsgId(r.array()?));
                }
                let m = read_count(&mut r, "want ranges", MAX_RANGES)?;
                let mut ranges = Vec::with_capacity(m);
                for _ in 0..m {
                    let topic = read_topic(&mut r)?;
                    let origin = NodeId(r.array()?);
                    let (from, to) = (r.u64()?, r.u64()?);
                    if from == 0 || to < from || to - from >= MAX_RANGE_LEN {
                        return Err(DecodeError::Invalid("seq range"));
                    }
                    ranges.push(SeqRange { topic, origin, from, to });
                }
                Packet::Want { ids, ranges }
            }
            TAG_GRAFT => Packet::Graft(read_topic(&mut r)?),
            TAG_PRUNE => Packet::Prune { topic: read_topic(&mut r)?, backoff_ms: r.u32()? },
            t => return Err(DecodeError::UnknownTag(t)),
        };
        r.finish()?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: u8) -> NodeId {
        NodeId([i; 32])
    }

    #[test]
    fn every_packet_round_trips() {
        let msg = Message { topic: "global:ops".into(), origin: node(1), seq: 3, hops: 2, payload: vec![1, 2, 3] };
        let packets = vec![
            Packet::Announce(vec![(true, "global:ops".into()), (false, channel_topic("dev"))]),
            Packet::Message(vec![msg.clone(), msg]),
            Packet::IHave { topic: "t".into(), flags: 0, ids: vec![MsgId([7; 32])], vv: vec![], digest: None },
            Packet::IHave {
                topic: "t".into(),
                flags: FLAG_REPLY,
                ids: vec![],
                vv: vec![VvEntry { origin: node(2), seq: 9, linked: 7, head: MsgId([4; 32]) }],
                digest: Some([5; DIGEST_LEN]),
            },
            Packet::Want {
                ids: vec![MsgId([1; 32])],
                ranges: vec![SeqRange { topic: "t".into(), origin: node(3), from: 1, to: 256 }],
            },
            Packet::Graft("channel:x:ops".into()),
            Packet::Prune { topic: "global:ops".into(), backoff_ms: 60_000 },
        ];
        for p in packets {
            assert_eq!(Packet::decode(&p.encode()).unwrap(), p, "{p:?}");
        }
    }

    #[test]
    fn decoding_is_strict() {
        assert_eq!(Packet::decode(&[1, TAG_GRAFT]), Err(DecodeError::UnknownVersion(1)));
        assert_eq!(Packet::decode(&[PUBSUB_VERSION, 0x99]), Err(DecodeError::UnknownTag(0x99)));
        let e = VvEntry { origin: node(1), seq: 3, linked: 4, head: MsgId([1; 32]) };
        let p = Packet::IHave { topic: "t".into(), flags: 0, ids: vec![], vv: vec![e], digest: None };
        assert_eq!(Packet::decode(&p.encode()), Err(DecodeError::Invalid("version vector linked beyond seq")));
        let mut g = Packet::Graft("t".into()).encode();
        g.push(0);
        assert_eq!(Packet::decode(&g), Err(DecodeError::TrailingBytes(1)));
        assert_eq!(Packet::decode(&Packet::Graft("bad topic".into()).encode()), Err(DecodeError::Invalid("topic")));
        assert_eq!(Packet::decode(&Packet::Message(vec![]).encode()), Err(DecodeError::Invalid("empty batch")));
        let zero = Message { topic: "t".into(), origin: node(1), seq: 0, hops: 0, payload: vec![] };
        assert_eq!(Packet::decode(&Packet::Message(vec![zero]).encode()), Err(DecodeError::Invalid("seq")));
        let wide = SeqRange { topic: "t".into(), origin: node(1), from: 1, to: 257 };
        let p = Packet::Want { ids: vec![], ranges: vec![wide] };
        assert_eq!(Packet::decode(&p.encode()), Err(DecodeError::Invalid("seq range")));
        let big = Packet::Want { ids: vec![MsgId([0; 32]); MAX_IDS + 1], ranges: vec![] };
        assert!(matches!(Packet::decode(&big.encode()), Err(DecodeError::TooLong { .. })));
        assert!(matches!(Packet::decode(&vec![1; MAX_PACKET + 1]), Err(DecodeError::TooLong { .. })));
    }

    #[test]
    fn topics() {
        assert!(valid_topic("global:ops"));
        assert!(valid_topic(&channel_topic("dev-1")));
        assert!(!valid_topic(""));
        assert!(!valid_topic("a b"));
        assert!(!valid_topic(&"x".repeat(MAX_TOPIC + 1)));
    }
}
