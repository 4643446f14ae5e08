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
//! - All verifications of a chunk are in flight at once (`Promise.allSettled`);
//!   the page's thread only dispatches and collects. Verifying a share of
//!   the batch with ed25519-dalek on the page's thread meanwhile was tried
//!   and made batches slower (see DESIGN-NOTES.md).

use crate::core::op::{OP_DOMAIN, OpError, SignedOp, VerifiedOp};
use crate::core::strict::{self, KeyClass, Route};
use crate::identity::{IdentityError, domain_message};
use js_sys::{Array, Reflect, Uint8Array};
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

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
    let keys = SettledKeys::new();
    for (chunk_start, chunk) in items.chunks(CHUNK).enumerate().map(|(i, c)| (i * CHUNK, c)) {
        prepare_keys(subtle.as_ref(), chunk.iter().map(|it| it.key)).await;
        let promises = Array::new();
        let mut pending: Vec<usize> = vec![];
        CACHE.with(|c| {
            let c = c.borrow();
            for (j, it) in chunk.iter().enumerate() {
                let i = chunk_start + j;
                let Some(entry) = c.keys.get(&it.key) else {
                    out[i] = Some(strict::dalek_verify_strict(&it.key, &it.sig, it.msg));
                    continue;
                };
                match strict::route(entry.class, &it.sig) {
                    Route::Done(r) => out[i] = Some(r),
                    Route::Dalek => out[i] = Some(strict::dalek_verify_strict(&it.key, &it.sig, it.msg)),
                    Route::Platform => {
                        let started = match (&subtle, &entry.key) {
                            (Some(s), Some(key)) => {
                                s.verify_with_str_and_u8_array_and_u8_array("Ed25519", key, &it.sig, it.msg).ok()
                            }
                            _ => None,
                        };
                        match started {
                            Some(p) => {
                                promises.push(&p);
                                pending.push(i);
                            }
                            None => out[i] = Some(strict::dalek_verify_strict(&it.key, &it.sig, it.msg)),
                        }
                    }
                }
            }
        });
        if pending.is_empty() {
            continue;
        }
        let settled = JsFuture::from(js_sys::Promise::all_settled(&promises)).await.ok().map(|s| Array::from(&s));
        for (n, i) in pending.into_iter().enumerate() {
            let answer = settled.as_ref().and_then(|s| fulfilled(&s.get(n as u32), &keys)).and_then(|v| v.as_bool());
            out[i] = Some(match answer {
                Some(true) => Ok(()),
                Some(false) => Err(IdentityError::VerifyFailed),
                None => {
                    let it = &items[i];
                    strict::dalek_verify_strict(&it.key, &it.sig, it.msg)
                }
            });
        }
    }
    out.into_iter().map(|r| r.unwrap_or(Err(IdentityError::VerifyFailed))).collect()
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
