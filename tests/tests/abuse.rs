//! A transport that holds under abuse, in real Chromium against the real
//! rendezvous: strangers with free keys flood a page with offers, and an
//! honest page that joins afterwards still connects to it.

use e2e::{Browser, Rendezvous, serial, short, wait_until};
use futures_util::{SinkExt, StreamExt};
use node_wasm::Identity;
use node_wasm::signaling::{ClientMsg, ServerMsg, sign_challenge, url_host};
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Attackers, as in the report that found the lock-out.
const ATTACKERS: usize = 64;
const TIMEOUT: Duration = Duration::from_secs(30);

async fn recv(ws: &mut Ws) -> ServerMsg {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the rendezvous answered within 10 s")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap_or_else(|e| panic!("unreadable {t}: {e}"));
        }
    }
}

async fn send(ws: &mut Ws, msg: &ClientMsg) {
    ws.send(Message::text(serde_json::to_string(msg).unwrap())).await.expect("send");
}

/// A rendezvous client logged in with a fresh key (keys are free).
async fn attacker(url: &str, seed: u8) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("attacker connects");
    let ServerMsg::Challenge { nonce } = recv(&mut ws).await else { panic!("no challenge") };
    let mut s = [0xa7u8; 32];
    s[0] = seed;
    let me = Identity::from_seed(s);
    let signature = sign_challenge(&me, &nonce, &url_host(url)).unwrap();
    send(&mut ws, &ClientMsg::Auth { id: me.node_id(), signature }).await;
    match recv(&mut ws).await {
        ServerMsg::Welcome { .. } => ws,
        other => panic!("attacker {seed} not welcomed: {other:?}"),
    }
}

/// An offer that parses (fingerprint and ICE credentials present) and that
/// Chromium accepts, but whose candidates never come: the connection made
/// for it can never open.
fn dead_end_offer(seed: u8) -> String {
    let fp: Vec<String> = (0..32u8).map(|i| format!("{:02X}", i ^ seed)).collect();
    [
        "v=0",
        &format!("o=- {} 2 IN IP4 127.0.0.1", 1000 + u32::from(seed)),
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic: WMS",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 0.0.0.0",
        &format!("a=ice-ufrag:at{seed:02x}"),
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        "a=ice-options:trickle",
        &format!("a=fingerprint:sha-256 {}", fp.join(":")),
        "a=setup:actpass",
        "a=mid:0",
        "a=sctp-port:5000",
        "a=max-message-size:262144",
        "",
    ]
    .join("\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_bogus_offers_then_an_honest_peer_still_connects() {
    let _serial = serial().await;
    // 64 attackers and the pages share 127.0.0.1: lift the per-IP limit.
    let rdv = Rendezvous::start_with_args(&["--max-connections-per-ip", "200"]);
    let browser = Browser::start().await;
    let victim = browser.open_node(&rdv, "profile=victim").await;
    let iv = victim.id().await;
    let target: node_wasm::NodeId = node_wasm::NodeId::parse(&iv).expect("victim id");

    // Half send `v=0` (does not parse), half an offer that parses and
    // leads nowhere; each from its own fresh key, several sessions each.
    let url = rdv.ws_url();
    let mut socks = vec![];
    for i in 0..ATTACKERS {
        let mut ws = attacker(&url, i as u8).await;
        let sdp = if i % 2 == 0 { "v=0".to_string() } else { dead_end_offer(i as u8) };
        for session in 0..3u32 {
            let payload =
                json!({"session": 7000 + session, "kind": "description", "sdp_type": "offer", "sdp": sdp.clone()});
            send(&mut ws, &ClientMsg::Signal { to: target, payload }).await;
        }
        socks.push(ws);
    }
    wait_until(TIMEOUT, "the victim to have seen the flood", async || {
        let s = victim.stats().await;
        if s.signals_in >= ATTACKERS as u64 { Ok(()) } else { Err(s) }
    })
    .await;
    let flooded = victim.stats().await;
    assert!(flooded.offers_refused >= (ATTACKERS / 2) as u64, "unparseable offers refused up front: {flooded:?}");
    // Each attacker sends three sessions. Strangers hold at most
    // `max_pending_inbound` (8) unproven connections and each may replace
    // its own once (`unproven_replacement_once`); the victim's own dials
    // to the attackers the rendezvous lists are at most
    // `max_pending_dials` (4), each replaced at most once by glare. Before
    // these rules: one connection per offer that parsed (96).
    assert!(
        flooded.connections_created <= 2 * (8 + 4),
        "strangers' offers are capped by max_pending_inbound and unproven_replacement_once: {flooded:?}"
    );

    // An honest page joins 3 s after the flood started, as in the report.
    let honest = browser.open_node(&rdv, "profile=honest").await;
    let ih = honest.id().await;
    wait_until(TIMEOUT, "the honest page to connect to the flooded one", async || {
        let (pv, ph) = (victim.peers().await, honest.peers().await);
        if pv.contains(&ih) && ph.contains(&iv) { Ok(()) } else { Err((short(&iv).to_string(), pv, ph)) }
    })
    .await;
    // The dead-end connections are dropped by the pending timeout, not kept.
    wait_until(TIMEOUT, "the dead-end connections to time out", async || {
        let s = victim.stats().await;
        if s.pending_timeouts >= 1 { Ok(()) } else { Err(s) }
    })
    .await;
    let states: Vec<serde_json::Value> = victim.eval("window.synapse.peerStates()").await;
    assert!(
        states.len() <= 1 + 8 + 4,
        "at most the honest peer, max_pending_inbound strangers and max_pending_dials own dials: {states:?}"
    );
    drop(socks);
    for n in [victim, honest] {
        n.close().await;
    }
}
