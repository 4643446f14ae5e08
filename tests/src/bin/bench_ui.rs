//! UI benchmark against the real rendezvous and headless Chromium.
//!
//! ```text
//! cargo run -p e2e --bin bench_ui -- [--runs 10] [--updates 20] [--tasks 10000] [--frames 300]
//! ```
//!
//! 1. **Page load**: with one anchor node up, `--runs` cold loads of a fresh
//!    Chromium (new profile); the page's own `performance` marks, in ms
//!    since navigation start: `synapse-ui-ready` (the app is mounted and
//!    interactive) and `synapse-ui-connected` (it shows a proven peer).
//! 2. **Remote update**: node A creates a task (`createTask`, A's
//!    `performance.timeOrigin + now()` just before); node B, on its tasks
//!    view, has a MutationObserver on the board that records when the
//!    title appears in the DOM (B's clock, same machine). `--updates` runs.
//! 3. **Scrolling**: a lone node creates `--tasks` tasks (JS loop over
//!    `createTask`), opens the board, then scrolls the list container by
//!    one row height per animation frame for `--frames` frames, recording
//!    the frame deltas and the number of rows in the DOM.
//! 4. **Reload**: the lone node's page is reloaded 3 times; time from
//!    navigation to the app interactive with all its stored ops folded.
//!
//! Progress goes to stderr; stdout gets markdown tables.

use e2e::bench::{arg, row};
use e2e::{Browser, Rendezvous, wait_until};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Deserialize)]
struct Marks {
    ready: Option<f64>,
    connected: Option<f64>,
}

#[derive(Deserialize)]
struct Scroll {
    deltas: Vec<f64>,
    max_rows: usize,
}

const MARKS: &str = "const m = n => { const e = performance.getEntriesByName(n)[0]; return e ? e.startTime : null; }; \
    return { ready: m('synapse-ui-ready'), connected: m('synapse-ui-connected') };";

#[tokio::main]
async fn main() {
    let runs = arg("--runs", 10) as usize;
    let updates = arg("--updates", 20) as usize;
    let tasks = arg("--tasks", 10_000);
    let frames = arg("--frames", 300);
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;

    // 1. Page load to interactive and connected.
    let anchor = browser.open_node(&rdv, "profile=bench-ui-anchor").await;
    let (mut ready, mut connected) = (vec![], vec![]);
    for i in 0..runs {
        let page = browser.open_node(&rdv, &format!("profile=bench-ui-load-{i}")).await;
        let m: Marks = wait_until(TIMEOUT, "the page to show a connected peer", async || {
            let m: Marks = page.call(MARKS, vec![]).await;
            if m.connected.is_some() { Ok(m) } else { Err(m.ready) }
        })
        .await;
        ready.extend(m.ready);
        connected.extend(m.connected);
        eprintln!("load {i}: ready {:?} connected {:?}", m.ready, m.connected);
        page.close().await;
    }

    // 2. Remote op to DOM.
    let b = browser.open_node(&rdv, "profile=bench-ui-b").await;
    wait_until(TIMEOUT, "anchor and b connected", async || {
        let n = b.peers().await.len();
        if n >= 1 { Ok(()) } else { Err(n) }
    })
    .await;
    let _: String = anchor.eval("window.synapse.createChannel('bench', 'ui bench')").await;
    b.show("tasks").await;
    let mut latency = vec![];
    for i in 0..updates {
        let title = format!("remote update {i}");
        let _: bool = b
            .call(
                "const title = arguments[0]; window.__seen = null; \
                 const obs = new MutationObserver(() => { \
                   const l = document.querySelector('#task-list'); \
                   if (l && l.textContent.includes(title)) { window.__seen = performance.timeOrigin + performance.now(); obs.disconnect(); } }); \
                 obs.observe(document.body, { subtree: true, childList: true, characterData: true }); return true;",
                vec![json!(title)],
            )
            .await;
        let t0: f64 = anchor
            .call(
                "const t0 = performance.timeOrigin + performance.now(); \
                 return window.synapse.createTask('bench', { title: arguments[0] }).then(() => t0);",
                vec![json!(title)],
            )
            .await;
        let t1: f64 = wait_until(TIMEOUT, "b's board to show the task", async || {
            let t: Option<f64> = b.eval("window.__seen").await;
            t.ok_or(())
        })
        .await;
        latency.push(t1 - t0);
        eprintln!("update {i}: {:.1} ms", t1 - t0);
    }
    b.close().await;
    anchor.close().await;
    drop(rdv);

    // 3. Scrolling 10,000 tasks on a lone node.
    let rdv = Rendezvous::start();
    let lone = browser.open_node(&rdv, "profile=bench-ui-scroll").await;
    let _: String = lone.eval("window.synapse.createChannel('bulk', 'many tasks')").await;
    let create_ms: f64 = lone
        .call(
            "const n = arguments[0]; const t0 = performance.now(); \
             for (let i = 0; i < n; i++) { await window.synapse.createTask('bulk', { title: 'bulk task ' + i, tags: ['t' + (i % 7)] }); } \
             return performance.now() - t0;",
            vec![json!(tasks)],
        )
        .await;
    eprintln!("created {tasks} tasks in {create_ms:.0} ms");
    let t_show = std::time::Instant::now();
    lone.show("tasks").await;
    let count = format!("bulk task {}", tasks - 1);
    lone.wait_text("#task-list", |t| t.contains(&count)).await;
    let show_ms = t_show.elapsed().as_secs_f64() * 1000.0;
    let s: Scroll = lone
        .call(
            "const frames = arguments[0]; const list = document.querySelector('#task-list'); \
             return new Promise(resolve => { const deltas = []; let last = null; let n = 0; let maxRows = 0; \
               const step = t => { if (last !== null) deltas.push(t - last); last = t; \
                 list.scrollTop += 64; maxRows = Math.max(maxRows, list.querySelectorAll('.vrow').length); \
                 if (++n < frames) requestAnimationFrame(step); else resolve({ deltas, max_rows: maxRows }); }; \
               requestAnimationFrame(step); });",
            vec![json!(frames)],
        )
        .await;

    // 4. Reload with everything stored: navigation to the app interactive
    // with every stored op folded (state shown before any peer is met).
    wait_until(TIMEOUT, "every op saved to IndexedDB", async || {
        let unsaved: u64 = lone.eval("window.synapse.status().storage.unsaved").await;
        if unsaved == 0 { Ok(()) } else { Err(unsaved) }
    })
    .await;
    let mut reload = vec![];
    let mut loaded = 0u64;
    for _ in 0..3 {
        lone.goto("about:blank").await;
        lone.goto(&rdv.page_url("profile=bench-ui-scroll")).await;
        lone.wait_ready(TIMEOUT).await;
        let m: Marks = wait_until(TIMEOUT, "the reloaded app", async || {
            let m: Marks = lone.call(MARKS, vec![]).await;
            if m.ready.is_some() { Ok(m) } else { Err(()) }
        })
        .await;
        loaded = lone.eval("window.synapse.pubsubStats().ledger.ops_loaded").await;
        let n: u64 = lone.eval("Object.keys(window.synapse.state().state.tasks).length").await;
        if n != tasks {
            let why: serde_json::Value =
                lone.eval("({ledger: window.synapse.pubsubStats().ledger, counts: window.synapse.state().counts, storage: window.synapse.status().storage})").await;
            let id: String = lone.eval("window.synapse.id()").await;
            panic!("after the reload {n} of {tasks} tasks are back (node {id}): {why}");
        }
        reload.extend(m.ready);
    }
    lone.close().await;

    println!("## UI: page load ({runs} cold loads, one anchor peer), ms since navigation start\n");
    println!("| milestone | n | p50 | p99 | min | max |\n|---|---|---|---|---|---|");
    println!("{}", row("app interactive (`synapse-ui-ready`)", &ready));
    println!("{}", row("connected peer shown (`synapse-ui-connected`)", &connected));
    println!("\n## UI: remote op to DOM ({updates} ops), ms\n");
    println!("| measure | n | p50 | p99 | min | max |\n|---|---|---|---|---|---|");
    println!("{}", row("createTask on A → title in B's board DOM", &latency));
    println!("\n## UI: scrolling {tasks} tasks ({frames} frames, one row per frame), ms\n");
    println!("| measure | n | p50 | p99 | min | max |\n|---|---|---|---|---|---|");
    println!("{}", row("frame delta", &s.deltas));
    println!(
        "\ncreating {tasks} tasks: {create_ms:.0} ms; board first showing the newest of them: {show_ms:.0} ms \
         (harness-timed, includes WebDriver polling); rows in the DOM while scrolling: at most {}",
        s.max_rows
    );
    println!("\n## UI: reload with {loaded} stored ops (3 reloads), ms since navigation start\n");
    println!("| milestone | n | p50 | p99 | min | max |\n|---|---|---|---|---|---|");
    println!("{}", row("app interactive, every stored op folded (`synapse-ui-ready`)", &reload));
}
