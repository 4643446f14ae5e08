//! Shared steps of the multi-node scenarios: a full mesh of three, waiting
//! for a value on every node with equal state hashes, proposals arriving,
//! a long history signed in bulk.

use crate::browser::{Browser, NodePage};
use crate::rendezvous::Rendezvous;
use crate::wait::wait_until;
use serde_json::{Value, json};
use std::time::Duration;

/// Default wait of the scenario steps.
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(45);

/// Opens three nodes (profiles `{prefix}1..3`) and waits for a full mesh.
pub async fn mesh_of_three(browser: &Browser, rdv: &Rendezvous, prefix: &str) -> (NodePage, NodePage, NodePage) {
    let q: Vec<String> = (1..=3).map(|i| format!("profile={prefix}{i}")).collect();
    let (a, b, c) =
        tokio::join!(browser.open_node(rdv, &q[0]), browser.open_node(rdv, &q[1]), browser.open_node(rdv, &q[2]));
    wait_full_mesh(&[&a, &b, &c]).await;
    (a, b, c)
}

/// Waits until every one of `nodes` is connected to all the others.
pub async fn wait_full_mesh(nodes: &[&NodePage]) {
    let want = nodes.len().saturating_sub(1);
    wait_until(SCENARIO_TIMEOUT, &format!("a full mesh of {}", nodes.len()), async || {
        let mut n = vec![];
        for p in nodes {
            n.push(p.peers().await.len());
        }
        if n.iter().all(|x| *x == want) { Ok(()) } else { Err(n) }
    })
    .await;
}

/// Evaluates `expr` on every node until `ok` holds for all, with the same
/// state hash everywhere; returns the value seen on the first node.
pub async fn wait_all(nodes: &[&NodePage], what: &str, expr: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let script = format!("return [({expr}), window.synapse.stateHash()];");
    wait_until(SCENARIO_TIMEOUT, what, async || {
        let mut seen = vec![];
        for n in nodes {
            seen.push(n.call::<Value>(&script, vec![]).await);
        }
        if seen.iter().all(|v| ok(&v[0]) && v[1] == seen[0][1]) { Ok(seen[0][0].clone()) } else { Err(seen) }
    })
    .await
}

/// Waits until `node` knows proposal `id`.
pub async fn knows_proposal(node: &NodePage, id: &str) {
    wait_until(SCENARIO_TIMEOUT, "the proposal to arrive", async || {
        let ok: bool =
            node.call("return arguments[0] in window.synapse.state().state.gov.proposals;", vec![json!(id)]).await;
        if ok { Ok(()) } else { Err(()) }
    })
    .await;
}

/// Signs a history of `ops` ops on `node`: a channel `bulk`, `tasks` tasks
/// in it, and skill-profile updates for the rest (a log larger than the live
/// state, as in a network that has run for a while). Scripts of 5,000 ops
/// (one WebDriver script may run two minutes), 250 in flight (each resolves
/// once committed to IndexedDB). Calls `progress` with the ops signed so far
/// and returns the time spent signing, ms.
pub async fn sign_bulk(node: &NodePage, ops: u64, tasks: u64, mut progress: impl FnMut(u64)) -> f64 {
    let _: String = node.eval("window.synapse.createChannel('bulk', 'many tasks')").await;
    let mut spent = 0.0;
    let mut from = 0;
    while from < ops {
        let to = (from + 5_000).min(ops);
        let ms: f64 = node
            .call(
                "const [a, b, tasks] = arguments; const t0 = performance.now(); \
                 for (let i = a; i < b; i += 250) { const batch = []; \
                   for (let j = i; j < Math.min(i + 250, b); j++) { batch.push(j < tasks \
                     ? window.synapse.createTask('bulk', { title: 'bulk task ' + j, tags: ['t' + (j % 7)] }) \
                     : window.synapse.setSkills(['skill' + (j % 97)])); } \
                   await Promise.all(batch); } \
                 return performance.now() - t0;",
                vec![json!(from), json!(to), json!(tasks)],
            )
            .await;
        spent += ms;
        from = to;
        progress(from);
    }
    spent
}
