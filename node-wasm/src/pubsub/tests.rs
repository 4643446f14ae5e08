//! One test per protocol rule, named after the rule (see docs/SYNAPSESUB.md).

use super::message::{self, DIGEST_LEN, FLAG_REPLY, MAX_BATCH, SeqRange, VvEntry};
use super::rng::SplitMix64;
use super::*;
use crate::identity::NodeId;
use std::cell::Cell;
use std::rc::Rc;

const T: &str = "global:ops";

fn node(i: u8) -> NodeId {
    NodeId([i; 32])
}

/// A router (node 0) subscribed to `T` with peers 1..=n subscribed too.
fn router_with_peers(n: u8) -> Router {
    let mut r = Router::new(node(0), Config::default(), 1);
    r.handle(Input::Subscribe(T.into()), 0);
    for i in 1..=n {
        r.handle(Input::PeerConnected(node(i)), 0);
        r.handle(frame(i, &Packet::Announce(vec![(true, T.into())])), 0);
    }
    r
}

fn frame(from: u8, p: &Packet) -> Input {
    Input::Frame(node(from), p.encode())
}

fn msg(origin: u8, seq: u64, body: &[u8]) -> Message {
    let mut payload = vec![origin];
    payload.extend_from_slice(&seq.to_be_bytes());
    payload.extend_from_slice(body);
    Message { topic: T.into(), origin: node(origin), seq, hops: 0, payload }
}

/// The packets sent, decoded, with their destinations.
fn sent(out: &[Output]) -> Vec<(NodeId, Packet)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(p, b) => Some((*p, Packet::decode(b).unwrap())),
            _ => None,
        })
        .collect()
}

fn sent_messages_to(out: &[Output]) -> Vec<NodeId> {
    sent(out).into_iter().filter(|(_, p)| matches!(p, Packet::Message(_))).map(|(n, _)| n).collect()
}

fn deliveries(out: &[Output]) -> usize {
    out.iter().filter(|o| matches!(o, Output::Deliver(_))).count()
}

/// Puts peers `ids` into the mesh of `T` by having them graft us.
fn graft_all(r: &mut Router, ids: &[u8]) {
    for &i in ids {
        r.handle(frame(i, &Packet::Graft(T.into())), 0);
    }
}

#[test]
fn graft_during_backoff_ignored_and_scored() {
    let mut r = router_with_peers(2);
    graft_all(&mut r, &[1]);
    assert!(r.mesh_peers(T).contains(&node(1)));
    r.handle(frame(1, &Packet::Prune { topic: T.into(), backoff_ms: 60_000 }), 100);
    assert!(!r.mesh_peers(T).contains(&node(1)));
    assert!(r.in_backoff(T, &node(1)));
    // Within the slack, a GRAFT that crossed the PRUNE is ignored silently.
    let out = r.handle(frame(1, &Packet::Graft(T.into())), 200);
    assert!(out.is_empty() && !r.mesh_peers(T).contains(&node(1)));
    assert_eq!(r.score(&node(1)), 0.0);
    let out = r.handle(frame(1, &Packet::Graft(T.into())), 2_000);
    assert!(!r.mesh_peers(T).contains(&node(1)), "GRAFT during backoff must be ignored");
    assert_eq!(r.stats().grafts_in_backoff, 1);
    assert!(r.score(&node(1)) < 0.0, "and penalised");
    assert!(sent(&out).iter().any(|(p, pk)| *p == node(1) && matches!(pk, Packet::Prune { .. })));
    // After the backoff, a GRAFT is accepted again (once the penalty decayed).
    for k in 1..=300u64 {
        r.handle(Input::Tick, 200 + k * 700);
    }
    r.handle(frame(1, &Packet::Graft(T.into())), 200 + 301 * 700);
    assert!(r.mesh_peers(T).contains(&node(1)));
}

#[test]
fn heartbeat_does_not_graft_peers_in_backoff() {
    let mut r = router_with_peers(1);
    r.handle(frame(1, &Packet::Prune { topic: T.into(), backoff_ms: 60_000 }), 0);
    let out = r.handle(Input::Tick, 700);
    assert!(!sent(&out).iter().any(|(_, p)| matches!(p, Packet::Graft(_))));
    assert!(r.mesh_peers(T).is_empty());
}

#[test]
fn graft_unknown_topic_ignored() {
    let mut r = router_with_peers(1);
    r.handle(frame(1, &Packet::Graft("channel:other:ops".into())), 0);
    assert!(r.mesh_peers("channel:other:ops").is_empty());
    assert_eq!(r.score(&node(1)), 0.0);
}

#[test]
fn want_unknown_id_ignored_and_scored() {
    let mut r = router_with_peers(1);
    let out = r.handle(frame(1, &Packet::Want { ids: vec![MsgId([9; 32])], ranges: vec![] }), 0);
    assert!(sent_messages_to(&out).is_empty());
    assert_eq!(r.stats().unknown_wants, 1);
    assert!(r.score(&node(1)) < 0.0);
}

#[test]
fn want_known_id_served_with_retransmit_cap() {
    let mut r = router_with_peers(2);
    let m = msg(2, 1, b"x");
    r.handle(frame(2, &Packet::Message(vec![m.clone()])), 0);
    for k in 0..5 {
        let out = r.handle(frame(1, &Packet::Want { ids: vec![m.id()], ranges: vec![] }), 1 + k);
        assert_eq!(sent_messages_to(&out).len(), usize::from(k < 3), "retransmission {k}");
    }
}

#[test]
fn duplicate_not_forwarded() {
    let mut r = router_with_peers(4);
    graft_all(&mut r, &[1, 2, 3, 4]);
    let m = msg(9, 1, b"dup");
    let first = r.handle(frame(1, &Packet::Message(vec![m.clone()])), 0);
    assert_eq!(deliveries(&first), 1);
    assert_eq!(sent_messages_to(&first).len(), 3);
    let again = r.handle(frame(2, &Packet::Message(vec![m])), 1);
    assert_eq!(deliveries(&again), 0);
    assert!(sent_messages_to(&again).is_empty());
    assert_eq!(r.stats().duplicates, 1);
}

#[test]
fn dedup_before_validation() {
    let mut r = router_with_peers(3);
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    r.set_validator(Box::new(move |_| {
        c.set(c.get() + 1);
        Validation::Accept
    }));
    let m = msg(9, 1, b"once");
    for p in 1..=3 {
        r.handle(frame(p, &Packet::Message(vec![m.clone()])), 0);
    }
    assert_eq!(calls.get(), 1);
}

#[test]
fn unsubscribed_topic_not_forwarded() {
    let mut r = router_with_peers(3);
    graft_all(&mut r, &[1, 2, 3]);
    let mut m = msg(9, 1, b"other");
    m.topic = "channel:zzz:ops".into();
    let out = r.handle(frame(1, &Packet::Message(vec![m])), 0);
    assert_eq!(deliveries(&out), 0);
    assert!(sent_messages_to(&out).is_empty());
    assert_eq!(r.stats().unsubscribed, 1);
}

#[test]
fn forwarded_only_to_subscribed_mesh_peers() {
    let mut r = router_with_peers(3);
    graft_all(&mut r, &[1, 2]);
    // Peer 4 is connected but never subscribed; peer 3 is subscribed, not in the mesh.
    r.handle(Input::PeerConnected(node(4)), 0);
    let out = r.handle(frame(1, &Packet::Message(vec![msg(9, 1, b"m")])), 0);
    assert_eq!(sent_messages_to(&out), vec![node(2)]);
}

#[test]
fn not_sent_back_to_sender() {
    let mut r = router_with_peers(3);
    graft_all(&mut r, &[1, 2, 3]);
    // Origin 3 is in the mesh too: it must not get its own message back.
    let out = r.handle(frame(1, &Packet::Message(vec![msg(3, 1, b"m")])), 0);
    let to = sent_messages_to(&out);
    assert_eq!(to, vec![node(2)]);
}

#[test]
fn flood_publish_reaches_all_subscribed_peers() {
    let mut r = router_with_peers(8);
    graft_all(&mut r, &[1, 2]);
    r.handle(Input::PeerConnected(node(20)), 0); // not subscribed
    let out = r.handle(Input::Publish { topic: T.into(), payload: b"mine".to_vec() }, 0);
    let mut to = sent_messages_to(&out);
    to.sort();
    assert_eq!(to, (1..=8).map(node).collect::<Vec<_>>());
    assert!(out.iter().any(|o| matches!(o, Output::Event(Event::Published { seq: 1, .. }))));
    let out = r.handle(Input::Publish { topic: T.into(), payload: b"next".to_vec() }, 0);
    assert!(out.iter().any(|o| matches!(o, Output::Event(Event::Published { seq: 2, .. }))));
}

#[test]
fn mesh_kept_between_d_lo_and_d_hi() {
    let mut r = router_with_peers(30);
    r.handle(Input::Tick, 700);
    assert_eq!(r.mesh_peers(T).len(), 6, "grafts up to D");
    let grafting: Vec<u8> = (1..=30).collect();
    graft_all(&mut r, &grafting);
    assert_eq!(r.mesh_peers(T).len(), 12, "GRAFTs beyond D_hi are refused");
    let out = r.handle(Input::Tick, 1400);
    assert!(r.mesh_peers(T).len() <= 12);
    assert!(sent(&out).iter().filter(|(_, p)| matches!(p, Packet::Prune { .. })).count() <= 6);
    // Oversubscribed past D_hi (both sides grafting): prune back to D.
    for i in 31..=45u8 {
        r.handle(Input::PeerConnected(node(i)), 1400);
        r.handle(frame(i, &Packet::Announce(vec![(true, T.into())])), 1400);
    }
    r.mesh.get_mut(T).unwrap().extend((31..=45).map(node));
    r.handle(Input::Tick, 2100);
    assert_eq!(r.mesh_peers(T).len(), 6);
}

#[test]
fn gossip_ihave_to_non_mesh_peers() {
    let mut r = router_with_peers(20);
    r.handle(Input::Tick, 700);
    let mesh = r.mesh_peers(T);
    r.handle(Input::Publish { topic: T.into(), payload: b"g".to_vec() }, 800);
    let out = r.handle(Input::Tick, 1400);
    let ihave: Vec<NodeId> = sent(&out)
        .into_iter()
        .filter(|(_, p)| matches!(p, Packet::IHave { ids, .. } if !ids.is_empty()))
        .map(|(n, _)| n)
        .collect();
    assert!(ihave.len() >= 6);
    assert!(ihave.iter().all(|p| !mesh.contains(p)));
}

#[test]
fn ihave_leads_to_want_and_broken_promise_is_scored() {
    let mut r = router_with_peers(1);
    let id = MsgId([5; 32]);
    let ihave = Packet::IHave { topic: T.into(), flags: 0, ids: vec![id], vv: vec![], digest: None };
    let out = r.handle(frame(1, &ihave), 0);
    assert!(sent(&out).iter().any(|(_, p)| matches!(p, Packet::Want { ids, .. } if ids == &vec![id])));
    // Asked once only while the promise is pending.
    let out = r.handle(frame(1, &ihave), 10);
    assert!(!sent(&out).iter().any(|(_, p)| matches!(p, Packet::Want { .. })));
    r.handle(Input::Tick, 3_500);
    assert_eq!(r.stats().broken_promises, 1);
    assert!(r.score(&node(1)) < 0.0);
}

#[test]
fn kept_promise_is_not_scored() {
    let mut r = router_with_peers(1);
    let m = msg(1, 1, b"kept");
    let ihave = Packet::IHave { topic: T.into(), flags: 0, ids: vec![m.id()], vv: vec![], digest: None };
    r.handle(frame(1, &ihave), 0);
    r.handle(frame(1, &Packet::Message(vec![m])), 100);
    r.handle(Input::Tick, 3_500);
    assert_eq!(r.stats().broken_promises, 0);
    assert!(r.score(&node(1)) >= 0.0);
}

#[test]
fn control_cap_enforced() {
    let mut r = router_with_peers(1);
    let cap = r.config().max_control_per_heartbeat as usize;
    for _ in 0..cap + 10 {
        r.handle(frame(1, &Packet::Announce(vec![(true, T.into())])), 0);
    }
    // router_with_peers already used one control packet this heartbeat.
    assert_eq!(r.stats().capped, 11);
    assert!(r.score(&node(1)) < 0.0);
    // The cap resets at the heartbeat.
    r.handle(Input::Tick, 700);
    r.handle(frame(1, &Packet::Announce(vec![(true, T.into())])), 701);
    assert_eq!(r.stats().capped, 11);
}

#[test]
fn ihave_cap_enforced() {
    let mut r = router_with_peers(1);
    for i in 0..15u8 {
        let p = Packet::IHave { topic: T.into(), flags: 0, ids: vec![MsgId([i; 32])], vv: vec![], digest: None };
        r.handle(frame(1, &p), 0);
    }
    assert_eq!(r.want_ids.len(), 10);
    assert_eq!(r.stats().capped, 5);
}

#[test]
fn requests_per_peer_per_heartbeat_capped() {
    let mut r = router_with_peers(1);
    let o = node(7);
    let vv =
        Packet::IHave { topic: T.into(), flags: 0, ids: vec![], vv: vec![VvEntry::seqs_only(o, 1000)], digest: None };
    let out = r.handle(frame(1, &vv), 0);
    let asked: u64 = sent(&out)
        .iter()
        .filter_map(|(_, p)| match p {
            Packet::Want { ranges, .. } => Some(ranges.iter().map(|r| r.to - r.from + 1).sum::<u64>()),
            _ => None,
        })
        .sum();
    assert_eq!(asked, 128);
}

#[test]
fn malformed_frame_counted_and_not_panicking() {
    let mut r = router_with_peers(1);
    let out = r.handle(Input::Frame(node(1), vec![1, 0x11, 0, 5]), 0);
    assert_eq!(r.stats().malformed, 1);
    assert!(out.iter().any(|o| matches!(o, Output::Event(Event::Malformed { .. }))));
    assert!(r.score(&node(1)) < 0.0);
    // Frames from unknown peers are ignored outright.
    r.handle(Input::Frame(node(99), vec![0xff]), 0);
    assert_eq!(r.stats().malformed, 1);
}

#[test]
fn fuzz_random_bytes_never_panic() {
    let mut rng = SplitMix64::new(0xf022);
    let mut r = router_with_peers(3);
    graft_all(&mut r, &[1, 2, 3]);
    let valid: Vec<Vec<u8>> = vec![
        Packet::Message(vec![msg(1, 1, b"abc")]).encode(),
        Packet::IHave {
            topic: T.into(),
            flags: FLAG_REPLY,
            ids: vec![MsgId([1; 32])],
            vv: vec![VvEntry::seqs_only(node(1), 4)],
            digest: Some([0; DIGEST_LEN]),
        }
        .encode(),
        Packet::Want { ids: vec![], ranges: vec![SeqRange { topic: T.into(), origin: node(1), from: 1, to: 9 }] }
            .encode(),
        Packet::Prune { topic: T.into(), backoff_ms: u32::MAX }.encode(),
        Packet::Message(vec![msg(2, u64::MAX, b"last")]).encode(),
        Packet::IHave {
            topic: T.into(),
            flags: FLAG_REPLY,
            ids: vec![],
            vv: vec![VvEntry::seqs_only(node(2), u64::MAX)],
            digest: None,
        }
        .encode(),
        Packet::Want {
            ids: vec![],
            ranges: vec![SeqRange { topic: T.into(), origin: node(2), from: u64::MAX - 255, to: u64::MAX }],
        }
        .encode(),
        Packet::Graft(T.into()).encode(),
        Packet::Announce(vec![(false, T.into()), (true, T.into())]).encode(),
    ];
    for i in 0..20_000u64 {
        let mut bytes = if i % 2 == 0 {
            let n = rng.below(80) as usize;
            (0..n).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>()
        } else {
            valid[rng.below(valid.len() as u64) as usize].clone()
        };
        // Mutate a few bytes, sometimes truncate or extend.
        for _ in 0..rng.below(4) {
            if !bytes.is_empty() {
                let k = rng.below(bytes.len() as u64) as usize;
                bytes[k] = rng.next_u64() as u8;
            }
        }
        if rng.chance(0.2) {
            bytes.truncate(rng.below(bytes.len() as u64 + 1) as usize);
        }
        // Keep the first two bytes valid half the time to reach the bodies.
        if rng.chance(0.5) && bytes.len() >= 2 {
            bytes[0] = 1;
            bytes[1] = 0x10 + rng.below(6) as u8;
        }
        let peer = 1 + rng.below(3) as u8;
        r.handle(Input::Frame(node(peer), bytes), i);
        if i % 500 == 0 {
            r.handle(Input::Tick, i);
        }
    }
}

#[test]
fn invalid_message_not_forwarded_and_sender_graylisted() {
    let mut r = router_with_peers(3);
    graft_all(&mut r, &[1, 2, 3]);
    r.set_validator(Box::new(|m| if m.payload.ends_with(b"bad") { Validation::Reject } else { Validation::Accept }));
    for seq in 1..=3 {
        let out = r.handle(frame(1, &Packet::Message(vec![msg(1, seq, b"bad")])), 0);
        assert!(sent_messages_to(&out).is_empty());
        assert_eq!(deliveries(&out), 0);
    }
    assert_eq!(r.stats().invalid, 3);
    assert!(r.score(&node(1)) < r.config().score.graylist_threshold);
    // Graylisted: even a valid message is dropped unread.
    let out = r.handle(frame(1, &Packet::Message(vec![msg(1, 4, b"ok")])), 1);
    assert_eq!(deliveries(&out), 0);
    assert_eq!(r.stats().graylisted_dropped, 1);
    // And the heartbeat prunes it from the mesh.
    r.handle(Input::Tick, 700);
    assert!(!r.mesh_peers(T).contains(&node(1)));
}

#[test]
fn late_invalid_report_penalises_first_deliverer() {
    let mut r = router_with_peers(2);
    let m = msg(5, 1, b"looked fine");
    r.handle(frame(2, &Packet::Message(vec![m.clone()])), 0);
    r.handle(Input::Invalid(m.id()), 1);
    assert!(r.score(&node(2)) < 0.0);
    assert_eq!(r.score(&node(1)), 0.0);
}

#[test]
fn equivocation_reported_and_both_kept() {
    let mut r = router_with_peers(2);
    let a = msg(5, 1, b"one");
    let b = msg(5, 1, b"two");
    r.handle(frame(1, &Packet::Message(vec![a])), 0);
    let out = r.handle(frame(2, &Packet::Message(vec![b])), 1);
    assert!(out.iter().any(|o| matches!(o, Output::Event(Event::Equivocation { seq: 1, .. }))));
    assert_eq!(r.store().len(), 2);
}

#[test]
fn catch_up_asks_exactly_for_missing_seqs() {
    let mut r = router_with_peers(1);
    // We hold seqs 1, 2 and 4 of origin 7.
    for seq in [1, 2, 4] {
        r.handle(frame(1, &Packet::Message(vec![msg(7, seq, b"p")])), 0);
    }
    let vv = Packet::IHave {
        topic: T.into(),
        flags: 0,
        ids: vec![],
        vv: vec![VvEntry::seqs_only(node(7), 6)],
        digest: None,
    };
    let out = r.handle(frame(1, &vv), 1);
    let ranges: Vec<(u64, u64)> = sent(&out)
        .into_iter()
        .flat_map(|(_, p)| match p {
            Packet::Want { ranges, .. } => ranges.into_iter().map(|r| (r.from, r.to)).collect(),
            _ => vec![],
        })
        .collect();
    assert_eq!(ranges, vec![(3, 3), (5, 6)]);
}

#[test]
fn catch_up_replies_are_chunked() {
    let mut r = router_with_peers(2);
    for seq in 1..=200 {
        r.handle(frame(2, &Packet::Message(vec![msg(7, seq, &[0u8; 300])])), 0);
    }
    let want =
        Packet::Want { ids: vec![], ranges: vec![SeqRange { topic: T.into(), origin: node(7), from: 1, to: 200 }] };
    let out = r.handle(frame(1, &want), 1);
    let batches: Vec<(usize, usize)> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send(p, b) if *p == node(1) => match Packet::decode(b).unwrap() {
                Packet::Message(m) => Some((m.len(), b.len())),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(batches.iter().map(|b| b.0).sum::<usize>(), 200);
    assert!(batches.iter().all(|&(n, bytes)| n <= MAX_BATCH && bytes <= 12 * 1024 + 64));
    assert!(batches.iter().all(|&(_, bytes)| crate::framing::split(&vec![0; bytes]).len() == 1));
}

#[test]
fn serving_rate_limited_per_heartbeat() {
    let mut r = router_with_peers(2);
    for seq in 1..=255 {
        r.handle(frame(2, &Packet::Message(vec![msg(7, seq, b"p")])), 0);
    }
    for seq in 1..=255 {
        r.handle(frame(2, &Packet::Message(vec![msg(8, seq, b"p")])), 0);
    }
    let ranges = vec![
        SeqRange { topic: T.into(), origin: node(7), from: 1, to: 255 },
        SeqRange { topic: T.into(), origin: node(8), from: 1, to: 255 },
    ];
    r.handle(frame(1, &Packet::Want { ids: vec![], ranges }), 1);
    assert_eq!(r.stats().pieces_served, 256);
}

#[test]
fn digest_exchange_only_when_different() {
    let mut a = router_with_peers(1);
    // Same (empty) store on both sides: a matching digest triggers nothing.
    let mut b = Router::new(node(1), Config::default(), 2);
    let digest = Packet::IHave { topic: T.into(), flags: 0, ids: vec![], vv: vec![], digest: Some(b.store.digest(T)) };
    let out = a.handle(frame(1, &digest), 0);
    assert!(sent(&out).is_empty());
    // Once b has something, its digest differs and a asks for the full vector.
    b.store.insert(msg(1, 1, b"x").id(), msg(1, 1, b"x"), None);
    let digest = Packet::IHave { topic: T.into(), flags: 0, ids: vec![], vv: vec![], digest: Some(b.store.digest(T)) };
    let out = a.handle(frame(1, &digest), 1);
    assert!(sent(&out).iter().any(|(_, p)| matches!(p, Packet::IHave { flags: FLAG_REPLY, .. })));
}

#[test]
fn seen_cache_expires_after_ttl() {
    let mut r = router_with_peers(1);
    let m = msg(5, 1, b"ttl");
    r.handle(frame(1, &Packet::Message(vec![m.clone()])), 0);
    assert!(r.seen.contains(&m.id()));
    let ttl = r.config().seen_ttl_ms;
    r.handle(Input::Tick, ttl + 1);
    assert!(!r.seen.contains(&m.id()));
}

#[test]
fn routers_are_deterministic() {
    let run = || {
        let mut r = router_with_peers(20);
        let mut all = Vec::new();
        for k in 1..20u64 {
            all.extend(r.handle(Input::Tick, k * 700));
            all.extend(r.handle(Input::Publish { topic: T.into(), payload: k.to_be_bytes().to_vec() }, k * 700 + 1));
        }
        all
    };
    assert_eq!(run(), run());
}

/// Runs two routers against each other until neither has anything to send,
/// ticking every heartbeat; returns the largest packet seen.
fn exchange(a: &mut Router, b: &mut Router, mut pending: Vec<(bool, Output)>, mut now: u64, until: u64) -> usize {
    let mut largest = 0;
    let mut next_tick = now + 700;
    while now < until {
        while let Some((from_a, o)) = pending.pop() {
            if let Output::Send(_, bytes) = o {
                largest = largest.max(bytes.len());
                let (to, from) = if from_a { (&mut *b, a.node_id()) } else { (&mut *a, b.node_id()) };
                let out = to.handle(Input::Frame(from, bytes), now);
                pending.extend(out.into_iter().map(|o| (!from_a, o)));
            }
        }
        now = next_tick;
        next_tick += 700;
        pending.extend(a.handle(Input::Tick, now).into_iter().map(|o| (true, o)));
        pending.extend(b.handle(Input::Tick, now).into_iter().map(|o| (false, o)));
    }
    largest
}

#[test]
fn late_joiner_fetches_only_what_it_lacks() {
    let mut a = Router::new(node(1), Config::default(), 1);
    let mut b = Router::new(node(2), Config::default(), 2);
    a.handle(Input::Subscribe(T.into()), 0);
    b.handle(Input::Subscribe(T.into()), 0);
    // A holds 300 messages from three origins; B already has the first 40
    // of each origin (it was online earlier).
    for origin in 10..13u8 {
        for seq in 1..=100 {
            let m = msg(origin, seq, &[7u8; 150]);
            a.store.insert(m.id(), m.clone(), None);
            if seq <= 40 {
                b.store.insert(m.id(), m, None);
            }
        }
    }
    let mut pending: Vec<(bool, Output)> = Vec::new();
    pending.extend(a.handle(Input::PeerConnected(node(2)), 0).into_iter().map(|o| (true, o)));
    pending.extend(b.handle(Input::PeerConnected(node(1)), 0).into_iter().map(|o| (false, o)));
    let largest = exchange(&mut a, &mut b, pending, 0, 10_000);
    assert_eq!(b.store().len(), 300);
    assert_eq!(b.stats().delivered, 180);
    assert_eq!(b.stats().pieces_requested, 180, "exactly the missing seqs");
    assert_eq!(a.stats().pieces_served, 180);
    assert_eq!(b.stats().duplicates, 0);
    assert!(largest <= crate::framing::MAX_FRAME - 5, "every reply fits one 16 KiB frame: {largest}");
}

#[test]
fn reconnect_after_partition_catches_up_both_ways() {
    let mut a = Router::new(node(1), Config::default(), 1);
    let mut b = Router::new(node(2), Config::default(), 2);
    a.handle(Input::Subscribe(T.into()), 0);
    b.handle(Input::Subscribe(T.into()), 0);
    for k in 0..50u64 {
        a.handle(Input::Publish { topic: T.into(), payload: [b"a".as_slice(), &k.to_be_bytes()].concat() }, k);
        b.handle(Input::Publish { topic: T.into(), payload: [b"b".as_slice(), &k.to_be_bytes()].concat() }, k);
    }
    let mut pending: Vec<(bool, Output)> = Vec::new();
    pending.extend(a.handle(Input::PeerConnected(node(2)), 100).into_iter().map(|o| (true, o)));
    pending.extend(b.handle(Input::PeerConnected(node(1)), 100).into_iter().map(|o| (false, o)));
    exchange(&mut a, &mut b, pending, 100, 10_000);
    assert_eq!(a.store().len(), 100);
    assert_eq!(b.store().len(), 100);
    assert_eq!(a.store().digest(T), b.store().digest(T));
}

#[test]
fn replay_after_seen_ttl_not_redelivered() {
    let mut r = router_with_peers(2);
    graft_all(&mut r, &[1, 2]);
    let m = msg(5, 1, b"old");
    r.handle(frame(1, &Packet::Message(vec![m.clone()])), 0);
    let ttl = r.config().seen_ttl_ms;
    r.handle(Input::Tick, ttl + 1);
    let out = r.handle(frame(1, &Packet::Message(vec![m])), ttl + 2);
    assert_eq!(deliveries(&out), 0);
    assert!(sent_messages_to(&out).is_empty());
}

#[test]
fn version_vector_chunks_not_cut_by_ihave_cap() {
    let mut r = router_with_peers(1);
    // 3,000 origins: 24 chunks, more than the I_HAVE cap of ten.
    let origins: Vec<VvEntry> =
        (0..3000u32).map(|i| VvEntry::seqs_only(NodeId(MsgId::of(&i.to_be_bytes()).0), 1)).collect();
    for chunk in origins.chunks(message::MAX_VV) {
        let p = Packet::IHave { topic: T.into(), flags: 0, ids: vec![], vv: chunk.to_vec(), digest: None };
        r.handle(frame(1, &p), 0);
    }
    assert_eq!(r.peers[&node(1)].known.len(), 3000);
    assert_eq!(r.stats().capped, 0);
    // Requests stay within the per-heartbeat budget.
    assert_eq!(r.want_seqs.len(), r.config().max_requests_per_heartbeat as usize);
}

#[test]
fn version_vector_reply_asked_once_per_vector() {
    let mut r = router_with_peers(1);
    for i in 0..600u32 {
        let m = Message {
            topic: T.into(),
            origin: NodeId(MsgId::of(&i.to_be_bytes()).0),
            seq: 1,
            hops: 0,
            payload: i.to_be_bytes().to_vec(),
        };
        r.store.insert(m.id(), m, None);
    }
    // A differing digest makes us send our full vector (5 chunks of 128) asking for theirs.
    let p = Packet::IHave { topic: T.into(), flags: 0, ids: vec![], vv: vec![], digest: Some([1; DIGEST_LEN]) };
    let out = r.handle(frame(1, &p), 0);
    let flags: Vec<u8> = sent(&out)
        .into_iter()
        .filter_map(|(_, p)| match p {
            Packet::IHave { flags, .. } => Some(flags),
            _ => None,
        })
        .collect();
    assert_eq!(flags, vec![0, 0, 0, 0, FLAG_REPLY]);
}

#[test]
fn prune_for_unknown_topic_ignored() {
    let mut r = router_with_peers(1);
    for i in 0..50 {
        r.handle(frame(1, &Packet::Prune { topic: format!("channel:{i}:ops"), backoff_ms: 3_600_000 }), 0);
    }
    assert!(r.backoff.is_empty());
}

#[test]
fn many_subscriptions_announced_in_chunks() {
    let mut a = Router::new(node(1), Config::default(), 1);
    for i in 0..100 {
        a.handle(Input::Subscribe(channel_topic(&i.to_string())), 0);
    }
    let out = a.handle(Input::PeerConnected(node(2)), 0);
    let mut b = Router::new(node(2), Config::default(), 2);
    b.handle(Input::PeerConnected(node(1)), 0);
    for o in out {
        if let Output::Send(_, bytes) = o {
            b.handle(Input::Frame(node(1), bytes), 0);
        }
    }
    assert_eq!(b.stats().malformed, 0);
    assert_eq!(b.peers[&node(1)].topics.len(), 64, "capped at max_peer_topics");
}

#[test]
fn wide_version_vector_asks_every_promised_seq() {
    let mut r = router_with_peers(1);
    // 100 origins, each one seq ahead: 100 one-seq ranges, over one packet's 64.
    let vv: Vec<VvEntry> = (0..100u32).map(|i| VvEntry::seqs_only(NodeId(MsgId::of(&i.to_be_bytes()).0), 1)).collect();
    let out = r.handle(frame(1, &Packet::IHave { topic: T.into(), flags: 0, ids: vec![], vv, digest: None }), 0);
    let asked: usize = sent(&out)
        .iter()
        .map(|(_, p)| match p {
            Packet::Want { ranges, .. } => ranges.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(asked, 100);
    assert_eq!(r.want_seqs.len(), 100);
}

#[test]
fn publish_with_app_seq() {
    let mut r = router_with_peers(1);
    let out = r.handle(Input::PublishSeq { topic: T.into(), seq: 7, payload: b"op7".to_vec() }, 0);
    assert!(out.iter().any(|o| matches!(o, Output::Event(Event::Published { seq: 7, .. }))));
    let out = r.handle(Input::Publish { topic: T.into(), payload: b"next".to_vec() }, 0);
    assert!(out.iter().any(|o| matches!(o, Output::Event(Event::Published { seq: 8, .. }))));
    let out = r.handle(Input::PublishSeq { topic: T.into(), seq: 0, payload: b"zero".to_vec() }, 0);
    assert!(out.is_empty(), "seq 0 is refused");
}

#[test]
fn version_vector_replies_capped() {
    let mut r = router_with_peers(1);
    let m = msg(5, 1, b"x");
    r.store.insert(m.id(), m, None);
    let ask =
        Packet::IHave { topic: T.into(), flags: FLAG_REPLY, ids: vec![], vv: vec![], digest: Some([0; DIGEST_LEN]) };
    let mut vectors = 0;
    for _ in 0..20 {
        let out = r.handle(frame(1, &ask), 0);
        vectors += sent(&out).iter().filter(|(_, p)| matches!(p, Packet::IHave { vv, .. } if !vv.is_empty())).count();
    }
    assert_eq!(vectors, 2, "a short request cannot buy many long replies");
    r.handle(Input::Tick, 700);
    let out = r.handle(frame(1, &ask), 701);
    assert_eq!(sent(&out).len(), 1, "the cap resets at the heartbeat");
}

/// Property: whatever the delivery order, duplication and loss, routers that
/// stay connected end with the same messages once the network calms down.
#[test]
fn convergence_under_reorder_duplication_and_loss() {
    for seed in 1..=5u64 {
        let mut rng = SplitMix64::new(seed);
        let n = 6u8;
        let mut routers: Vec<Router> =
            (1..=n).map(|i| Router::new(node(i), Config::default(), seed * 100 + i as u64)).collect();
        let mut pending: Vec<(usize, NodeId, Vec<u8>)> = Vec::new();
        let push = |pending: &mut Vec<(usize, NodeId, Vec<u8>)>, from: usize, out: Vec<Output>| {
            for o in out {
                if let Output::Send(to, bytes) = o {
                    pending.push(((to.0[0] - 1) as usize, node(from as u8 + 1), bytes));
                }
            }
        };
        for (i, r) in routers.iter_mut().enumerate() {
            let out = r.handle(Input::Subscribe(T.into()), 0);
            push(&mut pending, i, out);
        }
        for (i, r) in routers.iter_mut().enumerate() {
            for j in (0..n as usize).filter(|&j| j != i) {
                let out = r.handle(Input::PeerConnected(node(j as u8 + 1)), 0);
                push(&mut pending, i, out);
            }
        }
        let mut now = 0;
        let mut published = 0;
        for step in 0..6_000u64 {
            let calm = step >= 4_000;
            if step % 50 == 0 {
                now += 700;
                for (i, r) in routers.iter_mut().enumerate() {
                    let out = r.handle(Input::Tick, now);
                    push(&mut pending, i, out);
                }
            }
            if !calm && step % 40 == 0 {
                let i = rng.below(n as u64) as usize;
                let payload = format!("m{published}").into_bytes();
                published += 1;
                let out = routers[i].handle(Input::Publish { topic: T.into(), payload }, now);
                push(&mut pending, i, out);
            }
            if pending.is_empty() {
                continue;
            }
            // Any pending frame, in any order; sometimes twice, sometimes never.
            let k = rng.below(pending.len() as u64) as usize;
            let (to, from, bytes) = if !calm && rng.chance(0.1) { pending[k].clone() } else { pending.swap_remove(k) };
            if !calm && rng.chance(0.05) {
                continue;
            }
            let out = routers[to].handle(Input::Frame(from, bytes), now);
            push(&mut pending, to, out);
        }
        let digests: Vec<[u8; DIGEST_LEN]> = routers.iter().map(|r| r.store().digest(T)).collect();
        assert!(routers.iter().all(|r| r.store().len() == published), "seed {seed}: {published} published");
        assert!(digests.windows(2).all(|w| w[0] == w[1]), "seed {seed}");
        let repaired: u64 = routers.iter().map(|r| r.stats().pieces_served).sum();
        let dups: u64 = routers.iter().map(|r| r.stats().duplicates).sum();
        assert!(repaired > 0 && dups > 0, "seed {seed}: losses were repaired, duplicates absorbed");
    }
}

/// Rule `restore`: messages a reloaded node already holds are recorded
/// without delivery, so catch-up asks only for what it lacks and nothing
/// held is sent again.
#[test]
fn restore_records_held_messages_so_catch_up_skips_them() {
    let mut a = Router::new(node(1), Config::default(), 1);
    let mut b = Router::new(node(2), Config::default(), 2);
    a.handle(Input::Subscribe(T.into()), 0);
    b.handle(Input::Subscribe(T.into()), 0);
    for seq in 1..=50 {
        let m = msg(10, seq, &[3u8; 100]);
        a.store.insert(m.id(), m.clone(), None);
        if seq <= 45 {
            let out = b.handle(Input::Restore { topic: T.into(), origin: node(10), seq, payload: m.payload }, 0);
            assert!(out.is_empty(), "restore neither delivers nor sends");
        }
    }
    assert_eq!(b.stats().restored, 45);
    assert_eq!(b.stats().delivered, 0);
    // Restoring the same message again changes nothing; garbage is ignored.
    let again = msg(10, 1, &[3u8; 100]);
    b.handle(Input::Restore { topic: T.into(), origin: node(10), seq: 1, payload: again.payload }, 0);
    b.handle(Input::Restore { topic: "".into(), origin: node(10), seq: 0, payload: vec![] }, 0);
    assert_eq!(b.stats().restored, 45);
    let mut pending: Vec<(bool, Output)> = Vec::new();
    pending.extend(a.handle(Input::PeerConnected(node(2)), 0).into_iter().map(|o| (true, o)));
    pending.extend(b.handle(Input::PeerConnected(node(1)), 0).into_iter().map(|o| (false, o)));
    exchange(&mut a, &mut b, pending, 0, 10_000);
    assert_eq!(b.stats().delivered, 5, "only the 5 missing messages");
    assert_eq!(b.stats().pieces_requested, 5);
    assert_eq!(b.stats().duplicates, 0, "nothing held was sent again");
}

/// A message of `origin` at `seq` that names `prev` as its predecessor
/// (payload: origin, seq, prev, body), and the linker that reads it.
fn linked_msg(origin: u8, seq: u64, prev: MsgId, body: &[u8]) -> Message {
    let mut payload = vec![origin];
    payload.extend_from_slice(&seq.to_be_bytes());
    payload.extend_from_slice(&prev.0);
    payload.extend_from_slice(body);
    Message { topic: T.into(), origin: node(origin), seq, hops: 0, payload }
}

fn linked_router(i: u8) -> Router {
    let mut r = Router::new(node(i), Config::default(), i as u64);
    r.set_linker(Box::new(|m: &Message| m.payload.get(9..41).and_then(|b| b.try_into().ok()).map(MsgId)));
    r.handle(Input::Subscribe(T.into()), 0);
    r
}

/// Stores in `r` a chain of `origin` from seq 1 whose body is `a` below
/// `fork_at` and `b` from it on; returns the ids.
fn store_chain(r: &mut Router, origin: u8, len: u64, fork_at: u64, a: &[u8], b: &[u8]) -> Vec<MsgId> {
    let mut prev = MsgId([0; 32]);
    let mut ids = vec![];
    for seq in 1..=len {
        let m = linked_msg(origin, seq, prev, if seq < fork_at { a } else { b });
        let id = m.id();
        r.handle(Input::Restore { topic: T.into(), origin: node(origin), seq, payload: m.payload }, 0);
        ids.push(id);
        prev = id;
    }
    ids
}

fn connect(a: &mut Router, b: &mut Router, now: u64) -> Vec<(bool, Output)> {
    let mut pending: Vec<(bool, Output)> = Vec::new();
    pending.extend(a.handle(Input::PeerConnected(b.node_id()), now).into_iter().map(|o| (true, o)));
    pending.extend(b.handle(Input::PeerConnected(a.node_id()), now).into_iter().map(|o| (false, o)));
    pending
}

#[test]
fn hidden_fork_at_equal_seqs_surfaces_on_both_sides() {
    // Before content was compared, equal (origin, seq) meant equal digests,
    // and the two branches never met.
    let (mut a, mut b) = (linked_router(1), linked_router(2));
    store_chain(&mut a, 9, 5, 6, b"x", b"x");
    store_chain(&mut b, 9, 5, 5, b"x", b"y");
    assert_ne!(a.store().digest(T), b.store().digest(T), "the digest covers content");
    let pending = connect(&mut a, &mut b, 0);
    exchange(&mut a, &mut b, pending, 0, 20_000);
    for r in [&a, &b] {
        assert_eq!(r.store().ids_at(T, &node(9), 5).len(), 2, "{:?} holds both ops at seq 5", r.node_id());
        assert!(r.stats().equivocations >= 1);
    }
    assert_eq!(a.store().digest(T), b.store().digest(T));
}

#[test]
fn crash_fork_below_the_head_is_found_by_walking_links() {
    // The author lost seqs 4 and 5 in a crash and signed 4', 5', 6' anew:
    // A holds the old branch, B the new one, longer. Catch-up alone would
    // fetch 6' into A and stop; the links lead both down to seq 4.
    let (mut a, mut b) = (linked_router(1), linked_router(2));
    store_chain(&mut a, 9, 5, 6, b"x", b"x");
    store_chain(&mut b, 9, 6, 4, b"x", b"y");
    let pending = connect(&mut a, &mut b, 0);
    exchange(&mut a, &mut b, pending, 0, 30_000);
    for r in [&a, &b] {
        for seq in [4, 5] {
            assert_eq!(r.store().ids_at(T, &node(9), seq).len(), 2, "{:?} at seq {seq}", r.node_id());
        }
        assert_eq!(r.store().entry(T, &node(9)).linked, 3, "the shared prefix ends below the fork");
        assert!(r.stats().fork_probes >= 1);
    }
    assert_eq!(a.store().digest(T), b.store().digest(T));
}

#[test]
fn forward_evidence_to_peers_that_hold_the_seq() {
    let mut r = router_with_peers(2);
    graft_all(&mut r, &[1, 2]);
    // Peer 2 says it holds origin 5 up to seq 1.
    let p = Packet::IHave {
        topic: T.into(),
        flags: 0,
        ids: vec![],
        vv: vec![VvEntry::seqs_only(node(5), 1)],
        digest: None,
    };
    r.handle(frame(2, &p), 0);
    let out = r.handle(frame(1, &Packet::Message(vec![msg(5, 1, b"a")])), 1);
    assert!(!sent_messages_to(&out).contains(&node(2)), "skip_known_holders");
    let out = r.handle(frame(1, &Packet::Message(vec![msg(5, 1, b"b")])), 2);
    assert!(sent_messages_to(&out).contains(&node(2)), "a second payload at a held seq is evidence: forwarded");
}

#[test]
fn third_payload_at_one_seq_dropped_before_validation() {
    let mut r = router_with_peers(1);
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    r.set_validator(Box::new(move |_| {
        c.set(c.get() + 1);
        Validation::Accept
    }));
    for body in [b"a", b"b", b"c"] {
        r.handle(frame(1, &Packet::Message(vec![msg(5, 1, body)])), 0);
    }
    assert_eq!(calls.get(), 2, "the third payload is not validated");
    assert_eq!(r.stats().surplus, 1);
    assert_eq!(r.store().ids_at(T, &node(5), 1).len(), 2);
}
