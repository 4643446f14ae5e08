//! Governance: proposing, voting, closing, expiring and ratifying
//! proposals, and the proposals as the page shows them (with tallies).

use super::{Intent, Result, channels};
use crate::core::governance::{Proposal, ProposalStatus, Tally};
use crate::core::op::{Command, ConfigValue, NewProposal, OpBody, OpId, ProposalKind};
use crate::core::state::State;
use std::sync::Arc;

/// `propose`'s argument.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalSpec {
    pub kind: ProposalKind,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub command: Option<Command>,
}

/// Creates a proposal in `channel` (`global` allowed).
pub fn propose(channel: &str, spec: ProposalSpec) -> Result<Intent> {
    if channel.trim().is_empty() {
        return Err("choose a channel".into());
    }
    let p = NewProposal {
        kind: spec.kind,
        title: spec.title,
        description: spec.description,
        tags: spec.tags,
        command: spec.command,
    };
    Ok(Intent::new(channel, OpBody::ProposalCreate(p)))
}

/// A `config_change` command from a key and a typed number.
pub fn config_change(key: &str, value: &str) -> Result<Command> {
    let v: u64 = value.trim().parse().map_err(|_| format!("{key} takes a whole number"))?;
    Ok(Command::ConfigChange { key: key.to_owned(), value: ConfigValue::Int(v) })
}

/// What can be done to an existing proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Votes (or re-votes) yes (`true`) or no.
    Vote(bool),
    /// Closes it after its minimum voting period; an approved command runs.
    Close,
    /// Deadline op: closes it once its voting deadline passed.
    Expire,
    /// A validator's ratification of an approved network operation.
    Ratify,
}

/// Step `step` on proposal `proposal`, in the proposal's channel.
pub fn step(st: &State, proposal: OpId, step: Step) -> Result<Intent> {
    let body = match step {
        Step::Vote(yes) => OpBody::Vote { proposal, yes },
        Step::Close => OpBody::ProposalClose { proposal },
        Step::Expire => OpBody::ProposalExpire { proposal },
        Step::Ratify => OpBody::Ratify { proposal },
    };
    Ok(Intent::new(channels::of_proposal(st, proposal)?, body))
}

/// A proposal with its tally: the final one once closed, else the live
/// one at `now_ms` (weights decay with time, so it changes by itself).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProposalRow {
    pub proposal: Arc<Proposal>,
    pub tally: Tally,
    /// Ratifications needed (rule `ratification_quorum`).
    pub ratification_quorum: usize,
    /// Ms until a close may end the vote (0: it may now).
    pub closable_in_ms: u64,
    /// Ms until the voting deadline (0: passed).
    pub deadline_in_ms: u64,
}

/// Every proposal with its tally: open ones first, then newest first.
pub fn proposals(st: &State, now_ms: u64) -> Vec<ProposalRow> {
    let mut v: Vec<ProposalRow> = st
        .gov
        .proposals
        .values()
        .map(|p| ProposalRow {
            tally: p.tally.clone().unwrap_or_else(|| st.tally(p, now_ms)),
            ratification_quorum: p.quorum(&st.params.rules),
            closable_in_ms: p.closable_ms.saturating_sub(now_ms),
            deadline_in_ms: p.deadline_ms.saturating_sub(now_ms),
            proposal: p.clone(),
        })
        .collect();
    v.sort_by_key(|r| {
        let p = &r.proposal;
        (p.status != ProposalStatus::Open, std::cmp::Reverse(p.created.ms), p.id.0)
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Signer;
    use crate::service::testkit::World;

    fn generic(title: &str) -> ProposalSpec {
        ProposalSpec {
            kind: ProposalKind::Generic,
            title: title.into(),
            description: String::new(),
            tags: vec![],
            command: None,
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(propose(" ", generic("x")).unwrap_err(), "choose a channel");
        assert_eq!(config_change("tax_bps", "ten").unwrap_err(), "tax_bps takes a whole number");
        let w = World::dev();
        let e = w.read(|st| step(st, OpId::ZERO, Step::Vote(true))).unwrap_err();
        assert!(e.starts_with("no proposal 0000"), "{e}");
        // Voting on a closed proposal is the core's refusal.
        let p = w.as_(0).run(|_| propose("dev", generic("early"))).expect("proposed");
        w.advance(30 * 24 * 3_600_000);
        w.as_(0).run(|st| step(st, p, Step::Close)).expect("closed");
        assert!(w.as_(1).run(|st| step(st, p, Step::Vote(true))).is_err());
    }

    #[test]
    fn a_proposal_is_voted_and_closed_with_a_tally() {
        let w = World::dev();
        let spec = ProposalSpec {
            kind: ProposalKind::ConfigChange,
            command: Some(config_change("tax_bps", "300").expect("cmd")),
            ..generic("tax")
        };
        let p = w.as_(0).run(|_| propose("dev", spec)).expect("proposed");
        w.as_(0).run(|st| step(st, p, Step::Vote(true))).expect("yes");
        w.as_(1).run(|st| step(st, p, Step::Vote(true))).expect("yes");
        let rows = w.read(|st| proposals(st, w.now.get()));
        assert_eq!(rows.len(), 1);
        assert!(rows[0].tally.yes_weight_milli > 0 && rows[0].tally.no_weight_milli == 0);
        w.advance(30 * 24 * 3_600_000);
        w.as_(1).run(|st| step(st, p, Step::Close)).expect("closed");
        assert_ne!(w.read(|st| st.gov.proposals[&p].status), ProposalStatus::Open);
    }
}
