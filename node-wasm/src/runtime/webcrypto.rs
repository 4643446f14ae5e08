//! Batch Ed25519 verification with the browser's WebCrypto, with exactly
//! ed25519-dalek `verify_strict`'s accept/reject rules.
//!
//! Chromium verifies Ed25519 natively 3-4x faster than ed25519-dalek
//! compiled to wasm (toolchain notes: ~12,000/s against ~3,000-4,700/s), and
//! many verifications can be in flight at once. WebCrypto follows RFC 8032
//! cofactorless verification, which disagrees with `verify_strict` on a few
//! edge cases (small-order keys and `R`, non-canonical encodings); the
//! [`crate::core::strict`] pre-checks settle those before WebCrypto is asked,
//! and keys that are not canonical and torsion-free are verified by
//! ed25519-dalek itself. See `strict.rs` for the argument and the browser
//! tests (`tests/webcrypto.rs`) for the edge-case vectors.
//!
//! - Support is detected once per page: `crypto.subtle` must exist, import a
//!   raw Ed25519 key, accept a known-good signature and reject a known-bad
//!   one. Without it, everything goes to ed25519-dalek.
//! - Imported keys are cached (a small map, cleared when full); a key that
//!   fails to import is verified by ed25519-dalek.
//! - A verification whose promise rejects (it should not) falls back to
//!   ed25519-dalek for that signature, so a platform failure can only cost
//!   time, never change an answer.
//! - **Workers.** Chromium runs `crypto.subtle.verify` on the calling thread
//!   (measured: verifications on the page thread and ed25519-dalek work on
//!   the page thread add up, they do not overlap). So batches of 64 or more
//!   are spread over `min(hardwareConcurrency, 4)` dedicated workers (plain
//!   JS from a Blob URL, `verify_worker.js`, no wasm), each with all its
//!   verifications in flight at once; the page thread only packs the
//!   messages and waits. Smaller batches, or pages without workers, verify
//!   on the page thread (`Promise.allSettled`). A worker that fails makes
//!   the page stop using workers; its unanswered signatures go to
//!   ed25519-dalek.
//! - The worker only answers "does WebCrypto accept this"; every decision
//!   about *whether* WebCrypto may be asked stays here, in Rust.

use crate::core::op::{OP_DOMAIN, OpError, SignedOp, VerifiedOp};
use crate::core::strict::{self, KeyClass, Route};
use crate::identity::{IdentityError, domain_message};
use js_sys::{Array, Object, Reflect, Uint8Array, Uint32Array};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, BlobPropertyBag, CryptoKey, MessageEvent, SubtleCrypto, Url, Worker};

/// Most keys kept imported; the cache is cleared when it is full.
const MAX_KEYS: usize = 4096;
/// Most verifications in flight at once.
const CHUNK: usize = 4096;

#[derive(Clone)]
struct KeyEntry {
    class: KeyClass,
    /// The imported key, for `Strict` keys that imported.
    key: Option<CryptoKey>,
}

#[derive(Default)]
struct Cache {
    /// `Some(true)` once WebCrypto Ed25519 passed the self-test.
    support: Option<bool>,
    keys: HashMap<[u8; 32], KeyEntry>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

fn subtle() -> Option<SubtleCrypto> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).ok()?;
    if crypto.is_undefined() || crypto.is_null() {
        return None;
    }
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle")).ok()?;
    if subtle.is_undefined() || subtle.is_null() {
        return None;
    }
    subtle.dyn_into::<SubtleCrypto>().ok()
}

async fn import(subtle: &SubtleCrypto, raw: &[u8; 32]) -> Option<CryptoKey> {
    let usages = Array::of1(&JsValue::from_str("verify"));
    let data = Uint8Array::from(&raw[..]);
    let p = subtle.import_key_with_str("raw", &data, "Ed25519", false, &usages).ok()?;
    JsFuture::from(p).await.ok()?.dyn_into::<CryptoKey>().ok()
}

async fn verify_one(subtle: &SubtleCrypto, key: &CryptoKey, sig: &[u8], msg: &[u8]) -> Option<bool> {
    let p = subtle.verify_with_str_and_u8_array_and_u8_array("Ed25519", key, sig, msg).ok()?;
    JsFuture::from(p).await.ok()?.as_bool()
}

/// SHA-256 of `bytes` by the browser (`crypto.subtle.digest`), or `None`
/// where WebCrypto is missing or fails (callers then hash in wasm). Used for
/// megabytes at start-up, where wasm code still runs in the engine's
/// baseline tier (measured: 15 MB in ~550 ms in wasm, see BENCHMARKS).
pub async fn sha256(bytes: &[u8]) -> Option<[u8; 32]> {
    let p = subtle()?.digest_with_str_and_u8_array("SHA-256", bytes).ok()?;
    let out = JsFuture::from(p).await.ok()?;
    let v = Uint8Array::new(&out).to_vec();
    v.try_into().ok()
}

/// True if this page can verify Ed25519 with WebCrypto (checked once, by a
/// known-answer test).
pub async fn webcrypto_ed25519_available() -> bool {
    if let Some(s) = CACHE.with(|c| c.borrow().support) {
        return s;
    }
    let ok = self_test().await;
    CACHE.with(|c| c.borrow_mut().support = Some(ok));
    ok
}

async fn self_test() -> bool {
    use ed25519_dalek::{Signer, SigningKey};
    let Some(subtle) = subtle() else { return false };
    let sk = SigningKey::from_bytes(&[0x5a; 32]);
    let pk = sk.verifying_key().to_bytes();
    let sig = sk.sign(b"synapse-ng/webcrypto-self-test").to_bytes();
    let Some(key) = import(&subtle, &pk).await else { return false };
    let good = verify_one(&subtle, &key, &sig, b"synapse-ng/webcrypto-self-test").await;
    let bad = verify_one(&subtle, &key, &sig, b"synapse-ng/webcrypto-self-tesT").await;
    good == Some(true) && bad == Some(false)
}

/// One signature to check: public key, signature, signed message.
pub struct Item<'a> {
    pub key: [u8; 32],
    pub sig: [u8; 64],
    pub msg: &'a [u8],
}

/// Classifies and (for `Strict` keys) imports every distinct key in `keys`
/// that is not cached yet.
async fn prepare_keys(subtle: Option<&SubtleCrypto>, keys: impl Iterator<Item = [u8; 32]>) {
    let mut fresh: Vec<([u8; 32], KeyClass)> = vec![];
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.keys.len() >= MAX_KEYS {
            c.keys.clear();
        }
        for k in keys {
            if !c.keys.contains_key(&k) && !fresh.iter().any(|(f, _)| *f == k) {
                fresh.push((k, strict::classify_key(&k)));
            }
        }
    });
    if fresh.is_empty() {
        return;
    }
    // Import the Strict keys concurrently.
    let mut imported: Vec<Option<CryptoKey>> = vec![None; fresh.len()];
    if let Some(subtle) = subtle {
        let promises = Array::new();
        let mut which = vec![];
        for (i, (k, class)) in fresh.iter().enumerate() {
            if *class != KeyClass::Strict {
                continue;
            }
            let usages = Array::of1(&JsValue::from_str("verify"));
            let data = Uint8Array::from(&k[..]);
            if let Ok(p) = subtle.import_key_with_str("raw", &data, "Ed25519", false, &usages) {
                promises.push(&p);
                which.push(i);
            }
        }
        if let Ok(settled) = JsFuture::from(js_sys::Promise::all_settled(&promises)).await {
            let keys = SettledKeys::new();
            let settled = Array::from(&settled);
            for (n, i) in which.into_iter().enumerate() {
                imported[i] = fulfilled(&settled.get(n as u32), &keys).and_then(|v| v.dyn_into::<CryptoKey>().ok());
            }
        }
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        for ((k, class), key) in fresh.into_iter().zip(imported) {
            c.keys.insert(k, KeyEntry { class, key });
        }
    });
}

/// Property names and values of `Promise.allSettled` entries, made once.
struct SettledKeys {
    status: JsValue,
    value: JsValue,
    fulfilled: JsValue,
}

impl SettledKeys {
    fn new() -> SettledKeys {
        SettledKeys {
            status: JsValue::from_str("status"),
            value: JsValue::from_str("value"),
            fulfilled: JsValue::from_str("fulfilled"),
        }
    }
}

/// The value of a fulfilled `Promise.allSettled` entry.
fn fulfilled(entry: &JsValue, keys: &SettledKeys) -> Option<JsValue> {
    let status = Reflect::get(entry, &keys.status).ok()?;
    if status != keys.fulfilled {
        return None;
    }
    Reflect::get(entry, &keys.value).ok()
}

/// Verifies every item with `verify_strict`'s rules, using WebCrypto where
/// that is provably equivalent and ed25519-dalek otherwise. Results are in
/// input order, with the errors [`crate::identity::NodeId::verify`] gives.
pub async fn verify_batch(items: &[Item<'_>]) -> Vec<Result<(), IdentityError>> {
    let subtle = if webcrypto_ed25519_available().await { subtle() } else { None };
    let mut out: Vec<Option<Result<(), IdentityError>>> = vec![None; items.len()];
    let dalek = |i: usize| strict::dalek_verify_strict(&items[i].key, &items[i].sig, items[i].msg);
    for (chunk_start, chunk) in items.chunks(CHUNK).enumerate().map(|(i, c)| (i * CHUNK, c)) {
        prepare_keys(subtle.as_ref(), chunk.iter().map(|it| it.key)).await;
        let mut platform: Vec<usize> = vec![];
        CACHE.with(|c| {
            let c = c.borrow();
            for (j, it) in chunk.iter().enumerate() {
                let i = chunk_start + j;
                match c.keys.get(&it.key).map(|e| strict::route(e.class, &it.sig)) {
                    Some(Route::Done(r)) => out[i] = Some(r),
                    Some(Route::Platform) if subtle.is_some() => platform.push(i),
                    _ => out[i] = Some(dalek(i)),
                }
            }
        });
        let Some(subtle) = subtle.as_ref() else { continue };
        let use_workers = USE_WORKERS.with(Cell::get);
        let answers = match workers().filter(|_| use_workers) {
            Some(ws) if platform.len() >= MIN_WORKER_BATCH => verify_in_workers(&ws, items, &platform).await,
            _ => verify_here(subtle, items, &platform).await,
        };
        for (n, &i) in platform.iter().enumerate() {
            out[i] = Some(match answers.get(n).copied().flatten() {
                Some(true) => Ok(()),
                Some(false) => Err(IdentityError::VerifyFailed),
                None => dalek(i),
            });
        }
    }
    out.into_iter().map(|r| r.unwrap_or(Err(IdentityError::VerifyFailed))).collect()
}

/// WebCrypto on this thread, all in flight at once. `None`: no answer
/// (the caller asks ed25519-dalek).
async fn verify_here(subtle: &SubtleCrypto, items: &[Item<'_>], which: &[usize]) -> Vec<Option<bool>> {
    let promises = Array::new();
    let mut sent = vec![];
    CACHE.with(|c| {
        let c = c.borrow();
        for (n, &i) in which.iter().enumerate() {
            let it = &items[i];
            let Some(key) = c.keys.get(&it.key).and_then(|e| e.key.as_ref()) else { continue };
            if let Ok(p) = subtle.verify_with_str_and_u8_array_and_u8_array("Ed25519", key, &it.sig, it.msg) {
                promises.push(&p);
                sent.push(n);
            }
        }
    });
    let mut answers = vec![None; which.len()];
    if sent.is_empty() {
        return answers;
    }
    let keys = SettledKeys::new();
    if let Ok(settled) = JsFuture::from(js_sys::Promise::all_settled(&promises)).await {
        let settled = Array::from(&settled);
        for (m, n) in sent.into_iter().enumerate() {
            answers[n] = fulfilled(&settled.get(m as u32), &keys).and_then(|v| v.as_bool());
        }
    }
    answers
}

/// Batches at least this large are spread over the workers.
const MIN_WORKER_BATCH: usize = 64;
/// Most verification workers.
const MAX_WORKERS: usize = 4;
const WORKER_JS: &str = include_str!("verify_worker.js");

thread_local! {
    /// `None`: not started yet; `Some(None)`: workers are unavailable.
    static WORKERS: RefCell<Option<Option<Rc<Vec<Worker>>>>> = const { RefCell::new(None) };
    /// Resolve functions of requests sent to workers, by request id.
    static WAITING: RefCell<HashMap<u32, js_sys::Function>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u32> = const { Cell::new(0) };
    static USE_WORKERS: Cell<bool> = const { Cell::new(true) };
}

/// Turns the workers off or on (benchmarks, tests).
#[doc(hidden)]
pub fn set_use_workers(on: bool) {
    USE_WORKERS.with(|u| u.set(on));
}

/// The verification workers, started on first use.
fn workers() -> Option<Rc<Vec<Worker>>> {
    WORKERS.with(|w| {
        let mut w = w.borrow_mut();
        if w.is_none() {
            *w = Some(start_workers());
        }
        w.clone().flatten()
    })
}

fn start_workers() -> Option<Rc<Vec<Worker>>> {
    let global = js_sys::global();
    if !Reflect::has(&global, &JsValue::from_str("Worker")).unwrap_or(false) {
        return None;
    }
    let cores = Reflect::get(&global, &JsValue::from_str("navigator"))
        .and_then(|n| Reflect::get(&n, &JsValue::from_str("hardwareConcurrency")))
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(2.0);
    let n = (cores as usize).clamp(1, MAX_WORKERS);
    let bag = BlobPropertyBag::new();
    bag.set_type("text/javascript");
    let blob = Blob::new_with_str_sequence_and_options(&Array::of1(&JsValue::from_str(WORKER_JS)), &bag).ok()?;
    let url = Url::create_object_url_with_blob(&blob).ok()?;
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|e: MessageEvent| {
        let data = e.data();
        let id = Reflect::get(&data, &JsValue::from_str("id")).ok().and_then(|v| v.as_f64());
        let out = Reflect::get(&data, &JsValue::from_str("out")).unwrap_or(JsValue::UNDEFINED);
        if let Some(resolve) = id.and_then(|id| WAITING.with(|w| w.borrow_mut().remove(&(id as u32)))) {
            let _ = resolve.call1(&JsValue::NULL, &out);
        }
    });
    // A worker that fails: answer everything waiting with "no answer" (the
    // page verifies those itself) and stop using workers.
    let on_error = Closure::<dyn FnMut(JsValue)>::new(|_: JsValue| {
        WORKERS.with(|w| *w.borrow_mut() = Some(None));
        let waiting: Vec<js_sys::Function> = WAITING.with(|w| w.borrow_mut().drain().map(|(_, f)| f).collect());
        for resolve in waiting {
            let _ = resolve.call1(&JsValue::NULL, &JsValue::UNDEFINED);
        }
    });
    let mut ws = vec![];
    for _ in 0..n {
        let w = Worker::new(&url).ok()?;
        w.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        w.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        ws.push(w);
    }
    // Once per page; the workers live as long as it.
    on_message.forget();
    on_error.forget();
    Some(Rc::new(ws))
}

/// Sends `which` to one worker; the promise resolves to its answers (a
/// `Uint8Array`: 1 accept, 0 reject, 2 no answer) or `undefined`.
fn send_to_worker(w: &Worker, items: &[Item<'_>], which: &[usize]) -> js_sys::Promise {
    let mut key_index: HashMap<[u8; 32], u32> = HashMap::new();
    let mut key_bytes = vec![];
    let mut key_idx = Vec::with_capacity(which.len());
    let mut sigs = Vec::with_capacity(64 * which.len());
    let mut msgs = vec![];
    let mut offs = Vec::with_capacity(which.len() + 1);
    offs.push(0u32);
    for &i in which {
        let it = &items[i];
        let next = key_index.len() as u32;
        let k = *key_index.entry(it.key).or_insert_with(|| {
            key_bytes.extend_from_slice(&it.key);
            next
        });
        key_idx.push(k);
        sigs.extend_from_slice(&it.sig);
        msgs.extend_from_slice(it.msg);
        offs.push(msgs.len() as u32);
    }
    let msg = Object::new();
    let set = |k: &str, v: &JsValue| {
        let _ = Reflect::set(&msg, &JsValue::from_str(k), v);
    };
    let id = NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1));
        id
    });
    set("id", &JsValue::from(id));
    set("keyBytes", &Uint8Array::from(&key_bytes[..]));
    set("keyIdx", &Uint32Array::from(&key_idx[..]));
    set("sigs", &Uint8Array::from(&sigs[..]));
    set("msgs", &Uint8Array::from(&msgs[..]));
    set("offs", &Uint32Array::from(&offs[..]));
    js_sys::Promise::new(&mut |resolve, _reject| {
        WAITING.with(|wt| wt.borrow_mut().insert(id, resolve.clone()));
        if w.post_message(&msg).is_err() {
            WAITING.with(|wt| wt.borrow_mut().remove(&id));
            let _ = resolve.call1(&JsValue::NULL, &JsValue::UNDEFINED);
        }
    })
}

/// A promise that resolves to `undefined` after `ms`.
fn timeout(ms: f64) -> js_sys::Promise {
    js_sys::Promise::new(&mut |resolve, _reject| {
        let global = js_sys::global();
        let set_timeout = Reflect::get(&global, &JsValue::from_str("setTimeout"))
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        if let Some(f) = set_timeout {
            let _ = f.call2(&global, &resolve, &JsValue::from_f64(ms));
        }
    })
}

/// Spreads `which` over the workers and waits for all of them.
async fn verify_in_workers(ws: &[Worker], items: &[Item<'_>], which: &[usize]) -> Vec<Option<bool>> {
    let per = which.len().div_ceil(ws.len().max(1));
    let promises = Array::new();
    let parts: Vec<&[usize]> = which.chunks(per.max(1)).collect();
    for (w, part) in ws.iter().zip(&parts) {
        promises.push(&send_to_worker(w, items, part));
    }
    let mut answers = Vec::with_capacity(which.len());
    // Never wait forever on a worker: past the deadline the page verifies
    // the rest itself and stops using workers.
    let deadline_ms = 10_000.0 + which.len() as f64;
    let race = Array::of2(&js_sys::Promise::all(&promises), &timeout(deadline_ms));
    let all = JsFuture::from(js_sys::Promise::race(&race)).await.ok().filter(|a| a.is_instance_of::<Array>());
    if all.is_none() {
        WORKERS.with(|w| *w.borrow_mut() = Some(None));
    }
    let all = all.map(|a| Array::from(&a));
    for (n, part) in parts.iter().enumerate() {
        let out = all.as_ref().map(|a| a.get(n as u32)).filter(|v| v.is_instance_of::<Uint8Array>());
        let bytes = out.map(|v| Uint8Array::from(v).to_vec()).unwrap_or_default();
        for m in 0..part.len() {
            answers.push(match bytes.get(m) {
                Some(1) => Some(true),
                Some(0) => Some(false),
                _ => None,
            });
        }
    }
    answers
}

/// Verifies decoded ops in a batch (see [`verify_batch`]): the result for
/// each op is what [`SignedOp::verify`] would give, in input order.
pub async fn verify_ops(ops: Vec<SignedOp>) -> Vec<Result<VerifiedOp, OpError>> {
    let messages: Vec<Vec<u8>> = ops.iter().map(|op| domain_message(OP_DOMAIN, op.payload())).collect();
    let items: Vec<Item<'_>> =
        ops.iter().zip(&messages).map(|(op, msg)| Item { key: op.op().author.0, sig: *op.signature(), msg }).collect();
    let results = verify_batch(&items).await;
    drop(items);
    ops.into_iter()
        .zip(results)
        .map(|(op, r)| match r {
            Ok(()) => Ok(VerifiedOp::from_external_check(op)),
            Err(e) => Err(OpError::Signature(e)),
        })
        .collect()
}

/// Forgets cached keys and the support probe (tests).
#[doc(hidden)]
pub fn reset_cache() {
    CACHE.with(|c| *c.borrow_mut() = Cache::default());
}

/// Forces the ed25519-dalek path (tests, benchmarks): `Some(false)` disables
/// WebCrypto until [`reset_cache`].
#[doc(hidden)]
pub fn force_support(support: bool) {
    CACHE.with(|c| c.borrow_mut().support = Some(support));
}

/// Asks WebCrypto directly, with none of the strict pre-checks: `None` if the
/// key does not import or the call fails. Only for tests that show what the
/// pre-checks are for.
#[doc(hidden)]
pub async fn raw_webcrypto_verify(key: &[u8; 32], sig: &[u8; 64], msg: &[u8]) -> Option<bool> {
    let subtle = subtle()?;
    let key = import(&subtle, key).await?;
    verify_one(&subtle, &key, sig, msg).await
}
