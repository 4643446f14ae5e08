//! The immune system's health half: each node measures its own view of the
//! network against targets and, when a problem persists, proposes one
//! bounded remedy to governance. Pure policy, tested natively; the browser's
//! ledger feeds it one [`Sample`] a minute.
//!
//! Rules, by name (`docs/PROTOCOL.md`, "Immune system"):
//!
//! - **health_check**: a problem is present in a cycle when the sample
//!   misses its target ([`HealthTargets`]): fewer proven peers than
//!   `min_peers`, or than the other identities it knows of when those are
//!   fewer (a network of three cannot give anyone three peers)
//!   (`low_connectivity`), a median op propagation delay above
//!   `max_latency_ms` (`high_latency`), more than `max_loss_bps` of the
//!   pieces peers promised never arriving (`message_loss`), or more ops a
//!   minute than `max_ops_per_min` (`overload`).
//! - **persist_before_remedy**: only a problem present in
//!   [`PERSIST_CYCLES`] consecutive cycles calls for a remedy.
//! - **one_open_remedy**: no remedy is proposed while the state holds an
//!   open proposal tagged `immune_system` and the problem's name, whoever
//!   made it: every node reads the same state, so one remedy per problem
//!   is open network-wide (the caller also waits its rank, rule
//!   `evidence_by_rank`'s ordering, so that two nodes do not race).
//! - **escalate_after_three**: each earlier remedy for the same problem that
//!   the network executed makes the next step bigger (`net_target_degree`
//!   plus 2, then plus 4, and so on up to its maximum, 16); a problem still
//!   there three cycles after a remedy therefore gets a stronger one.
//! - **remedy_bounded**: a remedy is a `config_change` of
//!   `net_target_degree` within its range; none when it is at its maximum
//!   already (the problem is then shown, not proposed). `overload` has no
//!   config remedy: it is shown only.
//!
//! A healthy network (every target met) produces no proposal at all.

use crate::core::governance::ProposalStatus;
use crate::core::op::{Command, ConfigValue, ProposalKind};
use crate::core::state::State;
use crate::service::governance::ProposalSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Cycles a problem must persist before a remedy.
pub const PERSIST_CYCLES: u32 = 3;
/// The tag every remedy proposal carries.
pub const TAG: &str = "immune_system";
/// The most `net_target_degree` may be (its config range's maximum).
const MAX_DEGREE: u64 = 16;

/// What the node measures against (`health_targets`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthTargets {
    pub min_peers: u64,
    pub max_latency_ms: u64,
    pub max_loss_bps: u64,
    pub max_ops_per_min: u64,
}

impl Default for HealthTargets {
    /// The original's targets (3 peers, 10 s, 5 %), and an overload bound
    /// well above what people type (100 ops a second).
    fn default() -> HealthTargets {
        HealthTargets { min_peers: 3, max_latency_ms: 10_000, max_loss_bps: 500, max_ops_per_min: 6_000 }
    }
}

/// One minute of this node's view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Proven peers now.
    pub peers: u64,
    /// Other identities this node knows of (accounts in the state).
    pub known: u64,
    /// Median delay between an op's time and its arrival here, over the
    /// cycle's ops (`None`: no op arrived).
    pub latency_ms: Option<u64>,
    /// Pieces promised by peers that never came, of those asked for, in
    /// basis points (`None`: nothing asked).
    pub loss_bps: Option<u64>,
    pub ops_per_min: u64,
}

/// A health problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    LowConnectivity,
    HighLatency,
    MessageLoss,
    Overload,
}

impl Problem {
    pub const ALL: [Problem; 4] =
        [Problem::LowConnectivity, Problem::HighLatency, Problem::MessageLoss, Problem::Overload];

    pub fn name(self) -> &'static str {
        match self {
            Problem::LowConnectivity => "low_connectivity",
            Problem::HighLatency => "high_latency",
            Problem::MessageLoss => "message_loss",
            Problem::Overload => "overload",
        }
    }

    /// Rule `health_check`.
    pub fn present(self, s: &Sample, t: &HealthTargets) -> bool {
        match self {
            Problem::LowConnectivity => s.peers < t.min_peers.min(s.known),
            Problem::HighLatency => s.latency_ms.is_some_and(|l| l > t.max_latency_ms),
            Problem::MessageLoss => s.loss_bps.is_some_and(|l| l > t.max_loss_bps),
            Problem::Overload => s.ops_per_min > t.max_ops_per_min,
        }
    }
}

/// One measure against its target, for the Network view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Vital {
    pub problem: Problem,
    pub current: Option<u64>,
    pub target: u64,
    pub ok: bool,
    /// Consecutive cycles it has been present.
    pub streak: u32,
}

/// The monitor of one node.
#[derive(Clone, Debug, Default)]
pub struct Monitor {
    pub targets: HealthTargets,
    streak: BTreeMap<Problem, u32>,
    last: Option<Sample>,
}

impl Monitor {
    pub fn new(targets: HealthTargets) -> Monitor {
        Monitor { targets, ..Monitor::default() }
    }

    /// Takes one cycle's sample; returns the remedy to propose now, if any
    /// (rules `persist_before_remedy`, `one_open_remedy`,
    /// `escalate_after_three`, `remedy_bounded`). At most one per cycle.
    pub fn cycle(&mut self, s: Sample, state: &State) -> Option<ProposalSpec> {
        self.last = Some(s);
        for p in Problem::ALL {
            let n = self.streak.entry(p).or_insert(0);
            *n = if p.present(&s, &self.targets) { n.saturating_add(1) } else { 0 };
        }
        Problem::ALL.into_iter().find_map(|p| {
            if self.streak.get(&p).copied().unwrap_or(0) < PERSIST_CYCLES || open_remedy(state, p) {
                return None;
            }
            let spec = remedy(state, p)?;
            // The streak starts over: a stronger remedy needs three more
            // cycles of the problem after this one.
            self.streak.insert(p, 0);
            Some(spec)
        })
    }

    /// Every measure against its target (after the last sample).
    pub fn vitals(&self) -> Vec<Vital> {
        let s = self.last.unwrap_or_default();
        let t = &self.targets;
        Problem::ALL
            .into_iter()
            .map(|p| {
                let (current, target) = match p {
                    Problem::LowConnectivity => (Some(s.peers), t.min_peers),
                    Problem::HighLatency => (s.latency_ms, t.max_latency_ms),
                    Problem::MessageLoss => (s.loss_bps, t.max_loss_bps),
                    Problem::Overload => (Some(s.ops_per_min), t.max_ops_per_min),
                };
                let ok = self.last.is_none() || !p.present(&s, t);
                Vital { problem: p, current, target, ok, streak: self.streak.get(&p).copied().unwrap_or(0) }
            })
            .collect()
    }
}

fn is_remedy_for(tags: &[String], p: Problem) -> bool {
    tags.iter().any(|t| t == TAG) && tags.iter().any(|t| t == p.name())
}

/// Rule `one_open_remedy`.
pub fn open_remedy(state: &State, p: Problem) -> bool {
    state.gov.proposals.values().any(|x| {
        matches!(x.status, ProposalStatus::Open | ProposalStatus::PendingRatification) && is_remedy_for(&x.tags, p)
    })
}

/// Rules `escalate_after_three` and `remedy_bounded`: the next remedy for
/// `p`, from the remedies the network already executed.
pub fn remedy(state: &State, p: Problem) -> Option<ProposalSpec> {
    if p == Problem::Overload {
        return None;
    }
    let done = state
        .gov
        .proposals
        .values()
        .filter(|x| x.status == ProposalStatus::Executed && is_remedy_for(&x.tags, p))
        .count() as u64;
    let now = state.params.net_target_degree;
    let next = now.saturating_add(2 * (done + 1)).min(MAX_DEGREE);
    if next <= now {
        return None;
    }
    let level = done + 1;
    Some(ProposalSpec {
        kind: ProposalKind::ConfigChange,
        title: format!("[immune system] {}: raise net_target_degree to {next}", p.name()),
        description: format!(
            "This node measured {} for {PERSIST_CYCLES} cycles in a row. Remedy level {level}: each node keeps \
             {next} peers instead of {now} (more paths for ops, more peers to fetch from).",
            p.name()
        ),
        tags: vec![TAG.to_owned(), p.name().to_owned()],
        command: Some(Command::ConfigChange { key: "net_target_degree".into(), value: ConfigValue::Int(next) }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Signer;
    use crate::service::governance::{Step, propose, step};
    use crate::service::testkit::World;

    fn sick() -> Sample {
        Sample { peers: 1, known: 20, latency_ms: Some(50), loss_bps: Some(0), ops_per_min: 10 }
    }

    fn healthy() -> Sample {
        Sample { peers: 5, known: 20, latency_ms: Some(50), loss_bps: Some(0), ops_per_min: 10 }
    }

    #[test]
    fn health_check_a_healthy_network_produces_no_proposal() {
        let w = World::dev();
        let mut m = Monitor::default();
        for _ in 0..50 {
            assert!(w.read(|st| m.cycle(healthy(), st)).is_none());
        }
        assert!(m.vitals().iter().all(|v| v.ok));
        // No op arrived, nothing asked: not a problem either.
        let idle = Sample { peers: 4, known: 20, latency_ms: None, loss_bps: None, ops_per_min: 0 };
        for _ in 0..10 {
            assert!(w.read(|st| m.cycle(idle, st)).is_none());
        }
        // A network of three: two peers each is all there is.
        let small = Sample { peers: 2, known: 2, ..healthy() };
        for _ in 0..10 {
            assert!(w.read(|st| m.cycle(small, st)).is_none());
        }
    }

    #[test]
    fn persist_before_remedy_three_cycles_then_one_remedy() {
        let w = World::dev();
        let mut m = Monitor::default();
        assert!(w.read(|st| m.cycle(sick(), st)).is_none());
        assert!(w.read(|st| m.cycle(sick(), st)).is_none());
        let spec = w.read(|st| m.cycle(sick(), st)).expect("third cycle");
        assert_eq!(spec.tags, vec!["immune_system".to_string(), "low_connectivity".to_string()]);
        assert!(
            matches!(spec.command, Some(Command::ConfigChange { ref key, value: ConfigValue::Int(10) }) if key == "net_target_degree")
        );
        // A gap resets the count.
        let mut m = Monitor::default();
        for s in [sick(), sick(), healthy(), sick(), sick()] {
            assert!(w.read(|st| m.cycle(s, st)).is_none());
        }
    }

    #[test]
    fn one_open_remedy_never_duplicated_while_one_is_open_anywhere() {
        let w = World::dev();
        let (mut a, mut b) = (Monitor::default(), Monitor::default());
        for _ in 0..2 {
            w.read(|st| a.cycle(sick(), st));
            w.read(|st| b.cycle(sick(), st));
        }
        let spec = w.read(|st| a.cycle(sick(), st)).expect("a proposes");
        w.as_(0).run(|_| propose("global", spec)).expect("published");
        // B reaches three cycles after A's proposal arrived: nothing.
        assert!(w.read(|st| b.cycle(sick(), st)).is_none());
        for _ in 0..10 {
            assert!(w.read(|st| a.cycle(sick(), st)).is_none(), "still open");
            assert!(w.read(|st| b.cycle(sick(), st)).is_none());
        }
    }

    #[test]
    fn escalate_after_three_an_executed_remedy_makes_the_next_one_bigger() {
        let w = World::dev();
        let mut m = Monitor::default();
        for _ in 0..2 {
            w.read(|st| m.cycle(sick(), st));
        }
        let spec = w.read(|st| m.cycle(sick(), st)).expect("level 1");
        let p = w.as_(0).run(|_| propose("global", spec)).expect("proposed");
        w.as_(0).run(|st| step(st, w.identity(), p, Step::Vote(true))).expect("vote");
        w.as_(1).run(|st| step(st, w.identity(), p, Step::Vote(true))).expect("vote");
        w.advance(2 * 86_400_000);
        w.as_(0).run(|st| step(st, w.identity(), p, Step::Close)).expect("close");
        let _ = w.as_(0).run(|st| step(st, w.identity(), p, Step::Ratify));
        let _ = w.as_(1).run(|st| step(st, w.identity(), p, Step::Ratify));
        assert_eq!(
            w.state().gov.proposals[&p].status,
            ProposalStatus::Executed,
            "{:?}",
            w.state().gov.proposals[&p].tally
        );
        assert_eq!(w.state().params.net_target_degree, 10);
        // Still sick: three more cycles, then + 4 (level 2).
        assert!(w.read(|st| m.cycle(sick(), st)).is_none());
        assert!(w.read(|st| m.cycle(sick(), st)).is_none());
        let spec = w.read(|st| m.cycle(sick(), st)).expect("level 2");
        assert!(matches!(spec.command, Some(Command::ConfigChange { value: ConfigValue::Int(14), .. })));
    }

    #[test]
    fn remedy_bounded_none_past_the_maximum_and_none_for_overload() {
        let w = World::dev();
        let mut st = w.state().clone();
        st.params.net_target_degree = MAX_DEGREE;
        assert!(remedy(&st, Problem::LowConnectivity).is_none());
        st.params.net_target_degree = 15;
        assert!(matches!(
            remedy(&st, Problem::HighLatency).and_then(|s| s.command),
            Some(Command::ConfigChange { value: ConfigValue::Int(16), .. })
        ));
        assert!(remedy(&st, Problem::Overload).is_none());
        let mut m = Monitor::default();
        let flood = Sample { ops_per_min: 10_000, ..healthy() };
        for _ in 0..5 {
            assert!(m.cycle(flood, &st).is_none(), "overload is shown, not proposed");
        }
        assert!(m.vitals().iter().any(|v| v.problem == Problem::Overload && !v.ok && v.streak == 5));
    }
}
