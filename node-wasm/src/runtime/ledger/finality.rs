//! The ledger's finality duties in the browser (rules in
//! `core/finality.rs`, `docs/PROTOCOL.md` "Finality"):
//! - after each new final checkpoint: drop the ops it covers from memory
//!   and the router (unless `?history=archive`), serve it to joining peers,
//!   and save it to IndexedDB together with the deletion of those ops, in
//!   one transaction, at most every [`SAVE_EVERY_MS`] (a reload then folds
//!   at most that much plus an epoch or two);
//! - at start ([`Ledger::load`]): start from the saved checkpoint and read
//!   only the ops after it (rule `reload_from_checkpoint`);
//! - a fresh node fetches a peer's checkpoint instead of the whole history
//!   (unless `?join=full`), and a node whose validators' checkpoints run
//!   ahead of what it can make final catches up the same way (rule
//!   `catch_up_from_checkpoint`).

use super::{ALL_OP_DOMAINS, Ledger, wall_ms};
use crate::console_log;
use crate::core::op::OpId;
use crate::identity::NodeId;
use crate::pubsub::{GLOBAL_TOPIC, MsgId};
use crate::runtime::store;
use crate::runtime::transport::Node;
use crate::service::events::{Domain, DomainSet};
use crate::snapshot_sync::{CatchUp, FetchOut, Served, SnapshotFetch, SnapshotServer};
use crate::wire::WireMsg;
use serde::Serialize;
use std::cell::{Cell, RefCell};
use wasm_bindgen_futures::spawn_local;

/// A new final checkpoint is saved at most this often (each save writes
/// the whole state snapshot).
pub const SAVE_EVERY_MS: f64 = 30_000.0;

/// Per-ledger finality state.
#[derive(Default)]
pub(super) struct FinalityDuties {
    /// Keep every op (`?history=archive`) instead of pruning.
    pub archive: Cell<bool>,
    /// Fetch a peer's checkpoint when starting empty (`?join=full` turns
    /// it off).
    pub join_full: Cell<bool>,
    /// When to fetch a checkpoint to catch up (rules
    /// `catch_up_from_checkpoint`, `join_full_trusts_no_snapshot`).
    pub catch_up: RefCell<CatchUp>,
    pub last_final: Cell<Option<u64>>,
    pub server: RefCell<SnapshotServer>,
    pub fetch: RefCell<Option<SnapshotFetch>>,
    /// Ops dropped since the last save, deleted from IndexedDB with it.
    pub pending_prune: RefCell<Vec<String>>,
    /// Counters of fetches that ended.
    pub fetched: RefCell<crate::snapshot_sync::SyncStats>,
    pub saving: Cell<bool>,
    /// The replica dropped a delivered op (too far ahead of its chain).
    pub refeed_due: Cell<bool>,
    pub last_save: Cell<f64>,
    pub stats: RefCell<StorageStats>,
}

/// `status().finality.storage`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StorageStats {
    /// `prune` (default) or `archive`.
    pub history: &'static str,
    /// Ops held in memory now.
    pub ops_held: u64,
    /// Ops dropped because a final checkpoint covers them.
    pub ops_pruned: u64,
    /// Bytes of the last saved checkpoint (record + snapshot).
    pub checkpoint_bytes: u64,
    /// The epoch of the checkpoint saved in IndexedDB.
    pub saved_epoch: Option<u64>,
    /// Stored ops skipped unverified at start: the checkpoint covers them.
    pub ops_skipped_at_load: u64,
    /// The checkpoint this node started from at load, if any.
    pub loaded_epoch: Option<u64>,
    /// Checkpoints adopted from peers (snapshot join or catch-up).
    pub snapshot_joins: u64,
    /// `{received, total}` bytes of a checkpoint being fetched.
    pub fetching: Option<(u64, u64)>,
    /// Why the last fetched (or saved) checkpoint was refused.
    pub last_refusal: Option<String>,
    /// The router's payload bytes and index entries (rule
    /// `store_bounded_in_bytes`).
    pub router_bytes: u64,
    pub router_index: u64,
}

/// `status().finality`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FinalityStatus {
    #[serde(flatten)]
    pub view: crate::core::finality::FinalityView,
    pub storage: StorageStats,
    pub sync: crate::snapshot_sync::SyncStats,
}

impl Ledger {
    /// `?history=archive` keeps every op; `?join=full` replays the history
    /// instead of fetching a checkpoint. Call before [`Ledger::load`].
    pub fn set_history(&self, archive: bool, join_full: bool) {
        let f = &self.inner.finality;
        f.archive.set(archive);
        f.join_full.set(join_full);
        *f.catch_up.borrow_mut() = CatchUp::new(join_full);
    }

    pub fn finality_status(&self) -> FinalityStatus {
        let f = &self.inner.finality;
        let mut storage = f.stats.borrow().clone();
        storage.history = if f.archive.get() { "archive" } else { "prune" };
        storage.ops_held = self.inner.replica.borrow().store().len() as u64;
        storage.fetching = f.fetch.borrow().as_ref().and_then(SnapshotFetch::progress);
        let (bytes, index) = self.inner.node.with_router(|r| (r.store_bytes(), r.store_index_len()));
        storage.router_bytes = bytes as u64;
        storage.router_index = index as u64;
        let mut sync = f.server.borrow().stats;
        let done = *f.fetched.borrow();
        let live = f.fetch.borrow().as_ref().map(|x| x.stats).unwrap_or_default();
        sync.parts_received = done.parts_received + live.parts_received;
        sync.bad_parts = done.bad_parts + live.bad_parts;
        sync.timeouts = done.timeouts + live.timeouts;
        FinalityStatus { view: self.inner.replica.borrow().finality(wall_ms()), storage, sync }
    }

    /// Wires snapshot requests and parts from peers to this ledger.
    pub(super) fn hook_snapshots(&self) {
        let w = std::rc::Rc::downgrade(&self.inner);
        self.inner.node.set_snapshot_hook(Box::new(move |node: &Node, from: NodeId, msg: WireMsg| {
            if let Some(inner) = w.upgrade() {
                Ledger { inner }.on_snapshot_msg(node, from, msg);
            }
        }));
    }

    fn on_snapshot_msg(&self, node: &Node, from: NodeId, msg: WireMsg) {
        let now = wall_ms();
        match msg {
            WireMsg::SnapAsk { epoch_min, index } => {
                let reply = self.inner.finality.server.borrow_mut().on_ask(from, epoch_min, index, now);
                if let Some(reply) = reply {
                    node.send_snapshot(from, &reply);
                }
            }
            WireMsg::SnapPart(part) => {
                let peers = node.peers();
                let genesis = self.inner.genesis_record.clone();
                let mut refused = None;
                let outs = {
                    let replica = self.inner.replica.borrow();
                    let mut accept = |record: &[u8]| match replica.check_record(&genesis, record) {
                        Ok(_) => true,
                        Err(e) => {
                            refused = Some(e);
                            false
                        }
                    };
                    self.inner
                        .finality
                        .fetch
                        .borrow_mut()
                        .as_mut()
                        .map(|f| f.on_part(from, part, &peers, now, &mut accept))
                };
                if let Some(e) = refused {
                    console_log!("snapshot join: the checkpoint head from {} was refused: {e}", from.short());
                    self.inner.finality.stats.borrow_mut().last_refusal = Some(e);
                }
                self.fetch_outs(outs.unwrap_or_default());
            }
            _ => {}
        }
    }

    fn fetch_outs(&self, outs: Vec<FetchOut>) {
        let node = &self.inner.node;
        for o in outs {
            match o {
                FetchOut::Ask(p, m) => {
                    node.send_snapshot(p, &m);
                }
                FetchOut::Done { from, record, snapshot } => self.adopt(from, &record, &snapshot),
                FetchOut::Exhausted => {
                    console_log!("snapshot join: no peer has a recent enough checkpoint; syncing the history");
                    self.end_fetch();
                }
            }
        }
    }

    /// A fetched checkpoint: verify it and start from it, or try the next
    /// peer.
    fn adopt(&self, from: NodeId, record: &[u8], snapshot: &[u8]) {
        let genesis = self.inner.genesis_record.clone();
        let r = self.inner.replica.borrow_mut().adopt_checkpoint(&genesis, record, snapshot);
        match r {
            Ok(epoch) => {
                // Ops the router delivered while the old replica could not
                // keep them (too far ahead of a chain it did not have):
                // the router will not deliver them again.
                let held = self.inner.node.with_router(|r| r.held_bodies(GLOBAL_TOPIC));
                let (n, dropped) =
                    self.inner.replica.borrow_mut().refeed(held.iter().map(|m| m.payload.as_slice()), wall_ms());
                self.inner.finality.refeed_due.set(dropped > 0);
                console_log!("snapshot join: {n} held ops after the checkpoint folded");
                console_log!(
                    "snapshot join: started from epoch {epoch} ({} bytes from {})",
                    record.len() + snapshot.len(),
                    from.short()
                );
                self.end_fetch();
                self.inner.finality.stats.borrow_mut().snapshot_joins += 1;
                self.after_final(true);
                self.bump(ALL_OP_DOMAINS.union(DomainSet::of(&[Domain::Network])));
                self.inner.node.touch();
            }
            Err(e) => {
                console_log!("snapshot join: the checkpoint from {} was refused: {e}", from.short());
                self.inner.finality.stats.borrow_mut().last_refusal = Some(e);
                let peers = self.inner.node.peers();
                let outs = self.inner.finality.fetch.borrow_mut().as_mut().map(|f| f.reject(from, &peers, wall_ms()));
                self.fetch_outs(outs.unwrap_or_default());
            }
        }
    }

    /// Drops the fetch, keeping its counters.
    fn end_fetch(&self) {
        let f = &self.inner.finality;
        if let Some(x) = f.fetch.borrow_mut().take() {
            let mut d = f.fetched.borrow_mut();
            d.parts_received += x.stats.parts_received;
            d.bad_parts += x.stats.bad_parts;
            d.timeouts += x.stats.timeouts;
        }
    }

    /// Called every tick: reacts to a new final checkpoint, and drives a
    /// checkpoint fetch.
    pub(super) fn finality_tick(&self) {
        let f = &self.inner.finality;
        if f.refeed_due.replace(false) {
            let held = self.inner.node.with_router(|r| r.held_bodies(GLOBAL_TOPIC));
            let (n, dropped) =
                self.inner.replica.borrow_mut().refeed(held.iter().map(|m| m.payload.as_slice()), wall_ms());
            f.refeed_due.set(dropped > 0);
            if n > 0 {
                self.bump(ALL_OP_DOMAINS);
            }
        }
        let last = self.inner.replica.borrow().last_final().map(|f| f.epoch);
        if last != f.last_final.get() {
            console_log!("finality: epoch {} is final", last.unwrap_or_default());
            self.after_final(false);
            self.bump(ALL_OP_DOMAINS.union(DomainSet::of(&[Domain::Network])));
            self.inner.node.touch();
        }
        // Rules `catch_up_from_checkpoint`, `join_full_trusts_no_snapshot`.
        let (lag, due_epoch) = {
            let r = self.inner.replica.borrow();
            (r.finality_lag(), r.finality(wall_ms()).current_epoch)
        };
        let fetching = f.fetch.borrow().is_some();
        let due = f.catch_up.borrow_mut().due(fetching, lag, last, due_epoch);
        if due {
            console_log!("finality: {lag} signed epochs ahead of this node; fetching a checkpoint");
            *f.fetch.borrow_mut() = Some(SnapshotFetch::new(last.map_or(0, |e| e.saturating_add(1))));
        }
        let peers = self.inner.node.peers();
        let outs = f.fetch.borrow_mut().as_mut().map(|x| x.on_tick(&peers, wall_ms()));
        self.fetch_outs(outs.unwrap_or_default());
    }

    /// A fresh node (nothing stored) on a network with finality fetches a
    /// peer's checkpoint first, unless `?join=full`.
    pub(super) fn maybe_join_from_snapshot(&self, stored_ops: usize) {
        let f = &self.inner.finality;
        let enabled = self.inner.replica.borrow().finality(0).enabled;
        if enabled && stored_ops == 0 && !f.join_full.get() && self.inner.replica.borrow().last_final().is_none() {
            *f.fetch.borrow_mut() = Some(SnapshotFetch::new(0));
        }
    }

    /// After a new final checkpoint (made here, loaded or adopted): prune
    /// (rules `prune_final`, `final_floor`), serve it, and save it.
    pub(super) fn after_final(&self, force_save: bool) {
        let f = &self.inner.finality;
        let (epoch, heads, pruned) = {
            let mut r = self.inner.replica.borrow_mut();
            let pruned: Vec<OpId> = if f.archive.get() { vec![] } else { r.prune() };
            (r.last_final().map(|x| x.epoch), r.prune_floor(), pruned)
        };
        f.last_final.set(epoch);
        if !f.archive.get() {
            for (origin, seq, head) in heads {
                self.inner.node.floor(GLOBAL_TOPIC, origin, seq, MsgId(head.0));
            }
            f.stats.borrow_mut().ops_pruned += pruned.len() as u64;
            f.pending_prune.borrow_mut().extend(pruned.iter().map(OpId::to_text));
        }
        let Some((rec, snap)) = self.inner.replica.borrow().export_final() else { return };
        let record = rec.encode();
        f.server.borrow_mut().set(Served::new(rec.epoch, &record, snap.clone()));
        let now = crate::runtime::util::now_ms();
        let due = force_save || f.stats.borrow().saved_epoch.is_none() || now - f.last_save.get() >= SAVE_EVERY_MS;
        if self.inner.memory_only.get() || f.saving.get() || !due {
            return;
        }
        f.saving.set(true);
        f.last_save.set(now);
        let pruned = std::mem::take(&mut *f.pending_prune.borrow_mut());
        let l = self.clone();
        spawn_local(async move {
            let r = match l.db().await {
                Ok(db) => store::save_checkpoint(&db, &l.inner.profile, &record, &snap, &pruned).await,
                Err(e) => Err(e),
            };
            let f = &l.inner.finality;
            f.saving.set(false);
            match r {
                Ok(()) => {
                    let mut s = f.stats.borrow_mut();
                    s.saved_epoch = Some(rec.epoch);
                    s.checkpoint_bytes = (record.len() + snap.len()) as u64;
                }
                Err(e) => {
                    // Kept for the next save; the ops stay in IndexedDB.
                    f.pending_prune.borrow_mut().extend(pruned);
                    l.drop_db();
                    l.storage_failed(&e, true);
                }
            }
        });
    }
}
