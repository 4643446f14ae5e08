//! WebCrypto Ed25519 in the browser: it must accept and reject exactly what
//! ed25519-dalek's `verify_strict` does (edge-case vectors), and a benchmark
//! of verify + apply throughput against the pure-wasm path.
//!
//! `wasm-pack test --headless --chrome --mode no-install node-wasm --test webcrypto -- --nocapture`
#![cfg(target_arch = "wasm32")]

use node_wasm::Identity;
use node_wasm::core::hlc::Hlc;
use node_wasm::core::op::{Funding, NewTask, OpBody, OpId, SignedOp, TaskSchema, VerifiedOp};
use node_wasm::core::replica::Replica;
use node_wasm::core::strict::{self, KeyClass, Route, vectors};
use node_wasm::runtime::util::now_ms;
use node_wasm::runtime::webcrypto::{self, Item};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn webcrypto_ed25519_is_available_in_chromium() {
    webcrypto::reset_cache();
    assert!(webcrypto::webcrypto_ed25519_available().await, "headless Chromium should offer Ed25519 in WebCrypto");
}

#[wasm_bindgen_test]
async fn webcrypto_path_agrees_with_verify_strict_on_every_edge_vector() {
    webcrypto::reset_cache();
    let all = vectors::all();
    let items: Vec<Item<'_>> = all.iter().map(|v| Item { key: v.key, sig: v.sig, msg: &v.msg }).collect();
    let got = webcrypto::verify_batch(&items).await;
    let (mut accepted, mut via_platform, mut raw_differs) = (0, 0, vec![]);
    for (v, got) in all.iter().zip(&got) {
        let strict = strict::dalek_verify_strict(&v.key, &v.sig, &v.msg);
        assert_eq!(got, &strict, "vector {:?}: WebCrypto path {:?}, verify_strict {:?}", v.name, got, strict);
        accepted += strict.is_ok() as usize;
        if strict::route(strict::classify_key(&v.key), &v.sig) == Route::Platform {
            via_platform += 1;
            // Where the platform is asked, its own answer is verify_strict's.
            let raw = webcrypto::raw_webcrypto_verify(&v.key, &v.sig, &v.msg).await;
            assert_eq!(raw, Some(strict.is_ok()), "vector {:?}", v.name);
        } else {
            // Elsewhere, record where bare WebCrypto would have split the
            // network (the reason for the pre-checks).
            let raw = webcrypto::raw_webcrypto_verify(&v.key, &v.sig, &v.msg).await;
            if raw.unwrap_or(false) != strict.is_ok() {
                raw_differs.push(format!("{} (WebCrypto {:?})", v.name, raw));
            }
        }
    }
    console_log!(
        "{} vectors: {} accepted by verify_strict, {} decided by WebCrypto; bare WebCrypto would disagree on {}: {:?}",
        all.len(),
        accepted,
        via_platform,
        raw_differs.len(),
        raw_differs
    );
    assert!(accepted >= 5);
    assert!(via_platform >= 5);
}

/// The same through the worker pool: the vectors repeated until the
/// WebCrypto-routed part is large enough to be sent to workers.
#[wasm_bindgen_test]
async fn webcrypto_workers_agree_with_verify_strict_on_every_edge_vector() {
    webcrypto::reset_cache();
    let all: Vec<_> = (0..12).flat_map(|_| vectors::all()).collect();
    let routed = all.iter().filter(|v| strict::route(strict::classify_key(&v.key), &v.sig) == Route::Platform).count();
    assert!(routed >= 64, "only {routed} vectors go to WebCrypto");
    let items: Vec<Item<'_>> = all.iter().map(|v| Item { key: v.key, sig: v.sig, msg: &v.msg }).collect();
    let got = webcrypto::verify_batch(&items).await;
    for (v, got) in all.iter().zip(&got) {
        assert_eq!(got, &strict::dalek_verify_strict(&v.key, &v.sig, &v.msg), "vector {:?}", v.name);
    }
}

#[wasm_bindgen_test]
async fn mixed_order_keys_are_left_to_dalek_and_still_agree() {
    let all = vectors::all();
    for name in ["mixed-order A, k = 0 mod 8 (cofactorless-valid)", "mixed-order A and R (cofactorless-valid)"] {
        let v = all.iter().find(|v| v.name == name).expect("vector exists");
        assert_eq!(strict::classify_key(&v.key), KeyClass::DalekOnly);
        assert_eq!(strict::dalek_verify_strict(&v.key, &v.sig, &v.msg), Ok(()));
        let got = webcrypto::verify_batch(&[Item { key: v.key, sig: v.sig, msg: &v.msg }]).await;
        assert_eq!(got, vec![Ok(())]);
        console_log!("{name}: bare WebCrypto says {:?}", webcrypto::raw_webcrypto_verify(&v.key, &v.sig, &v.msg).await);
    }
}

#[wasm_bindgen_test]
async fn without_webcrypto_the_dalek_fallback_agrees_too() {
    webcrypto::reset_cache();
    webcrypto::force_support(false);
    let all = vectors::all();
    let items: Vec<Item<'_>> = all.iter().map(|v| Item { key: v.key, sig: v.sig, msg: &v.msg }).collect();
    let got = webcrypto::verify_batch(&items).await;
    webcrypto::reset_cache();
    for (v, got) in all.iter().zip(got) {
        assert_eq!(got, strict::dalek_verify_strict(&v.key, &v.sig, &v.msg), "vector {:?}", v.name);
    }
}

/// Signed ops with tampered signatures: `verify_ops` gives exactly what
/// `SignedOp::verify` gives, op by op.
#[wasm_bindgen_test]
async fn verify_ops_matches_signed_op_verify() {
    webcrypto::reset_cache();
    // 400 ops: ~240 reach WebCrypto, enough for the workers.
    let ops = history(400);
    let mut bytes: Vec<Vec<u8>> = ops.iter().map(|o| o.bytes().to_vec()).collect();
    let n = bytes.len();
    for (i, b) in bytes.iter_mut().enumerate() {
        let sig_at = b.len() - 64;
        match i % 5 {
            1 => {
                // S + L.
                let mut s = [0u8; 32];
                s.copy_from_slice(&b[sig_at + 32..]);
                b[sig_at + 32..].copy_from_slice(&vectors::add_l(&s));
            }
            2 => b[sig_at] ^= 1,         // R changed
            3 => b[sig_at + 31] ^= 0x80, // R sign bit
            4 => b[sig_at - 1] ^= 1,     // payload changed
            _ => {}
        }
    }
    // A small-order R with S = 0 on one op.
    let last = bytes.len() - 1;
    let sig_at = bytes[last].len() - 64;
    bytes[last][sig_at..].fill(0);
    bytes[last][sig_at] = 1;
    let decoded: Vec<SignedOp> = bytes.iter().filter_map(|b| SignedOp::decode(b).ok()).collect();
    assert!(decoded.len() >= n - n / 5 - 1);
    let expected: Vec<_> = decoded.iter().cloned().map(SignedOp::verify).collect();
    let got = webcrypto::verify_ops(decoded).await;
    assert_eq!(got, expected);
    let ok = got.iter().filter(|r| r.is_ok()).count();
    assert!(ok >= n / 5 && ok < n, "{ok} of {n} verified");
}

const T0: u64 = 1_700_000_000_000;
const NOW: u64 = u64::MAX / 2;

struct Chain {
    key: Identity,
    seq: u64,
    prev: OpId,
}

impl Chain {
    fn op(&mut self, ms: u64, body: OpBody) -> VerifiedOp {
        self.seq += 1;
        let op = SignedOp::create(&self.key, self.seq, self.prev, Hlc::new(ms, 0), "dev", body).expect("op");
        self.prev = op.id();
        op
    }
}

/// Task create/claim/start/complete cycles over 8 deterministic authors (as
/// in `benches/fold.rs`).
fn history(n: usize) -> Vec<VerifiedOp> {
    let mut chains: Vec<Chain> =
        (1..=8u8).map(|i| Chain { key: Identity::from_seed([i; 32]), seq: 0, prev: OpId::ZERO }).collect();
    let mut ops = vec![chains[0].op(T0, OpBody::ChannelCreate { description: String::new() })];
    let mut t = T0;
    let mut i = 0usize;
    while ops.len() < n {
        let (owner, worker) = (i % 8, (i + 3) % 8);
        t += 1;
        let create = chains[owner].op(
            t,
            OpBody::TaskCreate(NewTask {
                schema: TaskSchema::TaskV1,
                title: format!("task {i}"),
                description: "benchmark task".into(),
                reward: 1,
                tags: vec!["rust".into()],
                required_tools: vec![],
                funding: Funding::Creator,
                auction: None,
            }),
        );
        let task = create.id();
        ops.push(create);
        for body in [OpBody::TaskClaim { task }, OpBody::TaskStart { task }, OpBody::TaskComplete { task }] {
            t += 1;
            ops.push(chains[worker].op(t, body));
        }
        i += 1;
    }
    ops.truncate(n);
    ops
}

/// Verification alone, WebCrypto on the page thread against WebCrypto in
/// workers, interleaved so machine load hits both alike.
#[wasm_bindgen_test]
async fn bench_webcrypto_page_thread_vs_workers() {
    const N: usize = 3000;
    let decoded: Vec<SignedOp> = history(N).iter().map(|o| SignedOp::decode(o.bytes()).expect("valid")).collect();
    webcrypto::reset_cache();
    for round in 1..=3 {
        for workers in [false, true] {
            webcrypto::set_use_workers(workers);
            let d = decoded.clone();
            let t0 = now_ms();
            let v = webcrypto::verify_ops(d).await;
            let ms = now_ms() - t0;
            assert!(v.iter().all(|r| r.is_ok()));
            let place = if workers { "workers" } else { "page thread" };
            console_log!(
                "round {round}: WebCrypto on the {place}: {N} verifications in {ms:.0} ms = {:.0}/s",
                N as f64 * 1000.0 / ms
            );
        }
    }
    webcrypto::set_use_workers(true);
}

/// Decode + verify + apply of N ops from bytes: (a) ed25519-dalek
/// `verify_strict` one by one, (b) the WebCrypto batch. Prints ops/s; no
/// timing assertion (debug builds and shared machines vary).
#[wasm_bindgen_test]
async fn bench_verify_and_apply_3000_ops() {
    const N: usize = 3000;
    let bytes: Vec<Vec<u8>> = history(N).iter().map(|o| o.bytes().to_vec()).collect();
    let mut hashes = vec![];
    // Cold start: no imported keys, default rate estimates.
    webcrypto::reset_cache();
    for round in 1..=3 {
        // (a) ed25519-dalek.
        let t0 = now_ms();
        let verified: Vec<VerifiedOp> =
            bytes.iter().map(|b| SignedOp::decode(b).and_then(SignedOp::verify).expect("valid op")).collect();
        let t1 = now_ms();
        let mut r = Replica::open();
        r.receive_batch(verified, NOW);
        let t2 = now_ms();
        hashes.push(r.state_hash());
        console_log!(
            "round {round} (a) decode + dalek verify_strict + receive_batch: {N} ops in {:.0} ms = {:.0} ops/s (decode + verify {:.0} ops/s, apply {:.0} ms)",
            t2 - t0,
            N as f64 * 1000.0 / (t2 - t0),
            N as f64 * 1000.0 / (t1 - t0),
            t2 - t1
        );

        // (b) WebCrypto batch (the key cache is cold in round 1).
        let t0 = now_ms();
        let decoded: Vec<SignedOp> = bytes.iter().map(|b| SignedOp::decode(b).expect("valid op")).collect();
        let verified: Vec<VerifiedOp> =
            webcrypto::verify_ops(decoded).await.into_iter().map(|r| r.expect("verifies")).collect();
        let t1 = now_ms();
        let mut r = Replica::open();
        r.receive_batch(verified, NOW);
        let t2 = now_ms();
        hashes.push(r.state_hash());
        console_log!(
            "round {round} (b) decode + WebCrypto batch verify + receive_batch: {N} ops in {:.0} ms = {:.0} ops/s (decode + verify {:.0} ops/s, apply {:.0} ms)",
            t2 - t0,
            N as f64 * 1000.0 / (t2 - t0),
            N as f64 * 1000.0 / (t1 - t0),
            t2 - t1
        );
    }
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "all paths fold to the same state");
}
