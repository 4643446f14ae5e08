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
//! - **Durable before visible** (rule `durable_before_visible`): an own op
//!   goes to IndexedDB at once (no batching), in one transaction with the
//!   own-chain mark, and only once that transaction committed is it
//!   published and its promise resolved ([`Ledger::acknowledged`]). Ops
//!   received from peers are batched every 50 ms: a loss is refetched.
//! - **No seq reused** ([`ChainGuard`]): imported identities carry the chain
//!   head reached elsewhere, the mark says how far this node's own chain was
//!   committed, peers' version vectors say what they hold of it; until the
//!   guard is satisfied [`Ledger::act`] refuses to sign with a sentence
//!   saying what it waits for (`status().chain`).
//! - **Forks surface**: the router's linker reads each op's `prev`, so
//!   catch-up compares content, not only seqs (`docs/SYNAPSESUB.md`); a
//!   fork of this node's own chain is said plainly and stops signing.

use crate::chain_guard::{ChainGuard, GuardState, OwnMark, PeerView};
use crate::console_log;
use crate::core::genesis::Genesis;
use crate::core::op::{OpBody, OpId, SignedOp, VerifiedOp};
use crate::core::replica::{Received, Replica, Snapshot};
use crate::deadlines::DeadlineKeeper;
use crate::persistence::{self, StorageProblem};
use crate::pubsub::{self, GLOBAL_TOPIC, MsgId, Validation};
use crate::runtime::store;
use crate::runtime::transport::Node;
use crate::runtime::util::{now_ms, sleep_ms};
use crate::runtime::webcrypto;
use crate::save_queue::SaveQueue;
use crate::service::events::{Generations, touched};
use crate::service::{DomainSet, Intent, Signer};
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;
use web_sys::IdbDatabase;

mod agent;
mod finality;
mod health;
pub use agent::Draft;
pub use finality::{FinalityStatus, StorageStats};
pub use health::HealthReport;

/// A promise's settle functions, waiting for an own op to be committed.
type Waiter = (js_sys::Function, js_sys::Function);

/// Verified ops waiting for delivery; bounded so a flood cannot grow it.
const MAX_VERIFIED_WAITING: usize = 8192;

/// Every domain an op can change (all but the network), for batches whose
/// bodies are not looked at: a load from IndexedDB, held ops released.
const ALL_OP_DOMAINS: DomainSet = DomainSet::all_ops();

/// Counters for the UI and the benchmarks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LedgerStats {
    pub ops_created: u64,
    /// Ops delivered by SynapseSub (new or not).
    pub ops_received: u64,
    pub ops_invalid: u64,
    /// Ops dated too far in the future: not forwarded, not kept (rule
    /// `future_not_forwarded`).
    pub ops_future: u64,
    /// Ops restored from IndexedDB at start.
    pub ops_loaded: u64,
    /// Stored ops skipped at start because they no longer decode or verify.
    pub ops_load_skipped: u64,
    /// Ops from peers that this node did not hold yet (after the load): with
    /// `ops_loaded`, shows that a reload fetches only what it lacks.
    pub ops_fetched: u64,
    /// Ops from peers that this node already held (from the load or earlier).
    pub ops_refetched: u64,
    /// Own ops committed to IndexedDB and then published.
    pub ops_committed: u64,
    /// Own ops not published because another tab of the profile signed
    /// their seq first (`one_writer_per_profile`).
    pub ops_conflicted: u64,
    /// Failed IndexedDB operations (open, read, write), counted.
    pub store_errors: u64,
    /// The browser's words for the last failure.
    pub last_store_error: Option<String>,
    /// The current storage problem as a sentence for the user, or null when
    /// storage works.
    pub storage_error: Option<String>,
    /// This node's anonymous votes sent into the stem phase.
    pub anonymous_votes_sent: u64,
    /// Anonymous votes from peers on a proposal not known here yet: not
    /// forwarded now (catch-up brings them again).
    pub anonymous_votes_early: u64,
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
    /// Own ops signed but not yet committed (and so not yet published).
    pub uncommitted: usize,
}

/// Whether this node may sign, for `status()` and the UI.
#[derive(Debug, Clone, Serialize)]
pub struct ChainStatus {
    /// The guard's state (`ready`, `waiting`, `conflict`, `forked`).
    #[serde(flatten)]
    pub guard: GuardState,
    /// What the node waits for, or why it cannot sign; null when ready.
    pub sentence: Option<String>,
    /// This node's own chain head here (highest ready seq).
    pub head: u64,
}

struct Inner {
    node: Node,
    profile: String,
    replica: RefCell<Replica>,
    verified: RefCell<BTreeMap<MsgId, VerifiedOp>>,
    /// When each op was first stored here (ms since navigation start).
    seen_at: RefCell<BTreeMap<OpId, f64>>,
    /// Received ops waiting for their IndexedDB batch (`crate::save_queue`).
    unsaved: RefCell<SaveQueue<(String, Vec<u8>)>>,
    /// Own ops signed, waiting for their commit (then published), in seq order.
    outbox: RefCell<Vec<VerifiedOp>>,
    /// Own ops signed and not yet committed (outbox and in flight).
    uncommitted: RefCell<BTreeSet<OpId>>,
    /// Promises waiting for own ops' commits.
    waiters: RefCell<BTreeMap<OpId, Vec<Waiter>>>,
    flushing: Cell<bool>,
    /// The open database, kept between saves (opening costs a round trip).
    db: RefCell<Option<IdbDatabase>>,
    guard: RefCell<ChainGuard>,
    /// The current storage problem (cleared by a successful save).
    storage_problem: Cell<Option<StorageProblem>>,
    /// IndexedDB could not be opened at start: saves are not attempted.
    memory_only: Cell<bool>,
    /// An imported identity's chain head (see `store::import_identity`).
    chain_floor: Cell<u64>,
    stats: RefCell<LedgerStats>,
    /// Which deadline ops to publish, and when (`crate::deadlines`).
    keeper: RefCell<DeadlineKeeper>,
    /// A change counter per domain, bumped as ops apply (per-domain events).
    generations: RefCell<Generations>,
    /// The network's name, where its genesis came from, and why the
    /// served one was not used if it was not.
    genesis: RefCell<(String, &'static str, Option<String>)>,
    /// The network's genesis record (verifies fetched checkpoints).
    genesis_record: Genesis,
    /// Pruning, saving and serving final checkpoints (`finality.rs`).
    finality: finality::FinalityDuties,
    /// Equivocators found here and when (rule `evidence_by_rank` counts
    /// from then).
    forks_seen: RefCell<BTreeMap<crate::identity::NodeId, u64>>,
    /// The immune system's health duty.
    health: health::HealthDuty,
    /// The optional agent (off by default).
    agent: agent::AgentDuty,
}

/// `status().network`: which network this node is on.
#[derive(Clone, Debug, Serialize)]
pub struct NetworkStatus {
    /// The genesis hash (the network id), hex.
    pub genesis: String,
    pub name: String,
    /// `served` (by the rendezvous) or `default`.
    pub source: &'static str,
    /// Why the served genesis was not used, if it was not.
    pub problem: Option<String>,
    /// The last peer refused for being on another network, with why.
    pub refused_peer: Option<String>,
    pub rules: crate::core::rules::Rules,
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

/// At most this many stored ops are verified in wasm at start rather than
/// by WebCrypto (see [`Ledger::load`]).
const FEW_OPS_TO_VERIFY_HERE: usize = 16;

impl Ledger {
    /// Plugs a replica of the network `genesis` names into `node`'s
    /// SynapseSub. Call [`Ledger::load`] next.
    pub fn attach(node: &Node, profile: &str, genesis: &Genesis) -> Ledger {
        let ledger = Ledger {
            inner: Rc::new(Inner {
                node: node.clone(),
                profile: profile.to_string(),
                replica: RefCell::new(Replica::with_genesis(genesis)),
                verified: RefCell::new(BTreeMap::new()),
                seen_at: RefCell::new(BTreeMap::new()),
                unsaved: RefCell::new(SaveQueue::default()),
                outbox: RefCell::new(vec![]),
                uncommitted: RefCell::new(BTreeSet::new()),
                waiters: RefCell::new(BTreeMap::new()),
                flushing: Cell::new(false),
                db: RefCell::new(None),
                guard: RefCell::new(ChainGuard::ready()),
                storage_problem: Cell::new(None),
                memory_only: Cell::new(false),
                chain_floor: Cell::new(0),
                stats: RefCell::new(LedgerStats::default()),
                keeper: RefCell::new(DeadlineKeeper::new(node.id())),
                generations: RefCell::new(Generations::default()),
                genesis: RefCell::new((genesis.name.clone(), "default", None)),
                genesis_record: genesis.clone(),
                finality: finality::FinalityDuties::default(),
                forks_seen: RefCell::new(BTreeMap::new()),
                health: health::HealthDuty::default(),
                agent: agent::AgentDuty::default(),
            }),
        };
        ledger.hook_snapshots();
        // The node's hooks hold the ledger weakly: the ledger holds the node,
        // and a strong handle back would be a cycle that is never freed.
        let w = Rc::downgrade(&ledger.inner);
        node.set_validator(Box::new(move |m: &pubsub::Message| match w.upgrade() {
            Some(inner) => Ledger { inner }.validate(m),
            None => Validation::Ignore,
        }));
        let w = Rc::downgrade(&ledger.inner);
        node.set_deliver_hook(Box::new(move |_, d| {
            if let Some(inner) = w.upgrade() {
                Ledger { inner }.on_delivery(d)
            }
        }));
        // Each op names its predecessor: the router compares content.
        node.set_linker(Box::new(|m: &pubsub::Message| {
            SignedOp::decode(&m.payload).ok().map(|op| MsgId(op.op().prev.0))
        }));
        ledger
    }

    /// The open database (opened on first use and kept).
    async fn db(&self) -> Result<IdbDatabase, String> {
        if let Some(db) = self.inner.db.borrow().clone() {
            return Ok(db);
        }
        let db = store::open_db().await?;
        *self.inner.db.borrow_mut() = Some(db.clone());
        Ok(db)
    }

    /// Forgets the kept database after a failure (it may have been closed).
    fn drop_db(&self) {
        if let Some(db) = self.inner.db.borrow_mut().take() {
            db.close();
        }
    }

    /// SynapseSub validation of one op: decoded, signature-checked, and its
    /// SynapseSub origin and seq must be the op's author and seq.
    fn validate(&self, m: &pubsub::Message) -> Validation {
        if m.topic != GLOBAL_TOPIC {
            return Validation::Ignore;
        }
        let verified = SignedOp::decode(&m.payload).and_then(SignedOp::verify);
        match verified {
            // Rule `future_not_forwarded`: an op dated too far ahead of our
            // clock is neither forwarded nor kept; catch-up fetches it again
            // once its time has come (the router forgets seen ids).
            Ok(v) if v.op().hlc.too_far_ahead(wall_ms()) => {
                self.inner.stats.borrow_mut().ops_future += 1;
                Validation::Ignore
            }
            Ok(v) if v.op().author == m.origin && v.op().seq == m.seq => {
                // Rule `anonymous_vote`: the ring signature is checked before
                // the vote is forwarded, so a forged one costs its sender
                // (and one verification here), not the whole network.
                if let Some(verdict) = self.check_anonymous(&v) {
                    return verdict;
                }
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

    /// For an anonymous vote: `Reject` when its ring signature or image is
    /// refused, `Ignore` when its proposal is not known here yet (catch-up
    /// brings it again later); `None` to go on (valid, or not such a vote).
    fn check_anonymous(&self, v: &VerifiedOp) -> Option<Validation> {
        let OpBody::AnonymousVote { proposal, yes, ring, signature } = &v.op().body else { return None };
        let op = v.op();
        let r = self.with_state(|st| {
            st.gov.proposals.get(proposal).map(|p| {
                p.ballot.check_anonymous(v.id().0, &op.author, &proposal.0, *yes, *ring, signature).map(|_| ())
            })
        });
        match r {
            None => {
                self.inner.stats.borrow_mut().anonymous_votes_early += 1;
                Some(Validation::Ignore)
            }
            // A second vote of one member is a valid op the fold refuses: it
            // is kept and forwarded like any refused op (every node must
            // see the same ops), but a bad signature is not.
            Some(Err(crate::core::reject::Reject::AlreadyVoted)) | Some(Ok(())) => None,
            Some(Err(e)) => {
                self.count_invalid(&e.to_string());
                Some(Validation::Reject)
            }
        }
    }

    /// Rule `anonymous_vote`: votes on `proposal` without naming this
    /// identity: the vote is carried by a fresh key's only op and sent
    /// through the stem phase (rule `stem_before_fluff`). It is folded here
    /// only when it comes back by gossip, like anyone's. Returns its op id.
    pub fn vote_anonymously(&self, proposal: OpId, yes: bool) -> Result<OpId, String> {
        // Alone, this node would be the first to hold the vote, and the
        // first peer to sync with it would learn whose it is.
        if self.inner.node.peers().is_empty() {
            return Err("an anonymous vote needs a connection to at least one peer first (it is relayed through \
                        peers so that nobody learns it came from here)"
                .into());
        }
        let op = {
            let replica = self.inner.replica.borrow();
            crate::service::governance::anonymous_vote(
                replica.state(),
                self.inner.node.identity(),
                proposal,
                yes,
                wall_ms(),
                replica.signs_refused_ops(),
                &mut rand_core::OsRng,
            )
        }?;
        let id = op.id();
        self.inner.node.stem(GLOBAL_TOPIC, op.op().author, 1, op.bytes().to_vec());
        self.inner.stats.borrow_mut().anonymous_votes_sent += 1;
        self.inner.node.touch();
        Ok(id)
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
        let save_at = {
            let mut seen = self.inner.seen_at.borrow_mut();
            for v in &ops {
                seen.entry(v.id()).or_insert(now);
                if v.op().author != self.inner.node.id() {
                    self.health_arrival(v.op().hlc.ms);
                }
            }
            self.inner.stats.borrow_mut().ops_received += ops.len() as u64;
            let items = ops.iter().map(|v| (v.id().to_text(), v.bytes().to_vec()));
            self.inner.unsaved.borrow_mut().push(items, now as u64)
        };
        // An op that sorts before ops already folded makes the fold run
        // again from there, which may change the outcome of later ops of any
        // domain: then every domain counts as changed.
        let latest = self.inner.replica.borrow().clock();
        let domains = if ops.iter().any(|v| v.op().hlc <= latest) {
            ALL_OP_DOMAINS
        } else {
            self.with_state(|st| {
                ops.iter().fold(DomainSet::EMPTY, |d, v| d.union(touched(st, &v.op().author, &v.op().body)))
            })
        };
        let results = self.inner.replica.borrow_mut().receive_batch(ops, wall_ms());
        self.bump(domains);
        {
            let mut s = self.inner.stats.borrow_mut();
            for r in results {
                match r {
                    Received::Stored | Received::Held => s.ops_fetched += 1,
                    Received::Duplicate => s.ops_refetched += 1,
                    // Too far ahead of its author's chain here: the router
                    // holds it and will not deliver it again, so it is
                    // re-read from the router once the chain moved.
                    Received::Dropped => self.inner.finality.refeed_due.set(true),
                }
            }
        }
        self.schedule_save(save_at);
        self.inner.node.touch();
    }

    /// Runs a save of the received ops at `at` (ms since navigation start),
    /// when the [`SaveQueue`] asked for one.
    fn schedule_save(&self, at: Option<u64>) {
        if self.inner.memory_only.get() {
            self.inner.unsaved.borrow_mut().clear(); // nothing can be saved
            return;
        }
        let Some(at) = at else { return };
        let l = self.clone();
        spawn_local(async move {
            sleep_ms(at.saturating_sub(now_ms() as u64) as u32).await;
            let batch = l.inner.unsaved.borrow_mut().take();
            if batch.is_empty() {
                return; // taken by an own-op save
            }
            let r = match l.db().await {
                Ok(db) => store::save_ops(&db, &l.inner.profile, &batch).await,
                Err(e) => Err(e),
            };
            if r.is_err() {
                l.drop_db();
            }
            match r {
                Ok(()) => {
                    if l.inner.storage_problem.get().is_some_and(|p| p != StorageProblem::ReadFailed) {
                        l.clear_storage_error();
                    }
                }
                Err(e) => {
                    console_log!("could not save {} ops: {e}", batch.len());
                    l.storage_failed(&e, true);
                    let retry = l.inner.unsaved.borrow_mut().failed(batch, now_ms() as u64);
                    l.schedule_save(retry);
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
    /// See [`Replica::sign_refused_ops_for_tests`].
    pub fn sign_refused_ops_for_tests(&self) {
        self.inner.replica.borrow_mut().sign_refused_ops_for_tests();
    }

    /// Records where the genesis came from (for `status().network`).
    pub fn set_genesis_source(&self, source: &'static str, problem: Option<String>) {
        let mut g = self.inner.genesis.borrow_mut();
        g.1 = source;
        g.2 = problem;
    }

    /// Which network this node is on, and the last peer refused for being
    /// on another.
    pub fn network_status(&self) -> NetworkStatus {
        let (name, source, problem) = self.inner.genesis.borrow().clone();
        let (genesis, rules) = {
            let r = self.inner.replica.borrow();
            (r.state().genesis.to_hex(), r.state().params.rules)
        };
        NetworkStatus { genesis, name, source, problem, refused_peer: self.inner.node.last_genesis_mismatch(), rules }
    }

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
            uncommitted: self.inner.uncommitted.borrow().len(),
        }
    }

    /// Whether this node may sign, and if not why.
    pub fn chain_status(&self) -> ChainStatus {
        self.refresh_guard();
        let g = self.inner.guard.borrow();
        ChainStatus { guard: g.state(), sentence: g.sentence(), head: self.own_head().map_or(0, |h| h.0) }
    }

    /// Feeds the guard what the replica and the router now show: the own
    /// chain head, peers' views of it, and a fork of it.
    fn refresh_guard(&self) {
        let me = self.inner.node.id();
        let (head, fork) = {
            let r = self.inner.replica.borrow();
            // Checked first so the common case (no fork) builds no list.
            let fork = r
                .store()
                .is_equivocator(&me)
                .then(|| r.equivocators().into_iter().find(|e| e.author == me).map(|e| e.seq))
                .flatten();
            (r.store().head(&me).map_or(0, |h| h.0), fork)
        };
        let views: Vec<PeerView> = self.inner.node.with_router(|r| {
            let holds = r.store().contiguous(GLOBAL_TOPIC, &me);
            let awaiting = r.awaiting(GLOBAL_TOPIC, &me);
            r.peers()
                .into_iter()
                .filter(|p| r.peer_summarised(GLOBAL_TOPIC, p))
                .map(|p| PeerView { claims: r.peer_claim(GLOBAL_TOPIC, &p, &me).unwrap_or(0), holds, awaiting })
                .collect()
        });
        let mut g = self.inner.guard.borrow_mut();
        let before = g.state();
        if let Some(seq) = fork
            && !matches!(before, GuardState::Forked { .. })
        {
            console_log!("this node's own op chain forks at #{seq}: it signed two different ops there");
            g.forked(seq);
        }
        g.own_head(head);
        for v in views {
            g.peer_view(v);
        }
        g.tick(wall_ms());
        if g.state() != before {
            drop(g);
            // Told after this call returns: reads (`chain_status`, which
            // change listeners call) must not run the listeners again from
            // inside themselves.
            let node = self.inner.node.clone();
            spawn_local(async move { node.touch() });
        }
    }

    /// A promise that resolves with the op's id once the own op `id` is
    /// committed to IndexedDB and published (at once if it already is), and
    /// rejects if it cannot be (another tab signed its seq, or storage fails;
    /// an op that storage refused is still retried and published if storage
    /// recovers before the tab closes).
    pub fn acknowledged(&self, id: OpId) -> js_sys::Promise {
        if !self.inner.uncommitted.borrow().contains(&id) {
            return js_sys::Promise::resolve(&JsValue::from_str(&id.to_text()));
        }
        let inner = self.inner.clone();
        js_sys::Promise::new(&mut move |resolve, reject| {
            inner.waiters.borrow_mut().entry(id).or_default().push((resolve, reject));
        })
    }

    fn settle_waiters(&self, id: OpId, r: Result<(), &str>) {
        let Some(ws) = self.inner.waiters.borrow_mut().remove(&id) else { return };
        for (resolve, reject) in ws {
            let _ = match r {
                Ok(()) => resolve.call1(&JsValue::NULL, &JsValue::from_str(&id.to_text())),
                Err(e) => reject.call1(&JsValue::NULL, &js_sys::Error::new(e)),
            };
        }
    }

    /// Rule `durable_before_visible`: commits the own ops in the outbox (with
    /// any received ops waiting for their batch) and the mark in one
    /// transaction, then publishes them in seq order and resolves their
    /// promises. One flush runs at a time; ops signed meanwhile go in the
    /// next transaction.
    fn flush(&self) {
        if self.inner.flushing.replace(true) {
            return;
        }
        let l = self.clone();
        spawn_local(async move {
            loop {
                let batch = std::mem::take(&mut *l.inner.outbox.borrow_mut());
                let (Some(first), Some(last)) = (batch.first(), batch.last()) else { break };
                let (first_seq, mark) = (first.op().seq, OwnMark { seq: last.op().seq, op: last.id() });
                let others = l.inner.unsaved.borrow_mut().take();
                let own: Vec<(String, Vec<u8>)> =
                    batch.iter().map(|v| (v.id().to_text(), v.bytes().to_vec())).collect();
                let me = l.inner.node.id();
                let r = match l.db().await {
                    Ok(db) => store::save_own_ops(&db, &l.inner.profile, me, &own, first_seq, mark, &others).await,
                    Err(e) => Err(store::SaveOwnError::Storage(e)),
                };
                match r {
                    Ok(()) => {
                        if l.inner.storage_problem.get().is_some_and(|p| p != StorageProblem::ReadFailed) {
                            l.clear_storage_error();
                        }
                        for v in &batch {
                            l.inner.uncommitted.borrow_mut().remove(&v.id());
                            l.inner.node.publish(GLOBAL_TOPIC, v.op().seq, v.bytes().to_vec());
                            l.inner.stats.borrow_mut().ops_committed += 1;
                            l.settle_waiters(v.id(), Ok(()));
                        }
                    }
                    Err(store::SaveOwnError::Conflict { seq }) => {
                        console_log!("another tab of this profile signed #{seq} first; this tab stops signing");
                        l.inner.guard.borrow_mut().conflict(seq);
                        let retry = l.inner.unsaved.borrow_mut().failed(others, now_ms() as u64);
                        let why = l.inner.guard.borrow().sentence().unwrap_or_default();
                        let mut rest = batch;
                        rest.append(&mut l.inner.outbox.borrow_mut());
                        for v in rest {
                            l.inner.uncommitted.borrow_mut().remove(&v.id());
                            l.inner.stats.borrow_mut().ops_conflicted += 1;
                            l.settle_waiters(v.id(), Err(&why));
                        }
                        l.schedule_save(retry.map(|_| now_ms() as u64));
                        break;
                    }
                    Err(store::SaveOwnError::Storage(e)) => {
                        console_log!("could not commit {} own ops: {e}", batch.len());
                        l.drop_db();
                        l.storage_failed(&e, true);
                        l.inner.unsaved.borrow_mut().put_back(others);
                        let why = format!(
                            "not saved: {}; the op is kept in memory and published once storage works, and is \
                             lost if the tab closes first",
                            l.storage_error().unwrap_or(e)
                        );
                        for v in &batch {
                            l.settle_waiters(v.id(), Err(&why));
                        }
                        // Back in front of anything signed meanwhile; retried.
                        {
                            let mut o = l.inner.outbox.borrow_mut();
                            let later = std::mem::replace(&mut *o, batch);
                            o.extend(later);
                        }
                        sleep_ms(5000).await;
                    }
                }
            }
            l.inner.flushing.set(false);
            l.inner.node.touch();
        });
    }

    /// This node's own chain head here, `(seq, op id)` (includes ops not
    /// saved yet), for the identity file.
    pub fn own_head(&self) -> Option<(u64, OpId)> {
        let me = self.inner.node.id();
        self.inner.replica.borrow().store().head(&me).map(|h| (h.0, h.1))
    }

    /// This node's identity file now (`persistence::encode_identity_file`):
    /// its keys and its own chain head here (the import floor while an
    /// imported identity has not caught up). `synapse.exportIdentity()` and
    /// the app's download both use it. The text holds the secret keys.
    pub fn identity_file(&self, profile: &str) -> String {
        let floor = self.chain_floor();
        let head = match self.own_head() {
            Some((seq, op)) if seq >= floor => Some(crate::persistence::ChainHead { seq, op }),
            _ if floor > 0 => Some(crate::persistence::ChainHead { seq: floor, op: OpId::ZERO }),
            _ => None,
        };
        crate::persistence::encode_identity_file(self.inner.node.identity(), profile, wall_ms(), head)
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
        // Rule `reload_from_checkpoint`: start from the saved final
        // checkpoint; only the ops after it are verified and folded.
        let checkpoint = store::load_checkpoint(&db, &self.inner.profile).await;
        crate::runtime::util::mark(crate::runtime::util::Stage::LoadCheckpointRead);
        // The ops are read by the browser while the checkpoint is decoded.
        let pending = store::begin_load_ops(&db, &self.inner.profile);
        match checkpoint {
            Ok(Some((record, snapshot))) => {
                // Hashed by the browser's native SHA-256: the wasm one runs
                // in the baseline tier this early and is ~10× slower.
                let digest = webcrypto::sha256(&snapshot).await;
                self.start_from_saved(&record, &snapshot, digest);
                crate::runtime::util::mark(crate::runtime::util::Stage::LoadCheckpointStarted);
            }
            Ok(None) => {}
            Err(e) => self.saved_checkpoint_refused(format!("could not read the saved checkpoint: {e}")),
        }
        let stored = match pending {
            Ok(p) => p.finish().await,
            Err(e) => Err(e),
        };
        let floor = store::load_chain_floor(&db, &self.inner.profile, self.inner.node.id()).await;
        let mark = store::load_mark(&db, &self.inner.profile, self.inner.node.id()).await;
        *self.inner.db.borrow_mut() = Some(db);
        let stored = stored?;
        crate::runtime::util::mark(crate::runtime::util::Stage::LoadOpsRead);
        let (floor, mark) = (floor?.unwrap_or(0), mark?);
        self.inner.chain_floor.set(floor);
        // Bulk path: decode everything, then verify in one WebCrypto batch
        // (strict-equivalent; see `webcrypto.rs`).
        let mut skipped = 0;
        let mut covered = 0;
        let mut decoded = Vec::with_capacity(stored.len());
        for bytes in &stored {
            match SignedOp::decode(bytes) {
                Ok(op) if self.inner.replica.borrow().is_final(&op.op().author, op.op().seq) => {
                    covered += 1;
                    if self.inner.finality.archive.get() {
                        // An archive serves the history it keeps (peers
                        // verify what they fetch); it is not folded again.
                        self.inner.node.restore(GLOBAL_TOPIC, op.op().author, op.op().seq, bytes.clone());
                    } else {
                        self.inner.finality.pending_prune.borrow_mut().push(op.id().to_text());
                    }
                }
                Ok(op) => decoded.push(op),
                Err(e) => {
                    skipped += 1;
                    console_log!("a stored op is unreadable and was skipped: {e}");
                }
            }
        }
        let mut ops = Vec::with_capacity(decoded.len());
        // A few ops (those after a saved checkpoint) are verified here: the
        // WebCrypto path first runs a self-test and imports keys, which
        // costs more than it saves below a few dozen signatures.
        let results = if decoded.len() <= FEW_OPS_TO_VERIFY_HERE {
            decoded.into_iter().map(|op| op.verify()).collect()
        } else {
            webcrypto::verify_ops(decoded).await
        };
        for r in results {
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
        crate::runtime::util::mark(crate::runtime::util::Stage::LoadOpsFolded);
        self.bump(ALL_OP_DOMAINS);
        let head = self.own_head().map_or(0, |h| h.0);
        let guard = ChainGuard::at_start(mark, floor, head, wall_ms());
        if let Some(why) = guard.sentence() {
            console_log!("{why}");
        }
        *self.inner.guard.borrow_mut() = guard;
        {
            let mut s = self.inner.stats.borrow_mut();
            s.ops_loaded = n as u64;
            s.ops_load_skipped = skipped;
        }
        self.inner.finality.stats.borrow_mut().ops_skipped_at_load = covered;
        self.maybe_join_from_snapshot(stored.len());
        for (seq, bytes) in own {
            self.inner.node.publish(GLOBAL_TOPIC, seq, bytes);
        }
        self.inner.node.touch();
        Ok(n)
    }

    /// Starts the replica from the checkpoint saved in IndexedDB (checked as
    /// a fetched one would be; a bad one is ignored and the history
    /// replayed).
    /// A saved checkpoint that could not be used: logged, shown in
    /// `status().finality.storage.last_refusal`, and the stored history is
    /// replayed instead.
    fn saved_checkpoint_refused(&self, why: String) {
        console_log!("{why} (replaying the stored history)");
        self.inner.finality.stats.borrow_mut().last_refusal = Some(why);
    }

    /// `digest` is the snapshot's SHA-256 if the caller computed it (with
    /// WebCrypto); otherwise it is computed here.
    fn start_from_saved(&self, record: &[u8], snapshot: &[u8], digest: Option<[u8; 32]>) {
        let rec = match crate::core::snapshot::Record::decode(record) {
            Ok(r) => r,
            Err(e) => return self.saved_checkpoint_refused(format!("the saved checkpoint is unreadable: {e}")),
        };
        let digest = digest.unwrap_or_else(|| crate::core::snapshot::digest(snapshot));
        match crate::core::snapshot::verify_digested(&self.inner.genesis_record, &rec, snapshot, digest) {
            Ok((f, state)) => {
                let epoch = f.epoch;
                let every = crate::core::fold::CHECKPOINT_EVERY;
                *self.inner.replica.borrow_mut() = Replica::from_checkpoint(f, state, rec.certificate, every);
                let fs = &self.inner.finality;
                fs.last_final.set(Some(epoch));
                let mut st = fs.stats.borrow_mut();
                st.loaded_epoch = Some(epoch);
                st.saved_epoch = Some(epoch);
                st.checkpoint_bytes = (record.len() + snapshot.len()) as u64;
                drop(st);
                for (origin, seq, head) in self.inner.replica.borrow().prune_floor() {
                    if !fs.archive.get() {
                        self.inner.node.floor(GLOBAL_TOPIC, origin, seq, pubsub::MsgId(head.0));
                    }
                }
                let snap = std::sync::Arc::new(snapshot.to_vec());
                fs.server.borrow_mut().set(crate::snapshot_sync::Served::new(epoch, record, snap));
            }
            Err(e) => self.saved_checkpoint_refused(format!("the saved checkpoint does not verify: {e}")),
        }
    }

    /// Signs an op, after checking it against the current state (an op that
    /// would be refused is not signed) and that signing is safe now
    /// ([`ChainGuard`]). The op is folded here at once, and published once
    /// committed to IndexedDB ([`Ledger::acknowledged`] waits for that).
    /// Returns its id.
    pub fn act(&self, channel: &str, body: OpBody) -> Result<OpId, String> {
        self.refresh_guard();
        self.inner.guard.borrow().check()?;
        let me = self.inner.node.id();
        let domains = self.with_state(|st| touched(st, &me, &body));
        let op = self
            .inner
            .replica
            .borrow_mut()
            .act(self.inner.node.identity(), channel, body, wall_ms())
            .map_err(|e| e.to_string())?;
        let id = op.id();
        self.bump(domains);
        self.inner.seen_at.borrow_mut().insert(id, now_ms());
        self.inner.stats.borrow_mut().ops_created += 1;
        if self.inner.memory_only.get() {
            // Nothing can be stored, and the identity is temporary (a new
            // one next time), so no seq can be reused: publish at once.
            self.inner.node.publish(GLOBAL_TOPIC, op.op().seq, op.bytes().to_vec());
        } else {
            self.inner.uncommitted.borrow_mut().insert(id);
            self.inner.outbox.borrow_mut().push(op);
            self.flush();
        }
        self.inner.node.touch();
        Ok(id)
    }

    /// Whether own op `id` is signed but not yet committed (so not yet
    /// published).
    pub fn is_uncommitted(&self, id: &OpId) -> bool {
        self.inner.uncommitted.borrow().contains(id)
    }

    /// The node's identity (for local decryption of tool secrets).
    pub fn node(&self) -> &Node {
        &self.inner.node
    }

    /// Runs `f` on the current state without copying it.
    pub fn with_state<T>(&self, f: impl FnOnce(&crate::core::state::State) -> T) -> T {
        f(self.inner.replica.borrow().state())
    }

    /// The per-domain change counters: a listener compares them with the
    /// copy it last saw ([`Generations::since`]) to learn what changed.
    pub fn generations(&self) -> Generations {
        *self.inner.generations.borrow()
    }

    fn bump(&self, domains: DomainSet) {
        self.inner.generations.borrow_mut().bump(domains);
    }

    /// The whole replicated state.
    pub fn snapshot(&self) -> Snapshot {
        self.inner.replica.borrow().snapshot()
    }

    /// Hex SHA-256 of the canonical state: equal on replicas with equal ops.
    pub fn state_hash(&self) -> String {
        hex::encode(self.inner.replica.borrow().state_hash())
    }

    /// Whether op `id` is held here (stored or held back), whatever its outcome.
    pub fn has_op(&self, id: &OpId) -> bool {
        self.inner.replica.borrow().contains(id)
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
            // Held-back ops of any kind were released.
            self.bump(ALL_OP_DOMAINS);
            self.inner.node.touch();
        }
        // A new final checkpoint (late ops may have left the fold), and a
        // checkpoint fetch if one runs.
        self.finality_tick();
        self.sign_checkpoint();
        self.keep_deadlines();
        self.ensure_key_published();
        self.ensure_voting_key_published();
        self.publish_evidence();
        self.health_tick();
        self.agent_tick();
        self.grant_tool_shares();
    }

    /// Rule `tool_grant`: as a custodian, hands this node's share of a
    /// tool's key to the assignee of each in-progress task that needs it.
    fn grant_tool_shares(&self) {
        let due = {
            let replica = self.inner.replica.borrow();
            let identity = self.inner.node.identity();
            crate::service::tools::grants_due(replica.state(), identity, wall_ms(), &mut rand_core::OsRng)
        };
        for intent in due {
            if let Err(e) = self.sign(intent) {
                console_log!("could not grant a tool share yet: {e}");
                return;
            }
        }
    }

    /// Publishes this node's X25519 key if the state lacks it (so tool
    /// secrets can be sealed to it). Tried at start and then every 30 s
    /// while missing: an imported identity may first have to wait for its
    /// own earlier ops, which may well contain the key already.
    pub fn ensure_key_published(&self) {
        let now = wall_ms();
        let due = {
            let replica = self.inner.replica.borrow();
            self.inner.keeper.borrow_mut().key_publish_due(replica.state(), now)
        };
        if !due {
            return;
        }
        if let Err(e) = self.sign(crate::service::tools::publish_key(self.inner.node.identity())) {
            console_log!("could not publish this node's X25519 key yet: {e}");
        }
    }

    /// Rule `equivocation_evidence`: publishes proof of each equivocation
    /// held here that the state has not penalized yet, in rank order
    /// (rule `evidence_by_rank`).
    fn publish_evidence(&self) {
        let now = wall_ms();
        let due = {
            let replica = self.inner.replica.borrow();
            let proofs = replica.equivocation_proofs();
            if proofs.is_empty() {
                return;
            }
            let mut seen = self.inner.forks_seen.borrow_mut();
            seen.retain(|k, _| proofs.iter().any(|(o, _, _)| o == k));
            let found: Vec<_> = proofs
                .into_iter()
                .map(|(o, a, b)| {
                    let at = *seen.entry(o).or_insert(now);
                    (o, a.bytes().to_vec(), b.bytes().to_vec(), at)
                })
                .collect();
            self.inner.keeper.borrow_mut().evidence_due(replica.state(), &found, now)
        };
        for d in due {
            match self.act(&d.channel, d.body) {
                Ok(_) => console_log!("immune system: published the evidence for {}", d.key),
                Err(e) => console_log!("immune system: {}: {e}", d.key),
            }
        }
    }

    /// Tests only (`?debug_unchecked=1` pages): signs a second op at this
    /// node's head seq, as a modified client that equivocates would, folds
    /// it here and publishes it. Returns its id.
    pub fn equivocate_for_tests(&self) -> Result<OpId, String> {
        if !self.inner.replica.borrow().signs_refused_ops() {
            return Err("only a debug_unchecked page may equivocate".into());
        }
        let (seq, head) = self.own_head().ok_or("this node has signed no op yet")?;
        let prev = {
            let replica = self.inner.replica.borrow();
            let op = replica.store().get(&head).ok_or("the head op is not held here")?;
            op.op().prev
        };
        let hlc = crate::core::hlc::Hlc::new(wall_ms(), 0);
        let body = OpBody::SkillsSet { skills: vec!["equivocation".into()] };
        let op = SignedOp::create(self.inner.node.identity(), seq, prev, hlc, crate::core::op::GLOBAL_CHANNEL, body)
            .map_err(|e| e.to_string())?;
        let id = op.id();
        self.inner.node.publish(GLOBAL_TOPIC, seq, op.bytes().to_vec());
        self.ingest(vec![op]);
        Ok(id)
    }

    /// Rule `voting_key_publish`: publishes this node's voting key if the
    /// state lacks it, so that proposals opened later include it in their
    /// anonymous rings. Tried like the X25519 key (every 30 s while missing).
    pub fn ensure_voting_key_published(&self) {
        let now = wall_ms();
        let me = self.inner.node.id();
        let due = {
            let replica = self.inner.replica.borrow();
            crate::service::governance::voting_key_missing(replica.state(), &me)
                && self.inner.keeper.borrow_mut().voting_key_due(now)
        };
        if !due {
            return;
        }
        let r = crate::service::governance::publish_voting_key(self.inner.node.identity()).and_then(|i| self.sign(i));
        if let Err(e) = r {
            console_log!("could not publish this node's voting key yet: {e}");
        }
    }

    /// Rule `checkpoint_vote`: as a validator, signs each due epoch's
    /// checkpoint.
    fn sign_checkpoint(&self) {
        let me = self.inner.node.id();
        let due = self.inner.replica.borrow_mut().checkpoint_due(&me, wall_ms());
        if let Some(body) = due
            && let Err(e) = self.act(crate::core::op::GLOBAL_CHANNEL, body)
        {
            console_log!("could not sign this epoch's checkpoint: {e}");
        }
    }

    /// Publishes the ops that passed deadlines call for (auction close,
    /// proposal expiry, tool upkeep), as the [`DeadlineKeeper`] decides.
    fn keep_deadlines(&self) {
        let due = {
            let replica = self.inner.replica.borrow();
            let now = wall_ms();
            self.inner.keeper.borrow_mut().due(replica.state(), now, replica.settled_until(now))
        };
        for d in due {
            match self.act(&d.channel, d.body) {
                Ok(_) => console_log!("deadline keeper: published the op for {}", d.key),
                Err(e) => console_log!("deadline keeper: {}: {e}", d.key),
            }
        }
    }
}

/// The service's commands sign through the ledger (`ledger.run(|st| …)`),
/// the same way for the JS API and the UI.
impl Signer for Ledger {
    fn read<T>(&self, f: impl FnOnce(&crate::core::state::State) -> T) -> T {
        self.with_state(f)
    }

    fn sign(&self, intent: Intent) -> Result<OpId, String> {
        self.act(&intent.channel, intent.body)
    }

    fn identity(&self) -> &crate::identity::Identity {
        self.inner.node.identity()
    }
}
