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

use crate::console_log;
use crate::core::op::{OpBody, OpId, SignedOp, VerifiedOp};
use crate::core::replica::{Replica, Snapshot};
use crate::pubsub::{self, GLOBAL_TOPIC, MsgId, Validation};
use crate::runtime::store;
use crate::runtime::transport::Node;
use crate::runtime::util::{now_ms, sleep_ms};
use crate::runtime::webcrypto;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use wasm_bindgen_futures::spawn_local;

/// Verified ops waiting for delivery; bounded so a flood cannot grow it.
const MAX_VERIFIED_WAITING: usize = 8192;

/// Counters for the UI and the benchmarks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LedgerStats {
    pub ops_created: u64,
    pub ops_received: u64,
    pub ops_invalid: u64,
    pub ops_loaded: u64,
    pub store_errors: u64,
    pub last_store_error: Option<String>,
}

struct Inner {
    node: Node,
    profile: String,
    replica: RefCell<Replica>,
    verified: RefCell<BTreeMap<MsgId, VerifiedOp>>,
    /// When each op was first stored here (ms since navigation start).
    seen_at: RefCell<BTreeMap<OpId, f64>>,
    unsaved: RefCell<Vec<(String, Vec<u8>)>>,
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
        self.inner.replica.borrow_mut().receive_batch(ops, wall_ms());
        self.schedule_save();
        self.inner.node.touch();
    }

    fn schedule_save(&self) {
        if self.inner.unsaved.borrow().len() != 1 {
            return; // a save is already scheduled
        }
        let l = self.clone();
        spawn_local(async move {
            sleep_ms(50).await; // batch a burst of ops into one transaction
            let batch = std::mem::take(&mut *l.inner.unsaved.borrow_mut());
            let r = match store::open_db().await {
                Ok(db) => {
                    let r = store::save_ops(&db, &l.inner.profile, &batch).await;
                    db.close();
                    r
                }
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                let mut s = l.inner.stats.borrow_mut();
                s.store_errors += 1;
                s.last_store_error = Some(e.clone());
                console_log!("could not save {} ops: {e}", batch.len());
            }
        });
    }

    /// Folds the ops stored in IndexedDB and re-publishes this node's own.
    pub async fn load(&self) -> Result<usize, String> {
        let db = store::open_db().await?;
        let stored = store::load_ops(&db, &self.inner.profile).await;
        db.close();
        let stored = stored?;
        // Bulk path: decode everything, then verify in one WebCrypto batch
        // (strict-equivalent; see `webcrypto.rs`).
        let mut decoded = Vec::with_capacity(stored.len());
        for bytes in &stored {
            match SignedOp::decode(bytes) {
                Ok(op) => decoded.push(op),
                Err(e) => console_log!("a stored op is unreadable and was skipped: {e}"),
            }
        }
        let mut ops = Vec::with_capacity(decoded.len());
        for r in webcrypto::verify_ops(decoded).await {
            match r {
                Ok(v) => ops.push(v),
                Err(e) => console_log!("a stored op does not verify and was skipped: {e}"),
            }
        }
        let n = ops.len();
        let me = self.inner.node.id();
        let mut own: Vec<(u64, Vec<u8>)> =
            ops.iter().filter(|v| v.op().author == me).map(|v| (v.op().seq, v.bytes().to_vec())).collect();
        own.sort();
        self.inner.replica.borrow_mut().receive_batch(ops, wall_ms());
        self.inner.stats.borrow_mut().ops_loaded = n as u64;
        for (seq, bytes) in own {
            self.inner.node.publish(GLOBAL_TOPIC, seq, bytes);
        }
        self.inner.node.touch();
        Ok(n)
    }

    /// Signs and publishes an op, after checking it against the current
    /// state (an op that would be refused is not signed). Returns its id.
    pub fn act(&self, channel: &str, body: OpBody) -> Result<OpId, String> {
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
