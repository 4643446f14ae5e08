//! Finality benchmark in headless Chromium against the real rendezvous:
//! snapshot join against full replay, and reload with a long history.
//!
//! ```text
//! cargo run -p e2e --bin bench_finality -- [--ops 100000] [--tasks N] [--epoch-seconds 5] [--archive 0|1] [--joins 1] [--runs 3]
//! ```
//!
//! 1. A lone origin page signs `--ops` ops: `--tasks` task creations
//!    (default: every op), then skill-profile updates, which change the
//!    state without growing it (a log longer than the live state), on a network
//!    with epochs of `--epoch-seconds`; it is the only validator, so its
//!    checkpoints become final; the harness waits until one covering every
//!    op is saved. `--archive 1` keeps its whole history (`?history=archive`)
//!    so that full replay can be compared.
//! 2. **Snapshot join**: `--joins` fresh pages join, one after the other; time from navigation to
//!    the origin's state hash (ms since navigation start), bytes received.
//! 3. **Full replay** (with `--archive 1`): the same with `?join=full`.
//! 4. **Reload**: the origin reloads `--runs` times; time from navigation
//!    to the app interactive with its state back (`synapse-ui-ready`).

use e2e::bench::{arg, row};
use e2e::{Browser, NodePage, Rendezvous, sign_bulk, wait_until, write_genesis};
use node_wasm::core::genesis::{Genesis, GenesisConfig};
use node_wasm::core::rules::Rules;
use serde_json::{Value, json};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(600);
const JOIN_TIMEOUT: Duration = Duration::from_secs(180);

/// Waits until `page` holds the origin's state (its hash as of then: the
/// validators keep signing, which changes it); returns ms since the page's
/// navigation start and the bytes it received.
async fn reach(page: &NodePage, origin: &NodePage) -> (f64, u64) {
    let probe = "return [window.synapse.stateHash(), performance.now(), window.synapse.stats().bytes_in, \
                 window.synapse.status().finality.storage, window.synapse.peers().length];";
    wait_until(JOIN_TIMEOUT, "the joining page to reach the origin's state", async || {
        let want: String = origin.eval("window.synapse.stateHash()").await;
        let v: Value = page.call(probe, vec![]).await;
        if v[0] == json!(want) { Ok((v[1].as_f64().unwrap_or(0.0), v[2].as_u64().unwrap_or(0))) } else { Err(v) }
    })
    .await
}

#[tokio::main]
async fn main() {
    let ops = arg("--ops", 100_000);
    let task_ops = arg("--tasks", ops).min(ops);
    let epoch = arg("--epoch-seconds", 5);
    let archive = arg("--archive", 0) == 1;
    let runs = arg("--runs", 3) as usize;
    let joins = arg("--joins", 1) as usize;
    let genesis = Genesis {
        name: "finality bench".into(),
        founders: vec![],
        config: GenesisConfig { proposal_min_voting_seconds: 0, ..GenesisConfig::safe() },
        rules: Rules { epoch_seconds: epoch, ..Rules::open() },
    };
    let path = write_genesis(&genesis);
    let rdv = Rendezvous::start_with_args(&["--genesis", path.to_str().expect("a UTF-8 temp path")]);
    let browser = Browser::start().await;
    let origin_query = if archive { "profile=origin&history=archive" } else { "profile=origin" };
    let origin = browser.open_node(&rdv, origin_query).await;
    let create_ms = sign_bulk(&origin, ops, task_ops, |n| eprintln!("{n} ops signed")).await;
    eprintln!("signed {ops} ops ({task_ops} tasks) in {create_ms:.0} ms");
    let created_at: u64 = origin.eval("Date.now()").await;
    let saved: Value = wait_until(TIMEOUT, "a saved checkpoint covering every op", async || {
        let f: Value = origin.eval("window.synapse.status().finality").await;
        let end = f["final_end_ms"].as_u64().unwrap_or(0);
        let saved = f["storage"]["saved_epoch"] == f["final_epoch"];
        if end > created_at && saved { Ok(f) } else { Err(f) }
    })
    .await;
    eprintln!("checkpoint saved: {}", saved["storage"]);

    let mut join = vec![];
    let mut join_bytes = vec![];
    for i in 0..joins {
        let page = browser.open_node(&rdv, &format!("profile=snap-{i}")).await;
        let (t, b) = reach(&page, &origin).await;
        let storage: Value = page.eval("window.synapse.status().finality.storage").await;
        let joins = &storage["snapshot_joins"];
        eprintln!("snapshot join {i}: {t:.0} ms, {b} bytes in, {joins} checkpoint(s) adopted: {storage}");
        join.push(t);
        join_bytes.push(b as f64);
        page.close().await;
    }
    let mut full = vec![];
    let mut full_bytes = vec![];
    if archive {
        for i in 0..joins {
            let page = browser.open_node(&rdv, &format!("profile=full-{i}&join=full")).await;
            let (t, b) = reach(&page, &origin).await;
            eprintln!("full replay {i}: {t:.0} ms, {b} bytes in");
            full.push(t);
            full_bytes.push(b as f64);
            page.close().await;
        }
    }

    let mut reload = vec![];
    let mut held = 0;
    for i in 0..runs {
        origin.goto("about:blank").await;
        origin.goto(&rdv.page_url(origin_query)).await;
        origin.wait_ready(TIMEOUT).await;
        let ready: f64 = wait_until(TIMEOUT, "the reloaded app", async || {
            let v: Option<f64> =
                origin.eval("(e => e ? e.startTime : null)(performance.getEntriesByName('synapse-ui-ready')[0])").await;
            v.ok_or(())
        })
        .await;
        let stages: Value = origin
            .eval(
                "Object.fromEntries(performance.getEntriesByType('mark').filter(m => m.name.startsWith('synapse-')).map(m => [m.name.slice(8), Math.round(m.startTime)]))",
            )
            .await;
        eprintln!("reload {i} stages (ms since navigation): {stages}");
        let tasks: u64 = origin.eval("Object.keys(window.synapse.state().state.tasks).length").await;
        let storage: Value = origin.eval("window.synapse.status().finality.storage").await;
        assert_eq!(tasks, task_ops, "reload {i}: every task is back: {storage}");
        held = origin.eval::<u64>("window.synapse.status().finality.storage.ops_held").await;
        eprintln!("reload {i}: interactive at {ready:.0} ms, {held} ops held");
        reload.push(ready);
    }
    origin.close().await;

    let mode = if archive { "archive" } else { "prune" };
    println!("## Finality: {ops} ops ({task_ops} tasks), epochs of {epoch} s, origin `history={mode}`\n");
    println!(
        "signing {ops} ops: {create_ms:.0} ms; checkpoint saved: {} bytes\n",
        saved["storage"]["checkpoint_bytes"]
    );
    println!("| measure | n | p50 | p99 | min | max |\n|---|---|---|---|---|---|");
    println!("{}", row("snapshot join: navigation → origin's state (ms)", &join));
    println!("{}", row("snapshot join: bytes received", &join_bytes));
    if archive {
        println!("{}", row("full replay (`?join=full`): navigation → origin's state (ms)", &full));
        println!("{}", row("full replay: bytes received", &full_bytes));
    }
    println!("{}", row(&format!("reload, {held} ops held: navigation → interactive (ms)"), &reload));
}
