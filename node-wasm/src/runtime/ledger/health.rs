//! The ledger's immune-system duty in the browser (rules in `health.rs`,
//! `docs/PROTOCOL.md` "Immune system"): once a minute, measure this node's
//! view (proven peers, op propagation delay, promised pieces that never
//! came, ops a minute), feed the [`Monitor`], and publish the remedy it
//! calls for when this node's rank for the problem comes up, unless one is
//! open by then. Also applies the network's `net_target_degree` to the
//! peer manager.

use super::{Ledger, wall_ms};
use crate::console_log;
use crate::health::{HealthTargets, Monitor, Problem, Sample, Vital, open_remedy};
use crate::service::governance::{ProposalSpec, propose};
use crate::service::{DomainSet, Signer};
use serde::Serialize;
use std::cell::RefCell;

/// The cycle.
pub const CYCLE_MS: u64 = 60_000;
/// Arrival delays kept per cycle (a bound whatever the op rate).
const MAX_LAGS: usize = 1024;
/// Ops older than this at arrival are catch-up, not propagation.
const LIVE_MS: u64 = 10 * 60_000;

#[derive(Default)]
pub(super) struct HealthDuty {
    monitor: RefCell<Monitor>,
    lags: RefCell<Vec<u64>>,
    /// (ops received, pieces requested, promises broken) at the last cycle.
    last: RefCell<(u64, u64, u64)>,
    next_ms: RefCell<u64>,
    /// A remedy waiting for this node's rank: (due at, problem, spec).
    pending: RefCell<Option<(u64, Problem, ProposalSpec)>>,
}

/// What `health()` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    pub targets: HealthTargets,
    pub vitals: Vec<Vital>,
    /// Open remedy proposals: (id, title).
    pub open_remedies: Vec<(String, String)>,
    /// A remedy this node will propose when its rank comes up.
    pub pending: Option<String>,
    pub net_target_degree: u64,
}

impl Ledger {
    /// Records an op's arrival delay (for `high_latency`).
    pub(super) fn health_arrival(&self, op_ms: u64) {
        let lag = wall_ms().saturating_sub(op_ms);
        let mut lags = self.inner.health.lags.borrow_mut();
        if lag <= LIVE_MS && lags.len() < MAX_LAGS {
            lags.push(lag);
        }
    }

    /// Called every second from `tick`.
    pub(super) fn health_tick(&self) {
        let now = wall_ms();
        let degree = self.with_state(|st| st.params.net_target_degree);
        self.inner.node.set_target_degree(usize::try_from(degree).unwrap_or(usize::MAX));
        self.publish_pending_remedy(now);
        let h = &self.inner.health;
        {
            let mut next = h.next_ms.borrow_mut();
            if *next == 0 {
                *next = now.saturating_add(CYCLE_MS);
                return;
            }
            if now < *next {
                return;
            }
            *next = now.saturating_add(CYCLE_MS);
        }
        let sample = self.health_sample();
        let spec = self.with_state(|st| h.monitor.borrow_mut().cycle(sample, st));
        self.bump(DomainSet::of(&[crate::service::events::Domain::Network]));
        let Some(spec) = spec else { return };
        let Some(problem) = Problem::ALL.into_iter().find(|p| spec.tags.iter().any(|t| t == p.name())) else {
            return;
        };
        let wait = self
            .with_state(|st| self.inner.keeper.borrow_mut().wait(st, format!("immune {}", problem.name()).as_bytes()));
        console_log!(
            "immune system: {} persists; remedy proposed in {} s unless one is open",
            problem.name(),
            wait / 1000
        );
        *h.pending.borrow_mut() = Some((now.saturating_add(wait), problem, spec));
    }

    fn health_sample(&self) -> Sample {
        let h = &self.inner.health;
        let mut lags = std::mem::take(&mut *h.lags.borrow_mut());
        lags.sort_unstable();
        let latency_ms = lags.get(lags.len() / 2).copied();
        let router = self.inner.node.pubsub_stats();
        let received = self.inner.stats.borrow().ops_received;
        let (r0, asked0, broken0) = h.last.replace((received, router.pieces_requested, router.broken_promises));
        let asked = router.pieces_requested.saturating_sub(asked0);
        let broken = router.broken_promises.saturating_sub(broken0);
        let me = self.inner.node.id();
        let known = self.with_state(|st| st.ledger.accounts.keys().filter(|id| **id != me).count() as u64);
        Sample {
            peers: self.inner.node.peers().len() as u64,
            known,
            latency_ms,
            loss_bps: (asked > 0).then(|| broken.saturating_mul(10_000) / asked),
            ops_per_min: received.saturating_sub(r0),
        }
    }

    /// Rule `one_open_remedy` at publication time: someone else's may have
    /// arrived while this node waited its rank.
    fn publish_pending_remedy(&self, now: u64) {
        let due = {
            let pending = self.inner.health.pending.borrow();
            matches!(&*pending, Some((at, _, _)) if now >= *at)
        };
        if !due {
            return;
        }
        let Some((_, problem, spec)) = self.inner.health.pending.borrow_mut().take() else { return };
        if self.with_state(|st| open_remedy(st, problem)) {
            return;
        }
        match propose("global", spec).and_then(|i| self.sign(i)) {
            Ok(id) => console_log!("immune system: proposed remedy {id} for {}", problem.name()),
            Err(e) => console_log!("immune system: could not propose a remedy for {}: {e}", problem.name()),
        }
    }

    /// This node's health against its targets, and the remedies.
    pub fn health(&self) -> HealthReport {
        let h = &self.inner.health;
        let (open_remedies, net_target_degree) = self.with_state(|st| {
            let open = st
                .gov
                .proposals
                .values()
                .filter(|p| p.tags.iter().any(|t| t == crate::health::TAG))
                .filter(|p| {
                    matches!(
                        p.status,
                        crate::core::governance::ProposalStatus::Open
                            | crate::core::governance::ProposalStatus::PendingRatification
                    )
                })
                .map(|p| (p.id.to_text(), p.title.clone()))
                .collect();
            (open, st.params.net_target_degree)
        });
        let m = h.monitor.borrow();
        HealthReport {
            targets: m.targets,
            vitals: m.vitals(),
            open_remedies,
            pending: h.pending.borrow().as_ref().map(|(_, p, _)| p.name().to_owned()),
            net_target_degree,
        }
    }

    /// Replaces the targets (`setHealthTargets`).
    pub fn set_health_targets(&self, t: HealthTargets) {
        self.inner.health.monitor.borrow_mut().targets = t;
    }
}
