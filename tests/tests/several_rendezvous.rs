//! Several rendezvous at once: a page logs in to every server it names
//! (`?rendezvous=a,b`) and to the siblings a server advertises
//! (`--sibling`), merges their directories, and keeps finding peers while
//! any one is up.

use e2e::{Browser, NodePage, Rendezvous, serial, wait_until};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

async fn connected_servers(n: &NodePage) -> Vec<(String, String)> {
    n.status().await.rendezvous.servers.into_iter().map(|s| (s.state, s.url)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rendezvous_one_dies_a_new_page_still_joins_and_nodes_keep_converging() {
    let _serial = serial().await;
    let second = Rendezvous::start();
    let sibling = second.ws_url();
    let first = Rendezvous::start_with_args(&["--sibling", &sibling]);
    let browser = Browser::start().await;

    // a and b name only the first server; it advertises the second.
    let (a, b) = tokio::join!(browser.open_node(&first, "profile=a"), browser.open_node(&first, "profile=b"));
    for n in [&a, &b] {
        wait_until(TIMEOUT, "a page logged in to both servers (the second as a sibling)", async || {
            let s = connected_servers(n).await;
            let up = s.iter().filter(|(state, _)| state == "connected").count();
            if up == 2 && s.iter().any(|(_, url)| *url == sibling) { Ok(()) } else { Err(s) }
        })
        .await;
    }
    let (ia, ib) = (a.id().await, b.id().await);
    wait_until(TIMEOUT, "a and b connected", async || {
        let p = (a.peers().await, b.peers().await);
        if p.0.contains(&ib) && p.1.contains(&ia) { Ok(()) } else { Err(p) }
    })
    .await;

    // The first server dies; both pages still hold the second.
    let dead = first.ws_url();
    drop(first);
    for n in [&a, &b] {
        wait_until(TIMEOUT, "the first server seen down, the second still up", async || {
            let s = connected_servers(n).await;
            let st = n.status().await.rendezvous.state;
            let first_down = s.iter().any(|(state, url)| *url == dead && state != "connected");
            if first_down && st == "connected" { Ok(()) } else { Err((st, s)) }
        })
        .await;
    }

    // A new page names both (the first is dead) and is served by the
    // second: it joins through the second and meets a and b.
    let list = format!("profile=c&rendezvous={dead},{sibling}");
    let c = browser.open_node(&second, &list).await;
    let ic = c.id().await;
    wait_until(TIMEOUT, "c to meet a and b through the surviving server", async || {
        let p = (a.peers().await, b.peers().await, c.peers().await);
        if p.0.contains(&ic) && p.1.contains(&ic) && p.2.contains(&ia) && p.2.contains(&ib) { Ok(()) } else { Err(p) }
    })
    .await;
    let s = connected_servers(&c).await;
    assert!(s.iter().any(|(state, url)| *url == dead && state != "connected"), "c shows the dead server: {s:?}");

    // And ops keep converging on all three.
    let _: String = a.eval("window.synapse.createChannel('after-failover', 'one rendezvous down')").await;
    let _: String = c.eval("window.synapse.createChannel('from-c', 'joined through the second')").await;
    let nodes = [&a, &b, &c];
    wait_until(TIMEOUT, "every replica to hold both channels with one state hash", async || {
        let mut h = vec![];
        for n in nodes {
            let has: bool =
                n.eval("['after-failover', 'from-c'].every(c => c in window.synapse.state().state.channels)").await;
            h.push((has, n.eval::<String>("window.synapse.stateHash()").await));
        }
        if h.iter().all(|(has, x)| *has && *x == h[0].1) { Ok(()) } else { Err(h) }
    })
    .await;
    for n in [a, b, c] {
        n.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_rendezvous_list_is_refused_with_a_sentence() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    let page = browser.open("bad-list").await;
    page.goto(&rdv.page_url("profile=bad&rendezvous=ws://127.0.0.1:1/ws,http://example.org/")).await;
    wait_until(TIMEOUT, "the page to say which rendezvous URL is wrong", async || {
        let text: String = page.eval("document.body.innerText").await;
        if text.contains("http://example.org/") && text.contains("ws://") { Ok(()) } else { Err(text) }
    })
    .await;
    page.close().await;
}
