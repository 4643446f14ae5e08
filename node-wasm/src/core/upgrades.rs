//! Policy modules in the replicated state (`docs/UPGRADES.md`): rule
//! `module_piece` (distribution), command `code_upgrade` (activation at the
//! ratification's position in the execution log, rollback) and the policy
//! hooks the fold calls for vote weights, auction scores and tax.
//!
//! The sandbox itself (load checks, fuel, memory cap) is `core/upgrade.rs`.
//! Everything here is a pure function of the ops folded so far: whether a
//! module is present, loadable and what it returns depends only on bytes that
//! every replica holds at the same op position.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::codec::Writer;
use crate::core::governance::Tally;
use crate::core::hlc::Hlc;
use crate::core::op::OpId;
use crate::core::reject::Reject;
use crate::core::state::{Ctx, State, TaskStatus};
use crate::core::upgrade::{
    self, BUILTIN, CallFault, LoadError, ModuleCache, ModuleHash, Policies, Policy, PolicyModule, module_hash,
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

/// The compiled-module cache, shared by every copy of a state (checkpoints,
/// dry runs). Outside equality and the hash: it never changes a result.
#[derive(Clone, Default)]
pub struct CacheCell(Arc<Mutex<ModuleCache>>);

impl PartialEq for CacheCell {
    fn eq(&self, _: &CacheCell) -> bool {
        true
    }
}
impl Eq for CacheCell {}
impl std::fmt::Debug for CacheCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheCell")
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
    #[serde(skip)]
    cache: CacheCell,
}

/// A policy call's result and, if the module faulted, which module (the
/// fold counts it in `policies.fallbacks`; read-only callers ignore it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyResult {
    pub value: u64,
    pub fault: Option<ModuleHash>,
}

impl Upgrades {
    fn module(&self, policy: Policy) -> Option<(ModuleHash, Result<PolicyModule, LoadError>)> {
        let hash = *self.policies.active.get(&policy)?;
        let bytes = self.modules.get(&hash).map(|m| m.bytes.as_slice());
        let loaded =
            self.cache.0.lock().map_err(|_| LoadError::NotPresent).and_then(|mut c| c.get(bytes, hash, policy));
        Some((hash, loaded))
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

    /// The active module for `policy` (all zeros when built-in).
    pub fn active(&self, policy: Policy) -> ModuleHash {
        self.policies.active.get(&policy).copied().unwrap_or(ModuleHash::BUILTIN)
    }
}

/// Canonical bytes of the upgrade state, in key order.
pub(crate) fn encode_canonical(u: &Upgrades, w: &mut Writer) {
    let mut p = Vec::new();
    u.policies.encode(&mut p);
    w.bytes(&p);
    w.u64(u.modules.len() as u64);
    for (h, m) in &u.modules {
        w.raw(&h.0).u64(m.size).raw(&m.assembled_by.0);
        crate::core::state::hlc(w, m.assembled_at);
    }
    w.u64(u.pending.len() as u64);
    for (h, by) in &u.pending {
        w.raw(&h.0).u64(by.len() as u64);
        for (author, pm) in by {
            w.raw(&author.0).u16(pm.count).u64(pm.pieces.len() as u64);
            for (i, bytes) in &pm.pieces {
                w.u16(*i).bytes(bytes);
            }
        }
    }
    w.u64(u.corrupt.len() as u64);
    for (h, n) in &u.corrupt {
        w.raw(&h.0).u64(*n);
    }
    w.u64(u.history.len() as u64);
    for a in &u.history {
        w.u8(a.policy.tag()).raw(&a.module.0).raw(&a.previous.0).raw(&a.proposal.0).u64(a.execution);
        crate::core::state::hlc(w, a.at);
    }
}

impl State {
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
        let u = &self.upgrades;
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
        let u = &mut self.upgrades;
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
    /// changes nothing and its sentence goes to the execution log.
    pub(crate) fn code_upgrade(
        &mut self,
        cx: Ctx<'_>,
        proposal: OpId,
        module: [u8; 32],
        policy: Policy,
    ) -> Result<String, String> {
        let hash = ModuleHash(module);
        let previous = self.upgrades.active(policy);
        let describe = |h: ModuleHash| {
            if h == ModuleHash::BUILTIN { "the built-in policy".to_owned() } else { format!("module {}…", h.short()) }
        };
        if module != BUILTIN {
            let bytes = self.upgrades.modules.get(&hash).map(|m| m.bytes.clone());
            let loaded = self.upgrades.cache.0.lock().map_err(|_| "module cache unavailable".to_owned())?.get(
                bytes.as_deref().map(Vec::as_slice),
                hash,
                policy,
            );
            if let Err(e) = loaded {
                return Err(format!("{}: {} cannot be activated for {}: {e}", e.code(), describe(hash), policy.name()));
            }
        }
        self.upgrades.policies.activate(policy, module);
        let execution = self.gov.execution_log.len() as u64;
        self.upgrades.history.push(Activation { policy, module: hash, previous, proposal, execution, at: cx.hlc });
        Ok(format!("{}: now {} (was {})", policy.name(), describe(hash), describe(previous)))
    }

    /// Counts a policy fault seen by the fold.
    pub(crate) fn record_policy(&mut self, r: PolicyResult) -> u64 {
        if let Some(h) = r.fault {
            self.upgrades.policies.record_fallback(h);
        }
        r.value
    }

    /// Tax under the active policy, fault counted (fold only).
    pub(crate) fn policy_tax(&mut self, reward: u64, tax_bps: u64) -> u64 {
        let r = self.upgrades.tax(reward, tax_bps);
        self.record_policy(r)
    }

    /// What a module would change if it were active now, without
    /// activating it. `now_ms` is the time tallies are computed at.
    pub fn dry_run(&self, bytes: &[u8], policy: Policy, now_ms: u64) -> DryRun {
        let hash = ModuleHash(module_hash(bytes));
        let mut report = DryRun {
            module: hash,
            policy,
            size: bytes.len() as u64,
            current: self.upgrades.active(policy),
            error: None,
            faults: 0,
            changes: Vec::new(),
            samples: Vec::new(),
        };
        if let Err(e) = PolicyModule::load(&upgrade::engine(), bytes, &hash.0, policy) {
            report.error = Some(DryRunError { code: e.code(), message: e.to_string() });
            return report;
        }
        let mut trial = self.clone();
        trial.upgrades.cache = CacheCell::default();
        trial.upgrades.modules.insert(
            hash,
            StoredModule {
                bytes: Arc::new(bytes.to_vec()),
                size: bytes.len() as u64,
                assembled_by: NodeId([0; 32]),
                assembled_at: Hlc::ZERO,
            },
        );
        trial.upgrades.policies.activate(policy, hash.0);
        match policy {
            Policy::VoteWeight => {
                for (id, p) in &self.gov.proposals {
                    if p.votes.is_empty() {
                        continue;
                    }
                    let (was, _) = self.tally_with_faults(p, now_ms);
                    let (now, faults) = trial.tally_with_faults(p, now_ms);
                    report.faults += faults.len() as u64;
                    let fmt = |t: &Tally| {
                        format!(
                            "yes {} / no {} → {}",
                            crate::core::governance::display_milli(t.yes_weight_milli),
                            crate::core::governance::display_milli(t.no_weight_milli),
                            t.outcome.name()
                        )
                    };
                    if was != now {
                        report.changes.push(DryRunChange {
                            subject: id.to_text(),
                            title: p.title.clone(),
                            status: p.status.name().to_owned(),
                            before: fmt(&was),
                            after: fmt(&now),
                        });
                    }
                }
                for points in [0u64, 1, 4, 10, 100, 1000] {
                    let rep = crate::core::reputation::Reputation { total: points * 1000, ..Default::default() };
                    let (b, _) = crate::core::governance::vote_weight_milli(&rep, &[]);
                    let r = trial.upgrades.vote_weight(points * 1000, 0, false, b);
                    report.faults += u64::from(r.fault.is_some());
                    report.samples.push(DryRunSample {
                        input: format!("{points} reputation points"),
                        before: crate::core::governance::display_milli(b),
                        after: crate::core::governance::display_milli(r.value),
                    });
                }
            }
            Policy::Tax => {
                let bps = self.params.tax_bps;
                for t in self.tasks.values() {
                    if t.reward == 0 || matches!(t.status, TaskStatus::Completed | TaskStatus::Deleted) {
                        continue;
                    }
                    let was = self.upgrades.tax(t.reward, bps).value;
                    let r = trial.upgrades.tax(t.reward, bps);
                    report.faults += u64::from(r.fault.is_some());
                    if was != r.value {
                        report.changes.push(DryRunChange {
                            subject: t.id.to_text(),
                            title: t.title.clone(),
                            status: t.status.name().to_owned(),
                            before: format!("tax {was} SP of {}", t.reward),
                            after: format!("tax {} SP of {}", r.value, t.reward),
                        });
                    }
                }
                for reward in [1u64, 10, 30, 100, 1000, 10_000] {
                    let r = trial.upgrades.tax(reward, bps);
                    report.faults += u64::from(r.fault.is_some());
                    report.samples.push(DryRunSample {
                        input: format!("reward {reward} SP"),
                        before: self.upgrades.tax(reward, bps).value.to_string(),
                        after: r.value.to_string(),
                    });
                }
            }
            Policy::AuctionScore => {
                for t in self.tasks.values() {
                    let Some(a) = t.auction.as_ref() else { continue };
                    if t.status != TaskStatus::AuctionOpen || a.bids.is_empty() {
                        continue;
                    }
                    let (was, _) = self.auction_winner(t, now_ms);
                    let (now, faults) = trial.auction_winner(t, now_ms);
                    report.faults += faults.len() as u64;
                    if was != now {
                        let who = |w: Option<(NodeId, u64)>| {
                            w.map_or("no winner".to_owned(), |(n, s)| format!("winner {}… (score {s})", n.short()))
                        };
                        report.changes.push(DryRunChange {
                            subject: t.id.to_text(),
                            title: t.title.clone(),
                            status: t.status.name().to_owned(),
                            before: who(was),
                            after: who(now),
                        });
                    }
                }
            }
        }
        report
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
