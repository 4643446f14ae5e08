//! Finality in real Chromium against the real rendezvous (rules in
//! `docs/PROTOCOL.md`, "Finality").
//!
//! The attack: a page whose clock runs a day behind received a
//! proposal, went offline, voted yes, and came back after the others had
//! voted and closed it. Its vote, dated just after the proposal by its
//! HLC, used to sort before the close and turn a rejected proposal into an
//! approved one on every node. Now the close is covered by a final
//! checkpoint before the page comes back, and its vote is refused as late
//! (rule `late_op`) by every other node. The page itself was away longer
//! than its peers keep ops, so it catches up from a checkpoint (rule
//! `catch_up_from_checkpoint`); its vote then has no effect there either
//! (refused as late, or already covered by the checkpoint it adopted).
//!
//! The page goes "offline" by reloading with `?rendezvous=` pointing at a
//! second rendezvous of the same network that nobody else uses: it keeps
//! its stored ops (same origin, same IndexedDB) and reaches no peer.

use e2e::{
    Browser, NodePage, Rendezvous, knows_proposal, serial, sign_bulk, wait_all, wait_full_mesh, wait_until,
    write_genesis,
};
use node_wasm::core::genesis::{Genesis, GenesisConfig};
use node_wasm::core::rules::Rules;
use serde_json::{Value, json};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);
const DAY_MS: u64 = 86_400_000;

/// Every admitted page is a member and a validator (four pages: quorum 3),
/// epochs of one second, no voting period.
fn genesis() -> Genesis {
    Genesis {
        name: "finality test".into(),
        founders: vec![],
        config: GenesisConfig { proposal_min_voting_seconds: 0, ..GenesisConfig::safe() },
        rules: Rules { epoch_seconds: 1, ..Rules::open() },
    }
}

async fn final_end(node: &NodePage) -> u64 {
    node.eval::<Value>("window.synapse.status().finality.final_end_ms").await.as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_from_a_clock_a_day_behind_changes_no_closed_proposal() {
    let _serial = serial().await;
    let path = write_genesis(&genesis());
    let arg = path.to_str().expect("a UTF-8 temp path");
    let rdv = Rendezvous::start_with_args(&["--genesis", arg]);
    let lonely = Rendezvous::start_with_args(&["--genesis", arg]);
    let browser = Browser::start().await;
    let a = browser.open_node(&rdv, "profile=a").await;
    let b = browser.open_node(&rdv, "profile=b").await;
    let c = browser.open_node(&rdv, "profile=c").await;
    let m = browser.open_node(&rdv, "profile=m").await;
    let all = [&a, &b, &c, &m];
    wait_full_mesh(&all).await;
    let accounts = "Object.keys(window.synapse.state().state.accounts).length";
    wait_all(&all, "four admitted validators", accounts, |v| v == &json!(4)).await;
    wait_until(TIMEOUT, "a first final checkpoint", async || if final_end(&a).await > 0 { Ok(()) } else { Err(()) })
        .await;

    let p: String = a
        .eval(
            "window.synapse.propose('global', {kind: 'config_change', title: 'Tax 1%', \
             command: {operation: 'config_change', key: 'tax_bps', value: {type: 'int', value: 100}}})",
        )
        .await;
    knows_proposal(&m, &p).await;
    wait_until(TIMEOUT, "M's ops saved to IndexedDB", async || {
        let unsaved: u64 = m.eval("window.synapse.status().storage.unsaved").await;
        if unsaved == 0 { Ok(()) } else { Err(unsaved) }
    })
    .await;

    // M goes offline (its stored ops stay), its clock a day behind, and votes.
    m.goto(&rdv.page_url(&format!("profile=m&rendezvous={}", lonely.ws_url()))).await;
    m.wait_ready(TIMEOUT).await;
    knows_proposal(&m, &p).await;
    let _: Value =
        m.call(&format!("const real = Date.now; Date.now = () => real() - {DAY_MS}; return 0;"), vec![]).await;
    assert!(m.peers().await.is_empty(), "M reaches no peer");
    let late_vote: String = m.call("return window.synapse.vote(arguments[0], true);", vec![json!(p)]).await;

    // The others vote 1 : 1 and close: rejected, and final everywhere.
    let _: String = a.call("return window.synapse.vote(arguments[0], true);", vec![json!(p)]).await;
    let _: String = b.call("return window.synapse.vote(arguments[0], false);", vec![json!(p)]).await;
    let online = [&a, &b, &c];
    let votes = format!("Object.keys(window.synapse.state().state.gov.proposals['{p}'].votes).length");
    wait_all(&online, "both votes everywhere", &votes, |v| v == &json!(2)).await;
    let _: String = a.call("return window.synapse.closeProposal(arguments[0]);", vec![json!(p)]).await;
    let status = format!("window.synapse.state().state.gov.proposals['{p}'].status");
    wait_all(&online, "closed, rejected 1 : 1", &status, |v| v == &json!("closed")).await;
    let closed_at: u64 = a.eval("Date.now()").await;
    wait_until(TIMEOUT, "a final checkpoint past the close", async || {
        let mut ends = vec![];
        for n in online {
            ends.push(final_end(n).await);
        }
        if ends.iter().all(|e| *e > closed_at) { Ok(()) } else { Err(ends) }
    })
    .await;

    // M comes back: its vote arrives, dated before the close, and is late.
    m.goto(&rdv.page_url("profile=m")).await;
    m.wait_ready(TIMEOUT).await;
    // The last entry is there to explain a failure (M's catch-up).
    let outcome = format!(
        "(() => {{ const f = window.synapse.status().finality; return [{status}, \
         window.synapse.state().state.params.tax_bps, {{peers: window.synapse.peers().length, \
         final_epoch: f.final_epoch, waiting: f.waiting, fetching: f.storage.fetching, \
         joins: f.storage.snapshot_joins, refused: f.storage.last_refusal}}]; }})()"
    );
    let seen = wait_all(&all, "the outcome unchanged on every node", &outcome, |v| v[0] == json!("closed")).await;
    assert_ne!(seen[1], json!(100), "the tax did not change");
    // `late_ops` counts refusals since the page started (the late op itself
    // is pruned once a final frontier covers its author past it).
    let late = "window.synapse.status().finality.late_ops";
    wait_all(&online, "M's vote refused as late by the others", late, |v| v.as_u64().unwrap_or(0) >= 1).await;
    let voters = format!("Object.keys(window.synapse.state().state.gov.proposals['{p}'].votes).length");
    wait_all(&all, "M's vote counted nowhere", &voters, |v| v == &json!(2)).await;
    let _ = late_vote;
    for n in [a, b, c, m] {
        n.close().await;
    }
}

/// A page joins a network of 100,000 ops by fetching a peer's final
/// checkpoint (verified chunk by chunk and against the validators'
/// signatures) and then only the ops after it; the origin reloads from its
/// saved checkpoint and folds only what came after. The history is 10,000
/// tasks and 90,000 skill-profile updates: the log is ten times the live
/// state, as in a network that has run for a while. Timings are printed
/// (the tables in docs/BENCHMARKS.md come from `bench_finality`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_page_joins_by_snapshot_and_a_reload_starts_from_the_checkpoint() {
    let _serial = serial().await;
    const TASKS: u64 = 10_000;
    const OPS: u64 = 100_000;
    let path = write_genesis(&genesis());
    let rdv = Rendezvous::start_with_args(&["--genesis", path.to_str().expect("a UTF-8 temp path")]);
    let browser = Browser::start().await;
    let origin = browser.open_node(&rdv, "profile=origin").await;
    sign_bulk(&origin, OPS, TASKS, |_| {}).await;
    let created_at: u64 = origin.eval("Date.now()").await;
    // Rule `prune_margin`: the ops a final checkpoint covers are dropped
    // once the next one is final too.
    wait_until(Duration::from_secs(180), "a saved checkpoint covering every op, and those ops dropped", async || {
        let f: Value = origin.eval("window.synapse.status().finality").await;
        let covers = f["final_end_ms"].as_u64().unwrap_or(0) > created_at;
        let pruned = f["storage"]["ops_pruned"].as_u64().unwrap_or(0) >= OPS;
        if covers && pruned && f["storage"]["saved_epoch"] == f["final_epoch"] { Ok(()) } else { Err(f) }
    })
    .await;

    // A fresh page: snapshot join.
    let joiner = browser.open_node(&rdv, "profile=joiner").await;
    let probe = "return [window.synapse.stateHash(), performance.now(), window.synapse.status().finality.storage];";
    let (at, storage) = wait_until(Duration::from_secs(120), "the joiner at the origin's state", async || {
        let want: String = origin.eval("window.synapse.stateHash()").await;
        let v: Value = joiner.call(probe, vec![]).await;
        if v[0] == json!(want) { Ok((v[1].as_f64().unwrap_or(0.0), v[2].clone())) } else { Err(v) }
    })
    .await;
    assert!(storage["snapshot_joins"].as_u64().unwrap_or(0) >= 1, "it started from a checkpoint: {storage}");
    assert!(storage["ops_held"].as_u64().unwrap_or(u64::MAX) < 1_000, "it holds only recent ops: {storage}");
    let tasks = "Object.keys(window.synapse.state().state.tasks).length";
    assert_eq!(joiner.eval::<u64>(tasks).await, TASKS);
    let skills = "Object.keys(window.synapse.state().state.skills).length";
    assert_eq!(joiner.eval::<u64>(skills).await, 1, "the origin's skill profile came with the state");
    eprintln!("snapshot join of {OPS} ops ({TASKS} tasks): the origin's state {at:.0} ms after navigation");

    // The origin reloads from its saved checkpoint.
    origin.goto("about:blank").await;
    origin.goto(&rdv.page_url("profile=origin")).await;
    origin.wait_ready(TIMEOUT).await;
    let storage: Value = origin.eval("window.synapse.status().finality.storage").await;
    assert!(storage["loaded_epoch"].is_u64(), "started from the saved checkpoint: {storage}");
    assert!(storage["ops_held"].as_u64().unwrap_or(u64::MAX) < 1_000, "{storage}");
    assert_eq!(origin.eval::<u64>(tasks).await, TASKS, "every task is back");
    let ready: Option<f64> =
        origin.eval("(e => e ? e.startTime : null)(performance.getEntriesByName('synapse-ui-ready')[0])").await;
    eprintln!("reload with {OPS} ops ({TASKS} tasks) behind a checkpoint: interactive at {ready:?} ms");
    for n in [origin, joiner] {
        n.close().await;
    }
}

/// Rule `join_full_trusts_no_snapshot`: a page opened with `?join=full`
/// replays the history and adopts no checkpoint, even when its replay
/// runs several epochs behind the validators' live votes (one-second
/// epochs here). Before the rule it fetched and adopted the origin's
/// snapshot, checked only against the validators that snapshot names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_join_replays_the_history_and_adopts_no_checkpoint() {
    let _serial = serial().await;
    // Catch-up from one archive peer replays about 100 ops a second, so
    // 2,000 ops keep the replay some 20 one-second epochs behind the live
    // votes: before the rule, the page fetched a checkpoint within seconds.
    const TASKS: u64 = 500;
    const OPS: u64 = 2_000;
    let path = write_genesis(&genesis());
    let rdv = Rendezvous::start_with_args(&["--genesis", path.to_str().expect("a UTF-8 temp path")]);
    let browser = Browser::start().await;
    let origin = browser.open_node(&rdv, "profile=origin&history=archive").await;
    sign_bulk(&origin, OPS, TASKS, |_| {}).await;
    let created_at: u64 = origin.eval("Date.now()").await;
    wait_until(TIMEOUT, "a final checkpoint covering every op", async || {
        let end = final_end(&origin).await;
        if end > created_at { Ok(()) } else { Err(end) }
    })
    .await;

    let full = browser.open_node(&rdv, "profile=full&join=full").await;
    let probe = "return [window.synapse.stateHash(), performance.now(), window.synapse.status().finality];";
    let (at, fin) = wait_until(Duration::from_secs(120), "the full joiner at the origin's state", async || {
        let want: String = origin.eval("window.synapse.stateHash()").await;
        let v: Value = full.call(probe, vec![]).await;
        if v[0] == json!(want) { Ok((v[1].as_f64().unwrap_or(0.0), v[2].clone())) } else { Err(v) }
    })
    .await;
    assert_eq!(fin["storage"]["snapshot_joins"], json!(0), "no checkpoint adopted: {fin}");
    // The page is a validator too (quorum 2 of 2): finality resumes once it
    // signs, from its own replay.
    let fin: Value = wait_until(TIMEOUT, "a checkpoint final on the full joiner", async || {
        let f: Value = full.eval("window.synapse.status().finality").await;
        if f["final_epoch"].as_u64().is_some() { Ok(f) } else { Err(f) }
    })
    .await;
    let storage = &fin["storage"];
    assert_eq!(storage["snapshot_joins"], json!(0), "no checkpoint adopted: {fin}");
    let replayed = storage["ops_held"].as_u64().unwrap_or(0) + storage["ops_pruned"].as_u64().unwrap_or(0);
    assert!(replayed >= OPS, "every op replayed: {fin}");
    let tasks = "Object.keys(window.synapse.state().state.tasks).length";
    assert_eq!(full.eval::<u64>(tasks).await, TASKS);
    eprintln!("full join of {OPS} ops: the origin's state {at:.0} ms after navigation: {storage}");
}
