//! Fuzzing entry point for the router: what strangers send it.
//!
//! [`frames`] reads its input as a script of peer frames and timer ticks and
//! feeds them to a router whose store already holds a short linked chain
//! (so version vectors, content probes, catch-up and equivocation paths all
//! have something to compare against). It must never panic. The cargo-fuzz
//! target `router_frames` calls it, and so do the crate's own tests.

use super::config::Config;
use super::message::{Message, MsgId};
use super::router::{Input, Router};
use crate::identity::NodeId;

const TOPIC: &str = "global:ops";

/// The linker the harness installs: bytes 0..32 of the payload name the
/// predecessor (as an op's `prev` does).
fn link(m: &Message) -> Option<MsgId> {
    m.payload.get(..32).and_then(|b| b.try_into().ok()).map(MsgId)
}

/// Runs one fuzz input: chunks of `[kind, peer, len_hi, len_lo, bytes…]`;
/// kind 0-4 is a frame from peer `peer % 3 + 1`, 5 this node's app sending
/// `bytes` through the stem phase (rule `stem_before_fluff`), 6 a
/// heartbeat 3 s later (so stem embargoes run out), 7 a peer that
/// disconnects and comes back.
pub fn frames(data: &[u8]) {
    let mut r = Router::new(NodeId([0; 32]), Config::default(), 7);
    r.set_linker(Box::new(link));
    let mut now = 0;
    r.handle(Input::Subscribe(TOPIC.into()), now);
    let mut prev = MsgId([0; 32]);
    for seq in 1..=4u64 {
        let mut payload = prev.0.to_vec();
        payload.push(seq as u8);
        let m = Message { topic: TOPIC.into(), origin: NodeId([9; 32]), seq, hops: 0, payload: payload.clone() };
        prev = m.id();
        r.handle(Input::Restore { topic: TOPIC.into(), origin: NodeId([9; 32]), seq, payload }, now);
    }
    for p in 1..=3u8 {
        r.handle(Input::PeerConnected(NodeId([p; 32])), now);
    }
    let mut rest = data;
    while rest.len() >= 4 {
        let (kind, peer) = (rest[0] % 8, NodeId([rest[1] % 3 + 1; 32]));
        let len = (u16::from_be_bytes([rest[2], rest[3]]) as usize).min(rest.len() - 4);
        let body = &rest[4..4 + len];
        rest = &rest[4 + len..];
        now += 50;
        match kind {
            5 => {
                let (topic, origin, seq) = (TOPIC.into(), NodeId([rest_len_tag(body); 32]), 1);
                r.handle(Input::Stem { topic, origin, seq, payload: body.to_vec() }, now);
            }
            6 => {
                now += 3_000;
                r.handle(Input::Tick, now);
            }
            7 => {
                r.handle(Input::PeerDisconnected(peer), now);
                r.handle(Input::PeerConnected(peer), now);
            }
            _ => {
                r.handle(Input::Frame(peer, body.to_vec()), now);
            }
        }
    }
}

/// A carrier key per stem payload (its first byte).
fn rest_len_tag(body: &[u8]) -> u8 {
    body.first().copied().unwrap_or(0) | 0x80
}

#[cfg(test)]
mod tests {
    use super::super::message::{Packet, SeqRange, VvEntry};
    use super::*;

    fn chunk(kind: u8, peer: u8, bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![kind, peer];
        v.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        v.extend_from_slice(bytes);
        v
    }

    /// Seeds with every packet kind, then byte-level mutations of them.
    #[test]
    fn router_frames_never_panic() {
        let vv = vec![
            VvEntry { origin: NodeId([9; 32]), seq: 9, linked: 2, head: MsgId([3; 32]) },
            VvEntry { origin: NodeId([9; 32]), seq: u64::MAX, linked: u64::MAX, head: MsgId([0; 32]) },
            VvEntry { origin: NodeId([0; 32]), seq: 1, linked: 0, head: MsgId([0; 32]) },
        ];
        let packets = [
            Packet::Announce(vec![(true, TOPIC.into())]),
            Packet::IHave { topic: TOPIC.into(), flags: 1, ids: vec![], vv, digest: Some([1; 16]) },
            Packet::Want {
                ids: vec![],
                ranges: vec![SeqRange { topic: TOPIC.into(), origin: NodeId([9; 32]), from: 1, to: 255 }],
            },
            Packet::Message(vec![Message {
                topic: TOPIC.into(),
                origin: NodeId([9; 32]),
                seq: 2,
                hops: 0,
                payload: vec![7; 40],
            }]),
            Packet::Graft(TOPIC.into()),
        ];
        let mut seed = Vec::new();
        for p in &packets {
            seed.extend(chunk(0, 1, &p.encode()));
            seed.extend(chunk(6, 0, &[]));
        }
        frames(&seed);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2_000 {
            let mut d = seed.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % d.len();
                d[i] = (x >> 32) as u8;
            }
            frames(&d);
        }
    }
}
