//! The signaling protocol and its limits, against an in-process server
//! through a real WebSocket client.

mod common;

use common::*;
use futures_util::SinkExt;
use node_wasm::signaling::{ClientMsg, ErrorCode, ServerMsg, sign_challenge};
use rendezvous::Config;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn auth_success_lists_peers_and_announces_the_newcomer() {
    let server = TestServer::start(test_config()).await;
    let (mut a, peers) = login(&server, 1).await;
    assert!(peers.is_empty());
    let (_b, peers) = login(&server, 2).await;
    assert_eq!(peers, vec![id(1)]);
    assert_eq!(recv(&mut a).await, ServerMsg::PeerJoined { id: id(2) });
    let (_c, peers) = login(&server, 3).await;
    let mut expected = vec![id(1), id(2)];
    expected.sort();
    assert_eq!(peers, expected, "welcome lists the other peers, sorted");
}

#[tokio::test]
async fn welcome_carries_the_ttl() {
    let server = TestServer::start(Config { ttl: Duration::from_secs(42), ..test_config() }).await;
    let mut ws = connect(&server).await;
    let me = identity(1);
    let nonce = recv_challenge(&mut ws).await;
    assert_eq!(nonce.len(), 64, "32 random bytes in hex");
    let signature = sign_challenge(&me, &nonce, &server.addr.to_string()).unwrap();
    send(&mut ws, &ClientMsg::Auth { id: me.node_id(), signature }).await;
    let welcome = ServerMsg::Welcome {
        id: me.node_id(),
        peers: vec![],
        ttl_secs: 42,
        ice: vec![],
        ice_ttl_secs: 0,
        siblings: vec![],
    };
    assert_eq!(recv(&mut ws).await, welcome);
}

#[tokio::test]
async fn wrong_signature_fails_auth_and_closes() {
    let server = TestServer::start(test_config()).await;
    let mut ws = connect(&server).await;
    let nonce = recv_challenge(&mut ws).await;
    // Signed by someone else's key, claiming id 1.
    let signature = sign_challenge(&identity(2), &nonce, &server.addr.to_string()).unwrap();
    send(&mut ws, &ClientMsg::Auth { id: id(1), signature }).await;
    expect_error(&mut ws, ErrorCode::AuthFailed).await;
    expect_closed(&mut ws).await;
}

#[tokio::test]
async fn signature_for_another_nonce_fails_auth() {
    let server = TestServer::start(test_config()).await;
    let mut ws = connect(&server).await;
    let _nonce = recv_challenge(&mut ws).await;
    let signature = sign_challenge(&identity(1), &"ab".repeat(32), &server.addr.to_string()).unwrap();
    send(&mut ws, &ClientMsg::Auth { id: id(1), signature }).await;
    expect_error(&mut ws, ErrorCode::AuthFailed).await;
    expect_closed(&mut ws).await;
}

#[tokio::test]
async fn garbage_signature_fails_auth() {
    let server = TestServer::start(test_config()).await;
    let mut ws = connect(&server).await;
    recv_challenge(&mut ws).await;
    send(&mut ws, &ClientMsg::Auth { id: id(1), signature: "not hex".into() }).await;
    expect_error(&mut ws, ErrorCode::AuthFailed).await;
    expect_closed(&mut ws).await;
}

#[tokio::test]
async fn message_before_auth_is_refused_and_closes() {
    let server = TestServer::start(test_config()).await;
    let mut ws = connect(&server).await;
    recv_challenge(&mut ws).await;
    send(&mut ws, &ClientMsg::List).await;
    expect_error(&mut ws, ErrorCode::NotAuthenticated).await;
    expect_closed(&mut ws).await;
}

#[tokio::test]
async fn second_auth_is_refused_but_not_fatal() {
    let server = TestServer::start(test_config()).await;
    let (mut ws, _) = login(&server, 1).await;
    send(&mut ws, &ClientMsg::Auth { id: id(1), signature: "00".repeat(64) }).await;
    expect_error(&mut ws, ErrorCode::AlreadyAuthenticated).await;
    send(&mut ws, &ClientMsg::Ping).await;
    assert_eq!(recv(&mut ws).await, ServerMsg::Pong);
}

#[tokio::test]
async fn signals_are_relayed_verbatim_with_the_authenticated_sender() {
    let server = TestServer::start(test_config()).await;
    let (mut a, _) = login(&server, 1).await;
    let (mut b, _) = login(&server, 2).await;
    assert_eq!(recv(&mut a).await, ServerMsg::PeerJoined { id: id(2) });
    // The server must not interpret the payload: any JSON goes through.
    let payload = json!({
        "kind": "description", "sdp_type": "offer", "sdp": "v=0\r\n", "extra": [1, {"x": null}]
    });
    send(&mut a, &ClientMsg::Signal { to: id(2), payload: payload.clone() }).await;
    assert_eq!(recv(&mut b).await, ServerMsg::Signal { from: id(1), payload });
    send(&mut b, &ClientMsg::Signal { to: id(1), payload: json!("bye") }).await;
    assert_eq!(recv(&mut a).await, ServerMsg::Signal { from: id(2), payload: json!("bye") });
}

#[tokio::test]
async fn signal_to_an_unknown_peer_is_refused() {
    let server = TestServer::start(test_config()).await;
    let (mut a, _) = login(&server, 1).await;
    send(&mut a, &ClientMsg::Signal { to: id(9), payload: json!({}) }).await;
    expect_error(&mut a, ErrorCode::UnknownPeer).await;
    // A connected but unauthenticated node is not reachable either.
    let mut lurker = connect(&server).await;
    recv_challenge(&mut lurker).await;
    send(&mut a, &ClientMsg::Signal { to: id(9), payload: json!({}) }).await;
    expect_error(&mut a, ErrorCode::UnknownPeer).await;
    send(&mut a, &ClientMsg::Ping).await;
    assert_eq!(recv(&mut a).await, ServerMsg::Pong, "unknown_peer is not fatal");
}

#[tokio::test]
async fn signal_to_self_is_refused() {
    let server = TestServer::start(test_config()).await;
    let (mut a, _) = login(&server, 1).await;
    send(&mut a, &ClientMsg::Signal { to: id(1), payload: json!({}) }).await;
    expect_error(&mut a, ErrorCode::SelfSignal).await;
    send(&mut a, &ClientMsg::Ping).await;
    assert_eq!(recv(&mut a).await, ServerMsg::Pong);
}

#[tokio::test]
async fn list_returns_the_other_peers() {
    let server = TestServer::start(test_config()).await;
    let (mut a, _) = login(&server, 1).await;
    let (_b, _) = login(&server, 2).await;
    assert_eq!(recv(&mut a).await, ServerMsg::PeerJoined { id: id(2) });
    send(&mut a, &ClientMsg::List).await;
    assert_eq!(recv(&mut a).await, ServerMsg::Peers { peers: vec![id(2)] });
}

#[tokio::test]
async fn malformed_json_is_refused_and_the_connection_keeps_working() {
    let server = TestServer::start(test_config()).await;
    let (mut a, _) = login(&server, 1).await;
    send_text(&mut a, "{not json").await;
    expect_error(&mut a, ErrorCode::MalformedMessage).await;
    send_text(&mut a, r#"{"type":"teleport"}"#).await;
    expect_error(&mut a, ErrorCode::MalformedMessage).await;
    send_text(&mut a, r#"{"type":"signal","to":"nope","payload":1}"#).await;
    expect_error(&mut a, ErrorCode::MalformedMessage).await;
    send(&mut a, &ClientMsg::Ping).await;
    assert_eq!(recv(&mut a).await, ServerMsg::Pong);
}

#[tokio::test]
async fn repeated_malformed_messages_close_the_connection() {
    let server = TestServer::start(test_config()).await;
    let (mut a, _) = login(&server, 1).await;
    for _ in 0..10 {
        send_text(&mut a, "[]").await;
        expect_error(&mut a, ErrorCode::MalformedMessage).await;
    }
    expect_closed(&mut a).await;
}

#[tokio::test]
async fn oversize_frame_is_refused_and_closes() {
    let server = TestServer::start(Config { max_frame_bytes: 1024, ..test_config() }).await;
    let (mut a, _) = login(&server, 1).await;
    let big = format!(r#"{{"type":"signal","to":"{}","payload":"{}"}}"#, id(2), "x".repeat(2000));
    send_text(&mut a, big).await;
    let reason = expect_error(&mut a, ErrorCode::FrameTooLarge).await;
    assert!(reason.contains("1024"), "reason names the limit: {reason}");
    expect_closed(&mut a).await;
}

#[tokio::test]
async fn frame_beyond_the_transport_limit_is_also_frame_too_large() {
    let server = TestServer::start(Config { max_frame_bytes: 1024, ..test_config() }).await;
    let (mut a, _) = login(&server, 1).await;
    send_text(&mut a, "x".repeat(256 * 1024)).await;
    expect_error(&mut a, ErrorCode::FrameTooLarge).await;
    expect_closed(&mut a).await;
}

#[tokio::test]
async fn binary_frames_are_refused_but_not_fatal() {
    let server = TestServer::start(test_config()).await;
    let (mut a, _) = login(&server, 1).await;
    a.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    expect_error(&mut a, ErrorCode::BinaryNotSupported).await;
    send(&mut a, &ClientMsg::Ping).await;
    assert_eq!(recv(&mut a).await, ServerMsg::Pong);
}

#[tokio::test]
async fn flooding_is_rate_limited() {
    let server = TestServer::start(Config { rate_per_sec: 1.0, rate_burst: 5.0, ..test_config() }).await;
    let (mut a, _) = login(&server, 1).await;
    let ping = serde_json::to_string(&ClientMsg::Ping).unwrap();
    for _ in 0..100 {
        a.feed(Message::text(ping.clone())).await.unwrap();
    }
    a.flush().await.unwrap();
    // The login used one token, so at most 4 (plus any refill) pongs come
    // back before the first refusal.
    let mut pongs = 0;
    loop {
        match recv(&mut a).await {
            ServerMsg::Pong => pongs += 1,
            ServerMsg::Error { code: ErrorCode::RateLimited, .. } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pongs <= 6, "burst of 5 exceeded: {pongs} pongs");
}

#[tokio::test]
async fn persistent_flooding_closes_the_connection() {
    let server = TestServer::start(Config { rate_per_sec: 1.0, rate_burst: 5.0, ..test_config() }).await;
    let (mut a, _) = login(&server, 1).await;
    let ping = serde_json::to_string(&ClientMsg::Ping).unwrap();
    for _ in 0..200 {
        // The server may close mid-flood; later sends may then fail.
        if a.feed(Message::text(ping.clone())).await.is_err() {
            break;
        }
    }
    let _ = a.flush().await;
    let closing = async {
        loop {
            match recv(&mut a).await {
                ServerMsg::Error { code: ErrorCode::RateLimited, reason } if reason.contains("closing") => break,
                ServerMsg::Pong | ServerMsg::Error { code: ErrorCode::RateLimited, .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    tokio::time::timeout(WAIT, closing).await.expect("closing refusal in time");
    expect_closed(&mut a).await;
}

#[tokio::test]
async fn total_connection_cap() {
    let server = TestServer::start(Config { max_connections: 2, ..test_config() }).await;
    let mut first = connect(&server).await;
    let mut second = connect(&server).await;
    // Both have been admitted once they got their challenge.
    recv_challenge(&mut first).await;
    recv_challenge(&mut second).await;
    let mut third = connect(&server).await;
    expect_error(&mut third, ErrorCode::TooManyConnections).await;
    expect_closed(&mut third).await;
    // A freed slot can be reused.
    drop(first);
    admitted_once_a_slot_frees(&server).await;
}

#[tokio::test]
async fn per_id_connection_cap() {
    let server = TestServer::start(Config { max_connections_per_id: 2, ..test_config() }).await;
    let (_one, _) = login(&server, 1).await;
    let (_two, peers) = login(&server, 1).await;
    assert!(peers.is_empty(), "own id is never listed as a peer");
    let mut third = connect(&server).await;
    let nonce = recv_challenge(&mut third).await;
    let signature = sign_challenge(&identity(1), &nonce, &server.addr.to_string()).unwrap();
    send(&mut third, &ClientMsg::Auth { id: id(1), signature }).await;
    expect_error(&mut third, ErrorCode::TooManyConnectionsForId).await;
    expect_closed(&mut third).await;
}

#[tokio::test]
async fn signals_go_to_the_newest_connection_of_an_id() {
    let server = TestServer::start(test_config()).await;
    let (mut old, _) = login(&server, 2).await;
    let (mut new, _) = login(&server, 2).await;
    let (mut a, _) = login(&server, 1).await;
    assert_eq!(recv(&mut old).await, ServerMsg::PeerJoined { id: id(1) });
    assert_eq!(recv(&mut new).await, ServerMsg::PeerJoined { id: id(1) });
    send(&mut a, &ClientMsg::Signal { to: id(2), payload: json!(1) }).await;
    assert_eq!(recv(&mut new).await, ServerMsg::Signal { from: id(1), payload: json!(1) });
    // The old tab got nothing: its next message is the answer to its own ping.
    send(&mut old, &ClientMsg::Ping).await;
    assert_eq!(recv(&mut old).await, ServerMsg::Pong);
}

#[tokio::test]
async fn idle_connection_times_out() {
    let server = TestServer::start(Config { idle_timeout: Duration::from_secs(1), ..test_config() }).await;
    let (mut a, _) = login(&server, 1).await;
    expect_error(&mut a, ErrorCode::IdleTimeout).await;
    expect_closed(&mut a).await;
}

#[tokio::test]
async fn expired_directory_entry_is_dropped_and_announced() {
    // Short TTL; idle timeout and server pings (which would be answered and
    // refresh the entry) stay at their far-away defaults.
    let server = TestServer::start(Config { ttl: Duration::from_millis(600), ..test_config() }).await;
    let (mut a, _) = login(&server, 1).await;
    let (mut b, _) = login(&server, 2).await;
    assert_eq!(recv(&mut a).await, ServerMsg::PeerJoined { id: id(2) });
    // Keep `a` alive with protocol pings while `b` stays silent.
    let keep_alive = async {
        loop {
            send(&mut a, &ClientMsg::Ping).await;
            match recv(&mut a).await {
                ServerMsg::Pong => tokio::time::sleep(Duration::from_millis(100)).await,
                ServerMsg::PeerLeft { id: left } => return left,
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    let left = tokio::time::timeout(WAIT, keep_alive).await.expect("peer_left in time");
    assert_eq!(left, id(2));
    expect_error(&mut b, ErrorCode::IdleTimeout).await;
    expect_closed(&mut b).await;
}

#[tokio::test]
async fn websocket_pongs_keep_a_silent_client_registered() {
    // The client never sends a protocol message, but tungstenite answers the
    // server's pings automatically while we read, as browsers do.
    let server = TestServer::start(Config {
        ttl: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(500),
        ping_interval: Duration::from_millis(100),
        ..test_config()
    })
    .await;
    let (mut a, _) = login(&server, 1).await;
    let quiet = tokio::time::timeout(Duration::from_millis(1500), recv(&mut a)).await;
    assert!(quiet.is_err(), "no error while pongs flow: {quiet:?}");
}

#[tokio::test]
async fn auth_timeout_closes_silent_connections() {
    let server = TestServer::start(Config { auth_timeout: Duration::from_millis(300), ..test_config() }).await;
    let mut ws = connect(&server).await;
    recv_challenge(&mut ws).await;
    expect_error(&mut ws, ErrorCode::AuthTimeout).await;
    expect_closed(&mut ws).await;
}

#[tokio::test]
async fn disconnect_announces_peer_left() {
    let server = TestServer::start(test_config()).await;
    let (mut a, _) = login(&server, 1).await;
    let (mut b, _) = login(&server, 2).await;
    assert_eq!(recv(&mut a).await, ServerMsg::PeerJoined { id: id(2) });
    b.close(None).await.unwrap();
    assert_eq!(recv(&mut a).await, ServerMsg::PeerLeft { id: id(2) });
    send(&mut a, &ClientMsg::List).await;
    assert_eq!(recv(&mut a).await, ServerMsg::Peers { peers: vec![] });
}

#[tokio::test]
async fn peer_left_waits_for_the_last_connection_of_an_id() {
    let server = TestServer::start(test_config()).await;
    let (mut a, _) = login(&server, 1).await;
    let (b1, _) = login(&server, 2).await;
    let (b2, _) = login(&server, 2).await;
    assert_eq!(recv(&mut a).await, ServerMsg::PeerJoined { id: id(2) });
    drop(b1);
    // Still listed while b2 is connected, whenever the server notices b1 went.
    send(&mut a, &ClientMsg::List).await;
    assert_eq!(recv(&mut a).await, ServerMsg::Peers { peers: vec![id(2)] });
    drop(b2);
    assert_eq!(recv(&mut a).await, ServerMsg::PeerLeft { id: id(2) });
}

#[tokio::test]
async fn per_ip_connection_cap() {
    // Every test client is on 127.0.0.1: one address, at most 2.
    let server = TestServer::start(Config { max_connections_per_ip: 2, ..test_config() }).await;
    let mut first = connect(&server).await;
    let mut second = connect(&server).await;
    recv_challenge(&mut first).await;
    recv_challenge(&mut second).await;
    let mut third = connect(&server).await;
    let why = expect_error(&mut third, ErrorCode::TooManyConnections).await;
    assert!(why.contains("your address"), "{why}");
    expect_closed(&mut third).await;
    // Closing one frees its address's slot.
    drop(first);
    admitted_once_a_slot_frees(&server).await;
}

#[tokio::test]
async fn flooding_a_peer_with_signals_drops_signals_but_keeps_it_connected() {
    // The victim does not read while an attacker sends it far more than its
    // queue holds. Before, a full queue disconnected the victim.
    let server = TestServer::start(Config { rate_per_sec: 100_000.0, rate_burst: 100_000.0, ..test_config() }).await;
    let (mut victim, _) = login(&server, 1).await;
    let (mut attacker, _) = login(&server, 2).await;
    let big = "x".repeat(30 * 1024);
    let signal = serde_json::to_string(&ClientMsg::Signal { to: id(1), payload: json!(big) }).unwrap();
    let mut dropped = 0;
    let flood = async {
        for _ in 0..2_000 {
            attacker.send(Message::text(signal.clone())).await.unwrap();
        }
        // Refusals come back to the attacker as its signals are dropped.
        loop {
            match recv(&mut attacker).await {
                ServerMsg::Error { code: ErrorCode::RateLimited, reason } => {
                    assert!(reason.contains("faster than it reads"), "{reason}");
                    dropped += 1;
                    break;
                }
                ServerMsg::PeerJoined { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), flood).await.expect("the queue filled");
    assert!(dropped > 0);
    // The victim is still connected: it drains what was queued and answers.
    send(&mut victim, &ClientMsg::Ping).await;
    let pong = async {
        loop {
            match recv(&mut victim).await {
                ServerMsg::Pong => return,
                ServerMsg::Signal { .. } | ServerMsg::PeerJoined { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), pong).await.expect("victim still connected");
}

#[tokio::test]
async fn the_welcome_lists_a_random_sample_of_the_directory() {
    let server = TestServer::start(Config { directory_sample: 3, ..test_config() }).await;
    let mut held = vec![];
    for seed in 1..=8u8 {
        held.push(login(&server, seed).await.0);
    }
    let (mut late, peers) = login(&server, 9).await;
    assert_eq!(peers.len(), 3, "{peers:?}");
    assert!(peers.iter().all(|p| (1..=8).any(|s| id(s) == *p)));
    send(&mut late, &ClientMsg::List).await;
    match recv(&mut late).await {
        ServerMsg::Peers { peers } => assert_eq!(peers.len(), 3),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn the_welcome_hands_out_stun_turn_with_rest_credentials_and_siblings_and_ice_renews_them() {
    let config = Config {
        stun_urls: vec!["stun:127.0.0.1:3478".into()],
        turn_urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
        turn_secret: Some("shared".into()),
        turn_ttl: Duration::from_secs(120),
        siblings: vec!["wss://rdv2.example/ws".into()],
        ..test_config()
    };
    let server = TestServer::start(config).await;
    let mut ws = connect(&server).await;
    let me = identity(4);
    let nonce = recv_challenge(&mut ws).await;
    send(
        &mut ws,
        &ClientMsg::Auth {
            id: me.node_id(),
            signature: sign_challenge(&me, &nonce, &server.addr.to_string()).unwrap(),
        },
    )
    .await;
    let ServerMsg::Welcome { ice, ice_ttl_secs, siblings, .. } = recv(&mut ws).await else { panic!("no welcome") };
    assert_eq!(siblings, vec!["wss://rdv2.example/ws".to_string()], "siblings are advertised");
    assert_eq!(ice_ttl_secs, 120);
    assert_eq!(ice.len(), 2);
    assert_eq!(ice[0].urls, vec!["stun:127.0.0.1:3478".to_string()]);
    let turn = &ice[1];
    let user = turn.username.clone().expect("turn username");
    let (expiry, node) = user.split_once(':').expect("expiry:node");
    assert_eq!(node, me.node_id().to_text());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let expiry: u64 = expiry.parse().unwrap();
    assert!(expiry > now && expiry <= now + 121, "{expiry} vs {now}");
    assert_eq!(turn.credential.as_deref(), Some(rendezvous::turn::credential("shared", &user).as_str()));
    // Renewal: a fresh set on request.
    send(&mut ws, &ClientMsg::Ice).await;
    match recv(&mut ws).await {
        ServerMsg::Ice { ice, ice_ttl_secs } => {
            assert_eq!(ice_ttl_secs, 120);
            assert_eq!(ice.len(), 2);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_login_signed_for_another_host_is_refused() {
    // A malicious rendezvous relays our challenge to its victim and the
    // victim's answer back: the victim signed the malicious host, so the
    // login is useless here.
    let server = TestServer::start(test_config()).await;
    let mut ws = connect(&server).await;
    let nonce = recv_challenge(&mut ws).await;
    let signature = sign_challenge(&identity(1), &nonce, "evil.example:8080").unwrap();
    send(&mut ws, &ClientMsg::Auth { id: id(1), signature }).await;
    let why = expect_error(&mut ws, ErrorCode::AuthFailed).await;
    assert!(why.contains(&server.addr.to_string()), "{why}");
    // With a configured public host, logins name that host.
    let server = TestServer::start(Config { public_hosts: vec!["Rdv.Example".into()], ..test_config() }).await;
    let mut ws = connect(&server).await;
    let nonce = recv_challenge(&mut ws).await;
    let signature = sign_challenge(&identity(1), &nonce, "rdv.example").unwrap();
    send(&mut ws, &ClientMsg::Auth { id: id(1), signature }).await;
    assert!(matches!(recv(&mut ws).await, ServerMsg::Welcome { .. }));
}
