//! The three-call takeover, in real Chromium against the real rendezvous,
//! on a network with the default governance rules (its own genesis, served
//! by the rendezvous; only the admission ticket is off, which the admission
//! tests cover): `propose` a config change that shrinks the validator set
//! to one, `vote` yes, `closeProposal`. Before the rules, the honest node
//! applied `validator_set_size = 1` within a second.
//!
//! Now the close is refused by the page with the sentence shown next to
//! the button, and a modified client that signs the close and a
//! ratification anyway (`?debug_unchecked=1`) changes nothing: every honest
//! node's fold rejects its ops.

use e2e::{Browser, Rendezvous, knows_proposal, serial, wait_all, wait_until, write_genesis};
use node_wasm::core::genesis::{Genesis, GenesisConfig};
use node_wasm::core::rules::Rules;
use serde_json::json;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(45);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_three_call_takeover_is_refused_on_every_honest_node() {
    let _serial = serial().await;
    let genesis = Genesis {
        name: "takeover test".into(),
        founders: vec![],
        config: GenesisConfig::safe(),
        rules: Rules { admission_bits: 0, ..Rules::default() },
    };
    let path = write_genesis(&genesis);
    let rdv = Rendezvous::start_with_args(&["--genesis", path.to_str().expect("a UTF-8 temp path")]);
    let browser = Browser::start().await;
    let honest = browser.open_node(&rdv, "profile=honest").await;
    let attacker = browser.open_node(&rdv, "profile=attacker").await;
    let rogue = browser.open_node(&rdv, "profile=rogue&debug_unchecked=1").await;
    let nodes = [&honest, &attacker, &rogue];
    // Every page runs on the served genesis.
    let id = genesis.hash().to_hex();
    wait_all(&nodes, "every page on the served genesis", "window.synapse.status().network", |v| {
        v["genesis"] == json!(id) && v["source"] == json!("served")
    })
    .await;
    wait_all(&nodes, "a mesh of three", "window.synapse.peers().length", |v| v == &json!(2)).await;

    // 1. propose, 2. vote, 3. close: the page refuses the close itself.
    let p: String = attacker
        .eval(
            "window.synapse.propose('global', {kind: 'config_change', title: 'One validator', \
             command: {operation: 'config_change', key: 'validator_set_size', value: {type: 'int', value: 1}}})",
        )
        .await;
    let _: String = attacker.call("return window.synapse.vote(arguments[0], true);", vec![json!(p)]).await;
    let refused: String = attacker
        .call(
            "return window.synapse.closeProposal(arguments[0]).then(() => 'closed', e => String(e.message || e));",
            vec![json!(p)],
        )
        .await;
    assert!(refused.contains("voting period"), "the API says why: {refused}");
    // The same refusal next to the button, with the quorum and the time left.
    let card = format!("[data-proposal='{p}']");
    attacker.show("governance").await;
    attacker.wait_text(&format!("{card} .quorum"), |t| t.contains("Quorum")).await;
    attacker.wait_text(&format!("{card} .time-left"), |t| t.contains("left before anyone may close it")).await;
    attacker.click_on(&format!("{card} button.close")).await;
    attacker.wait_text("#gov-feedback", |t| t.contains("voting period")).await;

    // A modified client signs the close and a ratification anyway.
    knows_proposal(&rogue, &p).await;
    for call in ["vote(arguments[0], true)", "closeProposal(arguments[0])", "ratify(arguments[0])"] {
        let _: String = rogue.call(&format!("return window.synapse.{call};"), vec![json!(p)]).await;
    }
    // Every node folds them and rejects them, each with its rule.
    let codes = "window.synapse.state().rejected.filter(r => ['proposal_close', 'ratify'].includes(r.kind)).map(r => r.code).sort()";
    wait_all(&nodes, "the rogue close and ratify rejected everywhere", codes, |v| {
        v == &json!(["not_pending_ratification", "voting_period_running"])
    })
    .await;
    // Nothing changed anywhere.
    let outcome = format!(
        "[window.synapse.state().state.params.validator_set_size, window.synapse.state().state.gov.config_version, \
         window.synapse.state().state.gov.execution_log.length, window.synapse.state().state.gov.proposals['{p}'].status]"
    );
    wait_until(TIMEOUT, "the same untouched state on every node", async || {
        let mut seen = vec![];
        for n in nodes {
            seen.push(n.eval::<serde_json::Value>(&outcome).await);
        }
        if seen.iter().all(|v| v == &json!([7, 0, 0, "open"])) { Ok(()) } else { Err(seen) }
    })
    .await;
    for n in [honest, attacker, rogue] {
        n.close().await;
    }
}
