//! Connection and throughput benchmark against the real rendezvous and
//! headless Chromium.
//!
//! ```text
//! cargo run -p e2e --bin bench_connect -- --runs 20 [--blobs 8] [--rounds 3]
//! ```
//!
//! 1. Opens a long-lived anchor node, then `--runs` times a fresh Chromium
//!    (new profile, new user-data-dir: a cold first visit) and records the
//!    page's own milestones, in ms since navigation start: first DataChannel
//!    open and first peer proven.
//! 2. Measures signed-hello latency between two proven nodes (`--runs`
//!    samples): sender's `Date.now()` before `sendHello` to the receiver's
//!    `Date.now()` when the verified hello is listed (polled in-page every
//!    ms).
//! 3. Sends `--blobs` × 4 MiB from a second node to the anchor over the
//!    DataChannel, `--rounds` times, timing from just before the first
//!    `sendBlob` (sender's `Date.now()`) to the moment the receiver's
//!    `blob_bytes_in` reaches the total (receiver's `Date.now()`, polled
//!    in-page every few ms); both pages share the machine's clock.
//!
//! Progress goes to stderr; stdout gets the results as markdown tables.

use e2e::bench::percentile;
use e2e::{Browser, Rendezvous, short, wait_until};
use serde::Deserialize;
use serde_json::json;
use std::time::{Duration, Instant};

const BLOB: u32 = 4 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

struct Args {
    runs: usize,
    blobs: u32,
    rounds: usize,
}

fn parse_args() -> Args {
    let mut args = Args { runs: 20, blobs: 8, rounds: 3 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|&v| v > 0)
                .unwrap_or_else(|| usage(&format!("{name} needs a positive whole number")))
        };
        match flag.as_str() {
            "--runs" => args.runs = value("--runs"),
            "--blobs" => args.blobs = value("--blobs") as u32,
            "--rounds" => args.rounds = value("--rounds"),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    args
}

fn usage(err: &str) -> ! {
    if !err.is_empty() {
        eprintln!("error: {err}");
    }
    eprintln!("usage: bench_connect [--runs N (20)] [--blobs N (8)] [--rounds N (3)]");
    std::process::exit(if err.is_empty() { 0 } else { 2 });
}

fn summary_row(name: &str, values: &[f64]) -> String {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    format!(
        "| {name} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
        v.len(),
        percentile(&v, 50.0),
        percentile(&v, 95.0),
        v[0],
        v[v.len() - 1]
    )
}

#[derive(Debug, Deserialize)]
struct SendResult {
    t0: f64,
    ok: bool,
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    eprintln!("rendezvous at {}", rdv.base_url());

    let anchor = browser.open_node(&rdv, "profile=bench-anchor").await;
    let anchor_id = anchor.id().await;
    eprintln!("anchor {}", short(&anchor_id));

    // 1. Page load → first DataChannel open / first peer proven.
    let mut channel_open = Vec::new();
    let mut proven = Vec::new();
    for run in 0..args.runs {
        let profile = format!("bench-{run}");
        let page = browser.open(&profile).await;
        page.goto(&rdv.page_url(&format!("profile={profile}"))).await;
        let (open_ms, proven_ms) =
            wait_until(CONNECT_TIMEOUT, &format!("{profile} to open and prove its first channel"), async || {
                let t: Option<e2e::Timings> = page
                    .try_call(
                        "return typeof window.synapse === 'undefined' \
                             ? null : window.synapse.timings();",
                        vec![],
                    )
                    .await
                    .ok()
                    .and_then(|v| serde_json::from_value(v).ok());
                match &t {
                    Some(e2e::Timings { first_channel_open_ms: Some(o), first_peer_proven_ms: Some(p), .. }) => {
                        Ok((*o, *p))
                    }
                    _ => Err(t),
                }
            })
            .await;
        eprintln!("run {:>2}: first channel open {open_ms:>6.0} ms, first peer proven {proven_ms:>6.0} ms", run + 1);
        channel_open.push(open_ms);
        proven.push(proven_ms);
        page.close().await;
    }

    // 2. DataChannel throughput: sender → anchor.
    let sender = browser.open_node(&rdv, "profile=bench-sender").await;
    let sender_id = sender.id().await;
    wait_until(CONNECT_TIMEOUT, "the sender and the anchor to prove each other", async || {
        let (s, a) = (sender.peers().await, anchor.peers().await);
        if s.contains(&anchor_id) && a.contains(&sender_id) { Ok(()) } else { Err((s, a)) }
    })
    .await;
    // 2a. Signed hello latency: sign on one node, verified on the other.
    let mut hello_ms = Vec::new();
    for i in 0..args.runs {
        let tag = format!("latency probe {i}");
        let (t0, t1) = tokio::join!(
            anchor.call::<f64>(
                "const [text] = arguments; const t0 = Date.now(); \
                 return window.synapse.sendHello(text).then(() => t0);",
                vec![json!(tag)],
            ),
            sender.call::<f64>(
                "const [text, limitMs] = arguments; const start = Date.now(); \
                 return new Promise((resolve, reject) => { \
                   const poll = () => { \
                     if (window.synapse.hellos().some(h => h.text === text)) resolve(Date.now()); \
                     else if (Date.now() - start > limitMs) reject(new Error('hello never arrived')); \
                     else setTimeout(poll, 1); \
                   }; poll(); });",
                vec![json!(tag), json!(30_000)],
            ),
        );
        hello_ms.push((t1 - t0).max(0.0));
    }
    eprintln!("hello latency samples: {hello_ms:?}");

    let total = u64::from(args.blobs) * u64::from(BLOB);
    let mut rounds = Vec::new();
    for round in 0..args.rounds {
        let before = anchor.stats().await.blob_bytes_in;
        let target = before + total;
        let wall = Instant::now();
        let (sent, done_at) = tokio::join!(
            sender.call::<SendResult>(
                "const [id, len, n] = arguments; \
                 return (async () => { const t0 = Date.now(); let ok = true; \
                   for (let i = 0; i < n; i++) ok = (await window.synapse.sendBlob(id, len)) && ok; \
                   return { t0, ok }; })();",
                vec![json!(anchor_id), json!(BLOB), json!(args.blobs)],
            ),
            anchor.call::<f64>(
                "const [target, limitMs] = arguments; const start = Date.now(); \
                 return new Promise((resolve, reject) => { \
                   const poll = () => { \
                     if (window.synapse.stats().blob_bytes_in >= target) resolve(Date.now()); \
                     else if (Date.now() - start > limitMs) \
                       reject(new Error('blob_bytes_in stuck at ' + window.synapse.stats().blob_bytes_in)); \
                     else setTimeout(poll, 2); \
                   }; poll(); });",
                vec![json!(target), json!(100_000)],
            ),
        );
        let wall = wall.elapsed();
        assert!(sent.ok, "sendBlob refused: the anchor is not a proven peer");
        let ms = (done_at - sent.t0).max(1.0);
        let mbps = total as f64 / 1e6 / (ms / 1000.0);
        eprintln!(
            "round {}: {total} bytes in {ms:.0} ms = {mbps:.1} MB/s (harness wall {:.0} ms)",
            round + 1,
            wall.as_secs_f64() * 1000.0
        );
        rounds.push((ms, mbps, wall));
    }

    println!("## Connection set-up ({} cold page loads, one anchor peer)\n", args.runs);
    println!("| ms since navigation start | n | p50 | p95 | min | max |");
    println!("|---|---|---|---|---|---|");
    println!("{}", summary_row("first DataChannel open", &channel_open));
    println!("{}", summary_row("first peer proven", &proven));
    println!("\n## Signed hello: sent on one node, verified and visible on the other\n");
    println!("| ms (Date.now, 1 ms resolution) | n | p50 | p95 | min | max |");
    println!("|---|---|---|---|---|---|");
    println!("{}", summary_row("hello latency", &hello_ms));
    println!("\n## DataChannel throughput ({} × 4 MiB per round)\n", args.blobs);
    println!("| round | bytes | ms (in-page) | MB/s | harness wall ms |");
    println!("|---|---|---|---|---|");
    for (i, (ms, mbps, wall)) in rounds.iter().enumerate() {
        println!("| {} | {total} | {ms:.0} | {mbps:.1} | {:.0} |", i + 1, wall.as_secs_f64() * 1000.0);
    }
    let mut speeds: Vec<f64> = rounds.iter().map(|r| r.1).collect();
    speeds.sort_by(f64::total_cmp);
    println!("\nmedian throughput: {:.1} MB/s (1 MB = 10^6 bytes)", percentile(&speeds, 50.0));

    sender.close().await;
    anchor.close().await;
}
