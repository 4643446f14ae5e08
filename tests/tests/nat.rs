//! Nodes behind real home NATs: two client network namespaces, each behind
//! its own router namespace that masquerades and drops unsolicited inbound
//! packets, a public namespace running coturn (STUN + TURN) and the
//! rendezvous, and headless Chromium running inside the client namespaces
//! (tests/src/netns.rs explains the plumbing).
//!
//! First the lab itself is checked with plain UDP sockets (the routers map
//! and filter as intended), then browser nodes must connect and replicate
//! ops through it: directly (server-reflexive candidates, hole punching)
//! behind port-preserving NATs, through the TURN relay behind NATs that
//! randomise the source port per destination (symmetric-like).
//!
//! Needs root, iproute2, nftables and coturn (`scripts/install-tools.sh`),
//! the built UI and the rendezvous binary (see walking_skeleton.rs).

use e2e::netns::{PUBLIC_IP, PUBLIC_IP2};
use e2e::turn::stun_binding_from;
use e2e::{Browser, Nat, NatLab, PeerState, Rendezvous, TurnServer, serial, short, wait_until};
use serde_json::json;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Budget for two nodes behind NATs to find and prove each other.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// Budget for an op to replicate, or the candidate types to show.
const OP_TIMEOUT: Duration = Duration::from_secs(20);
/// One STUN round trip inside the lab.
const STUN_TIMEOUT: Duration = Duration::from_secs(3);

fn secret() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("nat-secret-{}-{nanos}", std::process::id())
}

fn udp_in(lab_ns: &e2e::Netns) -> UdpSocket {
    lab_ns
        .run_in(|| UdpSocket::bind("0.0.0.0:0"))
        .unwrap_or_else(|e| panic!("cannot enter {}: {e}", lab_ns.name()))
        .unwrap_or_else(|e| panic!("cannot bind a UDP socket in {}: {e}", lab_ns.name()))
}

/// Receives datagrams on `socket` until one arrives (or `timeout`), and
/// returns its text and sender.
fn recv_text(socket: &UdpSocket, timeout: Duration) -> Result<(String, SocketAddr), String> {
    socket.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1500];
    let (n, from) = socket.recv_from(&mut buf).map_err(|e| format!("nothing received within {timeout:?}: {e}"))?;
    Ok((String::from_utf8_lossy(&buf[..n]).into_owned(), from))
}

/// The addresses the STUN server on `PUBLIC_IP` and `PUBLIC_IP2` saw
/// `socket`'s requests come from.
fn mappings(socket: &UdpSocket) -> (SocketAddr, SocketAddr) {
    let a = stun_binding_from(socket, SocketAddr::from((PUBLIC_IP, 3478)), STUN_TIMEOUT)
        .unwrap_or_else(|e| panic!("STUN to {PUBLIC_IP}:3478 failed: {e}"));
    let b = stun_binding_from(socket, SocketAddr::from((PUBLIC_IP2, 3478)), STUN_TIMEOUT)
        .unwrap_or_else(|e| panic!("STUN to {PUBLIC_IP2}:3478 failed: {e}"));
    (a, b)
}

/// The router of home 0 drops a datagram sent from the public side to its
/// mapped address before anything inside talked to that sender, and lets
/// the sender's answer through once the inside did.
fn assert_unsolicited_inbound_is_dropped(lab: &NatLab, inside: &UdpSocket, mapped: SocketAddr) {
    let outside = lab
        .public()
        .run_in(|| UdpSocket::bind(SocketAddr::from((PUBLIC_IP, 0))))
        .expect("enter the public namespace")
        .expect("bind in the public namespace");
    let outside_addr = outside.local_addr().unwrap();
    outside.send_to(b"unsolicited", mapped).expect("send unsolicited");
    // The inside opens the flow; the outside answers to where it came from.
    inside.send_to(b"hello from inside", outside_addr).expect("send from inside");
    let (text, seen_from) = recv_text(&outside, STUN_TIMEOUT).expect("the inside's datagram reaches the public side");
    assert_eq!(text, "hello from inside");
    assert_eq!(seen_from.ip(), std::net::IpAddr::V4(lab.home(0).public_ip), "the router masquerades");
    outside.send_to(b"reply", seen_from).expect("send reply");
    let (first, _) = recv_text(inside, STUN_TIMEOUT).expect("the reply to a flow opened inside gets in");
    assert_eq!(first, "reply", "the unsolicited datagram (sent first, same path) must have been dropped by the router");
}

#[test]
fn lab_port_preserving_nat_maps_each_socket_to_one_public_port_and_lets_hole_punching_through() {
    let lab = NatLab::build(Nat::PortPreserving, 2);
    let _turn = TurnServer::start_in(lab.public(), &[PUBLIC_IP, PUBLIC_IP2], &secret());
    let s0 = udp_in(&lab.home(0).client);
    let s1 = udp_in(&lab.home(1).client);
    let (m0, m0b) = mappings(&s0);
    let (m1, m1b) = mappings(&s1);
    eprintln!("home 0 socket maps to {m0} / {m0b}; home 1 socket to {m1} / {m1b}");
    for (i, m) in [(0, m0), (1, m1)] {
        assert_eq!(m.ip(), std::net::IpAddr::V4(lab.home(i).public_ip), "home {i} is masqueraded to its router");
    }
    assert_eq!(m0, m0b, "one socket, one public address and port towards every destination");
    assert_eq!(m1, m1b, "one socket, one public address and port towards every destination");

    // Hole punching: each side sends to the other's mapped address until
    // both have heard the other. The first packets may be dropped by the
    // far router (nothing went out to that sender yet); later ones match
    // the flow the far side opened.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut got0, mut got1) = (None, None);
    while (got0.is_none() || got1.is_none()) && Instant::now() < deadline {
        s0.send_to(b"punch from 0", m1).unwrap();
        s1.send_to(b"punch from 1", m0).unwrap();
        if got0.is_none() {
            got0 = recv_text(&s0, Duration::from_millis(100)).ok();
        }
        if got1.is_none() {
            got1 = recv_text(&s1, Duration::from_millis(100)).ok();
        }
    }
    let (t0, from0) = got0.expect("home 0 heard home 1 through both NATs within 10 s");
    let (t1, from1) = got1.expect("home 1 heard home 0 through both NATs within 10 s");
    assert_eq!((t0.as_str(), from0), ("punch from 1", m1));
    assert_eq!((t1.as_str(), from1), ("punch from 0", m0));

    let fresh = udp_in(&lab.home(0).client);
    let (mapped, _) = mappings(&fresh);
    assert_unsolicited_inbound_is_dropped(&lab, &fresh, mapped);
}

#[test]
fn lab_random_port_nat_maps_each_destination_to_a_new_public_port() {
    let lab = NatLab::build(Nat::RandomPorts, 1);
    let _turn = TurnServer::start_in(lab.public(), &[PUBLIC_IP, PUBLIC_IP2], &secret());
    let s0 = udp_in(&lab.home(0).client);
    let (a, b) = mappings(&s0);
    eprintln!("home 0 socket maps to {a} towards {PUBLIC_IP} and {b} towards {PUBLIC_IP2}");
    assert_eq!(a.ip(), std::net::IpAddr::V4(lab.home(0).public_ip));
    assert_eq!(b.ip(), std::net::IpAddr::V4(lab.home(0).public_ip));
    assert_ne!(
        a.port(),
        b.port(),
        "a symmetric-like NAT gives each destination its own public port (the STUN-learned one is useless to a peer)"
    );
    let fresh = udp_in(&lab.home(0).client);
    let (mapped, _) = mappings(&fresh);
    assert_unsolicited_inbound_is_dropped(&lab, &fresh, mapped);
}

/// What one NAT scenario ended up with, for the assertions and the report.
struct Outcome {
    /// Per node: its label and its view of the connection to the other.
    views: Vec<(String, PeerState)>,
}

/// Two browser nodes, one in each home of a `nat` lab, with coturn (STUN +
/// TURN) and the rendezvous on the public side: they must find each other,
/// prove their identities and replicate one op each way. Returns what each
/// reported about the candidate pair in use.
async fn two_homes(nat: Nat, tag: &str) -> Outcome {
    let lab = NatLab::build(nat, 2);
    let secret = secret();
    let turn = TurnServer::start_in(lab.public(), &[PUBLIC_IP], &secret);
    let rdv = Rendezvous::start_in(
        lab.public(),
        PUBLIC_IP,
        &["--stun-url", &turn.stun_url(), "--turn-url", &turn.url(), "--turn-secret", &secret],
    );
    let browser = Browser::start().await;
    let (q0, q1) = (format!("profile={tag}-home0"), format!("profile={tag}-home1"));
    let (a, b) = tokio::join!(
        browser.open_node_in(&rdv, &q0, lab.chromium_wrapper(0)),
        browser.open_node_in(&rdv, &q1, lab.chromium_wrapper(1)),
    );
    let (ia, ib) = (a.id().await, b.id().await);
    wait_until(CONNECT_TIMEOUT, &format!("{tag}: the nodes behind the two NATs to prove each other"), async || {
        let (pa, pb) = (a.peers().await, b.peers().await);
        if pa.contains(&ib) && pb.contains(&ia) {
            Ok(())
        } else {
            Err((a.snapshot().await, a.peer_states().await, b.snapshot().await, b.peer_states().await))
        }
    })
    .await;

    // One op each way.
    for (from, to, name) in [(&a, &b, "from-home0"), (&b, &a, "from-home1")] {
        let _: String =
            from.call("return window.synapse.createChannel(arguments[0], 'through NAT');", vec![json!(name)]).await;
        let what = format!("{tag}: {} to hold the channel {name}", to.label());
        wait_until(OP_TIMEOUT, &what, async || {
            let ok: bool =
                to.call("return arguments[0] in window.synapse.state().state.channels;", vec![json!(name)]).await;
            if ok { Ok(()) } else { Err(to.snapshot().await) }
        })
        .await;
    }

    let mut views = vec![];
    for (page, other) in [(&a, &ib), (&b, &ia)] {
        let what = format!("{tag}: {} to know the candidate pair to {}", page.label(), short(other));
        let state = wait_until(OP_TIMEOUT, &what, async || match page.peer_state(other).await {
            Some(p) if p.candidate.is_some() && p.remote_candidate.is_some() => Ok(p),
            other => Err(other),
        })
        .await;
        eprintln!(
            "{tag}: {} -> {}: candidate {:?}, remote {:?}",
            page.label(),
            short(other),
            state.candidate,
            state.remote_candidate
        );
        views.push((page.label().to_string(), state));
    }
    let allocations = turn.allocations();
    eprintln!("{tag}: coturn allocations: {}", allocations.len());
    for p in [a, b] {
        p.close().await;
    }
    Outcome { views }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_behind_two_port_preserving_nats_connect_directly_with_stun() {
    let _serial = serial().await;
    let outcome = two_homes(Nat::PortPreserving, "nat-direct").await;
    for (label, view) in &outcome.views {
        let (local, remote) = (view.candidate.as_deref(), view.remote_candidate.as_deref());
        assert!(
            matches!(local, Some("srflx" | "prflx")) && matches!(remote, Some("srflx" | "prflx")),
            "{label}: behind port-preserving NATs the pair in use must be the NAT's public addresses \
             (server-reflexive, learnt from STUN or from the checks), not the relay nor a private \
             address: {view:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_behind_two_random_port_nats_connect_through_the_turn_relay() {
    let _serial = serial().await;
    let outcome = two_homes(Nat::RandomPorts, "nat-relay").await;
    for (label, view) in &outcome.views {
        let (local, remote) = (view.candidate.as_deref(), view.remote_candidate.as_deref());
        assert!(
            local == Some("relay") || remote == Some("relay"),
            "{label}: NATs that pick a new port per destination defeat hole punching, so the pair in \
             use must go through the TURN relay at one end at least: {view:?}"
        );
    }
}
