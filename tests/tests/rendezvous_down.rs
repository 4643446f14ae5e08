//! The network outlives the rendezvous: with the rendezvous process stopped,
//! a DataChannel closed from the page is re-made through a common peer
//! (signals relayed over DataChannels) and carries traffic again.

use e2e::{Browser, NodePage, Rendezvous, serial, wait_until};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

async fn all_peers(nodes: &[&NodePage]) -> Vec<Vec<String>> {
    let mut v = vec![];
    for n in nodes {
        v.push(n.peers().await);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_link_heals_through_a_peer_with_the_rendezvous_stopped() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    // Five contexts, as in the issue; a and b lose their link, c, d and e
    // are the common peers that can carry their signals.
    let (a, b, c) = tokio::join!(
        browser.open_node(&rdv, "profile=a"),
        browser.open_node(&rdv, "profile=b"),
        browser.open_node(&rdv, "profile=c"),
    );
    let (d, e) = tokio::join!(browser.open_node(&rdv, "profile=d"), browser.open_node(&rdv, "profile=e"));
    let nodes = [&a, &b, &c, &d, &e];
    let relays = [&c, &d, &e];
    let (ia, ib) = (a.id().await, b.id().await);
    wait_until(CONNECT_TIMEOUT, "a full mesh of 5", async || {
        let p = all_peers(&nodes).await;
        if p.iter().all(|x| x.len() == 4) { Ok(()) } else { Err(p) }
    })
    .await;
    wait_until(CONNECT_TIMEOUT, "peer records from both peers on every node", async || {
        let mut seen = vec![];
        for n in nodes {
            seen.push(n.stats().await.peer_records_in);
        }
        if seen.iter().all(|s| *s >= 4) { Ok(()) } else { Err(seen) }
    })
    .await;

    // Stop the rendezvous process.
    drop(rdv);
    wait_until(CONNECT_TIMEOUT, "every node to see the rendezvous gone", async || {
        let mut states = vec![];
        for n in nodes {
            states.push(n.status().await.rendezvous.state);
        }
        if states.iter().all(|s| s != "connected") { Ok(()) } else { Err(states) }
    })
    .await;

    let forwarded = async || {
        let mut sum = 0;
        for r in relays {
            sum += r.stats().await.relays_forwarded;
        }
        sum
    };
    let relayed_before = forwarded().await;
    assert!(a.close_peer(&ib).await, "a had an open channel to b");
    wait_until(CONNECT_TIMEOUT, "a and b to reconnect through a common peer", async || {
        let (pa, pb) = (a.peers().await, b.peers().await);
        let fwd = forwarded().await;
        if pa.contains(&ib) && pb.contains(&ia) && fwd > relayed_before { Ok(()) } else { Err((pa, pb, fwd)) }
    })
    .await;

    assert_eq!(a.send_hello("after the heal").await, 4, "a reaches all four peers again");
    wait_until(Duration::from_secs(15), "b to receive a's hello over the re-made link", async || {
        let h = b.hellos().await;
        if h.iter().any(|h| h.from == ia && h.text == "after the heal") { Ok(()) } else { Err(h) }
    })
    .await;

    // And the replicas keep converging: ops made now reach everyone.
    let _: String = b.eval("window.synapse.createChannel('after-heal', 'made with the rendezvous down')").await;
    wait_until(CONNECT_TIMEOUT, "every replica to reach the same state hash with the new channel", async || {
        let mut h = vec![];
        for n in nodes {
            let has: bool = n.eval("'after-heal' in window.synapse.state().state.channels").await;
            h.push((has, n.eval::<String>("window.synapse.stateHash()").await));
        }
        if h.iter().all(|(has, x)| *has && *x == h[0].1) { Ok(()) } else { Err(h) }
    })
    .await;
    for n in [a, b, c, d, e] {
        n.close().await;
    }
}
