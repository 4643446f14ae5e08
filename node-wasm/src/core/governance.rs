//! Governance: proposals, reputation-weighted votes, the validator set,
//! ratification by a quorum of validator signatures and the execution log.
//!
//! Lifecycle of a proposal: `open` → (close or expire) → `closed` (generic,
//! rejected, no quorum or no votes), or `pending_ratification` (any approved
//! proposal that changes something: rule `ratify_every_change`) →
//! `executed` / `failed` when a majority of the validators snapshotted at
//! the close, counted as at least `validator_floor`, have ratified it. The
//! op that completes the quorum executes the command, so it enters the
//! execution log exactly once, at that op's position. Only members' votes
//! count, and they must reach the quorum (`core/rules.rs`).
//!
//! Weights are fixed point in milli-units (1 = 1000), computed with an exact
//! integer `log2` (32 fractional bits, truncated), summed per side, and
//! compared as integers.

use crate::codec::Writer;
use crate::core::ballot::{self, AnonymousTally, Ballot};
use crate::core::common::{Ctx, hlc, is_blank, list};
use crate::core::config_range;
use crate::core::economy::Params;
use crate::core::hlc::Hlc;
use crate::core::ledger::{Account, Ledger};
use crate::core::op::encode_command;
use crate::core::op::{Command, ConfigValue, MAX_TITLE_CHARS, NewProposal, OpId, ProposalKind};
use crate::core::reject::Reject;
use crate::core::reputation::{MILLI, Reputation};
use crate::core::ring::{RingSignature, VotingKey};
use crate::core::rules::Rules;
use crate::core::upgrade::ModuleHash;
use crate::core::upgrades::{PolicyHooks, PolicyView};
use crate::identity::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Fractional bits of [`log2_q32`].
pub const LOG2_FRAC_BITS: u32 = 32;

/// `log2(x)` in Q32 fixed point (`x >= 1`; `log2(0)` is taken as 0), exact
/// up to truncation of the 32nd fractional bit. Integer part from the
/// highest set bit; each fractional bit by squaring the normalised mantissa.
pub fn log2_q32(x: u64) -> u64 {
    if x == 0 {
        return 0;
    }
    let k = 63 - u64::from(x.leading_zeros());
    // Mantissa m = x / 2^k in [1, 2), as Q62.
    let mut m: u128 = if k <= 62 { (x as u128) << (62 - k) } else { (x as u128) >> 1 };
    let two: u128 = 2 << 62;
    let mut frac = 0u64;
    for bit in (0..LOG2_FRAC_BITS).rev() {
        m = (m * m) >> 62;
        if m >= two {
            m >>= 1;
            frac |= 1 << bit;
        }
    }
    (k << LOG2_FRAC_BITS) | frac
}

/// `log2(points + 1)` in Q32 for a score in milli-points:
/// `log2(milli + 1000) − log2(1000)`.
fn log2_points_plus_one_q32(milli: u64) -> u64 {
    log2_q32(milli.saturating_add(MILLI)).saturating_sub(log2_q32(MILLI))
}

/// Rule `vote_weight`: `1 + log2(total + 1) + log2(spec + 1)` in milli-units
/// (floor), where the last term counts only when the proposal has tags and
/// `spec` is the sum of the voter's scores on those tags. Also returns the
/// proposal tags the voter has a score in.
pub fn vote_weight_milli(rep: &Reputation, proposal_tags: &[String]) -> (u64, Vec<String>) {
    // Saturating is safe here: a weight moves no SP (see `tally_with_faults`).
    let mut q = (1u64 << LOG2_FRAC_BITS).saturating_add(log2_points_plus_one_q32(rep.total));
    let mut matched = Vec::new();
    if !proposal_tags.is_empty() {
        let mut spec = 0u64;
        for t in proposal_tags {
            if let Some(v) = rep.tags.get(t) {
                spec = spec.saturating_add(*v);
                matched.push(t.clone());
            }
        }
        q = q.saturating_add(log2_points_plus_one_q32(spec));
    }
    let milli = (q as u128 * MILLI as u128) >> LOG2_FRAC_BITS;
    (u64::try_from(milli).unwrap_or(u64::MAX), matched)
}

/// A milli-unit value shown with two decimals, rounded half up (`7918` → `"7.92"`).
pub fn display_milli(v: u64) -> String {
    let c = v / 10 + u64::from(v % 10 >= 5);
    format!("{}.{:02}", c / 100, c % 100)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    Open,
    /// Closed without an effect (generic, rejected, or no votes).
    Closed,
    PendingRatification,
    /// Its command ran and succeeded.
    Executed,
    /// Its command ran and failed (see the execution log).
    Failed,
}

impl ProposalStatus {
    pub fn name(self) -> &'static str {
        match self {
            ProposalStatus::Open => "open",
            ProposalStatus::Closed => "closed",
            ProposalStatus::PendingRatification => "pending_ratification",
            ProposalStatus::Executed => "executed",
            ProposalStatus::Failed => "failed",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteOutcome {
    Approved,
    Rejected,
    /// No votes.
    Pending,
    /// Counted votes did not reach the quorum (rule `quorum`).
    NoQuorum,
}

impl VoteOutcome {
    pub fn name(self) -> &'static str {
        match self {
            VoteOutcome::Approved => "approved",
            VoteOutcome::Rejected => "rejected",
            VoteOutcome::Pending => "pending",
            VoteOutcome::NoQuorum => "no_quorum",
        }
    }
}

/// One voter's line in a tally.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteDetail {
    pub voter: NodeId,
    pub yes: bool,
    /// `_total` at the close, milli-points.
    pub reputation_milli: u64,
    /// Weight, milli-units.
    pub weight_milli: u64,
    /// The proposal's tags the voter has a score in.
    pub tags_matched: Vec<String>,
    /// A member's vote (rule `member`); others are shown, never counted.
    pub counted: bool,
}

/// A weighted count of the votes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Counted (members') weight for and against, milli-units.
    pub yes_weight_milli: u64,
    pub no_weight_milli: u64,
    /// The weight of every member at the tally's time (rule `quorum`).
    pub eligible_weight_milli: u64,
    /// The counted weight needed: `ceil(eligible * quorum_bps / 10000)`,
    /// and at least one counted vote.
    pub quorum_weight_milli: u64,
    pub outcome: VoteOutcome,
    /// In voter-id order.
    pub details: Vec<VoteDetail>,
    /// The anonymous ballot (rule `anonymous_weight`): its weights are in
    /// `yes_weight_milli` and `no_weight_milli` too.
    #[serde(default)]
    pub anonymous: AnonymousTally,
}

/// A proposal as the fold sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub id: OpId,
    pub channel: String,
    pub proposer: NodeId,
    pub kind: ProposalKind,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub command: Option<Command>,
    pub created: Hlc,
    /// A close op is valid from this op time (minimum voting period).
    pub closable_ms: u64,
    /// Votes are taken up to and including this op time; an expire op is
    /// valid after it.
    pub deadline_ms: u64,
    /// `true` = yes.
    pub votes: BTreeMap<NodeId, bool>,
    pub status: ProposalStatus,
    pub tally: Option<Tally>,
    pub closed: Option<Hlc>,
    pub closed_automatically: bool,
    /// The validator set computed at the close (ratification quorum base).
    pub validators: Vec<NodeId>,
    pub ratifications: BTreeSet<NodeId>,
    /// Index of its execution-log entry.
    pub execution: Option<u64>,
    /// The anonymous ballot: rings fixed at creation, votes by key image.
    #[serde(default)]
    pub ballot: Ballot,
}

impl Proposal {
    /// Rule `ratification_quorum`: a majority of the validators snapshotted
    /// at the close, counted as at least `validator_floor` (with fewer
    /// eligible validators than the floor, all of them and more are needed,
    /// so a network too young to have validators changes nothing).
    pub fn quorum(&self, rules: &Rules) -> usize {
        let floor = usize::try_from(rules.validator_floor).unwrap_or(usize::MAX);
        self.validators.len().max(floor) / 2 + 1
    }

    /// Whether the proposal changes anything when it passes (everything but
    /// `generic`): those need ratification.
    pub fn changes_something(&self) -> bool {
        self.kind != ProposalKind::Generic && self.command.is_some()
    }
}

/// What a command did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    pub success: bool,
    /// A human sentence: what changed, or why nothing did.
    pub message: String,
}

/// One executed command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecEntry {
    pub index: u64,
    pub proposal: OpId,
    pub command: Command,
    /// The op whose folding executed it (the close, or the quorum-reaching ratify).
    pub op: OpId,
    pub at: Hlc,
    /// The ratifying validators (empty for commands executed at close).
    pub ratified_by: Vec<NodeId>,
    pub result: CommandResult,
}

/// A schema installed by `update_schema`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomSchema {
    pub version: u64,
    /// JSON text.
    pub definition: String,
    pub updated: Hlc,
}

/// The governance part of the state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Governance {
    pub proposals: BTreeMap<OpId, Arc<Proposal>>,
    /// The validator set as last recomputed (at each proposal close).
    pub validators: Vec<NodeId>,
    pub execution_log: Vec<ExecEntry>,
    /// Bumped by every successful `config_change`.
    pub config_version: u64,
    pub schemas: BTreeMap<String, CustomSchema>,
    /// Rule `voting_key_publish`: each identity's voting key.
    #[serde(default)]
    pub voting_keys: BTreeMap<NodeId, VotingKey>,
}

/// The config keys a `config_change` may set (all integers; each has an
/// inclusive range in `config_range::CONFIG_RANGES`).
pub const CONFIG_KEYS: &[&str] = &[
    "initial_sp",
    "tax_bps",
    "task_reputation_milli",
    "vote_reputation_milli",
    "proposal_min_voting_seconds",
    "proposal_auto_close_after_seconds",
    "validator_set_size",
    "net_target_degree",
];

/// Rule `proposal_schema`: title 1..=200 characters and not blank, tags
/// non-blank and unique, and the command matching the kind (`generic`: none;
/// `config_change`: a config change; `command` and `network_operation`: any
/// command but a code upgrade; `code_upgrade`: a code upgrade).
pub fn validate_new_proposal(p: &NewProposal) -> Result<(), Reject> {
    let chars = p.title.chars().count();
    if chars == 0 || chars > MAX_TITLE_CHARS || is_blank(&p.title) {
        return Err(Reject::BadTitle { chars });
    }
    let mut seen = BTreeSet::new();
    for tag in &p.tags {
        if is_blank(tag) {
            return Err(Reject::BadTag(tag.clone()));
        }
        if !seen.insert(tag.as_str()) {
            return Err(Reject::DuplicateTag(tag.clone()));
        }
    }
    let ok = match (p.kind, &p.command) {
        (ProposalKind::Generic, None) => true,
        (ProposalKind::ConfigChange, Some(Command::ConfigChange { .. })) => true,
        (ProposalKind::Command | ProposalKind::NetworkOperation, Some(c)) => !matches!(c, Command::CodeUpgrade { .. }),
        (ProposalKind::CodeUpgrade, Some(Command::CodeUpgrade { .. })) => true,
        _ => false,
    };
    if !ok {
        return Err(Reject::BadProposal("the command does not match the proposal type"));
    }
    Ok(())
}

/// What a close or a ratification asks the caller to execute now: the
/// proposal's command, run against the other layers by `State` (governance
/// cannot reach them), then recorded with [`Governance::record_execution`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    pub proposal: OpId,
    pub command: Command,
    /// The ratifying validators (empty for commands executed at close).
    pub ratified_by: Vec<NodeId>,
}

/// Rule `vote_outcome`: the weighted tally at op time `at_ms` (reputation
/// decayed to then, read from `accounts`) under the active `vote_weight`
/// policy. Only members' votes count (rule `member`); the counted weight
/// must reach the quorum, `quorum_bps` of the weight of every member
/// (rule `quorum`); then approved iff yes > no (ties reject); no votes at
/// all → pending. Also returns the module of every weight that fell back to
/// the built-in one (the fold counts them at the close).
pub fn tally_with_faults(
    p: &Proposal,
    at_ms: u64,
    accounts: &BTreeMap<NodeId, Account>,
    rules: &Rules,
    policy: PolicyView<'_>,
) -> (Tally, Vec<ModuleHash>) {
    let (mut yes_w, mut no_w, mut eligible) = (0u64, 0u64, 0u64);
    let mut details = Vec::with_capacity(p.votes.len());
    let mut faults = Vec::new();
    // Weights and tallies saturate on purpose: they move no SP and pair
    // with no other counter, so a saturated sum breaks no invariant (it can
    // only make an absurd weight count as `u64::MAX`, the same on every
    // replica). Reputation itself is bounded by the config ranges.
    let mut weigh = |rep: &Reputation| {
        let (builtin, matched) = vote_weight_milli(rep, &p.tags);
        let spec = p.tags.iter().filter_map(|t| rep.tags.get(t)).fold(0u64, |a, v| a.saturating_add(*v));
        let r = policy.vote_weight(rep.total, spec, !p.tags.is_empty(), builtin);
        faults.extend(r.fault);
        (r.value, matched)
    };
    // Each reputation is decayed once and serves both the member test and
    // the weight.
    for a in accounts.values() {
        let rep = a.reputation.at(at_ms);
        if rules.is_member(a.founder, rep.total) {
            eligible = eligible.saturating_add(weigh(&rep).0);
        }
    }
    for (voter, yes) in &p.votes {
        let account = accounts.get(voter);
        let rep = account.map(|a| a.reputation.at(at_ms)).unwrap_or_default();
        let counted = account.is_some_and(|a| rules.is_member(a.founder, rep.total));
        let (w, matched) = weigh(&rep);
        if counted && *yes {
            yes_w = yes_w.saturating_add(w);
        } else if counted {
            no_w = no_w.saturating_add(w);
        }
        details.push(VoteDetail {
            voter: *voter,
            yes: *yes,
            reputation_milli: rep.total,
            weight_milli: w,
            tags_matched: matched,
            counted,
        });
    }
    let anonymous = p.ballot.tally();
    yes_w = yes_w.saturating_add(anonymous.yes_weight_milli);
    no_w = no_w.saturating_add(anonymous.no_weight_milli);
    let quorum = quorum_weight(eligible, rules.quorum_bps);
    let turnout = yes_w.saturating_add(no_w);
    let outcome = if details.is_empty() && anonymous.total == 0 {
        VoteOutcome::Pending
    } else if rules.quorum_bps > 0 && (turnout == 0 || turnout < quorum) {
        VoteOutcome::NoQuorum
    } else if yes_w > no_w {
        VoteOutcome::Approved
    } else {
        VoteOutcome::Rejected
    };
    let tally = Tally {
        yes_weight_milli: yes_w,
        no_weight_milli: no_w,
        eligible_weight_milli: eligible,
        quorum_weight_milli: quorum,
        outcome,
        details,
        anonymous,
    };
    (tally, faults)
}

/// Rule `quorum`: `ceil(eligible * bps / 10000)` in u128 (no overflow).
pub fn quorum_weight(eligible: u64, bps: u64) -> u64 {
    let q = (eligible as u128 * bps.min(10_000) as u128).div_ceil(10_000);
    u64::try_from(q).unwrap_or(u64::MAX)
}

/// Rule `validator_set`: the top `size` identities by `_total` reputation at
/// op time `at_ms` among those eligible (rule `validator_eligible`: founders,
/// and members with enough reputation and age), ties broken by node id
/// (lower first). Keys ground to low ids gain nothing: they are not
/// eligible without earned reputation.
pub fn compute_validators(accounts: &BTreeMap<NodeId, Account>, size: u64, at_ms: u64, rules: &Rules) -> Vec<NodeId> {
    let mut all: Vec<(u64, NodeId)> = accounts
        .iter()
        .filter(|(_, a)| a.is_validator_eligible(at_ms, rules))
        .map(|(id, a)| (a.reputation.at(at_ms).total, *id))
        .collect();
    all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let n = usize::try_from(size).unwrap_or(usize::MAX);
    all.into_iter().take(n).map(|(_, id)| id).collect()
}

impl Governance {
    fn live_proposal(&self, cx: Ctx<'_>, id: OpId) -> Result<&Proposal, Reject> {
        let p = self.proposals.get(&id).ok_or(Reject::NoSuchProposal(id))?;
        if p.channel != cx.channel {
            return Err(Reject::ProposalWrongChannel { proposal: id, channel: p.channel.clone() });
        }
        Ok(p)
    }

    /// A proposal for writing (copy-on-write if a checkpoint shares it).
    pub(crate) fn proposal_mut(&mut self, id: &OpId) -> Option<&mut Proposal> {
        self.proposals.get_mut(id).map(Arc::make_mut)
    }

    /// Rule `proposal_create`: valid body (`proposal_schema`); the channel
    /// exists (`global` included) and accepts new work. The minimum voting
    /// period and the auto-close deadline are fixed from the config current
    /// at creation.
    pub(crate) fn proposal_create(
        &mut self,
        cx: Ctx<'_>,
        p: &NewProposal,
        ledger: &Ledger,
        params: &Params,
    ) -> Result<(), Reject> {
        validate_new_proposal(p)?;
        ledger.channel(cx.channel)?.check_accepts_new_work(cx.channel)?;
        // Op times, not SP: the config ranges keep these at most 365 days, and
        // a deadline saturating at the end of time (an op dated near
        // `u64::MAX` ms) only means "never", which breaks no invariant.
        let secs = |s: u64| s.saturating_mul(1000);
        let proposal = Proposal {
            id: cx.id,
            channel: cx.channel.to_owned(),
            proposer: cx.author,
            kind: p.kind,
            title: p.title.clone(),
            description: p.description.clone(),
            tags: p.tags.clone(),
            command: p.command.clone(),
            created: cx.hlc,
            closable_ms: cx.hlc.ms.saturating_add(secs(params.proposal_min_voting_seconds)),
            // Never before the voting period is over: an expire op must not
            // close a proposal its minimum period still protects.
            deadline_ms: cx
                .hlc
                .ms
                .saturating_add(secs(params.proposal_auto_close_after_seconds.max(params.proposal_min_voting_seconds))),
            votes: BTreeMap::new(),
            status: ProposalStatus::Open,
            tally: None,
            closed: None,
            closed_automatically: false,
            validators: Vec::new(),
            ratifications: BTreeSet::new(),
            execution: None,
            ballot: ballot::rings_at_open(&ledger.accounts, &self.voting_keys, &params.rules, cx.hlc.ms),
        };
        self.proposals.insert(cx.id, Arc::new(proposal));
        Ok(())
    }

    /// Rule `vote`: the proposal is open and its deadline has not passed; a
    /// re-vote replaces the earlier one. The first public vote of a node on a
    /// proposal earns `vote_reputation` (+1 point) in the ledger.
    ///
    /// Rule `one_vote_per_member`: a member in the proposal's anonymous
    /// rings links its public vote (`link`) to its key image.
    pub(crate) fn vote(
        &mut self,
        cx: Ctx<'_>,
        id: OpId,
        yes: bool,
        link: Option<&RingSignature>,
        ledger: &mut Ledger,
        params: &Params,
    ) -> Result<(), Reject> {
        let p = self.open_for_votes(cx, id)?;
        let first = !p.votes.contains_key(&cx.author);
        let key = self.voting_keys.get(&cx.author).copied();
        if let Some(p) = self.proposal_mut(&id) {
            p.ballot.public_vote(cx.id.0, &cx.author, key.as_ref(), &id.0, link)?;
            p.votes.insert(cx.author, yes);
        }
        if first {
            ledger.credit_public_vote(cx.author, cx.hlc, params);
        }
        Ok(())
    }

    /// A proposal that takes votes at `cx`'s time.
    fn open_for_votes(&self, cx: Ctx<'_>, id: OpId) -> Result<&Proposal, Reject> {
        let p = self.live_proposal(cx, id)?;
        if p.status != ProposalStatus::Open {
            return Err(Reject::ProposalNotOpen { proposal: id, status: p.status.name() });
        }
        if cx.hlc.ms > p.deadline_ms {
            return Err(Reject::VotingEnded { proposal: id, deadline_ms: p.deadline_ms });
        }
        Ok(p)
    }

    /// Rule `anonymous_vote`: see `core/ballot.rs`. `seq` is the op's; the
    /// author (a fresh key) gets no account and no reputation.
    pub(crate) fn anonymous_vote(
        &mut self,
        cx: Ctx<'_>,
        seq: u64,
        id: OpId,
        yes: bool,
        ring: u16,
        signature: &RingSignature,
    ) -> Result<(), Reject> {
        if seq != 1 {
            return Err(Reject::AnonymousNotFresh);
        }
        self.open_for_votes(cx, id)?;
        match self.proposal_mut(&id) {
            Some(p) => p.ballot.anonymous_vote(cx.id.0, &cx.author, &id.0, yes, ring, signature),
            None => Err(Reject::NoSuchProposal(id)),
        }
    }

    /// Rule `voting_key_publish`: once per identity, a key nobody else
    /// published, with a valid possession proof.
    pub(crate) fn voting_key_publish(
        &mut self,
        cx: Ctx<'_>,
        key: VotingKey,
        proof: &RingSignature,
    ) -> Result<(), Reject> {
        if let Some(k) = self.voting_keys.get(&cx.author) {
            return if *k == key { Ok(()) } else { Err(Reject::VotingKeyFixed) };
        }
        // Publishes are once per identity, so a scan is fine here.
        if self.voting_keys.values().any(|k| *k == key) {
            return Err(Reject::VotingKeyTaken);
        }
        ballot::check_possession(&key, &cx.author, proof)?;
        self.voting_keys.insert(cx.author, key);
        Ok(())
    }

    /// Rule `proposal_close`: anyone may close an open proposal once its
    /// minimum voting period (`proposal_min_voting_seconds`) is over and the
    /// counted votes reach the quorum (rule `quorum`); without a quorum the
    /// vote goes on until the deadline, where `proposal_expire` closes it
    /// whatever the turnout. Nothing executes at a close
    /// (`ratify_every_change`).
    pub(crate) fn proposal_close(
        &mut self,
        cx: Ctx<'_>,
        id: OpId,
        ledger: &Ledger,
        params: &Params,
        policy: &mut PolicyHooks<'_>,
    ) -> Result<(), Reject> {
        let p = self.live_proposal(cx, id)?;
        if p.status != ProposalStatus::Open {
            return Err(Reject::ProposalNotOpen { proposal: id, status: p.status.name() });
        }
        if cx.hlc.ms < p.closable_ms {
            return Err(Reject::VotingPeriodRunning { proposal: id, until_ms: p.closable_ms });
        }
        let counted = tally_with_faults(p, cx.hlc.ms, &ledger.accounts, &params.rules, policy.view());
        let tally = &counted.0;
        // With a quorum rule, neither a short turnout nor silence lets a
        // close end the vote early (a griefer could close every proposal
        // the moment its period ends); the deadline still does.
        if params.rules.quorum_bps > 0 && matches!(tally.outcome, VoteOutcome::NoQuorum | VoteOutcome::Pending) {
            return Err(Reject::QuorumNotReached {
                proposal: id,
                counted_milli: tally.yes_weight_milli.saturating_add(tally.no_weight_milli),
                quorum_milli: tally.quorum_weight_milli.max(1),
                deadline_ms: p.deadline_ms,
            });
        }
        self.close_proposal(cx, id, false, counted, ledger, params, policy);
        Ok(())
    }

    /// Rule `proposal_expire` (deadline op): anyone may close an open
    /// proposal once the op time is past its auto-close deadline.
    pub(crate) fn proposal_expire(
        &mut self,
        cx: Ctx<'_>,
        id: OpId,
        ledger: &Ledger,
        params: &Params,
        policy: &mut PolicyHooks<'_>,
    ) -> Result<(), Reject> {
        let p = self.live_proposal(cx, id)?;
        if p.status != ProposalStatus::Open {
            return Err(Reject::ProposalNotOpen { proposal: id, status: p.status.name() });
        }
        if cx.hlc.ms <= p.deadline_ms {
            return Err(Reject::NotExpired { proposal: id, deadline_ms: p.deadline_ms });
        }
        let counted = tally_with_faults(p, cx.hlc.ms, &ledger.accounts, &params.rules, policy.view());
        self.close_proposal(cx, id, true, counted, ledger, params, policy);
        Ok(())
    }

    /// Shared by close and expire, given the tally they computed: record
    /// the tally's policy faults, recompute and snapshot the validator set,
    /// then settle the status: an approved proposal that changes something
    /// waits for ratification, anything else is closed.
    #[allow(clippy::too_many_arguments)]
    fn close_proposal(
        &mut self,
        cx: Ctx<'_>,
        id: OpId,
        automatically: bool,
        (tally, faults): (Tally, Vec<ModuleHash>),
        ledger: &Ledger,
        params: &Params,
        policy: &mut PolicyHooks<'_>,
    ) {
        let Some(p) = self.proposals.get(&id) else { return };
        policy.record_faults(faults);
        let validators = compute_validators(&ledger.accounts, params.validator_set_size, cx.hlc.ms, &params.rules);
        self.validators = validators.clone();
        let approved = tally.outcome == VoteOutcome::Approved;
        // Rule `ratify_every_change`: an approved proposal that changes
        // anything (config change, command, network operation, code
        // upgrade) waits for a validator quorum; nothing executes at close.
        let status = if approved && p.changes_something() {
            ProposalStatus::PendingRatification
        } else {
            ProposalStatus::Closed
        };
        let Some(p) = self.proposal_mut(&id) else { return };
        p.tally = Some(tally);
        p.validators = validators;
        p.closed = Some(cx.hlc);
        p.closed_automatically = automatically;
        p.status = status;
    }

    /// Rule `ratify`: for every approved proposal that changes something,
    /// pending ratification, only by a member of the validator set
    /// snapshotted at the close, once each. The ratification that reaches
    /// the quorum (`ratification_quorum`) returns the command for execution
    /// (exactly once: the status then leaves `pending_ratification`, so
    /// later ratifications are refused).
    pub(crate) fn ratify(&mut self, cx: Ctx<'_>, id: OpId, params: &Params) -> Result<Option<Execution>, Reject> {
        let p = self.live_proposal(cx, id)?;
        if !p.changes_something() {
            return Err(Reject::NotRatifiable { proposal: id, kind: p.kind.name() });
        }
        if p.status != ProposalStatus::PendingRatification {
            return Err(Reject::NotPendingRatification { proposal: id, status: p.status.name() });
        }
        if !p.validators.contains(&cx.author) {
            return Err(Reject::NotValidator { proposal: id });
        }
        if p.ratifications.contains(&cx.author) {
            return Err(Reject::AlreadyRatified { proposal: id });
        }
        let quorum = p.quorum(&params.rules);
        let command = p.command.clone();
        let mut ratified_by = Vec::new();
        if let Some(p) = self.proposal_mut(&id) {
            p.ratifications.insert(cx.author);
            if p.ratifications.len() >= quorum {
                ratified_by = p.ratifications.iter().copied().collect();
            }
        }
        Ok(match (ratified_by.is_empty(), command) {
            (false, Some(command)) => Some(Execution { proposal: id, command, ratified_by }),
            _ => None,
        })
    }

    /// Appends an executed command's entry to the execution log at the op
    /// `cx` and settles its proposal: `executed` or `failed`.
    pub(crate) fn record_execution(&mut self, cx: Ctx<'_>, run: Execution, outcome: Result<String, String>) {
        let result = match outcome {
            Ok(message) => CommandResult { success: true, message },
            Err(message) => CommandResult { success: false, message },
        };
        let ok = result.success;
        let index = self.execution_log.len() as u64;
        let Execution { proposal, command, ratified_by } = run;
        self.execution_log.push(ExecEntry { index, proposal, command, op: cx.id, at: cx.hlc, ratified_by, result });
        if let Some(p) = self.proposal_mut(&proposal) {
            p.status = if ok { ProposalStatus::Executed } else { ProposalStatus::Failed };
            p.execution = Some(index);
        }
    }

    /// Command `config_change`: the key must be whitelisted (`CONFIG_KEYS`)
    /// and the value an integer within the key's range; bumps `config_version`.
    /// Takes effect for ops folded after this one, never retroactively.
    pub(crate) fn config_change(
        &mut self,
        params: &mut Params,
        key: &str,
        value: &ConfigValue,
    ) -> Result<String, String> {
        if !CONFIG_KEYS.contains(&key) {
            return Err(format!("unknown config key {key:?}"));
        }
        let ConfigValue::Int(v) = value else {
            return Err(format!("config key {key} is an integer, got a {}", value.type_name()));
        };
        let v = *v;
        // Every key has an inclusive range (`config_range.rs`); outside it
        // the command fails and nothing changes (no version bump).
        config_range::check(key, v, &params.rules)?;
        let p = params;
        let slot = match key {
            "initial_sp" => &mut p.initial_sp,
            "tax_bps" => &mut p.tax_bps,
            "task_reputation_milli" => &mut p.task_reputation_milli,
            "vote_reputation_milli" => &mut p.vote_reputation_milli,
            "proposal_min_voting_seconds" => &mut p.proposal_min_voting_seconds,
            "proposal_auto_close_after_seconds" => &mut p.proposal_auto_close_after_seconds,
            "validator_set_size" => &mut p.validator_set_size,
            "net_target_degree" => &mut p.net_target_degree,
            _ => return Err(format!("unknown config key {key:?}")),
        };
        let version = self.config_version.checked_add(1).ok_or("the config version would overflow")?;
        let old = *slot;
        *slot = v;
        self.config_version = version;
        Ok(format!("{key}: {old} -> {v} (config version {})", self.config_version))
    }

    /// Command `update_schema`: the definition is a JSON object whose
    /// `schema_name` equals the name and which has `fields`; the schema's
    /// version starts at 1 and goes up by one per update.
    pub(crate) fn update_schema(&mut self, cx: Ctx<'_>, name: &str, definition: &str) -> Result<String, String> {
        if name.is_empty() || is_blank(name) {
            return Err("the schema name is empty".to_owned());
        }
        let v: serde_json::Value =
            serde_json::from_str(definition).map_err(|_| "the schema definition is not valid JSON".to_owned())?;
        let obj = v.as_object().ok_or_else(|| "the schema definition is not a JSON object".to_owned())?;
        if obj.get("schema_name").and_then(|n| n.as_str()) != Some(name) {
            return Err(format!("the definition's schema_name must be {name:?}"));
        }
        if !obj.contains_key("fields") {
            return Err("the schema definition has no fields".to_owned());
        }
        let version = self.schemas.get(name).map_or(1, |s| s.version + 1);
        self.schemas
            .insert(name.to_owned(), CustomSchema { version, definition: definition.to_owned(), updated: cx.hlc });
        Ok(format!("schema {name} is now version {version}"))
    }

    /// The governance part of the canonical state encoding.
    pub(crate) fn encode_canonical(&self, w: &mut Writer) {
        w.u64(self.proposals.len() as u64);
        for (id, p) in &self.proposals {
            w.raw(&id.0).raw(&p.id.0).str(&p.channel).raw(&p.proposer.0).u8(p.kind.code());
            w.str(&p.title).str(&p.description);
            list(w, &p.tags);
            match &p.command {
                None => {
                    w.u8(0);
                }
                Some(c) => {
                    w.u8(1);
                    encode_command(w, c);
                }
            }
            hlc(w, p.created);
            w.u64(p.closable_ms).u64(p.deadline_ms).u64(p.votes.len() as u64);
            for (n, yes) in &p.votes {
                w.raw(&n.0).u8(u8::from(*yes));
            }
            w.u8(p.status as u8);
            match &p.tally {
                None => {
                    w.u8(0);
                }
                Some(t) => {
                    w.u8(1).u64(t.yes_weight_milli).u64(t.no_weight_milli).u8(t.outcome as u8);
                    w.u64(t.details.len() as u64);
                    for d in &t.details {
                        w.raw(&d.voter.0).u8(u8::from(d.yes)).u64(d.reputation_milli).u64(d.weight_milli);
                        list(w, &d.tags_matched);
                    }
                    t.anonymous.encode_canonical(w);
                }
            }
            match p.closed {
                None => {
                    w.u8(0);
                }
                Some(h) => {
                    w.u8(1);
                    hlc(w, h);
                }
            }
            w.u8(u8::from(p.closed_automatically)).u64(p.validators.len() as u64);
            for v in &p.validators {
                w.raw(&v.0);
            }
            w.u64(p.ratifications.len() as u64);
            for v in &p.ratifications {
                w.raw(&v.0);
            }
            match p.execution {
                None => {
                    w.u8(0);
                }
                Some(i) => {
                    w.u8(1).u64(i);
                }
            }
            p.ballot.encode_canonical(w);
        }
        w.u64(self.validators.len() as u64);
        for v in &self.validators {
            w.raw(&v.0);
        }
        w.u64(self.execution_log.len() as u64);
        for e in &self.execution_log {
            w.u64(e.index).raw(&e.proposal.0);
            encode_command(w, &e.command);
            w.raw(&e.op.0);
            hlc(w, e.at);
            w.u64(e.ratified_by.len() as u64);
            for v in &e.ratified_by {
                w.raw(&v.0);
            }
            w.u8(u8::from(e.result.success)).str(&e.result.message);
        }
        w.u64(self.config_version).u64(self.schemas.len() as u64);
        for (name, s) in &self.schemas {
            w.str(name).u64(s.version).str(&s.definition);
            hlc(w, s.updated);
        }
        w.u64(self.voting_keys.len() as u64);
        for (id, k) in &self.voting_keys {
            w.raw(&id.0).raw(&k.0);
        }
    }
}
