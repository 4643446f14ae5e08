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
use e2e::{Nat, NatLab, TurnServer};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

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
