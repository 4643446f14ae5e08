//! Admitting this node's identity to its network (rule `admission_ticket`):
//! while the replica's state says `admission_bits > 0` and this node has no
//! account, search for a ticket ([`crate::runtime::ticket`]) and publish
//! its `admit` op in `global` through the ledger, like every own op.
//!
//! The driver only reads the network (genesis hash and rules) from the
//! replica's state, every 250 ms while it works and every second otherwise:
//! if the state changes under it (its own earlier admission arrives from
//! peers, another network's state is loaded), it stops or starts over. A
//! found ticket that cannot be signed yet (the chain guard waits for the
//! identity's own earlier ops) is kept and tried again.
//!
//! [`status`] is `synapse.admission()` and `status().admission`; progress
//! makes the node notify its change listeners about once a second (or when
//! the percentage or the phase changes).

use crate::console_log;
use crate::core::genesis::{GenesisHash, ticket_valid};
use crate::core::op::OpId;
use crate::identity::NodeId;
use crate::runtime::ledger::Ledger;
use crate::runtime::ticket::Search;
use crate::runtime::util::{now_ms, random_bytes, sleep_ms};
use crate::service::Signer;
use crate::service::admission::{self, AdmissionStatus, Phase};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// Most ms between progress notifications while the percentage stays put.
const NOTIFY_EVERY_MS: f64 = 1000.0;

struct Driver {
    ledger: Ledger,
    /// The search, kept after it found the ticket (for its counts).
    search: RefCell<Option<Search>>,
    /// The network and difficulty the search is for.
    target: Cell<Option<(GenesisHash, u8)>>,
    /// A valid ticket not signed yet.
    found: Cell<Option<u64>>,
    /// The signed `admit` op, until it is committed and published.
    pending: Cell<Option<OpId>>,
    /// The last reason signing the ticket had to wait (logged once).
    waiting: RefCell<Option<String>>,
    /// What listeners were last told: `(phase, percent)` and when.
    shown: Cell<Option<(Phase, u8)>>,
    shown_ms: Cell<f64>,
}

thread_local! {
    /// One driver per node (tests run several nodes in one page).
    static DRIVERS: RefCell<HashMap<NodeId, Rc<Driver>>> = RefCell::new(HashMap::new());
}

/// Starts admitting `ledger`'s identity when its network asks for a
/// ticket (once per node; later calls do nothing).
pub fn start(ledger: &Ledger) {
    let me = ledger.node().id();
    if DRIVERS.with(|d| d.borrow().contains_key(&me)) {
        return;
    }
    let driver = Rc::new(Driver {
        ledger: ledger.clone(),
        search: RefCell::new(None),
        target: Cell::new(None),
        found: Cell::new(None),
        pending: Cell::new(None),
        waiting: RefCell::new(None),
        shown: Cell::new(None),
        shown_ms: Cell::new(0.0),
    });
    DRIVERS.with(|d| d.borrow_mut().insert(me, driver.clone()));
    wasm_bindgen_futures::spawn_local(async move {
        loop {
            let busy = driver.step();
            sleep_ms(if busy { 250 } else { 1000 }).await;
        }
    });
}

/// `synapse.admission()`: where this node's admission stands.
pub fn status(ledger: &Ledger) -> AdmissionStatus {
    let me = ledger.node().id();
    let local = DRIVERS.with(|d| d.borrow().get(&me).map(|d| d.local())).unwrap_or_default();
    ledger.with_state(|st| admission::status(st, &me, &local))
}

impl Driver {
    fn me(&self) -> NodeId {
        self.ledger.node().id()
    }

    /// What the page knows of its search, for [`admission::status`].
    fn local(&self) -> admission::Search {
        let search = self.search.borrow();
        admission::Search {
            tried: search.as_ref().map_or(0, Search::tried),
            rate: search.as_ref().filter(|s| !s.finished()).map_or(0.0, Search::rate),
            found: self.found.get().is_some(),
            uncommitted: self.pending.get().is_some_and(|id| self.ledger.is_uncommitted(&id)),
        }
    }

    /// One look at the state; true while there is work in progress.
    fn step(&self) -> bool {
        let me = self.me();
        if let Some(id) = self.pending.get()
            && !self.ledger.is_uncommitted(&id)
        {
            self.pending.set(None);
            console_log!("admission ticket: admit op {} stored and published", id.short());
            // Refused until now (not admitted): try at once.
            self.ledger.ensure_key_published();
        }
        let (need, genesis) = self.ledger.with_state(|st| (admission::needed(st, &me), st.genesis));
        let Some(bits) = need else {
            // Admitted (here or by an earlier op that arrived), or no ticket needed.
            if self.found.take().is_some() || self.search.borrow().as_ref().is_some_and(|s| !s.finished()) {
                console_log!("admission ticket: no longer needed; search stopped");
            }
            self.search.borrow_mut().take();
            self.notify();
            return self.pending.get().is_some();
        };
        if self.target.get() != Some((genesis, bits)) {
            // A new network or difficulty: start over.
            self.search.borrow_mut().take();
            self.found.set(None);
            self.target.set(Some((genesis, bits)));
        }
        if self.found.get().is_none() {
            self.search_step(genesis, me, bits);
        }
        if let Some(nonce) = self.found.get() {
            self.publish(nonce);
        }
        self.notify();
        true
    }

    /// Starts the search, or takes its ticket once it ended.
    fn search_step(&self, genesis: GenesisHash, me: NodeId, bits: u8) {
        let mut search = self.search.borrow_mut();
        match search.as_ref() {
            None => {
                let start = u64::from_le_bytes(random_bytes::<8>());
                let s = Search::start(genesis, me, bits, start);
                console_log!("admission ticket: searching for {bits} zero bits ({:?})", s.via());
                *search = Some(s);
            }
            Some(s) if s.finished() => match s.result() {
                // Checked by the search already; cheap to be sure.
                Some(n) if ticket_valid(&genesis, &me, n, bits) => {
                    console_log!(
                        "admission ticket found after {} tries in {:.1} s ({:.0} hashes/s)",
                        s.tried(),
                        s.elapsed_ms() / 1000.0,
                        s.rate()
                    );
                    self.found.set(Some(n));
                }
                // Ended without a ticket: start over at the next step.
                _ => *search = None,
            },
            Some(_) => {}
        }
    }

    /// Signs the `admit` op through the ledger (committed, then published).
    fn publish(&self, nonce: u64) {
        let me = self.me();
        match self.ledger.run(|st| admission::admit(st, &me, nonce)) {
            Ok(id) => {
                console_log!("admission ticket: admit op {} signed", id.short());
                self.found.set(None);
                self.pending.set(Some(id));
                self.waiting.borrow_mut().take();
            }
            Err(e) => {
                if self.waiting.borrow().as_deref() != Some(e.as_str()) {
                    console_log!("admission ticket found; signing it waits: {e}");
                    *self.waiting.borrow_mut() = Some(e);
                }
            }
        }
    }

    /// Tells the node's change listeners about progress, throttled.
    fn notify(&self) {
        let s = status(&self.ledger);
        let now = now_ms();
        let shown = Some((s.state, s.percent));
        let moving = s.state == Phase::Computing && now - self.shown_ms.get() >= NOTIFY_EVERY_MS;
        if shown != self.shown.get() || moving {
            self.shown.set(shown);
            self.shown_ms.set(now);
            self.ledger.node().touch();
        }
    }
}
