//! The peer manager's rules, each checked end to end on the in-memory
//! [`Net`] (fake browsers, simulated time) or on one manager fed by hand.

use super::fake::fake_sdp;
use super::net::{Net, NetConfig};
use super::*;
use crate::session::ProofMode;

fn cfg() -> NodeConfig {
    NodeConfig::default()
}

fn outputs(m: &mut PeerManager) -> Vec<Output> {
    std::iter::from_fn(|| m.poll_output()).collect()
}

fn alone(seed: u8) -> PeerManager {
    PeerManager::new(Identity::from_seed([seed; 32]), cfg(), [seed; 32], 0.0, 0.0)
}

fn created(outs: &[Output]) -> Vec<(NodeId, u32)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Create { peer, session } => Some((*peer, *session)),
            _ => None,
        })
        .collect()
}

fn closed(outs: &[Output]) -> usize {
    outs.iter().filter(|o| matches!(o, Output::Close { .. })).count()
}

#[test]
fn two_nodes_connect_and_prove_each_other() {
    let mut net = Net::new(2, cfg(), 5);
    net.join(0);
    net.join(1);
    net.run_until(1_000);
    assert!(net.full_mesh(), "{:?}", net.nodes[0].manager.peer_infos());
    for i in 0..2 {
        assert!(net.nodes[i].app.events.contains(&Event::PeerUp(net.id(1 - i))));
        assert_eq!(net.nodes[i].manager.stats().peers_proven, 1);
        assert!(net.nodes[i].manager.timings().first_peer_proven_ms.is_some());
    }
}

#[test]
fn eight_nodes_form_a_full_mesh() {
    let mut net = Net::new(8, cfg(), 3);
    for i in 0..8 {
        net.join(i);
    }
    net.run_until(5_000);
    assert!(net.full_mesh());
}

#[test]
fn glare_both_dial_at_once_still_connects() {
    // Both are welcomed with each other at the same instant: both offer.
    let mut net = Net::new(2, cfg(), 10);
    let (a, b) = (net.id(0), net.id(1));
    net.join_quietly(0, vec![b]);
    net.join_quietly(1, vec![a]);
    net.run_until(2_000);
    assert!(net.full_mesh(), "{:?} / {:?}", net.nodes[0].manager.peer_infos(), net.nodes[1].manager.peer_infos());
    // Exactly one connection each survives.
    assert_eq!(net.nodes[0].manager.peer_infos().len(), 1);
}

#[test]
fn connection_budget_refuses_beyond_the_cap() {
    let mut m =
        PeerManager::new(Identity::from_seed([1; 32]), NodeConfig { connection_budget: 2, ..cfg() }, [1; 32], 0.0, 0.0);
    let ids: Vec<NodeId> = (10..14).map(|s| Identity::from_seed([s; 32]).node_id()).collect();
    m.handle(Input::Directory { rdv: 0, ids }, 0.0);
    assert_eq!(created(&outputs(&mut m)).len(), 2);
    assert_eq!(m.stats().connections_refused_budget, 2);
}

#[test]
fn max_connections_caps_simultaneous_connections() {
    let mut m =
        PeerManager::new(Identity::from_seed([1; 32]), NodeConfig { max_connections: 3, ..cfg() }, [1; 32], 0.0, 0.0);
    let ids: Vec<NodeId> = (10..16).map(|s| Identity::from_seed([s; 32]).node_id()).collect();
    m.handle(Input::Directory { rdv: 0, ids }, 0.0);
    assert_eq!(created(&outputs(&mut m)).len(), 3);
    assert_eq!(m.stats().connections_refused_budget, 0, "the cap is not the budget");
}

/// One manager dialled `peer` and its channel opened; returns the session.
fn open_channel(m: &mut PeerManager, peer: NodeId) -> u32 {
    m.handle(Input::Connect(peer), 0.0);
    let (_, session) = created(&outputs(m))[0];
    let local = Some(fake_sdp(m.id(), session, "offer"));
    let remote = Some(fake_sdp(peer, 7, "answer"));
    m.handle(Input::ChannelOpen { peer, session, local_sdp: local, remote_sdp: remote }, 100.0);
    outputs(m);
    session
}

#[test]
fn handshake_timeout_drops_an_unproven_peer() {
    let mut m = alone(1);
    let peer = Identity::from_seed([2; 32]).node_id();
    open_channel(&mut m, peer);
    assert_eq!(m.peer_infos()[0].state, PeerState::Handshaking);
    let deadline = m.poll_timeout().expect("handshake timer armed");
    assert_eq!(deadline, 100 + cfg().handshake_timeout_ms as u64);
    m.handle_timeout(deadline as f64 - 1.0);
    assert_eq!(closed(&outputs(&mut m)), 0, "not before the deadline");
    m.handle_timeout(deadline as f64);
    assert_eq!(closed(&outputs(&mut m)), 1);
    assert_eq!(m.stats().handshake_timeouts, 1);
    assert!(m.peer_infos().is_empty());
}

#[test]
fn a_channel_without_a_dtls_fingerprint_is_dropped() {
    let mut m = alone(1);
    let peer = Identity::from_seed([2; 32]).node_id();
    m.handle(Input::Connect(peer), 0.0);
    let (_, session) = created(&outputs(&mut m))[0];
    m.handle(Input::ChannelOpen { peer, session, local_sdp: Some("v=0".into()), remote_sdp: None }, 1.0);
    assert_eq!(closed(&outputs(&mut m)), 1);
}

#[test]
fn disconnect_grace_keeps_a_transient_disconnect() {
    let mut m = alone(1);
    let peer = Identity::from_seed([2; 32]).node_id();
    let session = open_channel(&mut m, peer);
    m.handle(Input::ConnectionState { peer, session, state: ConnState::Disconnected }, 1_000.0);
    m.handle(Input::ConnectionState { peer, session, state: ConnState::Connected }, 2_000.0);
    m.handle_timeout(1_000.0 + DISCONNECT_GRACE_MS as f64);
    assert!(outputs(&mut m).iter().all(|o| !matches!(o, Output::Close { .. })), "recovered in time");
    m.handle(Input::ConnectionState { peer, session, state: ConnState::Disconnected }, 7_000.0);
    m.handle_timeout(7_000.0 + DISCONNECT_GRACE_MS as f64);
    assert_eq!(closed(&outputs(&mut m)), 1, "still disconnected after the grace");
}

#[test]
fn events_of_a_replaced_connection_are_ignored() {
    let mut m = alone(1);
    let peer = Identity::from_seed([2; 32]).node_id();
    let session = open_channel(&mut m, peer);
    let old = session.wrapping_add(1);
    m.handle(Input::ConnectionState { peer, session: old, state: ConnState::Failed }, 1.0);
    m.handle(Input::ChannelClosed { peer, session: old }, 1.0);
    assert_eq!(closed(&outputs(&mut m)), 0);
    assert_eq!(m.peer_infos().len(), 1);
}

#[test]
fn reconnect_backoff_redials_a_wanted_peer() {
    let mut net = Net::new(2, cfg(), 5);
    net.join(0);
    net.join(1);
    net.run_until(1_000);
    assert!(net.full_mesh());
    net.cut(0, 1);
    net.run_until(1_100);
    assert!(!net.full_mesh());
    assert!(net.nodes[0].manager.stats().reconnects_scheduled >= 1);
    net.heal(0, 1);
    net.run_until(5_000);
    assert!(net.full_mesh(), "redialled after the backoff");
}

#[test]
fn a_peer_that_reloads_is_accepted_with_its_new_session() {
    let mut net = Net::new(2, cfg(), 5);
    net.join(0);
    net.join(1);
    net.run_until(1_000);
    assert!(net.full_mesh());
    // Node 1 reloads: a fresh manager (new sessions) dials node 0, which
    // still holds the old connection.
    let id0 = net.id(0);
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&2u64.to_le_bytes());
    let identity = Identity::from_seed(seed);
    assert_eq!(identity.node_id(), net.id(1));
    net.nodes[1].manager = PeerManager::new(identity, cfg(), [77; 32], 1_000.0, 0.0);
    net.nodes[1].browser = super::fake::FakeBrowser::new(net.id(1));
    net.join_quietly(1, vec![id0]);
    net.run_until(3_000);
    assert!(net.full_mesh(), "{:?}", net.nodes[0].manager.peer_infos());
    assert_eq!(net.nodes[0].manager.peer_infos().len(), 1, "the old connection was replaced");
}

#[test]
fn early_candidates_wait_for_the_remote_description_and_stale_ones_are_dropped() {
    let mut m = alone(1);
    let peer = Identity::from_seed([2; 32]).node_id();
    m.handle(Input::Connect(peer), 0.0);
    let (_, mine) = created(&outputs(&mut m))[0];
    let cand = |c: &str| serde_json::json!({"session": 9, "kind": "candidate", "candidate": c, "sdp_mid": "0", "sdp_m_line_index": 0});
    m.handle(Input::Signal { rdv: 0, from: peer, payload: cand("early") }, 1.0);
    assert!(outputs(&mut m).iter().all(|o| !matches!(o, Output::AddCandidate { .. })), "buffered");
    let offer = serde_json::json!({"session": 9, "kind": "description", "sdp_type": "answer", "sdp": fake_sdp(peer, 9, "answer")});
    m.handle(Input::Signal { rdv: 0, from: peer, payload: offer }, 2.0);
    let outs = outputs(&mut m);
    assert!(outs.iter().any(|o| matches!(o, Output::SetRemoteDescription { .. })));
    m.handle(Input::RemoteDescriptionSet { peer, session: mine, result: Ok(()) }, 3.0);
    let outs = outputs(&mut m);
    assert!(
        outs.iter().any(|o| matches!(o, Output::AddCandidate { candidate, .. } if candidate.candidate == "early")),
        "{outs:?}"
    );
    // A candidate of another (older) session of the peer is stale.
    let stale = serde_json::json!({"session": 8, "kind": "candidate", "candidate": "old", "sdp_mid": "0", "sdp_m_line_index": 0});
    m.handle(Input::Signal { rdv: 0, from: peer, payload: stale }, 4.0);
    assert!(outputs(&mut m).iter().all(|o| !matches!(o, Output::AddCandidate { .. })));
}

#[test]
fn early_candidates_are_bounded() {
    let mut m = alone(1);
    let peer = Identity::from_seed([2; 32]).node_id();
    m.handle(Input::Connect(peer), 0.0);
    let (_, mine) = created(&outputs(&mut m))[0];
    for i in 0..1000 {
        let c = serde_json::json!({"session": 9, "kind": "candidate", "candidate": format!("c{i}"), "sdp_mid": "0", "sdp_m_line_index": 0});
        m.handle(Input::Signal { rdv: 0, from: peer, payload: c }, 1.0);
    }
    let answer = serde_json::json!({"session": 9, "kind": "description", "sdp_type": "answer", "sdp": "v=0"});
    m.handle(Input::Signal { rdv: 0, from: peer, payload: answer }, 2.0);
    m.handle(Input::RemoteDescriptionSet { peer, session: mine, result: Ok(()) }, 3.0);
    let adds = outputs(&mut m).iter().filter(|o| matches!(o, Output::AddCandidate { .. })).count();
    assert_eq!(adds, MAX_PENDING_CANDIDATES);
}

#[test]
fn malformed_signals_are_counted_and_dropped() {
    let mut m = alone(1);
    let peer = Identity::from_seed([2; 32]).node_id();
    for bad in [serde_json::json!(42), serde_json::json!({"session": 1, "kind": "evil"})] {
        m.handle(Input::Signal { rdv: 0, from: peer, payload: bad }, 0.0);
    }
    assert_eq!(m.stats().signals_rejected, 2);
    assert!(created(&outputs(&mut m)).is_empty());
}

#[test]
fn bye_from_the_current_session_drops_and_an_old_one_does_not() {
    let mut net = Net::new(2, cfg(), 5);
    net.join(0);
    net.join(1);
    net.run_until(1_000);
    let b = net.id(1);
    let session_b = net.nodes[1].manager.session_of(net.id(0)).unwrap();
    let bye = |s: u32| Input::Signal { rdv: 0, from: b, payload: serde_json::json!({"session": s, "kind": "bye"}) };
    net.input(0, bye(session_b.wrapping_add(1)));
    net.run_until(1_010);
    assert_eq!(net.proven(0).len(), 1, "a bye from another session is ignored");
    net.input(0, bye(session_b));
    net.run_until(1_020);
    assert!(net.proven(0).is_empty());
}

#[test]
fn a_peer_that_left_before_proving_is_abandoned_but_a_proven_one_stays() {
    let mut m = alone(1);
    let (p, q) = (Identity::from_seed([2; 32]).node_id(), Identity::from_seed([3; 32]).node_id());
    m.handle(Input::Directory { rdv: 0, ids: vec![p] }, 0.0);
    outputs(&mut m);
    m.handle(Input::PeerLeft { rdv: 0, id: p }, 1.0);
    assert_eq!(closed(&outputs(&mut m)), 1);

    let mut net = Net::new(2, cfg(), 5);
    net.join(0);
    net.join(1);
    net.run_until(1_000);
    net.input(0, Input::PeerLeft { rdv: 0, id: net.id(1) });
    net.run_until(1_100);
    assert_eq!(net.proven(0).len(), 1, "the network outlives the rendezvous");
    let _ = q;
}

#[test]
fn join_fallback_dial_after_three_seconds_without_an_offer() {
    let mut net = Net::new(2, cfg(), 5);
    net.join(0);
    // Node 1 registers with an empty welcome list (it will not dial).
    net.join_quietly(1, vec![]);
    net.input(0, Input::PeerJoined { rdv: 0, id: net.id(1) });
    net.run_until(JOIN_FALLBACK_MS - 10);
    assert!(net.nodes[0].manager.peer_infos().is_empty(), "waits for the joiner's offer");
    net.run_until(JOIN_FALLBACK_MS + 1_000);
    assert!(net.full_mesh());
}

#[test]
fn dial_from_peer_records_under_target_degree() {
    for (degree, expect) in [(8, true), (1, false)] {
        let mut net = Net::new(3, NodeConfig { target_degree: degree, ..cfg() }, 5);
        let (b, c) = (net.id(1), net.id(2));
        net.join(1);
        net.join(2);
        net.run_until(500);
        // Node 0 knows only b; b's record lists c.
        net.join_quietly(0, vec![b]);
        net.run_until(3_000);
        assert_eq!(net.proven(0).contains(&c), expect, "degree {degree}: {:?}", net.nodes[0].manager.peer_infos());
        assert!(net.nodes[0].manager.stats().peer_records_in >= 1);
    }
}

#[test]
fn signals_are_relayed_through_a_peer_when_the_rendezvous_is_down() {
    let mut net = Net::new(3, cfg(), 5);
    net.cut(0, 2);
    for i in 0..3 {
        net.join(i);
    }
    net.run_until(2_000);
    assert!(!net.proven(0).contains(&net.id(2)));
    net.rendezvous_down();
    net.heal(0, 2);
    net.input(0, Input::Connect(net.id(2)));
    net.run_until(4_000);
    assert!(net.proven(0).contains(&net.id(2)), "{:?}", net.nodes[0].manager.peer_infos());
    assert!(net.nodes[0].manager.stats().relays_sent > 0);
    assert!(net.nodes[1].manager.stats().relays_forwarded > 0);
    assert!(net.nodes[2].manager.stats().relays_received > 0);
}

#[test]
fn a_forged_identity_proof_is_rejected() {
    let mut net = Net::new(2, cfg(), 5);
    net.nodes[1].manager.config.proof_mode = ProofMode::ForgeProof;
    net.join(0);
    net.join(1);
    net.run_until(1_000);
    assert!(net.proven(0).is_empty());
    assert!(net.nodes[0].manager.stats().proofs_rejected >= 1);
}

#[test]
fn shutdown_closes_everything_and_stops_redialling() {
    let mut net = Net::new(3, cfg(), 5);
    for i in 0..3 {
        net.join(i);
    }
    net.run_until(1_000);
    net.input(0, Input::Shutdown);
    net.run_until(60_000);
    assert!(net.nodes[0].manager.peer_infos().is_empty());
    assert!(net.nodes[0].manager.poll_timeout().is_none(), "no redial timer left");
}

#[test]
fn hellos_and_pings_flow_between_proven_peers() {
    let mut net = Net::new(2, cfg(), 5);
    net.join(0);
    net.join(1);
    net.run_until(1_000);
    assert_eq!(net.nodes[0].manager.send_hello("hi").unwrap(), 1);
    let now = net.now as f64;
    net.nodes[0].manager.ping_all(now);
    net.input(0, Input::Connect(net.id(0))); // a no-op input to drain outputs
    net.run_until(1_100);
    let h = net.nodes[1].manager.hellos();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].text, "hi");
    assert!(net.nodes[0].manager.peer_infos()[0].rtt_ms.is_some_and(|r| r >= 10.0));
}

// ----- abuse ---------------------------------------------------------------

/// An offer as a stranger's rendezvous client would send it.
fn offer(session: u32, sdp: &str) -> serde_json::Value {
    serde_json::json!({"session": session, "kind": "description", "sdp_type": "offer", "sdp": sdp})
}

/// An offer that parses (fingerprint and ICE credentials) but whose sender
/// never completes the negotiation.
fn parseable_offer(from: NodeId, session: u32) -> serde_json::Value {
    offer(session, &fake_sdp(from, session, "offer"))
}

fn stranger(i: u32) -> NodeId {
    let mut seed = [0xee; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    Identity::from_seed(seed).node_id()
}

#[test]
fn offer_must_parse_before_a_connection_is_made() {
    let mut m = alone(1);
    for i in 0..70 {
        m.handle(Input::Signal { rdv: 0, from: stranger(i), payload: offer(i, "v=0") }, 0.0);
    }
    assert!(created(&outputs(&mut m)).is_empty(), "no connection for an unparseable offer");
    assert_eq!(m.stats().offers_refused, 70);
    assert_eq!(m.stats().connections_created, 0, "no budget spent");
}

#[test]
fn max_pending_inbound_and_pending_connection_timeout() {
    let mut m = alone(1);
    for i in 0..70 {
        m.handle(Input::Signal { rdv: 0, from: stranger(i), payload: parseable_offer(stranger(i), i) }, 0.0);
    }
    let cap = cfg().max_pending_inbound;
    assert_eq!(created(&outputs(&mut m)).len(), cap);
    assert_eq!(m.stats().offers_refused as usize, 70 - cap);
    // Never completed: they are gone after the pending timeout, freeing room.
    m.handle_timeout(cfg().pending_timeout_ms as f64);
    assert_eq!(closed(&outputs(&mut m)), cap);
    assert_eq!(m.stats().pending_timeouts as usize, cap);
    assert!(m.peer_infos().is_empty());
}

#[test]
fn budget_reserve_for_dials_is_not_spent_by_strangers() {
    let config = NodeConfig { connection_budget: 20, dial_reserve: 10, max_pending_inbound: 100, ..cfg() };
    let mut m = PeerManager::new(Identity::from_seed([1; 32]), config, [1; 32], 0.0, 0.0);
    for i in 0..30 {
        m.handle(Input::Signal { rdv: 0, from: stranger(i), payload: parseable_offer(stranger(i), i) }, 0.0);
    }
    assert_eq!(created(&outputs(&mut m)).len(), 10, "only budget minus reserve for strangers");
    // A peer this node wants can still be dialled from the reserve.
    m.handle(Input::Connect(Identity::from_seed([2; 32]).node_id()), 1.0);
    assert_eq!(created(&outputs(&mut m)).len(), 1);
}

#[test]
fn unproven_replacement_once_a_stranger_cannot_spend_the_budget_by_reoffering() {
    // One stranger re-offers with a new session each time its previous
    // offer was applied. Before the rule each offer replaced the unproven
    // connection with a fresh RTCPeerConnection, past the dial reserve.
    let mut m = alone(1);
    let s = stranger(1);
    let mut created_total = 0;
    for session in 0..30u32 {
        m.handle(Input::Signal { rdv: 0, from: s, payload: parseable_offer(s, session) }, session as f64);
        let outs = outputs(&mut m);
        for (peer, mine) in created(&outs) {
            created_total += 1;
            m.handle(Input::RemoteDescriptionSet { peer, session: mine, result: Ok(()) }, session as f64);
            outputs(&mut m);
        }
    }
    assert_eq!(created_total, 2, "the first offer and one replacement");
    assert_eq!(m.stats().connections_created, 2);
    assert_eq!(m.stats().offers_refused, 28);
    assert_eq!(m.peer_infos().len(), 1, "the replacement is kept until it proves or times out");
    // Once it times out the stranger is a stranger again: one more slot.
    m.handle_timeout(40.0 + cfg().pending_timeout_ms as f64);
    assert!(m.peer_infos().is_empty());
}

#[test]
fn bogus_offers_cannot_lock_out_an_honest_peer() {
    // 70 strangers send the victim (node 0) offers that never complete,
    // then an honest node joins: it must connect. Before these rules the
    // victim held 64 connections that never timed out.
    let mut net = Net::new(2, cfg(), 5);
    net.join(0);
    net.run_until(100);
    for i in 0..70 {
        let bogus = if i % 2 == 0 { offer(i, "v=0") } else { parseable_offer(stranger(i), i) };
        net.input(0, Input::Signal { rdv: 0, from: stranger(i), payload: bogus });
    }
    net.run_until(3_000);
    net.join(1);
    net.run_until(25_000);
    assert!(net.full_mesh(), "{:?}", net.nodes[0].manager.peer_infos());
    let st = net.nodes[0].manager.stats();
    assert!(st.connections_created <= cfg().max_pending_inbound as u32 + 2, "{st:?}");
}

#[test]
fn bounded_directory_dials_and_refill_degree() {
    let mut m = PeerManager::new(
        Identity::from_seed([1; 32]),
        NodeConfig { high_degree: 5, target_degree: 5, max_pending_dials: 5, ..cfg() },
        [1; 32],
        0.0,
        0.0,
    );
    let ids: Vec<NodeId> = (0..40).map(stranger).collect();
    m.handle(Input::Directory { rdv: 0, ids }, 0.0);
    let first = created(&outputs(&mut m));
    assert_eq!(first.len(), 5, "a sample of the directory, not all of it");
    // One of them fails: another wanted peer replaces it.
    let (peer, session) = first[0];
    m.handle(Input::ConnectionState { peer, session, state: ConnState::Failed }, 1.0);
    let next = created(&outputs(&mut m));
    assert_eq!(next.len(), 1);
    assert!(!first.iter().any(|(p, _)| *p == next[0].0), "a different peer");
}

#[test]
fn a_peer_record_makes_a_node_dial_few_peers() {
    // Node 1 knows 2..6; node 0 knows only node 1 and learns the rest from
    // node 1's record. Right after that one record, node 0 has dialled at
    // most `max_record_dials` of the five it lists.
    let mut net = Net::new(7, NodeConfig { max_record_dials: 2, ..cfg() }, 50);
    for i in 1..7 {
        net.join(i);
    }
    net.run_until(2_000);
    net.join_quietly(0, vec![net.id(1)]);
    let mut t = net.now;
    while net.proven(0).is_empty() && t < 10_000 {
        t += 10;
        net.run_until(t);
    }
    net.run_until(t + 60); // node 1's record arrives one latency after the proof
    let st = net.nodes[0].manager.stats();
    assert_eq!(st.peer_records_in, 1, "{st:?}");
    assert_eq!(st.connections_created, 1 + 2, "{st:?}");
}

#[test]
fn a_replayed_relayed_offer_cannot_tear_down_a_working_link() {
    // a (0) and c (2) connected through relays with the rendezvous down; b
    // (1), the relay, keeps a copy of a's first offer to c and replays it
    // later. Before replay protection the old offer's session replaced
    // c's working connection to a.
    let mut net = Net::new(3, cfg(), 5);
    net.cut(0, 2);
    for i in 0..3 {
        net.join(i);
    }
    net.run_until(2_000);
    net.rendezvous_down();
    net.heal(0, 2);
    net.input(0, Input::Connect(net.id(2)));
    net.run_until(4_000);
    assert!(net.proven(2).contains(&net.id(0)));
    // b re-sends a signed relay it carried: forge one as a would have made
    // it, with a send time and nonce, and replay it twice.
    let (a, c) = (net.id(0), net.id(2));
    let session = net.nodes[0].manager.session_of(c).unwrap().wrapping_add(1);
    let sdp = fake_sdp(a, session, "offer");
    let wall = 1_700_000_000_000u64 + net.now;
    let payload = serde_json::json!({"session": session, "kind": "description", "sdp_type": "offer", "sdp": sdp,
        "relay_ms": wall, "relay_nonce": 42});
    let relay = RelaySignal::sign(&super::net::sim_identity(0), c, 1, serde_json::to_vec(&payload).unwrap());
    let before = net.nodes[2].manager.session_of(a);
    for _ in 0..2 {
        net.nodes[1].manager.send_to(c, &WireMsg::Relay(relay.clone()));
        net.input(1, Input::Connect(net.id(1)));
        net.run_until(net.now + 50);
    }
    // The first copy is a fresh offer (a new session): accepted once. The
    // second is a replay: refused, and the connection it made stays.
    let after = net.nodes[2].manager.session_of(a);
    assert_ne!(before, after);
    assert!(net.nodes[2].manager.stats().signals_rejected >= 1);
    // An old one (outside the window) is refused outright.
    let old = serde_json::json!({"session": session + 1, "kind": "description", "sdp_type": "offer", "sdp": sdp,
        "relay_ms": wall - relay::RELAY_WINDOW_MS - 1, "relay_nonce": 43});
    let relay = RelaySignal::sign(&super::net::sim_identity(0), c, 1, serde_json::to_vec(&old).unwrap());
    let rejected = net.nodes[2].manager.stats().signals_rejected;
    net.nodes[1].manager.send_to(c, &WireMsg::Relay(relay));
    net.input(1, Input::Connect(net.id(1)));
    net.run_until(net.now + 50);
    assert_eq!(net.nodes[2].manager.stats().signals_rejected, rejected + 1);
    assert_eq!(net.nodes[2].manager.session_of(a), after, "the working connection stays");
}

#[test]
fn relayed_renegotiation_converges_under_latency_and_jitter() {
    // The e2e `rendezvous_down` case under load: a and b lose their link
    // with the rendezvous gone, and both redial through c with slow,
    // jittery links. They must reconnect, with a bounded number of relayed
    // signals (no negotiation loop).
    for seed in 1..=20u64 {
        let net_cfg = super::net::NetConfig { latency_ms: 150, jitter_ms: 300, seed, ..Default::default() };
        let apps = (0..3).map(|_| super::net::Recorder::default()).collect();
        let mut net = Net::with_apps(cfg(), net_cfg, apps);
        for i in 0..3 {
            net.join(i);
        }
        net.run_until(5_000);
        assert!(net.full_mesh(), "seed {seed}");
        net.rendezvous_down();
        net.run_until(5_100);
        net.cut(0, 1);
        net.run_until(5_200);
        net.heal(0, 1);
        net.run_until(35_000);
        let forwarded = net.nodes[2].manager.stats().relays_forwarded;
        assert!(net.proven(0).contains(&net.id(1)), "seed {seed}: {:?}", net.nodes[0].manager.peer_infos());
        assert!(forwarded < 100, "seed {seed}: {forwarded} relayed signals");
    }
}

#[test]
fn signal_route_uses_the_rendezvous_that_lists_the_peer() {
    // Node 0 is on servers 0 and 1, node 1 only on server 1: node 0's
    // offers reach node 1 only if they go through server 1.
    let mut net = Net::new(2, cfg(), 5);
    let second = net.add_rendezvous();
    net.join_at(0, 0);
    net.join_at(0, second);
    net.join_at(1, second);
    net.run_until(2_000);
    assert!(net.full_mesh(), "{:?}", net.nodes[0].manager.peer_infos());
    let status = net.nodes[0].manager.rendezvous_status();
    assert_eq!(status.servers.len(), 2);
    assert_eq!(status.directory, vec![net.id(1)], "the union of both directories");
}

#[test]
fn several_rendezvous_a_new_node_joins_while_one_is_down() {
    // Nodes 0-2 on both servers, node 3 on server 0 only. Server 0 dies;
    // node 4 joins through server 1 alone and still meets everyone
    // (node 3 through peer records and relays), and nobody loses a link.
    let mut net = Net::new(5, cfg(), 5);
    let second = net.add_rendezvous();
    for i in 0..3 {
        net.join_at(i, 0);
        net.join_at(i, second);
    }
    net.join_at(3, 0);
    net.run_until(3_000);
    let before: Vec<usize> = (0..4).map(|i| net.proven(i).len()).collect();
    assert_eq!(before, vec![3, 3, 3, 3]);
    net.rendezvous_down_at(0);
    net.run_until(4_000);
    assert_eq!(net.nodes[0].manager.rendezvous_status().state, "connected", "server 1 is still up");
    assert!(!net.rendezvous_is_up(0));
    net.join_at(4, second);
    net.run_until(20_000);
    assert!(net.proven(4).len() >= 3, "node 4 met the nodes on server 1: {:?}", net.proven(4));
    assert!(net.proven(3).len() >= 3, "node 3 kept its links: {:?}", net.proven(3));
    assert!(net.full_mesh(), "node 4 reaches node 3 without server 0: {:?}", net.proven(4));
}

#[test]
fn merge_directories_a_peer_leaving_one_server_is_still_wanted() {
    let mut m = alone(1);
    let p = Identity::from_seed([2; 32]).node_id();
    m.handle(Input::Directory { rdv: 0, ids: vec![p] }, 0.0);
    m.handle(Input::Directory { rdv: 1, ids: vec![p] }, 0.0);
    outputs(&mut m);
    m.handle(Input::PeerLeft { rdv: 0, id: p }, 1.0);
    assert_eq!(closed(&outputs(&mut m)), 0, "server 1 still lists it");
    m.handle(Input::PeerLeft { rdv: 1, id: p }, 2.0);
    assert_eq!(closed(&outputs(&mut m)), 1, "gone from both: the pending dial is abandoned");
}

#[test]
fn max_pending_dials_queues_the_rest_newest_joiner_first() {
    let mut m = alone(1);
    let ids: Vec<NodeId> = (0..10).map(stranger).collect();
    m.handle(Input::Directory { rdv: 0, ids: ids.clone() }, 0.0);
    let first = created(&outputs(&mut m));
    assert_eq!(first.len(), cfg().max_pending_dials, "only max_pending_dials at once");
    // A newcomer joins; its fallback dial waits in the queue, at the front.
    let newcomer = stranger(99);
    m.handle(Input::PeerJoined { rdv: 0, id: newcomer }, 1.0);
    m.handle_timeout(1.0 + JOIN_FALLBACK_MS as f64);
    assert!(created(&outputs(&mut m)).is_empty(), "no free dial slot yet");
    // One dial fails: the slot goes to the newest joiner, not the directory.
    let (peer, session) = first[0];
    m.handle(Input::ConnectionState { peer, session, state: ConnState::Failed }, 5_000.0);
    let next = created(&outputs(&mut m));
    assert_eq!(next.first().map(|(p, _)| *p), Some(newcomer), "{next:?}");
}

#[test]
fn refuse_with_bye_a_busy_node_tells_the_sender_and_dials_it_later() {
    let mut m = PeerManager::new(
        Identity::from_seed([1; 32]),
        NodeConfig { max_pending_inbound: 1, ..cfg() },
        [1; 32],
        0.0,
        0.0,
    );
    let (a, b) = (stranger(2), stranger(3));
    m.handle(Input::Directory { rdv: 0, ids: vec![] }, 0.0);
    m.handle(Input::Rendezvous { rdv: 0, state: "connected".into(), url: "ws://r".into(), error: None }, 0.0);
    let offer = |s: u32, from: NodeId| serde_json::json!({"session": s, "kind": "description", "sdp_type": "offer", "sdp": fake_sdp(from, s, "offer")});
    m.handle(Input::Signal { rdv: 0, from: a, payload: offer(10, a) }, 1.0);
    outputs(&mut m);
    m.handle(Input::PeerJoined { rdv: 0, id: b }, 1.0);
    outputs(&mut m);
    m.handle(Input::Signal { rdv: 0, from: b, payload: offer(20, b) }, 2.0);
    let outs = outputs(&mut m);
    let bye = outs.iter().any(|o| {
        matches!(o, Output::Signal { to, signal, .. } if *to == b && signal.session == 20
            && matches!(signal.signal, SignalPayload::Bye))
    });
    assert!(bye, "the busy node says bye for the sender's session: {outs:?}");
    assert_eq!(m.stats().offers_refused, 1);
    // Garbage gets no answer (no amplification).
    let junk = serde_json::json!({"session": 31, "kind": "description", "sdp_type": "offer", "sdp": "v=0"});
    m.handle(Input::Signal { rdv: 0, from: stranger(4), payload: junk }, 3.0);
    assert!(!outputs(&mut m).iter().any(|o| matches!(o, Output::Signal { .. })), "no bye for garbage");

    // The sender's side: a bye for its own unanswered offer ends the wait.
    let mut s = alone(5);
    let me = Identity::from_seed([1; 32]).node_id();
    s.handle(Input::Directory { rdv: 0, ids: vec![me] }, 0.0);
    let (peer, session) = created(&outputs(&mut s))[0];
    assert_eq!(peer, me);
    s.handle(Input::Signal { rdv: 0, from: me, payload: serde_json::json!({"session": session, "kind": "bye"}) }, 1.0);
    assert_eq!(closed(&outputs(&mut s)), 1, "the refused connection is closed at once");
}

#[test]
fn sybils_listed_at_the_rendezvous_cannot_keep_an_honest_joiner_out() {
    // Node 0 is the victim, node 1 joins later; nodes 2.. are Sybils that
    // log in to the rendezvous and never answer anything. Everyone hears
    // every join, as from the real rendezvous.
    const SYBILS: usize = 64;
    let net_cfg = NetConfig { latency_ms: 20, ..NetConfig::default() };
    let apps = (0..SYBILS + 2).map(|_| super::net::Recorder::default()).collect();
    let mut net = Net::with_apps(cfg(), net_cfg, apps);
    net.join(0);
    for i in 2..SYBILS + 2 {
        net.join(i);
        net.go_silent(i);
    }
    net.run_until(3_000);
    net.join(1);
    net.run_until(33_000);
    let (v, h) = (net.id(0), net.id(1));
    assert!(net.proven(0).contains(&h) && net.proven(1).contains(&v), "{:?}", net.nodes[0].manager.peer_infos());
}

#[test]
fn max_degree_bounds_every_node_and_a_late_joiner_still_finds_room() {
    // Everyone hears every join and dials: without the cap 40 nodes would
    // head for a full mesh of 39 connections each.
    let n = 41;
    let mut net = Net::new(n, cfg(), 10);
    for i in 0..n - 1 {
        net.join(i);
    }
    net.run_until(60_000);
    let degrees: Vec<usize> = (0..n - 1).map(|i| net.nodes[i].manager.peer_infos().len()).collect();
    assert!(degrees.iter().all(|d| *d <= cfg().max_degree), "{degrees:?}");
    let proven: Vec<usize> = (0..n - 1).map(|i| net.proven(i).len()).collect();
    assert!(proven.iter().all(|p| *p >= cfg().target_degree), "{proven:?}");
    net.join(n - 1);
    net.run_until(120_000);
    assert!(net.proven(n - 1).len() >= cfg().target_degree, "the late joiner: {:?}", net.proven(n - 1));
    let degrees: Vec<usize> = (0..n).map(|i| net.nodes[i].manager.peer_infos().len()).collect();
    assert!(degrees.iter().all(|d| *d <= cfg().max_degree), "{degrees:?}");
}

#[test]
fn rotate_one_peer_keeps_the_neighbourhood_changing_without_losing_degree() {
    let small = NodeConfig { target_degree: 3, high_degree: 4, max_degree: 6, ..cfg() };
    let mut net = Net::new(12, small.clone(), 10);
    for i in 0..12 {
        net.join(i);
    }
    net.run_until(ROTATE_MS - 1_000);
    let before: BTreeSet<NodeId> = net.proven(0).into_iter().collect();
    assert_eq!(net.nodes[0].manager.stats().rotations, 0);
    net.run_until(4 * ROTATE_MS + 30_000);
    let rotations: u32 = (0..12).map(|i| net.nodes[i].manager.stats().rotations).sum();
    assert!(rotations >= 12, "nodes at their high degree rotate: {rotations}");
    let proven: Vec<usize> = (0..12).map(|i| net.proven(i).len()).collect();
    assert!(proven.iter().all(|p| *p >= small.target_degree && *p <= small.max_degree), "{proven:?}");
    let after: BTreeSet<NodeId> = net.proven(0).into_iter().collect();
    assert_ne!(before, after, "node 0's neighbours changed");
}

#[test]
fn ask_directory_when_starved_asks_every_connected_server_only_below_the_target() {
    let mut m = alone(1);
    for rdv in 0..2 {
        let url = format!("ws://r{rdv}");
        m.handle(Input::Rendezvous { rdv, state: "connected".into(), url, error: None }, 0.0);
        m.handle(Input::Directory { rdv, ids: vec![] }, 0.0);
    }
    outputs(&mut m);
    m.handle_timeout(STARVED_CHECK_MS as f64);
    let asks: Vec<usize> = outputs(&mut m)
        .iter()
        .filter_map(|o| match o {
            Output::AskDirectory { via } => Some(*via),
            _ => None,
        })
        .collect();
    assert_eq!(asks, vec![0, 1]);
    assert_eq!(m.stats().directory_asks, 2);
    // The sample is merged into what the server listed, and dialled.
    let fresh = stranger(7);
    m.handle(Input::DirectorySample { rdv: 1, ids: vec![fresh] }, STARVED_CHECK_MS as f64 + 1.0);
    let dialled: Vec<NodeId> = created(&outputs(&mut m)).into_iter().map(|(p, _)| p).collect();
    assert_eq!(dialled, vec![fresh]);
    assert!(m.rendezvous_status().directory.contains(&fresh));

    // At the target degree (own dials count), no more asking.
    let ids: Vec<NodeId> = (10..10 + cfg().target_degree as u32).map(stranger).collect();
    let mut full = PeerManager::new(
        Identity::from_seed([2; 32]),
        NodeConfig { max_pending_dials: 64, ..cfg() },
        [2; 32],
        0.0,
        0.0,
    );
    full.handle(Input::Rendezvous { rdv: 0, state: "connected".into(), url: "ws://r".into(), error: None }, 0.0);
    full.handle(Input::Directory { rdv: 0, ids }, 0.0);
    outputs(&mut full);
    full.handle_timeout(STARVED_CHECK_MS as f64);
    assert!(!outputs(&mut full).iter().any(|o| matches!(o, Output::AskDirectory { .. })));
}

#[test]
fn a_joiner_with_an_empty_welcome_asks_the_rendezvous_again_and_finds_peers() {
    // The rendezvous listed nobody (it had just restarted, or its sample
    // missed everyone with room) and nobody heard of the joiner: before
    // rule `ask_directory_when_starved` it stayed alone for good.
    let mut net = Net::new(6, cfg(), 10);
    for i in 0..5 {
        net.join(i);
    }
    net.run_until(5_000);
    net.join_quietly(5, vec![]);
    net.run_until(5_000 + 2 * STARVED_CHECK_MS);
    assert!(net.proven(5).len() >= 2, "{:?}", net.nodes[5].manager.peer_infos());
}

/// A hub at `max_degree` 3 whose three peers all dialled it.
fn hub_with_three_inbound(extra: usize) -> Net {
    let small = NodeConfig { target_degree: 2, high_degree: 2, max_degree: 3, ..cfg() };
    let mut net = Net::new(4 + extra, small, 10);
    net.join_quietly(0, vec![]);
    let hub = net.id(0);
    for i in 1..4 {
        net.join_quietly(i, vec![hub]);
    }
    net.run_until(3_000);
    assert_eq!(net.proven(0).len(), 3, "the hub is full");
    net
}

#[test]
fn make_room_for_the_starved_a_full_node_evicts_one_inbound_peer_for_a_starved_joiner() {
    let mut net = hub_with_three_inbound(2);
    let hub = net.id(0);
    // Two starved joiners that know only the full hub, at once.
    net.join_quietly(4, vec![hub]);
    net.join_quietly(5, vec![hub]);
    net.run_until(6_000);
    let joiners_in = [4, 5].iter().filter(|&&i| net.proven(i).contains(&hub)).count();
    assert_eq!(joiners_in, 1, "one eviction per EVICT_FOR_STARVED_MS: {:?}", net.nodes[0].manager.peer_infos());
    assert_eq!(net.nodes[0].manager.stats().evictions_for_starved, 1);
    assert!(net.nodes[0].manager.peer_infos().len() <= 3);
    // Nobody stays alone: the evicted peer and the other joiner ask the
    // rendezvous for more peers and dial nodes with room.
    net.run_until(6_000 + 3 * STARVED_CHECK_MS);
    for i in 0..6 {
        assert!(!net.proven(i).is_empty(), "node {i} is alone");
    }
}

#[test]
fn make_room_for_the_starved_never_evicts_a_nodes_own_dials() {
    let small = NodeConfig { target_degree: 3, high_degree: 3, max_degree: 3, ..cfg() };
    let mut net = Net::new(5, small, 10);
    for i in 1..4 {
        net.join_quietly(i, vec![]);
    }
    let mine: Vec<NodeId> = (1..4).map(|i| net.id(i)).collect();
    net.join_quietly(0, mine.clone());
    net.run_until(3_000);
    assert_eq!(net.proven(0).len(), 3);
    net.join_quietly(4, vec![net.id(0)]);
    net.run_until(10_000);
    assert_eq!(net.nodes[0].manager.stats().evictions_for_starved, 0);
    let kept: BTreeSet<NodeId> = net.proven(0).into_iter().collect();
    assert_eq!(kept, mine.into_iter().collect(), "own dials stay");
}

#[test]
fn make_room_for_the_starved_only_for_offers_that_say_so() {
    let mut net = hub_with_three_inbound(3);
    let hub = net.id(0);
    net.join_quietly(4, vec![]);
    net.join_quietly(5, vec![]);
    let (a, b) = (net.id(4), net.id(5));
    net.join_quietly(6, vec![a, b]);
    net.run_until(4_000);
    assert_eq!(net.proven(6).len(), 2, "node 6 is not starved");
    // Before the first starved check (nodes 4 and 5 would ask then).
    net.input(6, Input::Connect(hub));
    net.run_until(8_000);
    assert!(!net.proven(6).contains(&hub), "a node that is not starved gets no room");
    assert_eq!(net.nodes[0].manager.stats().evictions_for_starved, 0);
    assert!(net.nodes[0].manager.stats().offers_refused >= 1);
}

#[test]
fn every_node_finds_peers_when_welcomes_are_small_samples_of_a_saturated_network() {
    // 120 nodes, each welcomed with 8 random members and heard of by
    // nobody: early nodes fill up to max_degree, and a joiner whose 8 were
    // all full stayed alone (the 200-node simulator did not converge).
    let n = 120;
    let net_cfg = NetConfig { latency_ms: 10, welcome: Some(8), ..NetConfig::default() };
    let apps = (0..n).map(|_| super::net::Recorder::default()).collect();
    let mut net = Net::with_apps(cfg(), net_cfg, apps);
    for i in 0..n {
        net.join(i);
        let t = net.now + 20;
        net.run_until(t);
    }
    let t = net.now + 4 * STARVED_CHECK_MS;
    net.run_until(t);
    let alone: Vec<usize> = (0..n).filter(|&i| net.proven(i).len() < STARVED_BELOW).collect();
    assert!(alone.is_empty(), "nodes with fewer than {STARVED_BELOW} peers: {alone:?}");
}
