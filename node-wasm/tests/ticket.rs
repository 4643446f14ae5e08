//! The admission ticket search (`runtime::ticket`) in headless Chromium: the
//! worker's SHA-256 agrees with the Rust `ticket_hash`, a 12-bit search in
//! workers and on the page thread finds a valid ticket, a search can be
//! cancelled, a fresh node admits itself and then acts, and a measurement
//! of the hash rate (docs/BENCHMARKS.md,
//! "Admission ticket (proof of work) in Chromium").
//!
//! `wasm-pack test --headless --chrome --mode no-install node-wasm --test ticket -- --nocapture`
//! (the measurements: `-- --nocapture ticket_bench`, with `--release`
//! before `--headless` for an optimized build of the test).
//! `ticket_bench` runs in every test run too (a few seconds): each of its
//! searches must find a valid ticket or try exactly its count.
#![cfg(target_arch = "wasm32")]

use node_wasm::core::genesis::{Genesis, GenesisHash, leading_zero_bits, ticket_hash, ticket_valid};
use node_wasm::identity::NodeId;
use node_wasm::runtime::ticket::{self, Options, Search, Via};
use node_wasm::runtime::util::{random_bytes, sleep_ms};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn network() -> GenesisHash {
    Genesis::default().hash()
}

fn someone() -> NodeId {
    NodeId(random_bytes::<32>())
}

#[wasm_bindgen_test]
async fn the_worker_hash_is_the_rust_ticket_hash() {
    let (g, node) = (network(), someone());
    for nonce in [0, 1, 255, 256, 0xffff_ffff, 0x1_0000_0000, 0x1234_5678_9abc_def0, u64::MAX] {
        let got = ticket::worker_hash(&g, &node, nonce).await.expect("the worker answers");
        assert_eq!(got, ticket_hash(&g, &node, nonce), "nonce {nonce:#x}");
    }
}

#[wasm_bindgen_test]
async fn a_12_bit_ticket_is_found_in_workers_and_is_valid() {
    let (g, node) = (network(), someone());
    for workers in [1, 2] {
        let s = Search::start_with(g, node, 12, 0xffff_f000, Options { workers: Some(workers), count: 0 });
        assert_eq!(s.via(), Via::Workers(workers));
        let nonce = s.done().await.expect("a ticket");
        assert!(ticket_valid(&g, &node, nonce, 12), "nonce {nonce}");
        assert!(leading_zero_bits(&ticket_hash(&g, &node, nonce)) >= 12);
        assert_eq!(s.bad_answers(), 0);
        assert_eq!(s.via(), Via::Workers(workers), "no worker failed");
        console_log!(
            "12 bits, {workers} worker(s): nonce {nonce:#x} after {} tries in {:.0} ms",
            s.tried(),
            s.elapsed_ms()
        );
    }
}

#[wasm_bindgen_test]
async fn the_page_thread_searches_when_there_are_no_workers() {
    let (g, node) = (network(), someone());
    let s = Search::start_with(g, node, 12, 7, Options { workers: Some(0), count: 0 });
    assert_eq!(s.via(), Via::MainThread);
    let nonce = s.done().await.expect("a ticket");
    assert!(ticket_valid(&g, &node, nonce, 12));
    assert!(nonce >= 7 && s.tried() == nonce - 7 + 1, "tried {} up to {nonce}", s.tried());
}

#[wasm_bindgen_test]
async fn a_search_can_be_cancelled_and_shows_progress() {
    let (g, node) = (network(), someone());
    // 40 bits: it will not finish.
    let s = Search::start(g, node, 40, 0);
    sleep_ms(700).await;
    assert!(s.tried() > 0, "progress is reported while searching");
    assert!(!s.finished());
    s.cancel();
    assert!(s.finished());
    assert_eq!(s.done().await, None);
    let tried = s.tried();
    sleep_ms(600).await;
    assert_eq!(s.tried(), tried, "no progress after cancelling");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Hash rate over 2^20 hashes per worker (1 worker, then the default
/// count), expected p50/p95 times from it, and 10 real 18-bit searches.
#[wasm_bindgen_test]
async fn ticket_bench() {
    let (g, node) = (network(), someone());
    let cores = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|n| js_sys::Reflect::get(&n, &"hardwareConcurrency".into()))
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
    const N: u64 = 1 << 20;
    let mut rates = vec![];
    for workers in [1usize, 2] {
        // Warm-up run (JIT), then three measured runs; the best is reported.
        let _ = Search::start_with(g, node, 48, 0, Options { workers: Some(workers), count: 1 << 18 }).done().await;
        let mut best = 0.0f64;
        for run in 0..3 {
            let s = Search::start_with(
                g,
                node,
                48,
                run << 40,
                Options { workers: Some(workers), count: N * workers as u64 },
            );
            let found = s.done().await;
            assert!(found.is_none_or(|n| ticket_valid(&g, &node, n, 48)) && s.tried() > 0);
            let rate = s.tried() as f64 * 1000.0 / s.elapsed_ms();
            console_log!(
                "{workers} worker(s): {} hashes in {:.0} ms = {:.0} hashes/s",
                s.tried(),
                s.elapsed_ms(),
                rate
            );
            best = best.max(rate);
        }
        rates.push((workers, best));
    }
    // The page thread (Rust SHA-256 in wasm), for comparison.
    let s = Search::start_with(g, node, 48, 0, Options { workers: Some(0), count: 1 << 18 });
    let found = s.done().await;
    assert!(found.is_none_or(|n| ticket_valid(&g, &node, n, 48)) && s.tried() > 0);
    let main_rate = s.tried() as f64 * 1000.0 / s.elapsed_ms();
    console_log!("page thread (wasm sha2): {} hashes in {:.0} ms = {main_rate:.0} hashes/s", s.tried(), s.elapsed_ms());
    console_log!("hardwareConcurrency = {cores}");
    for (workers, rate) in &rates {
        console_log!("| bits | {workers} worker(s) at {rate:.0} hashes/s: p50 | p95 |");
        for bits in [16u32, 20, 22, 24] {
            let tries = 2f64.powi(bits as i32);
            let (p50, p95) = (std::f64::consts::LN_2 * tries / rate, 20f64.ln() * tries / rate);
            console_log!("| {bits} | {p50:.2} s | {p95:.2} s |");
        }
    }
    // Real 18-bit searches with the default number of workers.
    let mut times = vec![];
    let mut tries = vec![];
    let mut via = None;
    for _ in 0..10 {
        let who = someone();
        let s = Search::start(g, who, 18, u64::from_le_bytes(random_bytes::<8>()));
        via = Some(s.via());
        let nonce = s.done().await.expect("a ticket");
        assert!(ticket_valid(&g, &who, nonce, 18));
        times.push(s.elapsed_ms() / 1000.0);
        tries.push(s.tried() as f64);
    }
    times.sort_by(f64::total_cmp);
    tries.sort_by(f64::total_cmp);
    console_log!(
        "18 bits, 10 searches ({via:?}): time p50 {:.2} s, p95 {:.2} s, max {:.2} s; tries p50 {:.0}, p95 {:.0} (expected p50 {:.0}, p95 {:.0})",
        percentile(&times, 0.5),
        percentile(&times, 0.95),
        times[times.len() - 1],
        percentile(&tries, 0.5),
        percentile(&tries, 0.95),
        std::f64::consts::LN_2 * 2f64.powi(18),
        20f64.ln() * 2f64.powi(18)
    );
}

/// A field of `synapse.admission()`.
fn field(api: &node_wasm::runtime::SynapseNode, key: &str) -> wasm_bindgen::JsValue {
    js_sys::Reflect::get(&api.admission(), &key.into()).unwrap_or(wasm_bindgen::JsValue::UNDEFINED)
}

async fn rejection(p: js_sys::Promise) -> String {
    match wasm_bindgen_futures::JsFuture::from(p).await {
        Ok(v) => panic!("resolved with {v:?}, expected a rejection"),
        Err(e) => node_wasm::runtime::util::js_err(&e),
    }
}

/// The whole path on a fresh node of the network the ledger folds under:
/// refused before admission, the driver searches, publishes the `admit`
/// op through the ledger, and the identity can act.
#[wasm_bindgen_test]
async fn a_new_node_admits_itself_then_acts() {
    use node_wasm::core::reject::Reject;
    use node_wasm::identity::Identity;
    use node_wasm::runtime::ledger::Ledger;
    use node_wasm::runtime::util::now_ms;
    use node_wasm::runtime::{Node, NodeConfig, SynapseNode, admission};
    let profile = format!("ticket-{}", (js_sys::Math::random() * 1e9) as u64);
    let node = Node::new(Identity::from_seed(random_bytes::<32>()), NodeConfig::default());
    // The default network: every safeguard on, the default ticket.
    let ledger = Ledger::attach(&node, &profile, &Genesis::default());
    let api = SynapseNode::new(node.clone(), ledger.clone(), profile);
    let bits = ledger.with_state(|st| st.params.rules.admission_bits);
    assert_eq!(bits, node_wasm::core::rules::Rules::default().admission_bits);
    assert_eq!(field(&api, "state").as_string().as_deref(), Some("computing"));
    assert_eq!(field(&api, "expected").as_f64(), Some(2f64.powi(i32::from(bits))));
    let refused = rejection(api.create_channel("early".into(), None)).await;
    assert_eq!(refused, Reject::NotAdmitted.to_string());
    let t0 = now_ms();
    admission::start(&ledger);
    while field(&api, "state").as_string().as_deref() != Some("admitted") {
        assert!(now_ms() - t0 < 120_000.0, "not admitted after 2 min: {:?}", api.admission());
        sleep_ms(50).await;
    }
    assert_eq!(field(&api, "percent").as_f64(), Some(100.0));
    let me = node.id();
    assert!(ledger.with_state(|st| st.ledger.accounts.contains_key(&me)));
    let id = wasm_bindgen_futures::JsFuture::from(api.create_channel("after".into(), None)).await;
    assert!(id.is_ok(), "acts once admitted: {id:?}");
    console_log!("{bits} bits: admitted in {:.1} s (search, sign, commit, publish)", (now_ms() - t0) / 1000.0);
}
