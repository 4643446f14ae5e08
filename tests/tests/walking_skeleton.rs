//! Walking skeleton: the real rendezvous and real headless Chromium nodes
//! find each other, prove their identities over WebRTC DataChannels and
//! exchange signed hellos; a node whose identity proof is not bound to the
//! DTLS session is refused.
//!
//! Needs the built UI (`trunk build --release`) and the rendezvous binary
//! (`cargo build -p rendezvous`; set `SYNAPSE_RENDEZVOUS_BIN` when
//! `CARGO_TARGET_DIR` is elsewhere).

use e2e::{Browser, NodePage, Rendezvous, Snapshot, serial, short, wait_until};
use std::time::Duration;

/// Budget for a mesh to form (signaling, ICE, DTLS, identity proofs).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Budget for hellos to arrive once the mesh is up.
const HELLO_TIMEOUT: Duration = Duration::from_secs(15);

async fn snapshots(nodes: &[&NodePage]) -> Vec<Snapshot> {
    let mut v = Vec::with_capacity(nodes.len());
    for n in nodes {
        v.push(n.snapshot().await);
    }
    v
}

fn has_hello(s: &Snapshot, from: &str, text: &str) -> bool {
    s.hellos.iter().any(|h| h.from == from && h.text == text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_connect_and_exchange_hellos() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    let (n1, n2, n3) = tokio::join!(
        browser.open_node(&rdv, "profile=n1"),
        browser.open_node(&rdv, "profile=n2"),
        browser.open_node(&rdv, "profile=n3"),
    );
    let nodes = [&n1, &n2, &n3];
    let mut ids = Vec::new();
    for n in nodes {
        ids.push(n.id().await);
    }
    assert!(
        ids.iter().all(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())),
        "ids must be 64 hex characters: {ids:?}"
    );
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "isolated contexts must have distinct identities: {ids:?}"
    );

    wait_until(CONNECT_TIMEOUT, "every node to list the other two as proven peers", async || {
        let snaps = snapshots(&nodes).await;
        let done = snaps
            .iter()
            .enumerate()
            .all(|(i, s)| ids.iter().enumerate().all(|(j, id)| i == j || s.status.peers.contains(id)));
        if done { Ok(()) } else { Err(snaps) }
    })
    .await;

    for (i, n) in nodes.iter().enumerate() {
        let text = format!("hello from n{}", i + 1);
        let sent = n.send_hello(&text).await;
        assert_eq!(sent, 2, "{} sent {text:?} to {sent} peers, expected 2", n.label());
    }

    wait_until(HELLO_TIMEOUT, "every node to hold a verified hello from each of the other two", async || {
        let snaps = snapshots(&nodes).await;
        let done = snaps
            .iter()
            .enumerate()
            .all(|(i, s)| (0..3).all(|j| i == j || has_hello(s, &ids[j], &format!("hello from n{}", j + 1))));
        if done { Ok(snaps) } else { Err(snaps) }
    })
    .await;

    // No honest node may have seen a rejected proof or a protocol violation.
    for n in nodes {
        let s = n.stats().await;
        assert_eq!(
            (s.proofs_rejected, s.protocol_violations),
            (0, 0),
            "{} counted rejections among honest nodes: {s:?}",
            n.label()
        );
    }
    for n in [n1, n2, n3] {
        n.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_identity_proof_is_refused() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    let (alice, bob, mallory) = tokio::join!(
        browser.open_node(&rdv, "profile=alice"),
        browser.open_node(&rdv, "profile=bob"),
        browser.open_node(&rdv, "debug_forge_proof=1&profile=mallory"),
    );
    let (a, b, m) = (alice.id().await, bob.id().await, mallory.id().await);
    let honest = [&alice, &bob];

    let snaps = wait_until(
        CONNECT_TIMEOUT,
        "alice and bob to prove each other and each to reject mallory's forged proof",
        async || {
            let snaps = snapshots(&[&alice, &bob, &mallory]).await;
            let (sa, sb) = (&snaps[0], &snaps[1]);
            let done = sa.status.peers.contains(&b)
                && sb.status.peers.contains(&a)
                && sa.stats.proofs_rejected >= 1
                && sb.stats.proofs_rejected >= 1;
            if done { Ok(snaps) } else { Err(snaps) }
        },
    )
    .await;
    for s in &snaps[..2] {
        assert!(!s.status.peers.contains(&m), "{} lists mallory ({}) as a proven peer: {snaps:?}", s.label, short(&m));
    }

    // The honest pair talk; mallory must stay out while they do.
    assert_eq!(alice.send_hello("hello from alice").await, 1);
    assert_eq!(bob.send_hello("hello from bob").await, 1);
    wait_until(HELLO_TIMEOUT, "alice and bob to receive each other's hello", async || {
        let snaps = snapshots(&[&alice, &bob, &mallory]).await;
        if has_hello(&snaps[0], &b, "hello from bob") && has_hello(&snaps[1], &a, "hello from alice") {
            Ok(())
        } else {
            Err(snaps)
        }
    })
    .await;
    for n in honest {
        let peers = n.peers().await;
        assert!(
            !peers.contains(&m),
            "{} lists mallory ({}) as a proven peer after the hello exchange: {peers:?}",
            n.label(),
            short(&m)
        );
    }
    let leaked = mallory.hellos().await;
    assert!(leaked.is_empty(), "mallory received hellos meant for proven peers only: {leaked:?}");
    for n in [alice, bob, mallory] {
        n.close().await;
    }
}
