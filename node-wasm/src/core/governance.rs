//! Governance: proposals, reputation-weighted votes, the validator set,
//! ratification by a quorum of validator signatures and the execution log.
//!
//! Lifecycle of a proposal: `open` → (close or expire) → `closed` (generic,
//! rejected or no votes), `executed` / `failed` (an approved `config_change`
//! or `command` runs its command at the close), or `pending_ratification`
//! (an approved `network_operation` or `code_upgrade`) → `executed` /
//! `failed` when `floor(V/2)+1` validators of the set snapshotted at the close
//! have ratified it. The op that completes the quorum executes the command,
//! so it enters the execution log exactly once, at that op's position.
//!
//! Weights are fixed point in milli-units (1 = 1000), computed with an exact
//! integer `log2` (32 fractional bits, truncated), summed per side, and
//! compared as integers.

use crate::codec::Writer;
use crate::core::hlc::Hlc;
use crate::core::op::encode_command;
use crate::core::op::{
    Command, ConfigValue, GLOBAL_CHANNEL, MAX_TITLE_CHARS, NewProposal, OpId, ProposalKind, SplitLogic,
    valid_channel_name,
};
use crate::core::reject::Reject;
use crate::core::reputation::{MILLI, Reputation};
use crate::core::state::{Channel, Ctx, State, TaskStatus, hlc, list};
use crate::core::tasks::is_blank;
use crate::core::upgrade::ModuleHash;
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
}

impl VoteOutcome {
    pub fn name(self) -> &'static str {
        match self {
            VoteOutcome::Approved => "approved",
            VoteOutcome::Rejected => "rejected",
            VoteOutcome::Pending => "pending",
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
}

/// A weighted count of the votes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub yes_weight_milli: u64,
    pub no_weight_milli: u64,
    pub outcome: VoteOutcome,
    /// In voter-id order.
    pub details: Vec<VoteDetail>,
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
}

impl Proposal {
    /// `floor(V/2) + 1` of the validators snapshotted at the close.
    pub fn quorum(&self) -> usize {
        self.validators.len() / 2 + 1
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
}

/// The config keys a `config_change` may set (all integers).
pub const CONFIG_KEYS: &[&str] = &[
    "initial_sp",
    "tax_bps",
    "task_reputation_milli",
    "vote_reputation_milli",
    "proposal_min_voting_seconds",
    "proposal_auto_close_after_seconds",
    "validator_set_size",
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

impl State {
    fn live_proposal(&self, cx: Ctx<'_>, id: OpId) -> Result<&Proposal, Reject> {
        let p = self.gov.proposals.get(&id).ok_or(Reject::NoSuchProposal(id))?;
        if p.channel != cx.channel {
            return Err(Reject::ProposalWrongChannel { proposal: id, channel: p.channel.clone() });
        }
        Ok(p)
    }

    fn proposal_mut(&mut self, id: &OpId) -> Option<&mut Proposal> {
        self.gov.proposals.get_mut(id).map(Arc::make_mut)
    }

    /// Rule `proposal_create`: valid body (`proposal_schema`); the channel
    /// exists (`global` included) and is not dissolved. The minimum voting
    /// period and the auto-close deadline are fixed from the config current
    /// at creation.
    pub(crate) fn proposal_create(&mut self, cx: Ctx<'_>, p: &NewProposal) -> Result<(), Reject> {
        validate_new_proposal(p)?;
        let ch = self.channels.get(cx.channel).ok_or_else(|| Reject::NoSuchChannel(cx.channel.to_owned()))?;
        if ch.dissolved.is_some() {
            return Err(Reject::ChannelDissolved(cx.channel.to_owned()));
        }
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
            closable_ms: cx.hlc.ms.saturating_add(secs(self.params.proposal_min_voting_seconds)),
            deadline_ms: cx.hlc.ms.saturating_add(secs(self.params.proposal_auto_close_after_seconds)),
            votes: BTreeMap::new(),
            status: ProposalStatus::Open,
            tally: None,
            closed: None,
            closed_automatically: false,
            validators: Vec::new(),
            ratifications: BTreeSet::new(),
            execution: None,
        };
        self.gov.proposals.insert(cx.id, Arc::new(proposal));
        Ok(())
    }

    /// Rule `vote`: the proposal is open and its deadline has not passed; a
    /// re-vote replaces the earlier one. The first public vote of a node on a
    /// proposal earns `vote_reputation` (+1 point).
    pub(crate) fn vote(&mut self, cx: Ctx<'_>, id: OpId, yes: bool) -> Result<(), Reject> {
        let p = self.live_proposal(cx, id)?;
        if p.status != ProposalStatus::Open {
            return Err(Reject::ProposalNotOpen { proposal: id, status: p.status.name() });
        }
        if cx.hlc.ms > p.deadline_ms {
            return Err(Reject::VotingEnded { proposal: id, deadline_ms: p.deadline_ms });
        }
        let first = !p.votes.contains_key(&cx.author);
        if let Some(p) = self.proposal_mut(&id) {
            p.votes.insert(cx.author, yes);
        }
        if first {
            self.credit_public_vote(cx.author, cx.hlc);
        }
        Ok(())
    }

    /// Rule `proposal_close`: anyone may close an open proposal once its
    /// minimum voting period (`proposal_min_voting_seconds`, default 0) is over.
    pub(crate) fn proposal_close(&mut self, cx: Ctx<'_>, id: OpId) -> Result<(), Reject> {
        let p = self.live_proposal(cx, id)?;
        if p.status != ProposalStatus::Open {
            return Err(Reject::ProposalNotOpen { proposal: id, status: p.status.name() });
        }
        if cx.hlc.ms < p.closable_ms {
            return Err(Reject::VotingPeriodRunning { proposal: id, until_ms: p.closable_ms });
        }
        self.close_proposal(cx, id, false);
        Ok(())
    }

    /// Rule `proposal_expire` (deadline op): anyone may close an open
    /// proposal once the op time is past its auto-close deadline.
    pub(crate) fn proposal_expire(&mut self, cx: Ctx<'_>, id: OpId) -> Result<(), Reject> {
        let p = self.live_proposal(cx, id)?;
        if p.status != ProposalStatus::Open {
            return Err(Reject::ProposalNotOpen { proposal: id, status: p.status.name() });
        }
        if cx.hlc.ms <= p.deadline_ms {
            return Err(Reject::NotExpired { proposal: id, deadline_ms: p.deadline_ms });
        }
        self.close_proposal(cx, id, true);
        Ok(())
    }

    /// Rule `vote_outcome`: the weighted tally at op time `at_ms` (reputation
    /// decayed to then): approved iff yes > no, no votes → pending, ties reject.
    pub fn tally(&self, p: &Proposal, at_ms: u64) -> Tally {
        self.tally_with_faults(p, at_ms).0
    }

    /// [`State::tally`] under the active `vote_weight` policy, with the
    /// module of every weight that fell back to the built-in one (the fold
    /// counts them at the close).
    pub fn tally_with_faults(&self, p: &Proposal, at_ms: u64) -> (Tally, Vec<ModuleHash>) {
        let (mut yes_w, mut no_w) = (0u64, 0u64);
        let mut details = Vec::with_capacity(p.votes.len());
        let mut faults = Vec::new();
        for (voter, yes) in &p.votes {
            let rep = self.accounts.get(voter).map(|a| a.reputation.at(at_ms)).unwrap_or_default();
            let (builtin, matched) = vote_weight_milli(&rep, &p.tags);
            let spec = p.tags.iter().filter_map(|t| rep.tags.get(t)).fold(0u64, |a, v| a.saturating_add(*v));
            let r = self.upgrades.vote_weight(rep.total, spec, !p.tags.is_empty(), builtin);
            faults.extend(r.fault);
            let w = r.value;
            if *yes {
                yes_w = yes_w.saturating_add(w);
            } else {
                no_w = no_w.saturating_add(w);
            }
            details.push(VoteDetail {
                voter: *voter,
                yes: *yes,
                reputation_milli: rep.total,
                weight_milli: w,
                tags_matched: matched,
            });
        }
        let outcome = if details.is_empty() {
            VoteOutcome::Pending
        } else if yes_w > no_w {
            VoteOutcome::Approved
        } else {
            VoteOutcome::Rejected
        };
        (Tally { yes_weight_milli: yes_w, no_weight_milli: no_w, outcome, details }, faults)
    }

    /// Rule `validator_set`: the top `validator_set_size` identities by
    /// `_total` reputation at op time `at_ms`, ties broken by node id (lower first).
    pub fn compute_validators(&self, at_ms: u64) -> Vec<NodeId> {
        let mut all: Vec<(u64, NodeId)> =
            self.accounts.iter().map(|(id, a)| (a.reputation.at(at_ms).total, *id)).collect();
        all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let n = usize::try_from(self.params.validator_set_size).unwrap_or(usize::MAX);
        all.into_iter().take(n).map(|(_, id)| id).collect()
    }

    /// Shared by close and expire: tally, recompute and snapshot the
    /// validator set, then the kind's effect.
    fn close_proposal(&mut self, cx: Ctx<'_>, id: OpId, automatically: bool) {
        let Some(p) = self.gov.proposals.get(&id) else {
            return;
        };
        let (tally, faults) = self.tally_with_faults(p, cx.hlc.ms);
        for h in faults {
            self.upgrades.policies.record_fallback(h);
        }
        let Some(p) = self.gov.proposals.get(&id) else {
            return;
        };
        let validators = self.compute_validators(cx.hlc.ms);
        self.gov.validators = validators.clone();
        let approved = tally.outcome == VoteOutcome::Approved;
        let kind = p.kind;
        let command = p.command.clone();
        let status = match (approved, kind, &command) {
            (true, ProposalKind::ConfigChange | ProposalKind::Command, Some(c)) => {
                if self.execute(cx, id, c.clone(), Vec::new()) {
                    ProposalStatus::Executed
                } else {
                    ProposalStatus::Failed
                }
            }
            (true, ProposalKind::NetworkOperation | ProposalKind::CodeUpgrade, Some(_)) => {
                ProposalStatus::PendingRatification
            }
            _ => ProposalStatus::Closed,
        };
        let index = self.gov.execution_log.len() as u64;
        if let Some(p) = self.proposal_mut(&id) {
            p.tally = Some(tally);
            p.validators = validators;
            p.closed = Some(cx.hlc);
            p.closed_automatically = automatically;
            if matches!(status, ProposalStatus::Executed | ProposalStatus::Failed) {
                p.execution = Some(index - 1);
            }
            p.status = status;
        }
    }

    /// Rule `ratify`: only for `network_operation` and `code_upgrade`
    /// proposals pending ratification, only by a member of the validator set
    /// snapshotted at the close, once each. The ratification that reaches
    /// `floor(V/2)+1` executes the command (exactly once: the status leaves
    /// `pending_ratification`, so later ratifications are refused).
    pub(crate) fn ratify(&mut self, cx: Ctx<'_>, id: OpId) -> Result<(), Reject> {
        let p = self.live_proposal(cx, id)?;
        if !matches!(p.kind, ProposalKind::NetworkOperation | ProposalKind::CodeUpgrade) {
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
        let quorum = p.quorum();
        let command = p.command.clone();
        let mut ratified_by = Vec::new();
        if let Some(p) = self.proposal_mut(&id) {
            p.ratifications.insert(cx.author);
            if p.ratifications.len() >= quorum {
                ratified_by = p.ratifications.iter().copied().collect();
            }
        }
        if let (false, Some(c)) = (ratified_by.is_empty(), command) {
            let ok = self.execute(cx, id, c, ratified_by);
            let index = self.gov.execution_log.len() as u64 - 1;
            if let Some(p) = self.proposal_mut(&id) {
                p.status = if ok { ProposalStatus::Executed } else { ProposalStatus::Failed };
                p.execution = Some(index);
            }
        }
        Ok(())
    }

    /// Runs a command and appends its execution-log entry. Returns success.
    fn execute(&mut self, cx: Ctx<'_>, proposal: OpId, command: Command, ratified_by: Vec<NodeId>) -> bool {
        let result = match self.run_command(cx, proposal, &command) {
            Ok(message) => CommandResult { success: true, message },
            Err(message) => CommandResult { success: false, message },
        };
        let ok = result.success;
        let index = self.gov.execution_log.len() as u64;
        self.gov.execution_log.push(ExecEntry { index, proposal, command, op: cx.id, at: cx.hlc, ratified_by, result });
        ok
    }

    /// Each command checks everything before it changes anything.
    fn run_command(&mut self, cx: Ctx<'_>, proposal: OpId, c: &Command) -> Result<String, String> {
        match c {
            Command::ConfigChange { key, value } => self.config_change(key, value),
            Command::SplitChannel { target, logic, parts } => self.split_channel(cx, target, *logic, parts),
            Command::MergeChannels { sources, target } => self.merge_channels(cx, sources, target),
            Command::UpdateSchema { name, definition } => self.update_schema(cx, name, definition),
            Command::AcquireCommonTool(t) => self.acquire_common_tool(cx, t),
            Command::DeprecateCommonTool { channel, tool_id } => self.deprecate_common_tool(cx, channel, tool_id),
            Command::ReactivateCommonTool { channel, tool_id } => self.reactivate_common_tool(cx, channel, tool_id),
            Command::CodeUpgrade { module_sha256, policy } => self.code_upgrade(cx, proposal, *module_sha256, *policy),
        }
    }

    /// Command `config_change`: the key must be whitelisted (`CONFIG_KEYS`)
    /// and the value an integer within the key's range; bumps `config_version`.
    /// Takes effect for ops folded after this one, never retroactively.
    fn config_change(&mut self, key: &str, value: &ConfigValue) -> Result<String, String> {
        if !CONFIG_KEYS.contains(&key) {
            return Err(format!("unknown config key {key:?}"));
        }
        let ConfigValue::Int(v) = value else {
            return Err(format!("config key {key} is an integer, got a {}", value.type_name()));
        };
        let v = *v;
        let p = &mut self.params;
        let slot = match key {
            "initial_sp" => &mut p.initial_sp,
            "tax_bps" if v > 10_000 => return Err(format!("tax_bps must be at most 10000, got {v}")),
            "tax_bps" => &mut p.tax_bps,
            "task_reputation_milli" => &mut p.task_reputation_milli,
            "vote_reputation_milli" => &mut p.vote_reputation_milli,
            "proposal_min_voting_seconds" => &mut p.proposal_min_voting_seconds,
            "proposal_auto_close_after_seconds" => &mut p.proposal_auto_close_after_seconds,
            "validator_set_size" if v == 0 => return Err("validator_set_size must be at least 1".to_owned()),
            "validator_set_size" => &mut p.validator_set_size,
            _ => return Err(format!("unknown config key {key:?}")),
        };
        let old = *slot;
        *slot = v;
        self.gov.config_version += 1;
        Ok(format!("{key}: {old} -> {v} (config version {})", self.gov.config_version))
    }

    fn usable_channel(&self, name: &str) -> Result<&Channel, String> {
        if name == GLOBAL_CHANNEL {
            return Err("the global channel cannot be split or merged".to_owned());
        }
        let ch = self.channels.get(name).ok_or_else(|| format!("channel {name} does not exist"))?;
        if ch.dissolved.is_some() {
            return Err(format!("channel {name} is archived"));
        }
        Ok(ch)
    }

    fn new_channel_for(&self, cx: Ctx<'_>, name: &str, from: &str) -> Result<Option<Channel>, String> {
        if name == GLOBAL_CHANNEL || !valid_channel_name(name) {
            return Err(format!("{name:?} cannot be a destination channel"));
        }
        if name.starts_with(crate::core::teams::WORKSPACE_PREFIX) {
            return Err(format!("channel names starting with team- are reserved ({name})"));
        }
        match self.channels.get(name) {
            Some(ch) if ch.dissolved.is_some() => Err(format!("channel {name} is archived")),
            Some(_) => Ok(None),
            None => Ok(Some(Channel {
                steward: None,
                description: format!("created from {from} by governance"),
                created: cx.hlc,
                treasury: 0,
                members: BTreeSet::new(),
                dissolved: None,
            })),
        }
    }

    /// Command `split_channel`: moves the target's open (and auction-open)
    /// tasks to the first part whose keys match (`by_tag`: a task tag equals
    /// a key; `by_title_prefix`: the title starts with a key, ASCII
    /// case-insensitive). Missing destination channels are created with the
    /// target's members. Other tasks stay. Escrow moves with its task.
    fn split_channel(
        &mut self,
        cx: Ctx<'_>,
        target: &str,
        logic: SplitLogic,
        parts: &[crate::core::op::SplitPart],
    ) -> Result<String, String> {
        let members = self.usable_channel(target)?.members.clone();
        if parts.is_empty() {
            return Err("a split needs at least one destination".to_owned());
        }
        let mut new = Vec::new();
        let mut names = BTreeSet::new();
        for part in parts {
            if part.channel == target || !names.insert(part.channel.as_str()) {
                return Err(format!("destination {} is repeated or is the target", part.channel));
            }
            if let Some(mut ch) = self.new_channel_for(cx, &part.channel, target)? {
                ch.members = members.clone();
                new.push((part.channel.clone(), ch));
            }
        }
        let mut moves: Vec<(OpId, String)> = Vec::new();
        for (id, t) in &self.tasks {
            if t.channel != target || !matches!(t.status, TaskStatus::Open | TaskStatus::AuctionOpen) {
                continue;
            }
            let title = t.title.to_ascii_lowercase();
            let hit = parts.iter().find(|part| match logic {
                SplitLogic::ByTag => part.keys.iter().any(|k| t.tags.contains(k)),
                SplitLogic::ByTitlePrefix => part.keys.iter().any(|k| title.starts_with(&k.to_ascii_lowercase())),
            });
            if let Some(part) = hit {
                moves.push((*id, part.channel.clone()));
            }
        }
        for (name, ch) in new {
            self.channels.insert(name, ch);
        }
        let mut counts: BTreeMap<&str, u64> = parts.iter().map(|p| (p.channel.as_str(), 0)).collect();
        for (id, to) in &moves {
            if let Some(t) = self.task_mut(id) {
                t.channel = to.clone();
                t.updated = cx.hlc;
            }
            if let Some(n) = counts.get_mut(to.as_str()) {
                *n += 1;
            }
        }
        let summary: Vec<String> = counts.iter().map(|(c, n)| format!("{n} to {c}")).collect();
        Ok(format!("split {target}: moved {}", summary.join(", ")))
    }

    /// Command `merge_channels` (`keep_all`): every live task, the members and
    /// the treasury of each existing source move to the target (created if
    /// missing); the sources are archived. Unknown sources are skipped.
    fn merge_channels(&mut self, cx: Ctx<'_>, sources: &[String], target: &str) -> Result<String, String> {
        if sources.is_empty() {
            return Err("a merge needs at least one source".to_owned());
        }
        if sources.iter().any(|s| s == target) {
            return Err(format!("channel {target} is both a source and the target"));
        }
        let created = self.new_channel_for(cx, target, "a merge")?;
        let mut found = Vec::new();
        for s in sources {
            if found.contains(s) {
                continue;
            }
            match self.usable_channel(s) {
                Ok(_) => found.push(s.clone()),
                Err(_) if !self.channels.contains_key(s) => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(ch) = created {
            self.channels.insert(target.to_owned(), ch);
        }
        let mut moved = 0u64;
        let ids: Vec<OpId> = self
            .tasks
            .iter()
            .filter(|(_, t)| found.contains(&t.channel) && t.status != TaskStatus::Deleted)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(t) = self.task_mut(&id) {
                t.channel = target.to_owned();
                t.updated = cx.hlc;
                moved += 1;
            }
        }
        let mut members = BTreeSet::new();
        let mut treasury = 0u64;
        for s in &found {
            if let Some(ch) = self.channels.get_mut(s) {
                members.append(&mut ch.members);
                treasury = treasury.saturating_add(ch.treasury);
                ch.treasury = 0;
                ch.dissolved = Some(cx.hlc);
            }
        }
        if let Some(t) = self.channels.get_mut(target) {
            t.members.append(&mut members);
            t.treasury = t.treasury.saturating_add(treasury);
        }
        Ok(format!("merged {} into {target}: {moved} tasks, {treasury} SP", found.join(", ")))
    }

    /// Command `update_schema`: the definition is a JSON object whose
    /// `schema_name` equals the name and which has `fields`; the schema's
    /// version starts at 1 and goes up by one per update.
    fn update_schema(&mut self, cx: Ctx<'_>, name: &str, definition: &str) -> Result<String, String> {
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
        let version = self.gov.schemas.get(name).map_or(1, |s| s.version + 1);
        self.gov
            .schemas
            .insert(name.to_owned(), CustomSchema { version, definition: definition.to_owned(), updated: cx.hlc });
        Ok(format!("schema {name} is now version {version}"))
    }
}

/// The governance part of the canonical state encoding (`State::state_hash`).
pub(crate) fn encode_canonical(g: &Governance, w: &mut Writer) {
    w.u64(g.proposals.len() as u64);
    for (id, p) in &g.proposals {
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
    }
    w.u64(g.validators.len() as u64);
    for v in &g.validators {
        w.raw(&v.0);
    }
    w.u64(g.execution_log.len() as u64);
    for e in &g.execution_log {
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
    w.u64(g.config_version).u64(g.schemas.len() as u64);
    for (name, s) in &g.schemas {
        w.str(name).u64(s.version).str(&s.definition);
        hlc(w, s.updated);
    }
}
