//! Publish-to-visible latency of replicated ops between real browsers.
//!
//! ```text
//! cargo run -p e2e --bin bench_ops -- [--nodes 5] [--ops 200] [--interval-ms 20] [--min-peers K]
//! ```
//!
//! Opens `--nodes` headless Chromium nodes on the real rendezvous, waits
//! until every node has at least `--min-peers` proven peers (default: all
//! others up to 4; pages keep a bounded degree, not a full mesh), then
//! publishes `--ops` task-creation ops round-robin from
//! every node, one every `--interval-ms`. Each node records when it first
//! stored each op (`synapse.opSeenAt`, in its own `performance` clock, turned
//! into epoch ms with `performance.timeOrigin`). For each op the latency to
//! "visible on all peers" is the last receiver's time minus the creator's.
//! The figures come from the nodes' own timestamps, so polling by the
//! harness adds nothing. It also prints the connections per page and the
//! memory per page: the proportional set size (PSS, shared pages split
//! between sharers) of every Chromium process, summed and divided by the
//! number of pages, read from `/proc/*/smaps_rollup`.

use e2e::bench::{arg, percentile};
use e2e::{Browser, NodePage, Rendezvous, wait_until};
use serde_json::json;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

/// Epoch ms at which `node` first stored each op of `ids` (null if not yet).
async fn seen(node: &NodePage, ids: &[String]) -> Vec<Option<f64>> {
    node.call(
        "const ids = arguments[0]; return ids.map(id => { const t = window.synapse.opSeenAt(id); \
         return t == null ? null : performance.timeOrigin + t; });",
        vec![json!(ids)],
    )
    .await
}

#[tokio::main]
async fn main() {
    let nodes_n = arg("--nodes", 5) as usize;
    let ops = arg("--ops", 200) as usize;
    let interval = arg("--interval-ms", 20);
    let min_peers = arg("--min-peers", (nodes_n as u64 - 1).min(4)) as usize;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    let mut nodes = vec![];
    for i in 0..nodes_n {
        nodes.push(browser.open_node(&rdv, &format!("profile=bench-ops-{i}")).await);
    }
    wait_until(TIMEOUT, "every node connected to at least --min-peers others", async || {
        let mut p = vec![];
        for n in &nodes {
            p.push(n.peers().await.len());
        }
        if p.iter().all(|x| *x >= min_peers) { Ok(()) } else { Err(p) }
    })
    .await;
    let _: String = nodes[0].eval("window.synapse.createChannel('bench', 'latency benchmark')").await;
    for n in &nodes[1..] {
        wait_until(TIMEOUT, "the channel", async || {
            let ok: bool = n.eval("'bench' in window.synapse.state().state.channels").await;
            if ok { Ok(()) } else { Err(()) }
        })
        .await;
        let _: String = n.eval("window.synapse.subscribe('bench')").await;
    }
    eprintln!("{nodes_n} nodes ready; publishing {ops} ops, one every {interval} ms");

    let mut ids: Vec<(usize, String)> = vec![];
    for i in 0..ops {
        let who = i % nodes_n;
        let id: String = nodes[who]
            .call(
                "return window.synapse.createTask('bench', arguments[0]);",
                vec![json!({"title": format!("latency op {i}"), "reward": 0})],
            )
            .await;
        ids.push((who, id));
        tokio::time::sleep(Duration::from_millis(interval)).await; // pacing the load, not waiting for a result
    }
    let all: Vec<String> = ids.iter().map(|(_, id)| id.clone()).collect();
    let mut table: Vec<Vec<Option<f64>>> = vec![];
    wait_until(TIMEOUT, "every op on every node", async || {
        table.clear();
        for n in &nodes {
            table.push(seen(n, &all).await);
        }
        let missing: usize = table.iter().map(|r| r.iter().filter(|t| t.is_none()).count()).sum();
        if missing == 0 { Ok(()) } else { Err(missing) }
    })
    .await;

    let mut to_all = vec![];
    let mut per_peer = vec![];
    for (k, (who, _)) in ids.iter().enumerate() {
        let sent = table[*who][k].unwrap_or(0.0);
        let mut last: f64 = 0.0;
        for (j, row) in table.iter().enumerate() {
            if j == *who {
                continue;
            }
            let d = row[k].unwrap_or(f64::NAN) - sent;
            per_peer.push(d);
            last = last.max(d);
        }
        to_all.push(last);
    }
    to_all.sort_by(f64::total_cmp);
    per_peer.sort_by(f64::total_cmp);
    let hashes: Vec<String> = {
        let mut h = vec![];
        for n in &nodes {
            h.push(n.eval::<String>("window.synapse.stateHash()").await);
        }
        h
    };
    println!("## Publish to visible, {nodes_n} browser nodes, {ops} ops (one every {interval} ms)\n");
    println!("| ms | n | p50 | p95 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    for (name, v) in [("visible on all peers", &to_all), ("visible on one peer", &per_peer)] {
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            v.len(),
            percentile(v, 50.0),
            percentile(v, 95.0),
            percentile(v, 99.0),
            v[v.len() - 1]
        );
    }
    println!("\nstate hashes equal on all nodes: {}", hashes.iter().all(|h| *h == hashes[0]));
    let mut degree = vec![];
    for n in &nodes {
        degree.push(n.peers().await.len() as f64);
    }
    degree.sort_by(f64::total_cmp);
    println!(
        "connections per page (proven peers): min {} / median {} / max {}",
        degree[0],
        percentile(&degree, 50.0),
        degree[degree.len() - 1]
    );
    let pss = chromium_pss_kib();
    println!(
        "memory: Chromium PSS {:.0} MiB in all, {:.0} MiB per page",
        pss as f64 / 1024.0,
        pss as f64 / 1024.0 / nodes_n as f64
    );
    for n in nodes {
        n.close().await;
    }
}

/// Summed PSS (KiB) of every process whose command name is Chromium's.
fn chromium_pss_kib() -> u64 {
    let mut total = 0;
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    for e in dir.flatten() {
        let p = e.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if !comm.trim().starts_with("chrom") || comm.trim() == "chromedriver" {
            continue;
        }
        let rollup = std::fs::read_to_string(p.join("smaps_rollup")).unwrap_or_default();
        for line in rollup.lines() {
            if let Some(v) = line.strip_prefix("Pss:") {
                total += v.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    total
}
