//! Governance: proposing, voting, closing, expiring and ratifying
//! proposals, and the proposals as the page shows them (with tallies).

use super::{Intent, Result, channels};
use crate::core::ballot;
use crate::core::governance::{Proposal, ProposalStatus, Tally};
use crate::core::hlc::Hlc;
use crate::core::op::{Command, ConfigValue, NewProposal, OpBody, OpId, ProposalKind};
use crate::core::op::{GLOBAL_CHANNEL, SignedOp, VerifiedOp};
use crate::core::reject::Reject;
use crate::core::ring::{self, VotingSecret};
use crate::core::state::State;
use crate::identity::{Identity, NodeId};
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

/// Step `step` on proposal `proposal`, in the proposal's channel, by `me`.
/// A vote of a member in the proposal's anonymous rings is linked to its
/// key image (rule `one_vote_per_member`).
pub fn step(st: &State, me: &Identity, proposal: OpId, step: Step) -> Result<Intent> {
    let body = match step {
        Step::Vote(yes) => public_vote(st, me, proposal, yes)?,
        Step::Close => OpBody::ProposalClose { proposal },
        Step::Expire => OpBody::ProposalExpire { proposal },
        Step::Ratify => OpBody::Ratify { proposal },
    };
    Ok(Intent::new(channels::of_proposal(st, proposal)?, body))
}

/// A public vote: linked when `me` is in the proposal's rings.
fn public_vote(st: &State, me: &Identity, proposal: OpId, yes: bool) -> Result<OpBody> {
    channels::of_proposal(st, proposal)?;
    let Some(p) = st.gov.proposals.get(&proposal) else { return Ok(OpBody::Vote { proposal, yes }) };
    if !p.ballot.ring_of.contains_key(&me.node_id()) {
        return Ok(OpBody::Vote { proposal, yes });
    }
    let secret = VotingSecret::from_seed(&me.seed());
    let link = ring::sign(&secret, &[secret.public()], &proposal.0, &ballot::link_message(&me.node_id()), &me.seed())
        .map_err(|e| e.to_string())?;
    Ok(OpBody::LinkedVote { proposal, yes, link })
}

/// Rule `voting_key_publish`: this identity's voting key with its proof.
pub fn publish_voting_key(me: &Identity) -> Result<Intent> {
    let secret = VotingSecret::from_seed(&me.seed());
    let proof = ballot::prove_possession(&secret, &me.node_id()).map_err(|e| e.to_string())?;
    Ok(Intent::new(GLOBAL_CHANNEL, OpBody::VotingKeyPublish { key: secret.public(), proof }))
}

/// Whether `me` still has to publish its voting key.
pub fn voting_key_missing(st: &State, me: &NodeId) -> bool {
    !st.gov.voting_keys.contains_key(me)
}

/// Rule `anonymous_vote`: `me`'s anonymous vote on `proposal`, as the only
/// op of a fresh key (from `rng`), dated `now_ms`. Checked against `st`
/// first: the proposal takes votes, `me` is in one of its rings, and has
/// not voted on it in either way (unless `unchecked`: a modified client,
/// for tests of what the others do). The caller sends it through the stem
/// phase (`pubsub`, rule `stem_before_fluff`), not as its own op.
pub fn anonymous_vote<R: rand_core::CryptoRngCore>(
    st: &State,
    me: &Identity,
    proposal: OpId,
    yes: bool,
    now_ms: u64,
    unchecked: bool,
    rng: &mut R,
) -> Result<VerifiedOp> {
    channels::of_proposal(st, proposal)?;
    let Some(p) = st.gov.proposals.get(&proposal) else { return Err(Reject::NoSuchProposal(proposal).to_string()) };
    if p.status != ProposalStatus::Open {
        return Err(Reject::ProposalNotOpen { proposal, status: p.status.name() }.to_string());
    }
    let Some(&ring_index) = p.ballot.ring_of.get(&me.node_id()) else {
        return Err("this identity is not in the proposal's anonymous rings: only members whose voting key was \
                    published before the proposal opened can vote anonymously on it"
            .to_owned());
    };
    let secret = VotingSecret::from_seed(&me.seed());
    let image = secret.image(&proposal.0);
    if !unchecked && (p.ballot.anonymous.contains_key(&image) || p.ballot.public_images.contains(&image)) {
        return Err(Reject::AlreadyVoted.to_string());
    }
    let members = &p.ballot.rings.get(usize::from(ring_index)).ok_or("the proposal's ring is missing")?.members;
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let carrier = Identity::from_seed(seed);
    let mut nonce = [0u8; 32];
    rng.fill_bytes(&mut nonce);
    let message = ballot::anonymous_message(&carrier.node_id(), yes, ring_index);
    let signature = ring::sign(&secret, members, &proposal.0, &message, &nonce).map_err(|e| e.to_string())?;
    let body = OpBody::AnonymousVote { proposal, yes, ring: ring_index, signature };
    SignedOp::create(&carrier, 1, OpId::ZERO, Hlc::new(now_ms, 0), &p.channel, body).map_err(|e| e.to_string())
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
        let e = w.read(|st| step(st, w.identity(), OpId::ZERO, Step::Vote(true))).unwrap_err();
        assert!(e.starts_with("no proposal 0000"), "{e}");
        // Voting on a closed proposal is the core's refusal.
        let p = w.as_(0).run(|_| propose("dev", generic("early"))).expect("proposed");
        w.advance(30 * 24 * 3_600_000);
        w.as_(0).run(|st| step(st, w.identity(), p, Step::Close)).expect("closed");
        assert!(w.as_(1).run(|st| step(st, w.identity(), p, Step::Vote(true))).is_err());
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
        w.as_(0).run(|st| step(st, w.identity(), p, Step::Vote(true))).expect("yes");
        w.as_(1).run(|st| step(st, w.identity(), p, Step::Vote(true))).expect("yes");
        let rows = w.read(|st| proposals(st, w.now.get()));
        assert_eq!(rows.len(), 1);
        assert!(rows[0].tally.yes_weight_milli > 0 && rows[0].tally.no_weight_milli == 0);
        w.advance(30 * 24 * 3_600_000);
        w.as_(1).run(|st| step(st, w.identity(), p, Step::Close)).expect("closed");
        assert_ne!(w.read(|st| st.gov.proposals[&p].status), ProposalStatus::Open);
    }
}
