//! Policy modules in the replicated state (`docs/UPGRADES.md`): rule
//! `module_piece` (distribution), command `code_upgrade` (activation at the
//! ratification's position in the execution log, rollback) and the policy
//! hooks the fold calls for vote weights, auction scores and tax.
//!
//! The sandbox itself (load checks, fuel, memory cap) is `core/upgrade.rs`.
//! Everything here is a pure function of the ops folded so far: whether a
//! module is present, loadable and what it returns depends only on bytes that
//! every replica holds at the same op position.
//!
//! This layer sits just above the ledger and below every rule that calls a
//! policy (tasks, auctions, teams, governance), which receive a
//! [`PolicyHooks`] (fold: faults are counted) or a [`PolicyView`] (read-only).
//! The compiled-module cache ([`CompiledModules`]) is not state: it belongs to
//! whoever folds (the replica's fold) and is passed in.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::codec::Writer;
use crate::core::common::{Ctx, hlc};
use crate::core::hlc::Hlc;
use crate::core::op::OpId;
use crate::core::reject::Reject;
use crate::core::upgrade::{
    self, BUILTIN, CallFault, LoadError, ModuleCache, ModuleHash, Policies, Policy, PolicyModule,
};
use crate::identity::NodeId;

/// Incomplete modules one author may have pending at a time: pieces are
/// free to publish, so this bounds what a spammer can park in every
/// replica's memory (`MAX_PENDING_MODULES_PER_AUTHOR × 256 KiB`).
pub const MAX_PENDING_MODULES_PER_AUTHOR: usize = 4;

/// The pieces one author has published so far for one module.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingModule {
    pub count: u16,
    /// Piece bytes by index (not in the JSON snapshot; in the hash).
    #[serde(skip)]
    pub pieces: BTreeMap<u16, Vec<u8>>,
    /// Piece indices received, for the snapshot.
    pub received: Vec<u16>,
}

/// An assembled module whose bytes hash to its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredModule {
    /// The module bytes (not in the JSON snapshot; the key is their hash).
    #[serde(skip)]
    pub bytes: Arc<Vec<u8>>,
    pub size: u64,
    /// The author whose piece completed the module, and when.
    pub assembled_by: NodeId,
    pub assembled_at: Hlc,
}

/// One executed `code_upgrade`: the history of policy versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    pub policy: Policy,
    /// The activated module (all zeros = the built-in policy).
    pub module: ModuleHash,
    /// What was active before.
    pub previous: ModuleHash,
    pub proposal: OpId,
    /// Index of the execution-log entry.
    pub execution: u64,
    pub at: Hlc,
}

/// Compiled policy modules, shared by every copy of one replica's state
/// (checkpoints, probes). Not part of the state, its equality or its hash:
/// compiling is a pure function of the module bytes, so a cold cache gives
/// the same results as a warm one, only slower. Cloning shares the cache.
#[derive(Clone, Default)]
pub struct CompiledModules(Arc<Mutex<ModuleCache>>);

impl CompiledModules {
    /// The module `hash` compiled for `policy` (`bytes` as held by the state;
    /// `None` when the module is not assembled).
    pub fn load(&self, bytes: Option<&[u8]>, hash: ModuleHash, policy: Policy) -> Result<PolicyModule, LoadError> {
        self.0.lock().map_err(|_| LoadError::NotPresent).and_then(|mut c| c.get(bytes, hash, policy))
    }
}

impl std::fmt::Debug for CompiledModules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompiledModules")
    }
}

/// Modules, pending pieces, the active policies and their history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upgrades {
    /// The network's current policy versions and fallback counters.
    pub policies: Policies,
    pub modules: BTreeMap<ModuleHash, StoredModule>,
    /// Incomplete modules: module → author → pieces.
    pub pending: BTreeMap<ModuleHash, BTreeMap<NodeId, PendingModule>>,
    /// Assemblies whose bytes did not hash to the announced module.
    pub corrupt: BTreeMap<ModuleHash, u64>,
    pub history: Vec<Activation>,
}

/// A policy call's result and, if the module faulted, which module (the
/// fold counts it in `policies.fallbacks`; read-only callers ignore it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyResult {
    pub value: u64,
    pub fault: Option<ModuleHash>,
}

/// The active policies, read-only: a fault is reported in the result, not
/// counted. Used by tallies and scores, which the fold then records.
#[derive(Clone, Copy)]
pub struct PolicyView<'a> {
    pub upgrades: &'a Upgrades,
    pub modules: &'a CompiledModules,
}

impl PolicyView<'_> {
    fn module(&self, policy: Policy) -> Option<(ModuleHash, Result<PolicyModule, LoadError>)> {
        let hash = *self.upgrades.policies.active.get(&policy)?;
        let bytes = self.upgrades.modules.get(&hash).map(|m| m.bytes.as_slice());
        Some((hash, self.modules.load(bytes, hash, policy)))
    }

    fn run(
        &self,
        policy: Policy,
        builtin: u64,
        call: impl FnOnce(&PolicyModule) -> Result<u64, CallFault>,
    ) -> PolicyResult {
        match self.module(policy) {
            None => PolicyResult { value: builtin, fault: None },
            Some((hash, Ok(m))) => match call(&m) {
                Ok(value) => PolicyResult { value, fault: None },
                Err(_) => PolicyResult { value: builtin, fault: Some(hash) },
            },
            Some((hash, Err(_))) => PolicyResult { value: builtin, fault: Some(hash) },
        }
    }

    /// Policy `vote_weight`; `builtin` is the built-in weight for the same voter.
    pub fn vote_weight(&self, total_milli: u64, spec_milli: u64, tagged: bool, builtin: u64) -> PolicyResult {
        self.run(Policy::VoteWeight, builtin, |m| m.vote_weight(total_milli, spec_milli, tagged))
    }

    /// Policy `tax` on a payment of `reward` SP.
    pub fn tax(&self, reward: u64, tax_bps: u64) -> PolicyResult {
        self.run(Policy::Tax, crate::core::economy::tax(reward, tax_bps), |m| m.tax(reward, tax_bps))
    }

    /// Policy `auction_score` of one bid's normalised components.
    pub fn auction_score(&self, cost_bp: u64, rep_bp: u64, time_bp: u64, builtin: u64) -> PolicyResult {
        self.run(Policy::AuctionScore, builtin, |m| m.auction_score(cost_bp, rep_bp, time_bp))
    }
}

/// The active policies as the fold calls them: a fault falls back to the
/// built-in policy and is counted in `policies.fallbacks` (in the hash), so
/// every replica counts the same faults at the same op.
pub struct PolicyHooks<'a> {
    pub upgrades: &'a mut Upgrades,
    pub modules: &'a CompiledModules,
}

impl<'a> PolicyHooks<'a> {
    pub fn new(upgrades: &'a mut Upgrades, modules: &'a CompiledModules) -> PolicyHooks<'a> {
        PolicyHooks { upgrades, modules }
    }

    /// The same policies, read-only.
    pub fn view(&self) -> PolicyView<'_> {
        PolicyView { upgrades: self.upgrades, modules: self.modules }
    }

    /// Counts the faults of calls made through [`PolicyHooks::view`].
    pub fn record_faults(&mut self, faults: impl IntoIterator<Item = ModuleHash>) {
        for h in faults {
            self.upgrades.policies.record_fallback(h);
        }
    }

    /// Tax under the active policy, fault counted.
    pub fn tax(&mut self, reward: u64, tax_bps: u64) -> u64 {
        let r = self.view().tax(reward, tax_bps);
        self.record_faults(r.fault);
        r.value
    }
}

impl Upgrades {
    /// The active module for `policy` (all zeros when built-in).
    pub fn active(&self, policy: Policy) -> ModuleHash {
        self.policies.active.get(&policy).copied().unwrap_or(ModuleHash::BUILTIN)
    }

    /// Read-only policy calls with `modules` as the compiled-module cache.
    pub fn view<'a>(&'a self, modules: &'a CompiledModules) -> PolicyView<'a> {
        PolicyView { upgrades: self, modules }
    }

    /// Rule `module_piece`: stores piece `index` of `count` under
    /// (module, author). The module must not be assembled yet; an author's
    /// pieces for one module agree on `count` and are never replaced; an
    /// author has at most [`MAX_PENDING_MODULES_PER_AUTHOR`] incomplete
    /// modules. When an author's set is complete it is assembled: if the
    /// bytes hash to `module` it becomes available to `code_upgrade` (and
    /// every author's pending pieces for it are dropped); otherwise the set is
    /// dropped and `corrupt[module]` counts it, so a bad publisher can never
    /// block an honest one.
    pub(crate) fn module_piece(
        &mut self,
        cx: Ctx<'_>,
        module: [u8; 32],
        index: u16,
        count: u16,
        bytes: &[u8],
    ) -> Result<(), Reject> {
        let hash = ModuleHash(module);
        let u = &*self;
        if u.modules.contains_key(&hash) {
            return Err(Reject::ModulePresent(hash));
        }
        match u.pending.get(&hash).and_then(|by| by.get(&cx.author)) {
            Some(p) if p.count != count => {
                return Err(Reject::PieceCountMismatch { module: hash, count, expected: p.count });
            }
            Some(p) if p.pieces.contains_key(&index) => return Err(Reject::DuplicatePiece { module: hash, index }),
            Some(_) => {}
            None => {
                let open = u.pending.values().filter(|by| by.contains_key(&cx.author)).count();
                if open >= MAX_PENDING_MODULES_PER_AUTHOR {
                    return Err(Reject::TooManyPendingModules { limit: MAX_PENDING_MODULES_PER_AUTHOR });
                }
            }
        }
        let u = self;
        let by = u.pending.entry(hash).or_default();
        let pm = by.entry(cx.author).or_insert_with(|| PendingModule { count, ..PendingModule::default() });
        pm.pieces.insert(index, bytes.to_vec());
        pm.received = pm.pieces.keys().copied().collect();
        match upgrade::assemble(&module, count, &pm.pieces) {
            None => {}
            Some(Ok(whole)) => {
                u.pending.remove(&hash);
                let stored = StoredModule {
                    size: whole.len() as u64,
                    bytes: Arc::new(whole),
                    assembled_by: cx.author,
                    assembled_at: cx.hlc,
                };
                u.modules.insert(hash, stored);
            }
            Some(Err(_)) => {
                by.remove(&cx.author);
                if by.is_empty() {
                    u.pending.remove(&hash);
                }
                *u.corrupt.entry(hash).or_insert(0) += 1;
            }
        }
        Ok(())
    }

    /// Command `code_upgrade`, run at the ratification quorum op: activates
    /// `module` for `policy` if it is assembled and passes every load check
    /// for that policy, or restores the built-in policy for the all-zero hash
    /// (rollback; naming an earlier module also rolls back to it). A failure
    /// changes nothing and its sentence goes to the execution log, whose
    /// next index (`execution`) the activation records.
    pub(crate) fn code_upgrade(
        &mut self,
        cx: Ctx<'_>,
        proposal: OpId,
        module: [u8; 32],
        policy: Policy,
        execution: u64,
        modules: &CompiledModules,
    ) -> Result<String, String> {
        let hash = ModuleHash(module);
        let previous = self.active(policy);
        let describe = |h: ModuleHash| {
            if h == ModuleHash::BUILTIN { "the built-in policy".to_owned() } else { format!("module {}…", h.short()) }
        };
        if module != BUILTIN {
            let bytes = self.modules.get(&hash).map(|m| m.bytes.clone());
            let loaded = modules.load(bytes.as_deref().map(Vec::as_slice), hash, policy);
            if let Err(e) = loaded {
                return Err(format!("{}: {} cannot be activated for {}: {e}", e.code(), describe(hash), policy.name()));
            }
        }
        self.policies.activate(policy, module);
        self.history.push(Activation { policy, module: hash, previous, proposal, execution, at: cx.hlc });
        Ok(format!("{}: now {} (was {})", policy.name(), describe(hash), describe(previous)))
    }

    /// The upgrades part of the canonical state encoding, in key order.
    pub(crate) fn encode_canonical(&self, w: &mut Writer) {
        let mut p = Vec::new();
        self.policies.encode(&mut p);
        w.bytes(&p);
        w.u64(self.modules.len() as u64);
        for (h, m) in &self.modules {
            w.raw(&h.0).u64(m.size).raw(&m.assembled_by.0);
            hlc(w, m.assembled_at);
        }
        w.u64(self.pending.len() as u64);
        for (h, by) in &self.pending {
            w.raw(&h.0).u64(by.len() as u64);
            for (author, pm) in by {
                w.raw(&author.0).u16(pm.count).u64(pm.pieces.len() as u64);
                for (i, bytes) in &pm.pieces {
                    w.u16(*i).bytes(bytes);
                }
            }
        }
        w.u64(self.corrupt.len() as u64);
        for (h, n) in &self.corrupt {
            w.raw(&h.0).u64(*n);
        }
        w.u64(self.history.len() as u64);
        for a in &self.history {
            w.u8(a.policy.tag()).raw(&a.module.0).raw(&a.previous.0).raw(&a.proposal.0).u64(a.execution);
            hlc(w, a.at);
        }
    }
}

/// Why a dry run could not load the module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DryRunError {
    pub code: &'static str,
    pub message: String,
}

/// One object whose outcome the module would change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DryRunChange {
    /// Proposal or task id.
    pub subject: String,
    pub title: String,
    pub status: String,
    pub before: String,
    pub after: String,
}

/// The policy on a few fixed inputs, before and after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DryRunSample {
    pub input: String,
    pub before: String,
    pub after: String,
}

/// The result of [`State::dry_run`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DryRun {
    pub module: ModuleHash,
    pub policy: Policy,
    pub size: u64,
    /// The module currently active for `policy` (all zeros: built-in).
    pub current: ModuleHash,
    /// Set when the module fails a load check (nothing else is computed).
    pub error: Option<DryRunError>,
    /// Calls that fell back to the built-in policy during the run.
    pub faults: u64,
    pub changes: Vec<DryRunChange>,
    pub samples: Vec<DryRunSample>,
}
