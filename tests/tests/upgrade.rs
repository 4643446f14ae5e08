//! Self-upgrade between three real browser nodes: a quadratic vote-weight
//! module is published as pieces, proposed, voted, ratified and activated
//! on every node; a new proposal's tally uses `1 + √points` everywhere; a
//! rollback proposal restores the built-in weights.

use e2e::{Browser, NodePage, Rendezvous, knows_proposal, mesh_of_three, serial, wait_all};
use node_wasm::core::governance::vote_weight_milli;
use node_wasm::core::reputation::Reputation;
use serde_json::{Value, json};
const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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
    let (a, b, c) = mesh_of_three(&browser, &rdv, "u").await;
    let nodes = [&a, &b, &c];
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
