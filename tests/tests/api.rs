//! `window.synapse` in real pages (issue 7): storage status, `on('change')`,
//! identity export → import into another profile → reload as the same node,
//! which waits for its own earlier ops before signing; and a reloaded tab
//! that restores its ops from IndexedDB and takes only the missing one as new.

use e2e::{Browser, NodePage, Rendezvous, serial, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(45);

async fn has_channel(n: &NodePage, name: &str) -> bool {
    n.call("return arguments[0] in window.synapse.state().state.channels;", vec![json!(name)]).await
}

async fn tasks(n: &NodePage) -> usize {
    n.eval("Object.keys(window.synapse.state().state.tasks).length").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_identity_backup_and_reload_through_window_synapse() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    let (a, b, c) = tokio::join!(
        browser.open_node(&rdv, "profile=api1"),
        browser.open_node(&rdv, "profile=api2"),
        browser.open_node(&rdv, "profile=api3"),
    );
    wait_until(TIMEOUT, "a full mesh of 3", async || {
        let (x, y, z) = (a.peers().await.len(), b.peers().await.len(), c.peers().await.len());
        if (x, y, z) == (2, 2, 2) { Ok(()) } else { Err((x, y, z)) }
    })
    .await;

    // Storage works in a normal profile.
    let storage: Value = a.eval("window.synapse.status().storage").await;
    assert_eq!(storage["ok"], json!(true), "{storage}");
    assert_eq!(storage["error"], Value::Null);

    // on('change') from JavaScript, and its unsubscribe function.
    let fired: u32 = a
        .call(
            "window.__n = 0; window.__stop = window.synapse.on('change', () => window.__n++); \
             return window.synapse.createChannel('apis', 'api tests').then(() => window.__n);",
            vec![],
        )
        .await;
    assert!(fired > 0, "the listener ran");
    let removed: bool = a.eval("(window.__stop(), window.synapse.off('change', () => {}))").await;
    assert!(!removed);
    let unknown: String = a
        .call(
            "try { window.synapse.on('chnage', () => {}); return 'accepted'; } catch (e) { return e.message; }",
            vec![],
        )
        .await;
    assert_eq!(
        unknown,
        "unknown event \"chnage\": use \"change\" or one of [\"tasks\", \"governance\", \"economy\", \"channels\", \"tools\", \"upgrades\", \"network\", \"agent\"]"
    );
    for i in 0..2 {
        let _: String = a
            .call(
                "return window.synapse.createTask('apis', arguments[0]);",
                vec![json!({"title": format!("t{i}"), "reward": 2})],
            )
            .await;
    }
    wait_until(TIMEOUT, "b and c to hold a's tasks", async || {
        let (x, y) = (tasks(&b).await, tasks(&c).await);
        if (x, y) == (2, 2) { Ok(()) } else { Err((x, y)) }
    })
    .await;
    // Every node publishes its X25519 and voting keys by itself at start:
    // wait for all of them, so that the only op made while b is away is
    // a's task below.
    let keys = "(s => [Object.keys(s.tools.keys).length, Object.keys(s.gov.voting_keys).length])\
                (window.synapse.state().state)";
    for n in [&a, &b, &c] {
        wait_until(TIMEOUT, "every node's keys published", async || {
            let k: Value = n.eval(keys).await;
            if k == json!([3, 3]) { Ok(()) } else { Err(k) }
        })
        .await;
    }

    // b reloads while a makes one more op: b restores 5+ ops from IndexedDB
    // and takes exactly one new op from its peers.
    let url_b = rdv.page_url("profile=api2");
    b.goto("about:blank").await;
    let _: String = a.eval("window.synapse.createTask('apis', {title: 'while b was away', reward: 1})").await;
    b.goto(&url_b).await;
    b.wait_ready(TIMEOUT).await;
    let loaded: u64 = b.eval("window.synapse.pubsubStats().ledger.ops_loaded").await;
    assert!(loaded >= 5, "a's channel, tasks and keys, b's key: {loaded}");
    wait_until(TIMEOUT, "b to fetch the op made while away", async || {
        let t = tasks(&b).await;
        if t == 3 { Ok(()) } else { Err(t) }
    })
    .await;
    let ledger: Value = b.eval("window.synapse.pubsubStats().ledger").await;
    assert_eq!(ledger["ops_fetched"], json!(1), "only the missing op is new: {ledger}");
    assert_eq!(ledger["ops_refetched"], json!(0), "nothing restored from IndexedDB is fetched again: {ledger}");

    // a's identity is exported, a's tab closes, and c's browser imports it
    // into a new profile.
    let id_a = a.id().await;
    let file: String = a.eval("window.synapse.exportIdentity()").await;
    assert!(file.contains("\"format\": \"synapse-ng-identity\""));
    a.goto("about:blank").await;
    let url_new = rdv.page_url("profile=api9");
    c.goto(&url_new).await;
    c.wait_ready(TIMEOUT).await;
    let own = c.id().await;
    assert_ne!(own, id_a);
    let refused: String = c
        .call(
            "return window.synapse.importIdentity(arguments[0]).then(() => 'accepted', e => e.message);",
            vec![json!(file)],
        )
        .await;
    assert!(refused.starts_with("profile \"api9\" already holds node"), "{refused}");
    let imported: String =
        c.call("return window.synapse.importIdentity(arguments[0], {replace: true});", vec![json!(file)]).await;
    assert_eq!(imported, id_a);
    c.goto(&url_new).await;
    c.wait_ready(TIMEOUT).await;
    assert_eq!(c.id().await, id_a, "after the reload the tab is node a");
    // It signs only once its own earlier ops have come back from b.
    wait_until(TIMEOUT, "the imported node to sign again", async || {
        let r: String = c.eval("window.synapse.createChannel('after-import').then(() => 'ok', e => e.message)").await;
        if r == "ok" { Ok(()) } else { Err(r) }
    })
    .await;
    wait_until(TIMEOUT, "b to accept the new op without equivocation", async || {
        let eq: usize = b.eval("window.synapse.state().equivocators.length").await;
        if has_channel(&b, "after-import").await && eq == 0 { Ok(()) } else { Err(eq) }
    })
    .await;
    for n in [a, b, c] {
        n.close().await;
    }
}
