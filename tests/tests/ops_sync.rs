//! Replicated ops between real browsers: ops created on each of 5 nodes
//! reach every node through SynapseSub over WebRTC and all replicas reach
//! the same state hash; a reloaded tab is the same node with its state
//! restored from IndexedDB, and catches up on ops made while it was away.

use e2e::{Browser, NodePage, Rendezvous, serial, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(45);

async fn hashes(nodes: &[&NodePage]) -> Vec<String> {
    let mut v = vec![];
    for n in nodes {
        v.push(n.eval::<String>("window.synapse.stateHash()").await);
    }
    v
}

async fn task_count(n: &NodePage) -> usize {
    n.eval::<usize>("Object.keys(window.synapse.state().state.tasks).length").await
}

async fn wait_converged(nodes: &[&NodePage], tasks: usize, what: &str) {
    wait_until(TIMEOUT, what, async || {
        let h = hashes(nodes).await;
        let mut counts = vec![];
        for n in nodes {
            counts.push(task_count(n).await);
        }
        if h.iter().all(|x| *x == h[0]) && counts.iter().all(|c| *c == tasks) { Ok(()) } else { Err((h, counts)) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_from_every_node_reach_all_and_a_reloaded_tab_catches_up() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    let mut nodes = vec![];
    for i in 1..=5 {
        nodes.push(browser.open_node(&rdv, &format!("profile=o{i}")).await);
    }
    let refs: Vec<&NodePage> = nodes.iter().collect();
    wait_until(TIMEOUT, "a full mesh of 5", async || {
        let mut p = vec![];
        for n in &refs {
            p.push(n.peers().await.len());
        }
        if p.iter().all(|x| *x == 4) { Ok(()) } else { Err(p) }
    })
    .await;

    // Node 1 opens a channel; everyone else joins it once they see it.
    let _: String = nodes[0].eval("window.synapse.createChannel('dev', 'the dev channel')").await;
    for n in &nodes[1..] {
        wait_until(TIMEOUT, "the channel to arrive", async || {
            let has: bool = n.eval("'dev' in window.synapse.state().state.channels").await;
            if has { Ok(()) } else { Err(()) }
        })
        .await;
        let _: String = n.eval("window.synapse.subscribe('dev')").await;
    }
    // Each node creates a task with a 10 SP reward.
    for (i, n) in nodes.iter().enumerate() {
        let _: String = n
            .call(
                "return window.synapse.createTask('dev', arguments[0]);",
                vec![json!({"title": format!("task {i}"), "reward": 10})],
            )
            .await;
    }
    wait_converged(&refs, 5, "all 5 replicas to hold 5 tasks and the same state hash").await;

    // An op that breaks a rule is refused with the rule's reason.
    let err: String = nodes[1]
        .call(
            "return window.synapse.createTask('dev', {title: '', reward: 1}).then(() => 'accepted', e => e.message);",
            vec![],
        )
        .await;
    assert_ne!(err, "accepted", "an empty title must be refused");

    // Node 5 goes away (its page unloads), the others keep working.
    let id5 = nodes[4].id().await;
    let url5 = rdv.page_url("profile=o5");
    nodes[4].goto("about:blank").await;
    let _: String = nodes[0]
        .call(
            "return window.synapse.createTask('dev', arguments[0]);",
            vec![json!({"title": "made while o5 was away", "reward": 5})],
        )
        .await;
    wait_converged(&refs[..4], 6, "the 4 remaining replicas to hold 6 tasks").await;

    // Back: same identity, state restored from IndexedDB, the rest caught up.
    nodes[4].goto(&url5).await;
    nodes[4].wait_ready(TIMEOUT).await;
    assert_eq!(nodes[4].id().await, id5, "a reloaded tab is the same node");
    let loaded: Value = nodes[4].eval("window.synapse.pubsubStats().ledger").await;
    assert!(loaded["ops_loaded"].as_u64().unwrap_or(0) >= 10, "ops restored from IndexedDB: {loaded}");
    wait_converged(&refs, 6, "the reloaded node to catch up to 6 tasks and the same hash").await;

    for n in nodes {
        n.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_lifecycle_with_escrow_and_tax_across_three_nodes() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    let (a, b, c) = tokio::join!(
        browser.open_node(&rdv, "profile=t1"),
        browser.open_node(&rdv, "profile=t2"),
        browser.open_node(&rdv, "profile=t3"),
    );
    let nodes = [&a, &b, &c];
    let (ia, ib) = (a.id().await, b.id().await);
    wait_until(TIMEOUT, "a full mesh of 3", async || {
        let (x, y, z) = (a.peers().await.len(), b.peers().await.len(), c.peers().await.len());
        if (x, y, z) == (2, 2, 2) { Ok(()) } else { Err((x, y, z)) }
    })
    .await;
    let _: String = a.eval("window.synapse.createChannel('dev', 'dev')").await;
    let task: String =
        a.eval("window.synapse.createTask('dev', {title: 'Write docs', reward: 30, tags: ['docs']})").await;
    wait_until(TIMEOUT, "b to see the task", async || {
        let ok: bool = b.call("return arguments[0] in window.synapse.state().state.tasks;", vec![json!(task)]).await;
        if ok { Ok(()) } else { Err(()) }
    })
    .await;
    for step in ["claimTask", "startTask", "completeTask"] {
        let _: String = b.call(&format!("return window.synapse.{step}(arguments[0]);"), vec![json!(task)]).await;
    }
    // A second completion is refused with a reason, not silently lost.
    let again: String = b
        .call(
            "return window.synapse.completeTask(arguments[0]).then(() => 'accepted', e => e.message);",
            vec![json!(task)],
        )
        .await;
    assert_ne!(again, "accepted");
    wait_until(TIMEOUT, "every node to show 970 / 1029 / treasury 1 and the same hash", async || {
        let mut seen = vec![];
        for n in nodes {
            let v: Value = n
                .call(
                    "const s = window.synapse.state().state; const [a, b, t] = arguments; \
                     return [s.accounts[a] && s.accounts[a].balance, s.accounts[b] && s.accounts[b].balance, \
                             s.channels.dev && s.channels.dev.treasury, s.tasks[t] && s.tasks[t].status, \
                             window.synapse.stateHash()];",
                    vec![json!(ia), json!(ib), json!(task)],
                )
                .await;
            seen.push(v);
        }
        let ok = seen.iter().all(|v| {
            v[0] == json!(970)
                && v[1] == json!(1029)
                && v[2] == json!(1)
                && v[3] == json!("completed")
                && v[4] == seen[0][4]
        });
        if ok { Ok(()) } else { Err(seen) }
    })
    .await;
    for n in [a, b, c] {
        n.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auction_with_two_bidders_is_awarded_after_its_deadline_by_a_deadline_op() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    let (a, b, c) = tokio::join!(
        browser.open_node(&rdv, "profile=au1"),
        browser.open_node(&rdv, "profile=au2"),
        browser.open_node(&rdv, "profile=au3"),
    );
    let nodes = [&a, &b, &c];
    wait_until(TIMEOUT, "a full mesh of 3", async || {
        let (x, y, z) = (a.peers().await.len(), b.peers().await.len(), c.peers().await.len());
        if (x, y, z) == (2, 2, 2) { Ok(()) } else { Err((x, y, z)) }
    })
    .await;
    let _: String = a.eval("window.synapse.createChannel('market', 'auctions')").await;
    let task: String = a
        .eval(
            "window.synapse.createTask('market', {title: 'Design a logo', reward: 0, \
             auction: {max_reward: 50, deadline_ms: Date.now() + 4000}})",
        )
        .await;
    for (n, amount, days) in [(&b, 40, 2), (&c, 30, 3)] {
        wait_until(TIMEOUT, "the auction to arrive", async || {
            let ok: bool =
                n.call("return arguments[0] in window.synapse.state().state.tasks;", vec![json!(task)]).await;
            if ok { Ok(()) } else { Err(()) }
        })
        .await;
        let _: String = n
            .call(
                "return window.synapse.bid(arguments[0], arguments[1], arguments[2]);",
                vec![json!(task), json!(amount), json!(days)],
            )
            .await;
    }
    // Nobody closes it by hand: a node's deadline keeper publishes the close.
    let (ib, ic, ia) = (b.id().await, c.id().await, a.id().await);
    wait_until(TIMEOUT, "every node to show the same award", async || {
        let mut seen = vec![];
        for n in nodes {
            let v: Value = n
                .call(
                    "const s = window.synapse.state().state; const t = s.tasks[arguments[0]]; \
                     return [t.status, t.assignee, t.reward, s.accounts[arguments[1]].balance, window.synapse.stateHash()];",
                    vec![json!(task), json!(ia)],
                )
                .await;
            seen.push(v);
        }
        let winner_ok = |v: &Value| {
            (v[1] == json!(ib) && v[2] == json!(40) && v[3] == json!(960))
                || (v[1] == json!(ic) && v[2] == json!(30) && v[3] == json!(970))
        };
        if seen.iter().all(|v| v[0] == json!("claimed") && winner_ok(v) && v[4] == seen[0][4]) {
            Ok(())
        } else {
            Err(seen)
        }
    })
    .await;
    for n in [a, b, c] {
        n.close().await;
    }
}
