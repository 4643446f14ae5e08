//! The stem phase (`stem.rs`), one test per rule, and a network of routers.

use super::message::GLOBAL_TOPIC as T;
use super::stem::{EMBARGO_MS, EPOCH_MS, MAX_PENDING};
use super::*;
use crate::identity::NodeId;
use std::collections::{BTreeMap, VecDeque};

fn node(i: u8) -> NodeId {
    NodeId([i; 32])
}

fn router(i: u8, seed: u64) -> Router {
    let mut r = Router::new(node(i), Config::default(), seed);
    r.handle(Input::Subscribe(T.into()), 0);
    r
}

/// Node 0 with peers 1..=n, all subscribed.
fn hub(n: u8) -> Router {
    let mut r = router(0, 7);
    for i in 1..=n {
        r.handle(Input::PeerConnected(node(i)), 0);
        r.handle(Input::Frame(node(i), Packet::Announce(vec![(true, T.into())]).encode()), 0);
    }
    r
}

fn stem_input(origin: u8, seq: u64) -> Input {
    Input::Stem { topic: T.into(), origin: node(origin), seq, payload: vec![origin, seq as u8, 0xAA] }
}

fn stem_msg(origin: u8, seq: u64) -> Message {
    Message { topic: T.into(), origin: node(origin), seq, hops: 0, payload: vec![origin, seq as u8, 0xBB] }
}

fn sent(out: &[Output]) -> Vec<(NodeId, Packet)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(p, b) => Some((*p, Packet::decode(b).expect("valid packet"))),
            _ => None,
        })
        .collect()
}

fn delivered(out: &[Output]) -> usize {
    out.iter().filter(|o| matches!(o, Output::Deliver(_))).count()
}

#[test]
fn stem_before_fluff_the_origin_sends_to_one_peer_and_keeps_nothing_public() {
    let mut r = hub(5);
    let out = r.handle(stem_input(200, 1), 1_000);
    let s = sent(&out);
    assert_eq!(s.len(), 1, "one stem packet: {s:?}");
    assert!(matches!(s[0].1, Packet::Stem(_)));
    assert_eq!(delivered(&out), 0, "not delivered to the app yet");
    // Nothing to advertise: a peer's catch-up learns nothing of it.
    assert_eq!(r.store().index_len(), 0);
    assert_eq!(r.stats().stem_relayed, 1);
}

#[test]
fn stem_relay_per_epoch_every_message_of_an_epoch_takes_the_same_relay() {
    let mut r = hub(8);
    let mut relays = std::collections::BTreeSet::new();
    for seq in 1..=20 {
        let out = r.handle(stem_input(200 + seq as u8, 1), 1_000 + seq);
        relays.extend(sent(&out).into_iter().map(|(p, _)| p));
    }
    assert_eq!(relays.len(), 1, "one relay per epoch: {relays:?}");
    let first = *relays.iter().next().unwrap();
    // The relay leaves: another one is drawn at once.
    r.handle(Input::PeerDisconnected(first), 2_000);
    let out = r.handle(stem_input(250, 1), 2_001);
    let next = sent(&out)[0].0;
    assert_ne!(next, first);
    // A new epoch may draw another relay; over many epochs several are used.
    let mut drawn = std::collections::BTreeSet::new();
    for k in 1..=30u64 {
        let out = r.handle(stem_input(100 + k as u8, 2), 2_001 + k * (EPOCH_MS + 1));
        drawn.extend(sent(&out).into_iter().map(|(p, _)| p));
    }
    assert!(drawn.len() > 2, "epochs draw relays afresh: {drawn:?}");
}

#[test]
fn fluff_coin_a_relay_fluffs_about_a_quarter_and_never_stems_back() {
    let mut r = hub(6);
    let (mut fluffed, mut relayed) = (0, 0);
    for k in 0..200u64 {
        // New heartbeats keep the control cap from dropping them.
        let now = 1_000 + k * 1_000;
        r.handle(Input::Tick, now);
        let out = r.handle(Input::Frame(node(1), Packet::Stem(stem_msg(150, k + 1)).encode()), now);
        let s = sent(&out);
        if delivered(&out) == 1 {
            fluffed += 1;
            assert!(s.iter().all(|(_, p)| matches!(p, Packet::Message(_))), "a fluff is gossip");
            assert_eq!(s.len(), 6, "to every subscribed peer");
        } else {
            relayed += 1;
            assert_eq!(s.len(), 1);
            assert!(matches!(s[0].1, Packet::Stem(_)));
            assert_ne!(s[0].0, node(1), "never back to the sender");
        }
    }
    assert!((25..=80).contains(&fluffed), "about 25 % of 200 fluffed: {fluffed} (relayed {relayed})");
}

#[test]
fn stem_embargo_a_stem_dropped_on_the_path_is_fluffed_by_the_origin() {
    let mut r = hub(3);
    let out = r.handle(stem_input(200, 1), 1_000);
    assert_eq!(sent(&out).len(), 1);
    // The relay drops it: nothing comes back by gossip.
    // The origin waits twice a relay's embargo, so a relay fluffs first.
    let out = r.handle(Input::Tick, 1_000 + EMBARGO_MS * 2 - 1);
    assert_eq!(delivered(&out), 0, "still under embargo");
    let out = r.handle(Input::Tick, 1_000 + EMBARGO_MS * 3);
    assert_eq!(delivered(&out), 1, "the origin fluffs it itself");
    assert_eq!(sent(&out).iter().filter(|(_, p)| matches!(p, Packet::Message(_))).count(), 3);
    assert_eq!(r.stats().stem_embargo_fluffs, 1);
    // Once public, a stem of it is a duplicate.
    let out = r.handle(stem_input(200, 1), 30_000);
    assert!(out.iter().all(|o| !matches!(o, Output::Send(..))));
}

#[test]
fn stem_embargo_ends_when_the_message_arrives_by_gossip() {
    let mut r = hub(3);
    r.handle(stem_input(200, 1), 1_000);
    let m = Message { topic: T.into(), origin: node(200), seq: 1, hops: 2, payload: vec![200, 1, 0xAA] };
    let out = r.handle(Input::Frame(node(2), Packet::Message(vec![m]).encode()), 2_000);
    assert_eq!(delivered(&out), 1, "delivered when it comes back");
    let out = r.handle(Input::Tick, 1_000 + EMBARGO_MS * 3);
    assert_eq!(delivered(&out), 0);
    assert_eq!(r.stats().stem_embargo_fluffs, 0);
}

#[test]
fn stem_invalid_is_rejected_scored_and_not_relayed() {
    let mut r = hub(3);
    r.set_validator(Box::new(
        |m: &Message| {
            if m.payload.ends_with(&[0xBB]) { Validation::Reject } else { Validation::Accept }
        },
    ));
    let out = r.handle(Input::Frame(node(1), Packet::Stem(stem_msg(9, 1)).encode()), 1_000);
    assert!(sent(&out).is_empty());
    assert_eq!(r.stats().invalid, 1);
    assert!(r.score(&node(1)) < 0.0);
}

#[test]
fn stem_pending_is_bounded_and_the_excess_is_fluffed() {
    let mut r = hub(4);
    let mut now = 1_000;
    let mut k = 0u64;
    // Stems from several peers, few per heartbeat (under the control cap),
    // within one embargo.
    while k < (MAX_PENDING as u64) * 2 {
        now += 1;
        r.handle(Input::Tick, now);
        for p in 1..=4u8 {
            k += 1;
            r.handle(Input::Frame(node(p), Packet::Stem(stem_msg(100, k)).encode()), now);
        }
    }
    assert!(now < 1_000 + EMBARGO_MS);
    assert!(r.stem_len() <= MAX_PENDING, "held: {}", r.stem_len());
    assert!(r.stats().fluffed > 0);
}

/// A network of routers: every pair connected, frames delivered in order.
struct Net {
    routers: BTreeMap<NodeId, Router>,
    queue: VecDeque<(NodeId, NodeId, Vec<u8>)>,
    delivered: BTreeMap<NodeId, usize>,
    now: u64,
}

impl Net {
    fn full(n: u8) -> Net {
        let mut net = Net { routers: BTreeMap::new(), queue: VecDeque::new(), delivered: BTreeMap::new(), now: 0 };
        for i in 1..=n {
            net.routers.insert(node(i), router(i, u64::from(i) * 31));
        }
        for i in 1..=n {
            for j in 1..=n {
                if i != j {
                    let out = net.routers.get_mut(&node(i)).unwrap().handle(Input::PeerConnected(node(j)), 0);
                    net.take(node(i), out);
                }
            }
        }
        net.run(5_000);
        net
    }

    fn take(&mut self, from: NodeId, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Send(to, b) => self.queue.push_back((from, to, b)),
                Output::Deliver(_) => *self.delivered.entry(from).or_default() += 1,
                Output::Event(_) => {}
            }
        }
    }

    fn input(&mut self, at: NodeId, i: Input) {
        let out = self.routers.get_mut(&at).unwrap().handle(i, self.now);
        self.take(at, out);
    }

    fn run(&mut self, ms: u64) {
        let end = self.now + ms;
        while self.now < end {
            while let Some((from, to, b)) = self.queue.pop_front() {
                self.input(to, Input::Frame(from, b));
            }
            self.now += 700;
            let ids: Vec<NodeId> = self.routers.keys().copied().collect();
            for id in ids {
                self.input(id, Input::Tick);
            }
        }
    }
}

#[test]
fn stem_then_fluff_reaches_every_node_and_the_origin_never_gossips_first() {
    let mut net = Net::full(12);
    let origin = node(1);
    for seq in 1..=40u64 {
        net.input(origin, Input::Stem { topic: T.into(), origin: NodeId([99; 32]), seq, payload: vec![seq as u8] });
        net.run(1_400);
    }
    net.run(EMBARGO_MS * 3);
    for (id, n) in &net.delivered {
        assert_eq!(*n, 40, "node {:?} got {n} of 40", id.0[0]);
    }
    assert_eq!(net.delivered.len(), 12);
    let fluffers: Vec<(u8, u64)> =
        net.routers.iter().map(|(id, r)| (id.0[0], r.stats().fluffed)).filter(|(_, f)| *f > 0).collect();
    assert_eq!(net.routers[&origin].stats().fluffed, 0, "the origin never fluffed: {fluffers:?}");
    assert!(fluffers.len() >= 2, "several nodes started the gossip: {fluffers:?}");
}

#[test]
fn stem_loop_ends_at_a_relay_and_is_dropped_at_the_origin() {
    // A relay: the second copy of a message it stems ends the stem phase.
    let mut r = hub(4);
    let mut relayed = None;
    for k in 1..=50u64 {
        r.handle(Input::Tick, k * 1_000);
        let out = r.handle(Input::Frame(node(1), Packet::Stem(stem_msg(150, k)).encode()), k * 1_000);
        if delivered(&out) == 0 {
            relayed = Some(k);
            break;
        }
    }
    let k = relayed.expect("some stem was relayed");
    let out = r.handle(Input::Frame(node(2), Packet::Stem(stem_msg(150, k)).encode()), k * 1_000 + 1);
    assert_eq!(delivered(&out), 1, "the loop is fluffed at the relay");
    // The origin: its own message coming back in a stem is dropped.
    let mut o = hub(4);
    o.handle(stem_input(200, 1), 1_000);
    let back = Message { topic: T.into(), origin: node(200), seq: 1, hops: 0, payload: vec![200, 1, 0xAA] };
    let out = o.handle(Input::Frame(node(3), Packet::Stem(back).encode()), 1_001);
    assert_eq!(delivered(&out), 0);
    assert!(sent(&out).is_empty(), "the origin does not gossip first");
}
