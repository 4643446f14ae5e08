//! Self-upgrade between three real browser nodes: a quadratic vote-weight
//! module is published as pieces, proposed, voted, ratified and activated
//! on every node; a new proposal's tally uses `1 + √points` everywhere; a
//! rollback proposal restores the built-in weights.

use e2e::{Browser, NodePage, Rendezvous, serial, wait_until};
use node_wasm::core::governance::vote_weight_milli;
use node_wasm::core::reputation::Reputation;
use serde_json::{Value, json};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(45);
const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Evaluates `expr` on every node until `ok` holds for all, with the same
/// state hash everywhere; returns the value seen on the first node.
async fn wait_all(nodes: &[&NodePage], what: &str, expr: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let script = format!("return [({expr}), window.synapse.stateHash()];");
    wait_until(TIMEOUT, what, async || {
        let mut seen = vec![];
        for n in nodes {
            seen.push(n.call::<Value>(&script, vec![]).await);
        }
        if seen.iter().all(|v| ok(&v[0]) && v[1] == seen[0][1]) { Ok(seen[0][0].clone()) } else { Err(seen) }
    })
    .await
}

async fn knows_proposal(node: &NodePage, id: &str) {
    wait_until(TIMEOUT, "the proposal to arrive", async || {
        let ok: bool =
            node.call("return arguments[0] in window.synapse.state().state.gov.proposals;", vec![json!(id)]).await;
        if ok { Ok(()) } else { Err(()) }
    })
    .await;
}

/// Every node votes yes, then `nodes[0]` closes once all votes are in.
async fn vote_and_close(nodes: &[&NodePage], id: &str) {
    for n in nodes {
        knows_proposal(n, id).await;
        let _: String = n.call("return window.synapse.vote(arguments[0], true);", vec![json!(id)]).await;
    }
    let votes = format!("Object.keys(window.synapse.state().state.gov.proposals['{id}'].votes).length");
    wait_all(nodes, "three votes everywhere", &votes, |v| v == &json!(3)).await;
    let _: String = nodes[0].call("return window.synapse.closeProposal(arguments[0]);", vec![json!(id)]).await;
}

/// Proposes a code upgrade of `vote_weight` to `module`, passes and ratifies it.
async fn pass_upgrade(nodes: &[&NodePage], module: &str) -> Value {
    let p: String = nodes[0]
        .call(
            "return window.synapse.proposeUpgrade('global', {title: 'vote weight', module: arguments[0], \
             policy: 'vote_weight'});",
            vec![json!(module)],
        )
        .await;
    vote_and_close(nodes, &p).await;
    let status = format!("window.synapse.state().state.gov.proposals['{p}'].status");
    wait_all(nodes, "the upgrade awaiting ratification", &status, |v| v == "pending_ratification").await;
    // Three validators: a quorum of two.
    for n in &nodes[..2] {
        let _: String = n.call("return window.synapse.ratify(arguments[0]);", vec![json!(p)]).await;
    }
    wait_all(nodes, "the upgrade executed", &status, |v| v == "executed").await;
    wait_all(nodes, "the same policies everywhere", "window.synapse.state().state.upgrades.policies", |_| true).await
}

/// A generic proposal everyone votes yes on; returns its tally details.
async fn tallied_proposal(nodes: &[&NodePage], title: &str) -> Vec<Value> {
    let p: String = nodes[1]
        .call("return window.synapse.propose('global', {kind: 'generic', title: arguments[0]});", vec![json!(title)])
        .await;
    vote_and_close(nodes, &p).await;
    let tally = format!("window.synapse.state().state.gov.proposals['{p}'].tally");
    let t = wait_all(nodes, "the tally everywhere", &tally, |v| !v.is_null()).await;
    t["details"].as_array().cloned().unwrap_or_default()
}

fn builtin(rep_milli: u64) -> u64 {
    vote_weight_milli(&Reputation { total: rep_milli, ..Default::default() }, &[]).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quadratic_vote_module_is_ratified_used_and_rolled_back() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    let (a, b, c) = tokio::join!(
        browser.open_node(&rdv, "profile=u1"),
        browser.open_node(&rdv, "profile=u2"),
        browser.open_node(&rdv, "profile=u3"),
    );
    let nodes = [&a, &b, &c];
    wait_until(TIMEOUT, "a full mesh of 3", async || {
        let (x, y, z) = (a.peers().await.len(), b.peers().await.len(), c.peers().await.len());
        if (x, y, z) == (2, 2, 2) { Ok(()) } else { Err((x, y, z)) }
    })
    .await;
    let accounts = "Object.keys(window.synapse.state().state.accounts).length";
    wait_all(&nodes, "three accounts everywhere", accounts, |v| v == &json!(3)).await;

    // A dry run against the live state refuses a module for the wrong policy.
    let dry: Value =
        a.eval("window.synapse.dryRunModule(window.synapse.exampleModule('flat_tax'), 'vote_weight')").await;
    assert_eq!(dry["error"]["code"], "module_missing_export", "{dry}");

    // Publish the module as pieces; every node assembles it.
    let published: Value = a.eval("window.synapse.publishModule(window.synapse.exampleModule('quadratic_vote'))").await;
    let module = published["module"].as_str().expect("module hash").to_string();
    assert_eq!(published["pieces_sent"], json!(1));
    let present = format!("'{module}' in window.synapse.state().state.upgrades.modules");
    wait_all(&nodes, "the module assembled everywhere", &present, |v| v == &json!(true)).await;

    let policies = pass_upgrade(&nodes, &module).await;
    assert_eq!(policies["active"]["vote_weight"], json!(module), "{policies}");

    // A new proposal is weighted 1 + √points on every node (same hash).
    let details = tallied_proposal(&nodes, "after the upgrade").await;
    assert_eq!(details.len(), 3);
    let mut differs = false;
    for d in &details {
        let rep = d["reputation_milli"].as_u64().expect("reputation");
        let w = d["weight_milli"].as_u64().expect("weight");
        assert_eq!(w, 1000 + (rep * 1000).isqrt(), "quadratic weight for {d}");
        differs |= w != builtin(rep);
    }
    assert!(differs, "voters have reputation, so the quadratic weights differ from the built-in ones: {details:?}");
    assert!(policies["fallbacks"].as_object().is_none_or(|m| m.is_empty()), "no call fell back: {policies}");

    // Roll back: the built-in weights return.
    let policies = pass_upgrade(&nodes, ZERO).await;
    assert_eq!(policies["active"], json!({}), "{policies}");
    let details = tallied_proposal(&nodes, "after the rollback").await;
    for d in &details {
        let rep = d["reputation_milli"].as_u64().expect("reputation");
        assert_eq!(d["weight_milli"].as_u64(), Some(builtin(rep)), "built-in weight for {d}");
    }
    let history = wait_all(&nodes, "two activations", "window.synapse.state().state.upgrades.history", |v| {
        v.as_array().is_some_and(|h| h.len() == 2)
    })
    .await;
    assert_eq!(history[0]["module"], json!(module));
    assert_eq!(history[1]["module"], json!(ZERO));
}
