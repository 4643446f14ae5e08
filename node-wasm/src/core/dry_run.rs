//! What a policy module would change if it were active now, without
//! activating it: a read-only comparison of the state under the active
//! policy and under a trial copy with the module active. It reads every
//! layer (tallies, auctions, tasks), so it sits on top, beside `state.rs`.
//! The report types are in `upgrades.rs` (`core::upgrades::DryRun`).

use std::sync::Arc;

use crate::core::auction::auction_winner;
use crate::core::governance::{Tally, display_milli, tally_with_faults, vote_weight_milli};
use crate::core::hlc::Hlc;
use crate::core::reputation::Reputation;
use crate::core::state::{State, TaskStatus};
use crate::core::upgrade::{self, ModuleHash, Policy, PolicyModule, module_hash};
use crate::core::upgrades::{CompiledModules, DryRun, DryRunChange, DryRunError, DryRunSample, StoredModule};
use crate::identity::NodeId;

impl State {
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
        // One cold cache for both sides: the trial's module is new anyway,
        // and the replica's cache must not hold modules nobody activated.
        let modules = CompiledModules::default();
        let mut trial = self.clone();
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
                    let (was, _) = tally_with_faults(
                        p,
                        now_ms,
                        &self.ledger.accounts,
                        &self.params.rules,
                        self.upgrades.view(&modules),
                    );
                    let (now, faults) = tally_with_faults(
                        p,
                        now_ms,
                        &trial.ledger.accounts,
                        &trial.params.rules,
                        trial.upgrades.view(&modules),
                    );
                    report.faults += faults.len() as u64;
                    let fmt = |t: &Tally| {
                        format!(
                            "yes {} / no {} → {}",
                            display_milli(t.yes_weight_milli),
                            display_milli(t.no_weight_milli),
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
                    let rep = Reputation { total: points * 1000, ..Default::default() };
                    let (b, _) = vote_weight_milli(&rep, &[]);
                    let r = trial.upgrades.view(&modules).vote_weight(points * 1000, 0, false, b);
                    report.faults += u64::from(r.fault.is_some());
                    report.samples.push(DryRunSample {
                        input: format!("{points} reputation points"),
                        before: display_milli(b),
                        after: display_milli(r.value),
                    });
                }
            }
            Policy::Tax => {
                let bps = self.params.tax_bps;
                for t in self.tasks.values() {
                    if t.reward == 0 || matches!(t.status, TaskStatus::Completed | TaskStatus::Deleted) {
                        continue;
                    }
                    let was = self.upgrades.view(&modules).tax(t.reward, bps).value;
                    let r = trial.upgrades.view(&modules).tax(t.reward, bps);
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
                    let r = trial.upgrades.view(&modules).tax(reward, bps);
                    report.faults += u64::from(r.fault.is_some());
                    report.samples.push(DryRunSample {
                        input: format!("reward {reward} SP"),
                        before: self.upgrades.view(&modules).tax(reward, bps).value.to_string(),
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
                    let (was, _) = auction_winner(t, now_ms, &self.ledger.accounts, self.upgrades.view(&modules));
                    let (now, faults) =
                        auction_winner(t, now_ms, &trial.ledger.accounts, trial.upgrades.view(&modules));
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
