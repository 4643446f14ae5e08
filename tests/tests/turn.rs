//! Through a real TURN server: coturn (`turnserver`, TURN REST credentials
//! with `--use-auth-secret`) on loopback, the real rendezvous issuing
//! credentials for it, and relay-only headless Chromium nodes
//! (`?relay=1`, `iceTransportPolicy: "relay"`), so every byte between the
//! two pages must go through coturn.
//!
//! - With the credentials the rendezvous issues, the nodes connect, an op
//!   replicates, both ends report the relay candidate pair, and coturn's own
//!   log shows the allocations, the permissions and the bytes it relayed.
//! - With credentials coturn refuses (a secret it does not share; a TURN
//!   REST username whose expiry has passed), the nodes never connect and
//!   each page says why in `status().ice.sentence`.
//!
//! Needs coturn (`scripts/install-tools.sh`), the built UI and the
//! rendezvous binary (see walking_skeleton.rs).

use e2e::{Browser, NodePage, Rendezvous, TurnServer, serial, short, wait_until};
use serde_json::json;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Budget for two relay-only nodes to allocate, connect and prove.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(45);
/// Budget for an op, a candidate type or a refusal sentence to show.
const SHOW_TIMEOUT: Duration = Duration::from_secs(45);
/// How long refused nodes must stay apart once the refusal is shown.
const APART_WINDOW: Duration = Duration::from_secs(5);

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn fresh_secret(tag: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{tag}-{}-{nanos}", std::process::id())
}

/// Polls for `window` and panics as soon as `a` or `b` lists the other as a
/// proven peer: a bounded observation that refused nodes stay apart.
async fn assert_stay_apart(a: &NodePage, b: &NodePage, window: Duration) {
    let (ia, ib) = (a.id().await, b.id().await);
    let start = Instant::now();
    while start.elapsed() < window {
        let (pa, pb) = (a.peers().await, b.peers().await);
        assert!(
            !pa.contains(&ib) && !pb.contains(&ia),
            "{} and {} connected {:?} after the refusal was shown, although coturn refuses their \
             credentials: {:?} / {:?}",
            a.label(),
            b.label(),
            start.elapsed(),
            a.peer_states().await,
            b.peer_states().await
        );
        tokio::time::sleep(e2e::POLL_INTERVAL).await;
    }
}

/// Waits until `page`'s `status().ice.sentence` says the TURN server refused
/// its credentials, and returns the sentence.
async fn wait_refusal_sentence(page: &NodePage) -> String {
    let what = format!("{} to say why it cannot connect (status().ice.sentence)", page.label());
    wait_until(SHOW_TIMEOUT, &what, async || {
        let ice = page.status().await.ice;
        match &ice.sentence {
            Some(s) if s.contains("refused") => Ok(s.clone()),
            _ => Err(ice),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_nodes_connect_through_turn_with_issued_credentials() {
    let _serial = serial().await;
    let secret = fresh_secret("turn-ok");
    let turn = TurnServer::start(&secret);
    let rdv = Rendezvous::start_with_args(&["--turn-url", &turn.url(), "--turn-secret", &secret]);
    let browser = Browser::start().await;
    let (a, b) = tokio::join!(
        browser.open_node(&rdv, "profile=relay-a&relay=1"),
        browser.open_node(&rdv, "profile=relay-b&relay=1")
    );
    let (ia, ib) = (a.id().await, b.id().await);

    wait_until(CONNECT_TIMEOUT, "the relay-only nodes to prove each other", async || {
        let (pa, pb) = (a.peers().await, b.peers().await);
        if pa.contains(&ib) && pb.contains(&ia) { Ok(()) } else { Err((a.snapshot().await, b.snapshot().await)) }
    })
    .await;

    // An op replicates over the relayed channel.
    let _: String = a.eval("window.synapse.createChannel('over-turn', 'relayed by coturn')").await;
    wait_until(SHOW_TIMEOUT, "b to hold the channel a created", async || {
        let ok: bool = b.eval("'over-turn' in window.synapse.state().state.channels").await;
        if ok { Ok(()) } else { Err(b.snapshot().await) }
    })
    .await;

    // Both ends use the relay candidate pair.
    for (page, other) in [(&a, &ib), (&b, &ia)] {
        let what = format!("{} to report the relay pair to {}", page.label(), short(other));
        let state = wait_until(SHOW_TIMEOUT, &what, async || match page.peer_state(other).await {
            Some(p) if p.candidate.is_some() => Ok(p),
            other => Err(other),
        })
        .await;
        assert_eq!(state.candidate.as_deref(), Some("relay"), "{}: {state:?}", page.label());
        assert!(
            matches!(state.remote_candidate.as_deref(), Some("relay" | "prflx")),
            "{}: the peer's end of a relay-only pair is its relay (prflx if its check came first): {state:?}",
            page.label()
        );
        eprintln!(
            "{} -> {}: candidate {:?}, remote {:?}",
            page.label(),
            short(other),
            state.candidate,
            state.remote_candidate
        );
        let ice = page.status().await.ice;
        assert_eq!(
            (ice.source.as_str(), ice.policy.as_str(), ice.servers.clone()),
            ("rendezvous", "relay", vec![turn.url()]),
            "{}: {ice:?}",
            page.label()
        );
        assert!(
            !ice.sentence.as_deref().unwrap_or_default().contains("refused"),
            "{}: the issued credentials were accepted, yet the page says: {ice:?}",
            page.label()
        );
    }

    // coturn itself: one allocation per node, under the username the
    // rendezvous issued (`<expiry>:<node id>`), permissions for the peer.
    let allocations = turn.allocations();
    for id in [&ia, &ib] {
        assert!(
            allocations.iter().any(|u| u.ends_with(&format!(":{id}"))),
            "coturn allocated nothing for {}: {allocations:?}",
            short(id)
        );
    }
    let log = turn.log();
    assert!(
        log.iter().any(
            |l| l.contains("CREATE_PERMISSION processed, success") || l.contains("CHANNEL_BIND processed, success")
        ),
        "coturn installed no permission for a peer"
    );
    assert!(turn.refusals().is_empty(), "coturn refused issued credentials: {:?}", turn.refusals());

    // Closing the connections releases the allocations; coturn then logs
    // what each relayed.
    assert!(a.close_peer(&ib).await, "a had an open channel to b");
    let usage = wait_until(SHOW_TIMEOUT, "coturn to report the bytes it relayed for both nodes", async || {
        let u = turn.usage();
        let relayed = |id: &str| u.iter().any(|x| x.username.ends_with(id) && x.peer_rb > 0 && x.peer_sb > 0);
        if relayed(&ia) && relayed(&ib) { Ok(u) } else { Err(u) }
    })
    .await;
    eprintln!("coturn usage: {usage:#?}");
    for p in [a, b] {
        p.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_turn_credentials_are_refused_and_the_page_says_why() {
    let _serial = serial().await;
    let turn = TurnServer::start(&fresh_secret("coturn-secret"));
    // The rendezvous signs credentials with a secret coturn does not know.
    let wrong = fresh_secret("not-coturns-secret");
    let rdv = Rendezvous::start_with_args(&["--turn-url", &turn.url(), "--turn-secret", &wrong]);
    let browser = Browser::start().await;
    let (a, b) = tokio::join!(
        browser.open_node(&rdv, "profile=wrong-a&relay=1"),
        browser.open_node(&rdv, "profile=wrong-b&relay=1")
    );
    let (ia, ib) = (a.id().await, b.id().await);

    for page in [&a, &b] {
        let sentence = wait_refusal_sentence(page).await;
        eprintln!("{}: {sentence}", page.label());
        let ice = page.status().await.ice;
        assert!(
            ice.errors.iter().any(|e| e.code == 401 && e.url.starts_with("turn:127.0.0.1:")),
            "{}: the browser's TURN error is recorded: {ice:?}",
            page.label()
        );
        assert!(ice.sentence.unwrap_or_default().contains(&format!("127.0.0.1:{}", turn.addr().port())));
    }
    wait_until(SHOW_TIMEOUT, "coturn to log refusing both nodes' usernames", async || {
        let r = turn.refusals();
        if [&ia, &ib].iter().all(|id| r.iter().any(|l| l.contains(id.as_str()))) { Ok(()) } else { Err(r) }
    })
    .await;
    assert_stay_apart(&a, &b, APART_WINDOW).await;
    assert!(turn.allocations().is_empty(), "coturn allocated for refused credentials: {:?}", turn.allocations());
    for p in [a, b] {
        p.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_turn_credentials_are_refused() {
    let _serial = serial().await;
    let secret = fresh_secret("turn-expired");
    let turn = TurnServer::start(&secret);
    // No TURN from the rendezvous: the pages' own servers are the only ones.
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    let (a, b) = tokio::join!(
        browser.open_node(&rdv, "profile=expired-a&relay=1"),
        browser.open_node(&rdv, "profile=expired-b&relay=1")
    );
    let (ia, ib) = (a.id().await, b.id().await);
    let expiry = unix_now() - 60;
    for (page, id) in [(&a, &ia), (&b, &ib)] {
        // The rendezvous's own TURN REST function, with the right secret:
        // only the expiry is wrong.
        let username = format!("{expiry}:{id}");
        let credential = rendezvous::turn::credential(&secret, &username);
        page.set_ice_servers(json!([{ "urls": turn.url(), "username": username, "credential": credential }]))
            .await
            .unwrap_or_else(|e| panic!("{}: setIceServers refused valid input: {e}", page.label()));
    }
    for page in [&a, &b] {
        let sentence = wait_refusal_sentence(page).await;
        eprintln!("{}: {sentence}", page.label());
        let ice = page.status().await.ice;
        assert_eq!((ice.source.as_str(), ice.policy.as_str()), ("page", "relay"), "{}: {ice:?}", page.label());
    }
    wait_until(SHOW_TIMEOUT, "coturn to log refusing both expired usernames", async || {
        let r = turn.refusals();
        let refused = |id: &str| r.iter().any(|l| l.contains(&format!("{expiry}:{id}")));
        if refused(&ia) && refused(&ib) { Ok(()) } else { Err(r) }
    })
    .await;
    assert_stay_apart(&a, &b, APART_WINDOW).await;
    assert!(turn.allocations().is_empty(), "coturn allocated for expired credentials: {:?}", turn.allocations());
    for p in [a, b] {
        p.close().await;
    }
}
