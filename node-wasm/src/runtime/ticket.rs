//! Searching for an admission ticket in the browser (rule
//! `admission_ticket`, [`crate::core::genesis`]).
//!
//! - **Workers.** The search runs in dedicated workers (plain JS from a Blob
//!   URL, `ticket_worker.js`, no wasm, like `verify_worker.js`): a SHA-256
//!   written for the fixed 95-byte message, with the first block's midstate,
//!   the second block's first five rounds and four schedule words computed
//!   once per search. Worker `i` of `n` tries nonces `start + i·2^32`,
//!   `+1`, …, and jumps `n·2^32` when the low half wraps, so the workers
//!   never try a nonce twice. Each posts how many nonces it tried about
//!   every 250 ms and the nonce it found.
//! - **Untrusted answers.** A worker's nonce is checked with
//!   [`ticket_valid`] before it is used; a wrong one stops that worker. A
//!   worker that fails, or answers nonsense, is stopped; when none is left,
//!   the search goes on on the page thread.
//! - **Without workers** (or when they all failed) the page thread searches
//!   with the Rust SHA-256 in slices of about 8 ms, yielding to the event
//!   loop between slices, and counts its tries the same way.
//! - [`Search::cancel`] (or dropping the [`Search`]) terminates the workers
//!   and stops the page-thread loop.

use crate::console_log;
use crate::core::genesis::{GenesisHash, find_ticket, ticket_valid};
use crate::identity::NodeId;
use crate::runtime::util::{js_err, now_ms, sleep_ms};
use js_sys::{Array, Object, Reflect, Uint8Array};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, BlobPropertyBag, MessageEvent, Url, Worker};

const WORKER_JS: &str = include_str!("ticket_worker.js");
/// The domain of the ticket hash (`core::genesis::ticket_hash`).
const DOMAIN: &[u8; 23] = b"synapse-ng/admission/v1";
/// Most search workers.
pub const MAX_WORKERS: usize = 4;
/// Page-thread slice length before yielding, in ms.
const SLICE_MS: f64 = 8.0;

thread_local! {
    /// The worker script's Blob URL, made once per page (`None` inside:
    /// workers are unavailable).
    static SCRIPT_URL: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

/// How a search runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// In this many dedicated workers.
    Workers(usize),
    /// On the page thread (no workers, or they all failed).
    MainThread,
}

/// How to search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Workers to use: `None` picks `hardwareConcurrency − 1` (1 to
    /// [`MAX_WORKERS`]); `Some(0)` searches on the page thread.
    pub workers: Option<usize>,
    /// Stop after about this many tries in all (0: until found). Benchmarks.
    pub count: u64,
}

/// The worker script's URL, or `None` when this page cannot start workers.
fn script_url() -> Option<String> {
    SCRIPT_URL.with(|u| {
        let mut u = u.borrow_mut();
        if u.is_none() {
            let global = js_sys::global();
            let ok = Reflect::has(&global, &JsValue::from_str("Worker")).unwrap_or(false);
            let url = ok.then(|| {
                let bag = BlobPropertyBag::new();
                bag.set_type("text/javascript");
                let parts = Array::of1(&JsValue::from_str(WORKER_JS));
                let blob = Blob::new_with_str_sequence_and_options(&parts, &bag).ok()?;
                Url::create_object_url_with_blob(&blob).ok()
            });
            *u = Some(url.flatten());
        }
        u.clone().flatten()
    })
}

/// Workers to start when the caller does not say.
fn default_workers() -> usize {
    let cores = Reflect::get(&js_sys::global(), &JsValue::from_str("navigator"))
        .and_then(|n| Reflect::get(&n, &JsValue::from_str("hardwareConcurrency")))
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(2.0);
    // Leave a core for the page.
    (cores as usize).saturating_sub(1).clamp(1, MAX_WORKERS)
}

/// The fixed 87 bytes before the nonce.
fn prefix(genesis: &GenesisHash, node: &NodeId) -> Uint8Array {
    let mut p = Vec::with_capacity(87);
    p.extend_from_slice(DOMAIN);
    p.extend_from_slice(&genesis.0);
    p.extend_from_slice(&node.0);
    Uint8Array::from(&p[..])
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// A JS number that must be a whole u32.
fn as_u32(v: &JsValue) -> Option<u32> {
    let x = v.as_f64()?;
    (x.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&x)).then_some(x as u32)
}

/// A non-negative whole count (tries), saturating.
fn as_count(v: &JsValue) -> Option<u64> {
    let x = v.as_f64()?;
    (x.is_finite() && x >= 0.0).then_some(x as u64)
}

struct Slot {
    worker: Worker,
    /// Nonces this worker says it tried.
    tried: Cell<u64>,
    /// Still searching.
    alive: Cell<bool>,
}

struct Shared {
    genesis: GenesisHash,
    node: NodeId,
    bits: u8,
    start: u64,
    count: u64,
    started_ms: f64,
    ended_ms: Cell<Option<f64>>,
    result: Cell<Option<u64>>,
    finished: Cell<bool>,
    via: Cell<Via>,
    slots: RefCell<Vec<Slot>>,
    /// Tries on the page thread.
    main_tried: Cell<u64>,
    /// Worker answers that were not valid tickets.
    bad_answers: Cell<u32>,
    /// Message and error handlers; dropped with the search, after the
    /// workers were terminated.
    #[allow(clippy::type_complexity)]
    handlers: RefCell<Vec<(Closure<dyn FnMut(MessageEvent)>, Closure<dyn FnMut(JsValue)>)>>,
    /// Resolve functions of [`Search::done`] promises.
    wake: RefCell<Vec<js_sys::Function>>,
}

impl Shared {
    fn tried(&self) -> u64 {
        self.slots.borrow().iter().map(|s| s.tried.get()).sum::<u64>() + self.main_tried.get()
    }

    /// Ends the search with `result` (`None`: cancelled or exhausted).
    fn finish(&self, result: Option<u64>) {
        if self.finished.replace(true) {
            return;
        }
        self.result.set(result);
        self.ended_ms.set(Some(now_ms()));
        for s in self.slots.borrow().iter() {
            s.alive.set(false);
            s.worker.set_onmessage(None);
            s.worker.set_onerror(None);
            s.worker.terminate();
        }
        let wake: Vec<js_sys::Function> = std::mem::take(&mut *self.wake.borrow_mut());
        for f in wake {
            let _ = f.call0(&JsValue::NULL);
        }
    }

    /// Stops worker `i` (it failed or lied); when none is left, the search
    /// goes on on the page thread (or ends, for a count-limited search
    /// whose workers finished their share).
    fn stop_worker(self: &Rc<Self>, i: usize, exhausted: bool) {
        let any_alive = {
            let slots = self.slots.borrow();
            let Some(s) = slots.get(i) else { return };
            if !s.alive.replace(false) {
                return;
            }
            s.worker.set_onmessage(None);
            s.worker.set_onerror(None);
            s.worker.terminate();
            slots.iter().any(|s| s.alive.get())
        };
        if any_alive || self.finished.get() {
            return;
        }
        if exhausted {
            self.finish(None);
        } else {
            console_log!("admission ticket: no search worker left; searching on the page thread");
            self.via.set(Via::MainThread);
            main_thread(Rc::downgrade(self));
        }
    }

    fn on_message(self: &Rc<Self>, i: usize, data: &JsValue) {
        if self.finished.get() {
            return;
        }
        let tried = as_count(&get(data, "tried"));
        if let (Some(t), Some(s)) = (tried, self.slots.borrow().get(i)) {
            s.tried.set(t);
        }
        match get(data, "type").as_string().as_deref() {
            Some("progress") => {}
            Some("found") => {
                let nonce = match (as_u32(&get(data, "lo")), as_u32(&get(data, "hi"))) {
                    (Some(lo), Some(hi)) => Some(u64::from(hi) << 32 | u64::from(lo)),
                    _ => None,
                };
                match nonce {
                    Some(n) if ticket_valid(&self.genesis, &self.node, n, self.bits) => self.finish(Some(n)),
                    _ => {
                        self.bad_answers.set(self.bad_answers.get() + 1);
                        console_log!("admission ticket: a search worker answered {nonce:?}, not a valid ticket");
                        self.stop_worker(i, false);
                    }
                }
            }
            Some("done") => self.stop_worker(i, true),
            Some("error") => {
                console_log!("admission ticket: search worker failed: {}", js_err(&get(data, "message")));
                self.stop_worker(i, false);
            }
            _ => {}
        }
    }
}

/// Searches on the page thread in slices, yielding between them.
fn main_thread(weak: Weak<Shared>) {
    wasm_bindgen_futures::spawn_local(async move {
        let Some((genesis, node, bits, start)) = weak.upgrade().map(|s| (s.genesis, s.node, s.bits, s.start)) else {
            return;
        };
        let mut next = start;
        loop {
            let t0 = now_ms();
            let mut found = None;
            let mut tried = 0u64;
            while found.is_none() && now_ms() - t0 < SLICE_MS {
                found = find_ticket(&genesis, &node, bits, next, 1024);
                let n = found.map_or(1024, |f| f.wrapping_sub(next) + 1);
                next = next.wrapping_add(n);
                tried += n;
            }
            let Some(s) = weak.upgrade() else { return };
            if s.finished.get() {
                return;
            }
            s.main_tried.set(s.main_tried.get() + tried);
            if found.is_some() {
                s.finish(found);
                return;
            }
            if s.count > 0 && s.main_tried.get() >= s.count {
                s.finish(None);
                return;
            }
            drop(s);
            sleep_ms(0).await;
        }
    });
}

/// One running search. Dropping it cancels it.
pub struct Search {
    shared: Rc<Shared>,
}

impl Search {
    /// Starts searching for `node`'s ticket on network `genesis` from nonce
    /// `start`, in workers if the page can start them.
    pub fn start(genesis: GenesisHash, node: NodeId, bits: u8, start: u64) -> Search {
        Search::start_with(genesis, node, bits, start, Options::default())
    }

    /// [`Search::start`] with the number of workers and a limit.
    pub fn start_with(genesis: GenesisHash, node: NodeId, bits: u8, start: u64, opts: Options) -> Search {
        let shared = Rc::new(Shared {
            genesis,
            node,
            bits,
            start,
            count: opts.count,
            started_ms: now_ms(),
            ended_ms: Cell::new(None),
            result: Cell::new(None),
            finished: Cell::new(false),
            via: Cell::new(Via::MainThread),
            slots: RefCell::new(vec![]),
            main_tried: Cell::new(0),
            bad_answers: Cell::new(0),
            handlers: RefCell::new(vec![]),
            wake: RefCell::new(vec![]),
        });
        let n = opts.workers.unwrap_or_else(default_workers).min(MAX_WORKERS);
        let started = if n > 0 { start_workers(&shared, n) } else { 0 };
        if started > 0 {
            shared.via.set(Via::Workers(started));
        } else {
            main_thread(Rc::downgrade(&shared));
        }
        Search { shared }
    }

    /// Nonces tried so far (all workers and the page thread).
    pub fn tried(&self) -> u64 {
        self.shared.tried()
    }

    /// Milliseconds since the search started (until it ended).
    pub fn elapsed_ms(&self) -> f64 {
        self.shared.ended_ms.get().unwrap_or_else(now_ms) - self.shared.started_ms
    }

    /// Hashes per second so far (0 before the first report).
    pub fn rate(&self) -> f64 {
        let ms = self.elapsed_ms();
        if ms <= 0.0 { 0.0 } else { self.tried() as f64 * 1000.0 / ms }
    }

    /// Whether the search ended (found, cancelled or exhausted).
    pub fn finished(&self) -> bool {
        self.shared.finished.get()
    }

    /// The ticket found (already checked with [`ticket_valid`]).
    pub fn result(&self) -> Option<u64> {
        self.shared.result.get()
    }

    /// Where it runs now.
    pub fn via(&self) -> Via {
        self.shared.via.get()
    }

    /// Worker answers that were not valid tickets (and were ignored).
    pub fn bad_answers(&self) -> u32 {
        self.shared.bad_answers.get()
    }

    pub fn bits(&self) -> u8 {
        self.shared.bits
    }

    /// Stops the search; [`Search::done`] then resolves with `None`.
    pub fn cancel(&self) {
        self.shared.finish(None);
    }

    /// Waits for the end of the search: the ticket, or `None` if it was
    /// cancelled (or a count-limited search found none).
    pub async fn done(&self) -> Option<u64> {
        if !self.shared.finished.get() {
            let shared = self.shared.clone();
            let p = js_sys::Promise::new(&mut move |resolve, _| shared.wake.borrow_mut().push(resolve));
            let _ = JsFuture::from(p).await;
        }
        self.result()
    }
}

impl Drop for Search {
    fn drop(&mut self) {
        self.shared.finish(None);
    }
}

/// Starts `n` workers on `shared`'s search; how many started.
fn start_workers(shared: &Rc<Shared>, n: usize) -> usize {
    let Some(url) = script_url() else { return 0 };
    let prefix = prefix(&shared.genesis, &shared.node);
    let (lo, hi) = (shared.start as u32, (shared.start >> 32) as u32);
    for i in 0..n {
        let Ok(worker) = Worker::new(&url) else { break };
        let weak = Rc::downgrade(shared);
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(s) = weak.upgrade() {
                s.on_message(i, &e.data());
            }
        });
        let weak = Rc::downgrade(shared);
        let on_error = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
            if let Some(s) = weak.upgrade() {
                console_log!("admission ticket: search worker error: {}", js_err(&e));
                s.stop_worker(i, false);
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let msg = Object::new();
        let set = |k: &str, v: &JsValue| Reflect::set(&msg, &JsValue::from_str(k), v).is_ok();
        // Each worker's share of a count-limited search.
        let count = if shared.count == 0 { 0.0 } else { shared.count.div_ceil(n as u64) as f64 };
        let ok = set("mode", &JsValue::from_str("search"))
            && set("prefix", &prefix)
            && set("bits", &JsValue::from(shared.bits))
            && set("lo", &JsValue::from(lo))
            && set("hi", &JsValue::from(hi.wrapping_add(i as u32)))
            && set("stride", &JsValue::from(n as u32))
            && set("count", &JsValue::from(count))
            && worker.post_message(&msg).is_ok();
        shared.handlers.borrow_mut().push((on_message, on_error));
        if !ok {
            worker.terminate();
            break;
        }
        shared.slots.borrow_mut().push(Slot { worker, tried: Cell::new(0), alive: Cell::new(true) });
    }
    let started = shared.slots.borrow().len();
    if started < n {
        // Strides assume all n: stop the partial set and use the page thread.
        for s in shared.slots.borrow_mut().drain(..) {
            s.worker.terminate();
        }
        return 0;
    }
    started
}

/// The worker's digest of `nonce`'s ticket hash (a self-test of the JS
/// SHA-256 against [`crate::core::genesis::ticket_hash`]); `None` without
/// workers or on any failure.
#[doc(hidden)]
pub async fn worker_hash(genesis: &GenesisHash, node: &NodeId, nonce: u64) -> Option<[u8; 32]> {
    let worker = Worker::new(&script_url()?).ok()?;
    let reply: Rc<RefCell<Option<JsValue>>> = Rc::default();
    let (r, w) = (reply.clone(), worker.clone());
    let p = js_sys::Promise::new(&mut move |resolve, _| {
        let r = r.clone();
        let on_message = Closure::once_into_js(move |e: MessageEvent| {
            *r.borrow_mut() = Some(e.data());
            let _ = resolve.call0(&JsValue::NULL);
        });
        w.set_onmessage(Some(on_message.unchecked_ref()));
    });
    let msg = Object::new();
    let _ = Reflect::set(&msg, &JsValue::from_str("mode"), &JsValue::from_str("hash"));
    let _ = Reflect::set(&msg, &JsValue::from_str("prefix"), &prefix(genesis, node));
    let _ = Reflect::set(&msg, &JsValue::from_str("lo"), &JsValue::from(nonce as u32));
    let _ = Reflect::set(&msg, &JsValue::from_str("hi"), &JsValue::from((nonce >> 32) as u32));
    worker.post_message(&msg).ok()?;
    let answered = JsFuture::from(p).await;
    worker.terminate();
    answered.ok()?;
    let data = reply.borrow_mut().take()?;
    let words = get(&data, "words");
    let words = words.dyn_ref::<Array>()?;
    let mut out = [0u8; 32];
    for (i, chunk) in out.chunks_mut(4).enumerate() {
        chunk.copy_from_slice(&as_u32(&words.get(i as u32))?.to_be_bytes());
    }
    Some(out)
}
