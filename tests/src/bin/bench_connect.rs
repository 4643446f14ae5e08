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
//!
//! With `--turn` it measures the TURN path instead, against a real coturn
//! (`turnserver` on loopback, TURN REST credentials issued by the
//! rendezvous; see `tests/src/turn.rs`):
//!
//! ```text
//! cargo run -p e2e --bin bench_connect -- --turn --runs 20 [--ops 300]
//! ```
//!
//! 1. Connect time, direct vs relay-only: as in step 1 above, `--runs`
//!    cold page loads against an anchor, first with every page on the
//!    default policy (host candidates win on one machine), then with every
//!    page and the anchor on `?relay=1` (each checked to report the relay
//!    pair). Page-side milestones, so TURN allocation is included.
//! 2. The relay's bytes per op: two relay-only nodes; session 1 stays idle
//!    for as long as session 2 takes to publish `--ops` task ops (one every
//!    20 ms) from alternating nodes. Each session ends with `closePeer`, which
//!    releases both TURN allocations, and coturn then logs the bytes each
//!    allocation relayed. Bytes per op = (session 2 - session 1) / ops, for
//!    what the browsers sent into the relay and what it sent out to them;
//!    the DataChannel payload per op (`stats().bytes_out`) is shown beside.

use e2e::bench::percentile;
use e2e::{Browser, NodePage, Rendezvous, TurnServer, Usage, short, wait_until};
use serde::Deserialize;
use serde_json::json;
use std::time::{Duration, Instant};

const BLOB: u32 = 4 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

struct Args {
    runs: usize,
    blobs: u32,
    rounds: usize,
    turn: bool,
    ops: usize,
}

fn parse_args() -> Args {
    let mut args = Args { runs: 20, blobs: 8, rounds: 3, turn: false, ops: 300 };
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
            "--ops" => args.ops = value("--ops"),
            "--turn" => args.turn = true,
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
    eprintln!("       bench_connect --turn [--runs N (20)] [--ops N (300)]");
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
    if args.turn {
        return turn_main(&args).await;
    }
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

/// Ms since navigation start of the page's first proven peer, once known.
async fn first_proven_ms(page: &NodePage, label: &str) -> f64 {
    wait_until(CONNECT_TIMEOUT, &format!("{label} to prove its first peer"), async || {
        let t: Option<e2e::Timings> = page
            .try_call("return typeof window.synapse === 'undefined' ? null : window.synapse.timings();", vec![])
            .await
            .ok()
            .and_then(|v| serde_json::from_value(v).ok());
        match &t {
            Some(e2e::Timings { first_peer_proven_ms: Some(p), .. }) => Ok(*p),
            _ => Err(t),
        }
    })
    .await
}

/// `--runs` cold page loads with `query_extra` against an anchor opened
/// with the same; returns first-peer-proven times. With `relay`, each run
/// must also report the relay pair to the anchor.
async fn connect_runs(browser: &Browser, rdv: &Rendezvous, runs: usize, mode: &str, relay: bool) -> Vec<f64> {
    let extra = if relay { "&relay=1" } else { "" };
    let anchor = browser.open_node(rdv, &format!("profile=bench-{mode}-anchor{extra}")).await;
    let anchor_id = anchor.id().await;
    let mut out = vec![];
    for run in 0..runs {
        let profile = format!("bench-{mode}-{run}");
        let page = browser.open(&profile).await;
        page.goto(&rdv.page_url(&format!("profile={profile}{extra}"))).await;
        let ms = first_proven_ms(&page, &profile).await;
        let state = wait_until(CONNECT_TIMEOUT, &format!("{profile} to know its candidate pair"), async || match page
            .peer_state(&anchor_id)
            .await
        {
            Some(p) if p.candidate.is_some() => Ok(p),
            other => Err(other),
        })
        .await;
        let kind = state.candidate.clone().unwrap_or_default();
        assert!(!relay || kind == "relay", "{profile}: relay-only page on a {kind} pair: {state:?}");
        eprintln!("{mode} run {:>2}: first peer proven {ms:>6.0} ms ({kind} pair)", run + 1);
        out.push(ms);
        page.close().await;
    }
    anchor.close().await;
    out
}

/// Closes `a`'s connection to `b_id` (both allocations are released) and
/// waits until coturn has logged, for both `a_id` and `b_id`, the usage of
/// an allocation not in `seen` that relayed something; returns those.
async fn end_session(turn: &TurnServer, a: &NodePage, a_id: &str, b_id: &str, seen: &mut Vec<String>) -> Vec<Usage> {
    assert!(a.close_peer(b_id).await, "the bench pair was not connected");
    let usage = wait_until(CONNECT_TIMEOUT, "coturn to log the session's allocations", async || {
        let fresh: Vec<Usage> = turn
            .usage()
            .into_iter()
            .filter(|u| !seen.contains(&u.session) && u.peer_rb > 0)
            .filter(|u| u.username.ends_with(a_id) || u.username.ends_with(b_id))
            .collect();
        let has = |id: &str| fresh.iter().any(|u| u.username.ends_with(id));
        if has(a_id) && has(b_id) { Ok(fresh) } else { Err(fresh) }
    })
    .await;
    seen.extend(turn.usage().into_iter().map(|u| u.session));
    usage
}

async fn wait_pair(a: &NodePage, b: &NodePage, ia: &str, ib: &str) {
    wait_until(CONNECT_TIMEOUT, "the relay-only pair to prove each other", async || {
        let (pa, pb) = (a.peers().await, b.peers().await);
        let relayed = matches!(a.peer_state(ib).await, Some(p) if p.candidate.as_deref() == Some("relay"));
        if pa.iter().any(|x| x == ib) && pb.iter().any(|x| x == ia) && relayed { Ok(()) } else { Err((pa, pb)) }
    })
    .await;
}

async fn bytes_out(nodes: &[&NodePage]) -> u64 {
    let mut sum = 0;
    for n in nodes {
        sum += n.stats().await.bytes_out;
    }
    sum
}

async fn turn_main(args: &Args) {
    let secret = format!("bench-{}", std::process::id());
    // Pages that quit leave their allocations until they expire: room for
    // every page of the run.
    let turn = TurnServer::start_with_relay_ports(&secret, 512);
    let rdv = Rendezvous::start_with_args(&["--turn-url", &turn.url(), "--turn-secret", &secret]);
    let browser = Browser::start().await;
    eprintln!("rendezvous at {}, coturn at {}", rdv.base_url(), turn.url());

    // 1. Connect time, direct then relay-only.
    let direct = connect_runs(&browser, &rdv, args.runs, "direct", false).await;
    let relayed = connect_runs(&browser, &rdv, args.runs, "relay", true).await;

    // 2. Bytes through the relay per op.
    let (a, b) = tokio::join!(
        browser.open_node(&rdv, "profile=bench-bytes-a&relay=1"),
        browser.open_node(&rdv, "profile=bench-bytes-b&relay=1")
    );
    let (ia, ib) = (a.id().await, b.id().await);
    wait_pair(&a, &b, &ia, &ib).await;
    let _: String = a.eval("window.synapse.createChannel('bench', 'relay bytes')").await;
    wait_until(CONNECT_TIMEOUT, "b to hold the channel", async || {
        let ok: bool = b.eval("'bench' in window.synapse.state().state.channels").await;
        if ok { Ok(()) } else { Err(()) }
    })
    .await;
    let _: String = b.eval("window.synapse.subscribe('bench')").await;
    let mut seen: Vec<String> = turn.usage().into_iter().map(|u| u.session).collect();

    // Session 2 first, to know how long publishing takes; session 1 then
    // idles that long on a fresh connection.
    let payload_before = bytes_out(&[&a, &b]).await;
    let started = std::time::Instant::now();
    let mut ids = vec![];
    for i in 0..args.ops {
        let node = if i % 2 == 0 { &a } else { &b };
        let id: String = node
            .call(
                "return window.synapse.createTask('bench', arguments[0]);",
                vec![json!({"title": format!("relayed op {i}"), "reward": 0})],
            )
            .await;
        ids.push(id);
        tokio::time::sleep(Duration::from_millis(20)).await; // pacing the load, not waiting for a result
    }
    let ids_json = json!(ids);
    wait_until(CONNECT_TIMEOUT, "every op on both nodes", async || {
        let mut missing = 0u64;
        for n in [&a, &b] {
            missing += n
                .call::<u64>(
                    "return arguments[0].filter(id => window.synapse.opSeenAt(id) == null).length;",
                    vec![ids_json.clone()],
                )
                .await;
        }
        if missing == 0 { Ok(()) } else { Err(missing) }
    })
    .await;
    let publishing = started.elapsed();
    let payload = bytes_out(&[&a, &b]).await - payload_before;
    let busy = end_session(&turn, &a, &ia, &ib, &mut seen).await;
    eprintln!("publishing session: {} ops in {:.1} s; coturn: {busy:?}", args.ops, publishing.as_secs_f64());

    wait_pair(&a, &b, &ia, &ib).await;
    tokio::time::sleep(publishing).await; // the idle session lasts as long as the busy one
    let idle = end_session(&turn, &a, &ia, &ib, &mut seen).await;
    eprintln!("idle session of {:.1} s; coturn: {idle:?}", publishing.as_secs_f64());

    let sum = |u: &[Usage], f: fn(&Usage) -> u64| u.iter().map(f).sum::<u64>();
    let (busy_in, busy_out) = (sum(&busy, |u| u.client_rb), sum(&busy, |u| u.client_sb));
    let (idle_in, idle_out) = (sum(&idle, |u| u.client_rb), sum(&idle, |u| u.client_sb));
    let ops = args.ops as f64;

    println!("## Connect time through TURN ({} cold page loads each, coturn on loopback)\n", args.runs);
    println!("| first peer proven, ms since navigation start | n | p50 | p95 | min | max |");
    println!("|---|---|---|---|---|---|");
    println!("{}", summary_row("direct (default policy, host pair)", &direct));
    println!("{}", summary_row("relay-only (`?relay=1`, relay pair)", &relayed));
    println!("\n## Bytes through the relay per op ({} task ops, two relay-only nodes)\n", args.ops);
    println!("| session ({:.1} s each) | browsers -> coturn | coturn -> browsers |", publishing.as_secs_f64());
    println!("|---|---|---|");
    println!("| publishing {} ops | {busy_in} | {busy_out} |", args.ops);
    println!("| idle | {idle_in} | {idle_out} |");
    println!(
        "| **per op** ((publishing - idle) / ops) | **{:.0}** | **{:.0}** |",
        (busy_in as f64 - idle_in as f64) / ops,
        (busy_out as f64 - idle_out as f64) / ops
    );
    println!(
        "\nDataChannel payload sent by both nodes while publishing: {payload} bytes = {:.0} per op",
        payload as f64 / ops
    );
    for p in [a, b] {
        p.close().await;
    }
}
