//! The replicated op log in the browser: a [`Replica`] fed by SynapseSub and
//! kept in IndexedDB.
//!
//! - Every op travels on `global:ops` with its author as origin and its
//!   chain seq as the SynapseSub seq, so version-vector catch-up asks for
//!   exactly the ops a node lacks. The SynapseSub message id is SHA-256 of
//!   the signed op bytes, which is also the op id.
//! - **Verify once**: the router's validator decodes and verifies an op
//!   (after SynapseSub's dedup, before forwarding); the verified op waits in
//!   `verified` until the router delivers it, and goes into the replica
//!   without a second signature check.
//! - **Persistence**: every op this node stores is written to IndexedDB; on
//!   start the stored ops are folded before the node acts, so a reloaded tab
//!   has its state at once and never re-signs a seq it already used (which
//!   would be equivocation). Its own ops are re-published so peers' catch-up
//!   can be served.
//! - **Storage problems are shown, not swallowed**: a failed open, read or
//!   write of IndexedDB is counted and kept as a sentence for the user
//!   ([`Ledger::storage_error`], `status().storage`); the node keeps running
//!   in memory. A batch that failed to save is retried with the next one (or
//!   after 5 s), and the error clears once a save succeeds again.
//! - **Imported identities** ([`store::import_identity`]) carry the chain
//!   head reached elsewhere; until this node holds its own ops up to it,
//!   [`Ledger::act`] refuses to sign (a second op at a used seq would be
//!   equivocation).

use crate::console_log;
use crate::core::op::{GLOBAL_CHANNEL, OpBody, OpId, SignedOp, VerifiedOp};
use crate::core::replica::{Received, Replica, Snapshot};
use crate::persistence::{self, StorageProblem};
use crate::pubsub::{self, GLOBAL_TOPIC, MsgId, Validation};
use crate::runtime::store;
use crate::runtime::transport::Node;
use crate::runtime::util::{now_ms, sleep_ms};
use crate::runtime::webcrypto;
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use wasm_bindgen_futures::spawn_local;

/// Verified ops waiting for delivery; bounded so a flood cannot grow it.
const MAX_VERIFIED_WAITING: usize = 8192;

/// A save batch that keeps failing is retried at most this large; beyond
/// it the oldest unsaved ops are only in memory (the error says so).
const MAX_UNSAVED: usize = 50_000;

/// Counters for the UI and the benchmarks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LedgerStats {
    pub ops_created: u64,
    /// Ops delivered by SynapseSub (new or not).
    pub ops_received: u64,
    pub ops_invalid: u64,
    /// Ops restored from IndexedDB at start.
    pub ops_loaded: u64,
    /// Stored ops skipped at start because they no longer decode or verify.
    pub ops_load_skipped: u64,
    /// Ops from peers that this node did not hold yet (after the load): with
    /// `ops_loaded`, shows that a reload fetches only what it lacks.
    pub ops_fetched: u64,
    /// Ops from peers that this node already held (from the load or earlier).
    pub ops_refetched: u64,
    /// Failed IndexedDB operations (open, read, write), counted.
    pub store_errors: u64,
    /// The browser's words for the last failure.
    pub last_store_error: Option<String>,
    /// The current storage problem as a sentence for the user, or null when
    /// storage works.
    pub storage_error: Option<String>,
}

/// Whether storage works, for `status()` and the UI.
#[derive(Debug, Clone, Serialize)]
pub struct StorageStatus {
    pub ok: bool,
    /// `unavailable`, `full`, `write_failed`, `read_failed` or null.
    pub problem: Option<StorageProblem>,
    /// A sentence for the user, or null.
    pub error: Option<String>,
    /// True when IndexedDB could not be opened at start: nothing is saved.
    pub memory_only: bool,
    /// Ops waiting to be written (retried with the next save).
    pub unsaved: usize,
}

struct Inner {
    node: Node,
    profile: String,
    replica: RefCell<Replica>,
    verified: RefCell<BTreeMap<MsgId, VerifiedOp>>,
    /// When each op was first stored here (ms since navigation start).
    seen_at: RefCell<BTreeMap<OpId, f64>>,
    unsaved: RefCell<Vec<(String, Vec<u8>)>>,
    save_scheduled: Cell<bool>,
    /// The current storage problem (cleared by a successful save).
    storage_problem: Cell<Option<StorageProblem>>,
    /// IndexedDB could not be opened at start: saves are not attempted.
    memory_only: Cell<bool>,
    /// This node must not sign before its own chain reaches this seq
    /// (an imported identity's head; see `store::import_identity`).
    chain_floor: Cell<u64>,
    stats: RefCell<LedgerStats>,
    /// Deadline items last tried, and when (wall ms).
    deadline_tries: RefCell<BTreeMap<String, u64>>,
}

/// The node's replicated state. Cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    inner: Rc<Inner>,
}

/// Wall-clock ms for the HLC (ops' physical time must be comparable across
/// nodes; the HLC absorbs skew and never goes backwards).
fn wall_ms() -> u64 {
    js_sys::Date::now() as u64
}

impl Ledger {
    /// Plugs a replica into `node`'s SynapseSub. Call [`Ledger::load`] next.
    pub fn attach(node: &Node, profile: &str) -> Ledger {
        let ledger = Ledger {
            inner: Rc::new(Inner {
                node: node.clone(),
                profile: profile.to_string(),
                replica: RefCell::new(Replica::new()),
                verified: RefCell::new(BTreeMap::new()),
                seen_at: RefCell::new(BTreeMap::new()),
                unsaved: RefCell::new(vec![]),
                save_scheduled: Cell::new(false),
                storage_problem: Cell::new(None),
                memory_only: Cell::new(false),
                chain_floor: Cell::new(0),
                stats: RefCell::new(LedgerStats::default()),
                deadline_tries: RefCell::new(BTreeMap::new()),
            }),
        };
        let l = ledger.clone();
        node.set_validator(Box::new(move |m: &pubsub::Message| l.validate(m)));
        let l = ledger.clone();
        node.set_deliver_hook(Box::new(move |_, d| l.on_delivery(d)));
        ledger
    }

    /// SynapseSub validation of one op: decoded, signature-checked, and its
    /// SynapseSub origin and seq must be the op's author and seq.
    fn validate(&self, m: &pubsub::Message) -> Validation {
        if m.topic != GLOBAL_TOPIC {
            return Validation::Ignore;
        }
        let verified = SignedOp::decode(&m.payload).and_then(SignedOp::verify);
        match verified {
            Ok(v) if v.op().author == m.origin && v.op().seq == m.seq => {
                let mut w = self.inner.verified.borrow_mut();
                if w.len() >= MAX_VERIFIED_WAITING {
                    w.clear();
                }
                w.insert(MsgId(v.id().0), v);
                Validation::Accept
            }
            Ok(_) => {
                self.count_invalid("origin or seq does not match the op");
                Validation::Reject
            }
            Err(e) => {
                self.count_invalid(&e.to_string());
                Validation::Reject
            }
        }
    }

    fn count_invalid(&self, why: &str) {
        self.inner.stats.borrow_mut().ops_invalid += 1;
        console_log!("invalid op rejected: {why}");
    }

    fn on_delivery(&self, d: pubsub::Delivery) {
        let Some(v) = self.inner.verified.borrow_mut().remove(&d.id) else { return };
        self.ingest(vec![v]);
    }

    /// Folds verified ops, records when they arrived and queues them for
    /// IndexedDB.
    fn ingest(&self, ops: Vec<VerifiedOp>) {
        let now = now_ms();
        {
            let mut seen = self.inner.seen_at.borrow_mut();
            let mut unsaved = self.inner.unsaved.borrow_mut();
            for v in &ops {
                seen.entry(v.id()).or_insert(now);
                unsaved.push((v.id().to_text(), v.bytes().to_vec()));
            }
            self.inner.stats.borrow_mut().ops_received += ops.len() as u64;
        }
        let results = self.inner.replica.borrow_mut().receive_batch(ops, wall_ms());
        {
            let mut s = self.inner.stats.borrow_mut();
            for r in results {
                match r {
                    Received::Stored | Received::Held => s.ops_fetched += 1,
                    Received::Duplicate => s.ops_refetched += 1,
                    Received::Dropped => {}
                }
            }
        }
        self.schedule_save();
        self.inner.node.touch();
    }

    fn schedule_save(&self) {
        if self.inner.memory_only.get() {
            self.inner.unsaved.borrow_mut().clear(); // nothing can be saved
            return;
        }
        if self.inner.save_scheduled.replace(true) {
            return; // a save is already scheduled
        }
        let l = self.clone();
        spawn_local(async move {
            sleep_ms(50).await; // batch a burst of ops into one transaction
            let batch = std::mem::take(&mut *l.inner.unsaved.borrow_mut());
            l.inner.save_scheduled.set(false);
            let r = match store::open_db().await {
                Ok(db) => {
                    let r = store::save_ops(&db, &l.inner.profile, &batch).await;
                    db.close();
                    r
                }
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => {
                    if l.inner.storage_problem.get().is_some_and(|p| p != StorageProblem::ReadFailed) {
                        l.clear_storage_error();
                    }
                }
                Err(e) => {
                    console_log!("could not save {} ops: {e}", batch.len());
                    l.storage_failed(&e, true);
                    // Kept for the next save (which the next op schedules).
                    let mut u = l.inner.unsaved.borrow_mut();
                    let mut again = batch;
                    again.append(&mut u);
                    let excess = again.len().saturating_sub(MAX_UNSAVED);
                    again.drain(..excess);
                    *u = again;
                    drop(u);
                    // Retried with the next op, or in 5 s if none comes.
                    let l2 = l.clone();
                    spawn_local(async move {
                        sleep_ms(5000).await;
                        l2.schedule_save();
                    });
                }
            }
        });
    }

    /// Records a failed IndexedDB operation: counted, and shown as a sentence.
    fn storage_failed(&self, raw: &str, writing: bool) {
        let problem = persistence::classify_storage_error(raw, writing);
        {
            let mut s = self.inner.stats.borrow_mut();
            s.store_errors += 1;
            s.last_store_error = Some(raw.to_string());
            s.storage_error = Some(persistence::storage_sentence(problem, raw));
        }
        self.inner.storage_problem.set(Some(problem));
        self.inner.node.touch();
    }

    fn clear_storage_error(&self) {
        self.inner.storage_problem.set(None);
        self.inner.stats.borrow_mut().storage_error = None;
        self.inner.node.touch();
    }

    /// Marks storage as unusable from the start (IndexedDB did not open, or
    /// the identity is temporary): `sentence` is shown as is and no save is
    /// attempted, so the error is not repeated on every op.
    pub fn set_memory_only(&self, sentence: &str) {
        self.inner.memory_only.set(true);
        self.inner.storage_problem.set(Some(StorageProblem::Unavailable));
        {
            let mut s = self.inner.stats.borrow_mut();
            s.store_errors += 1;
            s.storage_error = Some(sentence.to_string());
        }
        self.inner.node.touch();
    }

    /// The profile this ledger stores under (`?profile=`).
    pub fn profile(&self) -> String {
        self.inner.profile.clone()
    }

    /// The current storage problem as a sentence for the user, or `None`
    /// when storage works.
    pub fn storage_error(&self) -> Option<String> {
        self.inner.stats.borrow().storage_error.clone()
    }

    /// Whether storage works, with the problem and sentence if not.
    pub fn storage_status(&self) -> StorageStatus {
        let problem = self.inner.storage_problem.get();
        StorageStatus {
            ok: problem.is_none(),
            problem,
            error: self.storage_error(),
            memory_only: self.inner.memory_only.get(),
            unsaved: self.inner.unsaved.borrow().len(),
        }
    }

    /// This node's own chain head here, `(seq, op id)` (includes ops not
    /// saved yet), for the identity file.
    pub fn own_head(&self) -> Option<(u64, OpId)> {
        let me = self.inner.node.id();
        self.inner.replica.borrow().store().head(&me).map(|h| (h.0, h.1))
    }

    /// The seq this node's own chain must reach before it may sign (0: none).
    pub fn chain_floor(&self) -> u64 {
        self.inner.chain_floor.get()
    }

    /// Folds the ops stored in IndexedDB and re-publishes this node's own.
    /// A storage failure is recorded (see [`Ledger::storage_error`]) and
    /// also returned; the node can run on without the stored ops.
    pub async fn load(&self) -> Result<usize, String> {
        if self.inner.memory_only.get() {
            return Ok(0);
        }
        let r = self.load_inner().await;
        if let Err(e) = &r {
            self.storage_failed(e, false);
        }
        r
    }

    async fn load_inner(&self) -> Result<usize, String> {
        let db = store::open_db().await?;
        let stored = store::load_ops(&db, &self.inner.profile).await;
        let floor = store::load_chain_floor(&db, &self.inner.profile, self.inner.node.id()).await;
        db.close();
        let stored = stored?;
        self.inner.chain_floor.set(floor?.unwrap_or(0));
        // Bulk path: decode everything, then verify in one WebCrypto batch
        // (strict-equivalent; see `webcrypto.rs`).
        let mut skipped = 0;
        let mut decoded = Vec::with_capacity(stored.len());
        for bytes in &stored {
            match SignedOp::decode(bytes) {
                Ok(op) => decoded.push(op),
                Err(e) => {
                    skipped += 1;
                    console_log!("a stored op is unreadable and was skipped: {e}");
                }
            }
        }
        let mut ops = Vec::with_capacity(decoded.len());
        for r in webcrypto::verify_ops(decoded).await {
            match r {
                Ok(v) => ops.push(v),
                Err(e) => {
                    skipped += 1;
                    console_log!("a stored op does not verify and was skipped: {e}");
                }
            }
        }
        let n = ops.len();
        let me = self.inner.node.id();
        let mut own: Vec<(u64, Vec<u8>)> = Vec::new();
        for v in &ops {
            let (author, seq) = (v.op().author, v.op().seq);
            if author == me {
                own.push((seq, v.bytes().to_vec()));
            } else {
                // Held already: catch-up must not fetch it again.
                self.inner.node.restore(GLOBAL_TOPIC, author, seq, v.bytes().to_vec());
            }
        }
        own.sort();
        self.inner.replica.borrow_mut().receive_batch(ops, wall_ms());
        {
            let mut s = self.inner.stats.borrow_mut();
            s.ops_loaded = n as u64;
            s.ops_load_skipped = skipped;
        }
        for (seq, bytes) in own {
            self.inner.node.publish(GLOBAL_TOPIC, seq, bytes);
        }
        self.inner.node.touch();
        Ok(n)
    }

    /// Signs and publishes an op, after checking it against the current
    /// state (an op that would be refused is not signed). Returns its id.
    pub fn act(&self, channel: &str, body: OpBody) -> Result<OpId, String> {
        let floor = self.inner.chain_floor.get();
        if floor > 0 {
            let me = self.inner.node.id();
            let have = self.inner.replica.borrow().store().head(&me).map_or(0, |h| h.0);
            if have < floor {
                return Err(format!(
                    "this identity was imported after signing {floor} ops elsewhere and only {have} of them have \
                     arrived here; it cannot sign until the rest arrive from peers (signing now would reuse a \
                     sequence number, which the network treats as equivocation)"
                ));
            }
        }
        let op = self
            .inner
            .replica
            .borrow_mut()
            .act(self.inner.node.identity(), channel, body, wall_ms())
            .map_err(|e| e.to_string())?;
        let id = op.id();
        {
            self.inner.seen_at.borrow_mut().insert(id, now_ms());
            self.inner.unsaved.borrow_mut().push((id.to_text(), op.bytes().to_vec()));
            self.inner.stats.borrow_mut().ops_created += 1;
        }
        self.schedule_save();
        self.inner.node.publish(GLOBAL_TOPIC, op.op().seq, op.bytes().to_vec());
        self.inner.node.touch();
        Ok(id)
    }

    /// The node's identity (for local decryption of tool secrets).
    pub fn node(&self) -> &Node {
        &self.inner.node
    }

    /// Runs `f` on the current state without copying it.
    pub fn with_state<T>(&self, f: impl FnOnce(&crate::core::state::State) -> T) -> T {
        f(self.inner.replica.borrow().state())
    }

    /// The whole replicated state.
    pub fn snapshot(&self) -> Snapshot {
        self.inner.replica.borrow().snapshot()
    }

    /// Hex SHA-256 of the canonical state: equal on replicas with equal ops.
    pub fn state_hash(&self) -> String {
        hex::encode(self.inner.replica.borrow().state_hash())
    }

    /// When op `id` was first stored here (ms since navigation start).
    pub fn seen_at(&self, id: &OpId) -> Option<f64> {
        self.inner.seen_at.borrow().get(id).copied()
    }

    pub fn stats(&self) -> LedgerStats {
        self.inner.stats.borrow().clone()
    }

    /// Releases held-back ops whose time has come and keeps deadlines
    /// (call every second or so).
    pub fn tick(&self) {
        if self.inner.replica.borrow_mut().tick(wall_ms()) > 0 {
            self.inner.node.touch();
        }
        self.keep_deadlines();
        self.ensure_key_published();
    }

    /// Publishes this node's X25519 key if the state lacks it (so tool
    /// secrets can be sealed to it). Tried at start and then every 30 s
    /// while missing: an imported identity may first have to wait for its
    /// own earlier ops, which may well contain the key already.
    pub fn ensure_key_published(&self) {
        let me = self.inner.node.id();
        if self.with_state(|st| st.tools.keys.contains_key(&me)) {
            return;
        }
        let now = wall_ms();
        let key = "key_publish".to_string();
        if self.inner.deadline_tries.borrow().get(&key).is_some_and(|t| now < t + 30_000) {
            return;
        }
        self.inner.deadline_tries.borrow_mut().insert(key, now);
        let x25519 = self.inner.node.identity().x25519_public();
        if let Err(e) = self.act(GLOBAL_CHANNEL, OpBody::KeyPublish { x25519 }) {
            console_log!("could not publish this node's X25519 key yet: {e}");
        }
    }

    /// Deadline keeper: publishes the ops that passed deadlines call for
    /// (auction close, proposal expiry, tool upkeep). Deadlines are decided
    /// by ops, never by each node's clock, and any node may publish them; a
    /// node waits 0-9 s past the deadline (from a hash of its id and the
    /// item) so that usually one node acts, and a second close is simply
    /// refused by the fold. Each item is tried at most every 30 s.
    fn keep_deadlines(&self) {
        use crate::core::governance::ProposalStatus;
        use crate::core::state::{AuctionStatus, TaskStatus};
        use crate::core::tools::ToolStatus;
        let now = wall_ms();
        let me = self.inner.node.id();
        let stagger = |item: &[u8]| -> u64 {
            use sha2::{Digest, Sha256};
            let h = Sha256::new().chain_update(me.0).chain_update(item).finalize();
            u64::from(h[0] % 10) * 1000
        };
        let due: Vec<(String, String, OpBody)> = self.with_state(|st| {
            let mut v = vec![];
            for t in st.tasks.values() {
                if let (TaskStatus::AuctionOpen, Some(a)) = (t.status, &t.auction)
                    && matches!(a.status, AuctionStatus::Open)
                    && now > a.terms.deadline_ms + stagger(&t.id.0)
                {
                    v.push((format!("auction {}", t.id), t.channel.clone(), OpBody::AuctionClose { task: t.id }));
                }
            }
            for p in st.gov.proposals.values() {
                if p.status == ProposalStatus::Open && now > p.deadline_ms + stagger(&p.id.0) {
                    v.push((
                        format!("proposal {}", p.id),
                        p.channel.clone(),
                        OpBody::ProposalExpire { proposal: p.id },
                    ));
                }
            }
            for tool in st.tools.tools.values() {
                if tool.status == ToolStatus::Active && now > tool.paid_until_ms + stagger(tool.tool_id.as_bytes()) {
                    v.push((
                        format!("tool {}", tool.tool_id),
                        tool.channel.clone(),
                        OpBody::ToolUpkeep { tool_id: tool.tool_id.clone() },
                    ));
                }
            }
            v
        });
        for (key, channel, body) in due {
            let recent = self.inner.deadline_tries.borrow().get(&key).is_some_and(|t| now < t + 30_000);
            if recent {
                continue;
            }
            self.inner.deadline_tries.borrow_mut().insert(key.clone(), now);
            match self.act(&channel, body) {
                Ok(_) => console_log!("deadline keeper: published the op for {key}"),
                Err(e) => console_log!("deadline keeper: {key}: {e}"),
            }
        }
    }
}
