//! Why an op had no effect. Every refusal in the fold is one of these, with a
//! stable machine code (`code()`) and a human sentence (`Display`). The same
//! values are returned to a local caller whose action is refused, so the UI
//! and the JS API can show "task 3f2a… is claimed by another node" whether
//! the op was refused before sending or lost a race after.

use crate::core::op::{OpId, TaskId};
use crate::core::upgrade::ModuleHash;
use crate::identity::NodeId;
use std::fmt;

/// Who was meant to pay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payer {
    Node(NodeId),
    Treasury(String),
}

impl fmt::Display for Payer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payer::Node(n) => write!(f, "node {}…", n.short()),
            Payer::Treasury(c) => write!(f, "the treasury of channel {c}"),
        }
    }
}

/// A rule an op broke at its position in the order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reject {
    ChannelExists(String),
    NoSuchChannel(String),
    GlobalNotAllowed(&'static str),
    AlreadySubscribed(String),
    NotSubscribed(String),
    NotSteward {
        channel: String,
    },
    BadTitle {
        chars: usize,
    },
    BadTag(String),
    DuplicateTag(String),
    DuplicateTool(String),
    SchemaMismatch(&'static str),
    InsufficientFunds {
        payer: Payer,
        has: u64,
        needs: u64,
    },
    NoSuchTask(TaskId),
    WrongChannel {
        task: TaskId,
        channel: String,
    },
    TaskDeleted(TaskId),
    ClaimedByOther {
        task: TaskId,
        assignee: NodeId,
    },
    NotClaimable {
        task: TaskId,
        status: &'static str,
    },
    NotAssignee {
        task: TaskId,
    },
    WrongStatus {
        task: TaskId,
        status: &'static str,
        needs: &'static str,
    },
    NotOwner {
        task: TaskId,
    },
    NotAnAuction(TaskId),
    AuctionNotOpen {
        task: TaskId,
        status: &'static str,
    },
    BidAfterDeadline {
        task: TaskId,
        deadline_ms: u64,
    },
    BidOutOfRange {
        amount: u64,
        max: u64,
    },
    ZeroDays,
    OwnAuction(TaskId),
    CloseBeforeDeadline {
        task: TaskId,
        deadline_ms: u64,
    },
    NoBids(TaskId),
    BadDeadline,
    ReservedChannel(String),
    ChannelDissolved(String),
    /// The channel was archived by a split; its work went to `into`.
    ChannelSplit {
        channel: String,
        into: Vec<String>,
    },
    /// The channel was archived by a merge into `into`.
    ChannelMerged {
        channel: String,
        into: String,
    },
    BadTeam(&'static str),
    NotCoordinator {
        task: TaskId,
    },
    TeamNotForming {
        task: TaskId,
        status: &'static str,
    },
    TeamNotInProgress {
        task: TaskId,
        status: &'static str,
    },
    TeamFull {
        task: TaskId,
        max: u8,
    },
    AlreadyInTeam(TaskId),
    AlreadyApplied(TaskId),
    NoSkills,
    NoSkillMatch(TaskId),
    NotApplicant {
        task: TaskId,
    },
    NoSuchSubTask {
        task: TaskId,
        index: u8,
    },
    SubTaskNotYours {
        task: TaskId,
        index: u8,
    },
    SubTaskDone {
        task: TaskId,
        index: u8,
    },
    NoSuchProposal(OpId),
    ProposalWrongChannel {
        proposal: OpId,
        channel: String,
    },
    BadProposal(&'static str),
    ProposalNotOpen {
        proposal: OpId,
        status: &'static str,
    },
    VotingEnded {
        proposal: OpId,
        deadline_ms: u64,
    },
    VotingPeriodRunning {
        proposal: OpId,
        until_ms: u64,
    },
    NotExpired {
        proposal: OpId,
        deadline_ms: u64,
    },
    /// Rule `quorum`: members' counted weight is below the quorum; voting
    /// goes on until the deadline.
    QuorumNotReached {
        proposal: OpId,
        counted_milli: u64,
        quorum_milli: u64,
        deadline_ms: u64,
    },
    /// Rule `tool_grant`: not enough custodians have granted their share yet.
    GrantsMissing {
        tool: String,
        have: usize,
        need: usize,
    },
    /// Rule `tool_grant`: only a custodian of the tool may grant.
    NotCustodian {
        tool: String,
    },
    BadGrant(&'static str),
    /// Rule `admission_ticket`: the author has no admission yet.
    NotAdmitted,
    /// Rule `admission_ticket`: the ticket's hash has too few zero bits.
    BadTicket {
        bits: u8,
    },
    AlreadyAdmitted,
    /// Rule `voting_key_publish`: the key or its possession proof is invalid.
    BadVotingKey(String),
    /// Rule `voting_key_publish`: the author already published another key.
    VotingKeyFixed,
    /// Rule `voting_key_publish`: another identity published this key.
    VotingKeyTaken,
    /// Rule `anonymous_vote`: the proposal has no ring with this index.
    NoSuchRing(u16),
    /// Rule `anonymous_vote` (or a public vote's link): the ring signature
    /// does not verify.
    BadRingSignature,
    /// Rule `one_vote_per_member`: this member already voted on the proposal.
    AlreadyVoted,
    /// Rule `one_vote_per_member`: a ring member's public vote must carry
    /// its key image.
    LinkRequired,
    /// A link on a public vote by someone outside the proposal's rings.
    LinkNotExpected,
    /// Rule `anonymous_vote`: an anonymous vote must be its key's only op.
    AnonymousNotFresh,
    /// Rule `equivocation_evidence`: the two ops do not prove an equivocation.
    BadEvidence(&'static str),
    /// Rule `equivocation_evidence`: this identity's penalty was applied.
    AlreadyPenalized(NodeId),
    NotRatifiable {
        proposal: OpId,
        kind: &'static str,
    },
    NotPendingRatification {
        proposal: OpId,
        status: &'static str,
    },
    NotValidator {
        proposal: OpId,
    },
    AlreadyRatified {
        proposal: OpId,
    },
    BadKey,
    NoSuchTool(String),
    ToolWrongChannel {
        tool: String,
        channel: String,
    },
    ToolInactive {
        tool: String,
        status: &'static str,
    },
    UpkeepNotDue {
        tool: String,
        due_ms: u64,
    },
    ToolNotRequired {
        task: TaskId,
        tool: String,
    },
    ToolSecretUnavailable(String),
    ModulePresent(ModuleHash),
    PieceCountMismatch {
        module: ModuleHash,
        count: u16,
        expected: u16,
    },
    DuplicatePiece {
        module: ModuleHash,
        index: u16,
    },
    TooManyPendingModules {
        limit: usize,
    },
    /// The author equivocated at or before this op's seq (log-level rule).
    Equivocation {
        seq: u64,
    },
    /// An SP or reputation counter would leave `u64` (rule `checked_sp`):
    /// the op changes nothing rather than wrap or saturate one side of a
    /// transfer. `what` names the counter.
    Overflow(&'static str),
    /// SP would be paid to a node that has no account (it would vanish).
    NoAccount(NodeId),
}

impl Reject {
    /// A stable identifier for programs (tests, the JS API).
    pub fn code(&self) -> &'static str {
        use Reject::*;
        match self {
            ChannelExists(_) => "channel_exists",
            NoSuchChannel(_) => "no_such_channel",
            GlobalNotAllowed(_) => "global_not_allowed",
            AlreadySubscribed(_) => "already_subscribed",
            NotSubscribed(_) => "not_subscribed",
            NotSteward { .. } => "not_steward",
            BadTitle { .. } => "bad_title",
            BadTag(_) => "bad_tag",
            DuplicateTag(_) => "duplicate_tag",
            DuplicateTool(_) => "duplicate_tool",
            SchemaMismatch(_) => "schema_mismatch",
            InsufficientFunds { .. } => "insufficient_funds",
            NoSuchTask(_) => "no_such_task",
            WrongChannel { .. } => "wrong_channel",
            TaskDeleted(_) => "task_deleted",
            ClaimedByOther { .. } => "claimed_by_other",
            NotClaimable { .. } => "not_claimable",
            NotAssignee { .. } => "not_assignee",
            WrongStatus { .. } => "wrong_status",
            NotOwner { .. } => "not_owner",
            NotAnAuction(_) => "not_an_auction",
            AuctionNotOpen { .. } => "auction_not_open",
            BidAfterDeadline { .. } => "bid_after_deadline",
            BidOutOfRange { .. } => "bid_out_of_range",
            ZeroDays => "zero_days",
            OwnAuction(_) => "own_auction",
            CloseBeforeDeadline { .. } => "close_before_deadline",
            NoBids(_) => "no_bids",
            BadDeadline => "bad_deadline",
            Equivocation { .. } => "equivocation",
            ReservedChannel(_) => "reserved_channel",
            ChannelDissolved(_) => "channel_dissolved",
            ChannelSplit { .. } => "channel_split",
            ChannelMerged { .. } => "channel_merged",
            BadTeam(_) => "bad_team",
            NotCoordinator { .. } => "not_coordinator",
            TeamNotForming { .. } => "team_not_forming",
            TeamNotInProgress { .. } => "team_not_in_progress",
            TeamFull { .. } => "team_full",
            AlreadyInTeam(_) => "already_in_team",
            AlreadyApplied(_) => "already_applied",
            NoSkills => "no_skills",
            NoSkillMatch(_) => "no_skill_match",
            NotApplicant { .. } => "not_applicant",
            NoSuchSubTask { .. } => "no_such_subtask",
            SubTaskNotYours { .. } => "subtask_not_yours",
            SubTaskDone { .. } => "subtask_done",
            NoSuchProposal(_) => "no_such_proposal",
            ProposalWrongChannel { .. } => "proposal_wrong_channel",
            BadProposal(_) => "bad_proposal",
            ProposalNotOpen { .. } => "proposal_not_open",
            VotingEnded { .. } => "voting_ended",
            VotingPeriodRunning { .. } => "voting_period_running",
            NotExpired { .. } => "not_expired",
            QuorumNotReached { .. } => "quorum_not_reached",
            NotAdmitted => "not_admitted",
            GrantsMissing { .. } => "grants_missing",
            NotCustodian { .. } => "not_custodian",
            BadGrant(_) => "bad_grant",
            BadTicket { .. } => "bad_ticket",
            AlreadyAdmitted => "already_admitted",
            BadVotingKey(_) => "bad_voting_key",
            VotingKeyFixed => "voting_key_fixed",
            VotingKeyTaken => "voting_key_taken",
            NoSuchRing(_) => "no_such_ring",
            BadRingSignature => "bad_ring_signature",
            AlreadyVoted => "already_voted",
            LinkRequired => "link_required",
            LinkNotExpected => "link_not_expected",
            AnonymousNotFresh => "anonymous_not_fresh",
            BadEvidence(_) => "bad_evidence",
            AlreadyPenalized(_) => "already_penalized",
            NotRatifiable { .. } => "not_ratifiable",
            NotPendingRatification { .. } => "not_pending_ratification",
            NotValidator { .. } => "not_validator",
            AlreadyRatified { .. } => "already_ratified",
            BadKey => "bad_key",
            NoSuchTool(_) => "no_such_tool",
            ToolWrongChannel { .. } => "tool_wrong_channel",
            ToolInactive { .. } => "tool_inactive",
            UpkeepNotDue { .. } => "upkeep_not_due",
            ToolNotRequired { .. } => "tool_not_required",
            ToolSecretUnavailable(_) => "tool_secret_unavailable",
            ModulePresent(_) => "module_present",
            PieceCountMismatch { .. } => "piece_count_mismatch",
            DuplicatePiece { .. } => "duplicate_piece",
            TooManyPendingModules { .. } => "too_many_pending_modules",
            Overflow(_) => "overflow",
            NoAccount(_) => "no_account",
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Reject::*;
        match self {
            ChannelExists(c) => write!(f, "channel {c} already exists"),
            NoSuchChannel(c) => write!(f, "channel {c} does not exist"),
            GlobalNotAllowed(what) => write!(f, "{what} is not allowed on the global channel"),
            AlreadySubscribed(c) => write!(f, "already subscribed to channel {c}"),
            NotSubscribed(c) => write!(f, "not subscribed to channel {c}"),
            NotSteward { channel } => write!(f, "only the steward of channel {channel} may spend its treasury"),
            BadTitle { chars } => write!(f, "title must be 1 to 200 characters, it has {chars}"),
            BadTag(t) => write!(f, "tag {t:?} is empty or blank"),
            DuplicateTag(t) => write!(f, "tag {t:?} is listed twice"),
            DuplicateTool(t) => write!(f, "tool {t:?} is listed twice"),
            SchemaMismatch(why) => write!(f, "body does not match its schema: {why}"),
            InsufficientFunds { payer, has, needs } => {
                write!(f, "{payer} has {has} SP but {needs} SP are needed")
            }
            NoSuchTask(t) => write!(f, "task {}… does not exist", t.short()),
            WrongChannel { task, channel } => {
                write!(f, "task {}… belongs to channel {channel}", task.short())
            }
            TaskDeleted(t) => write!(f, "task {}… was deleted", t.short()),
            ClaimedByOther { task, assignee } => {
                write!(f, "task {}… is claimed by another node ({}…)", task.short(), assignee.short())
            }
            NotClaimable { task, status } => {
                write!(f, "task {}… is {status} and cannot be claimed", task.short())
            }
            NotAssignee { task } => write!(f, "task {}… is not assigned to you", task.short()),
            WrongStatus { task, status, needs } => write!(f, "task {}… is {status}, it must be {needs}", task.short()),
            NotOwner { task } => write!(f, "only the owner of task {}… may do that", task.short()),
            NotAnAuction(t) => write!(f, "task {}… is not an auction", t.short()),
            AuctionNotOpen { task, status } => {
                write!(f, "the auction of task {}… is {status}", task.short())
            }
            BidAfterDeadline { task, deadline_ms } => {
                write!(f, "the auction of task {}… ended at {deadline_ms} ms", task.short())
            }
            BidOutOfRange { amount, max } => {
                write!(f, "bid {amount} SP must be between 1 and {max} SP")
            }
            ZeroDays => f.write_str("estimated days must be greater than 0"),
            OwnAuction(t) => write!(f, "you cannot bid on your own task {}…", t.short()),
            CloseBeforeDeadline { task, deadline_ms } => write!(
                f,
                "the auction of task {}… runs until {deadline_ms} ms; only its owner may close it early",
                task.short()
            ),
            NoBids(t) => write!(f, "the auction of task {}… has no bids", t.short()),
            BadDeadline => f.write_str("an auction needs max_reward > 0 and a deadline in the future"),
            ReservedChannel(c) => write!(f, "channel names starting with team- are reserved ({c})"),
            ChannelDissolved(c) => write!(f, "channel {c} was dissolved"),
            ChannelSplit { channel, into } => write!(f, "channel {channel} was split into {}", into.join(", ")),
            ChannelMerged { channel, into } => write!(f, "channel {channel} was merged into {into}"),
            BadTeam(why) => write!(f, "invalid team task: {why}"),
            NotCoordinator { task } => {
                write!(f, "only the coordinator of team task {}… may do that", task.short())
            }
            TeamNotForming { task, status } => write!(f, "team task {}… is {status}, not forming a team", task.short()),
            TeamNotInProgress { task, status } => {
                write!(f, "team task {}… is {status}, not in progress", task.short())
            }
            TeamFull { task, max } => {
                write!(f, "the team of task {}… is full ({max} people)", task.short())
            }
            AlreadyInTeam(t) => write!(f, "already in the team of task {}…", t.short()),
            AlreadyApplied(t) => write!(f, "already applied to team task {}…", t.short()),
            NoSkills => f.write_str("set a skill profile before applying to a team"),
            NoSkillMatch(t) => write!(f, "none of your skills matches what team task {}… needs", t.short()),
            NotApplicant { task } => write!(f, "that node has not applied to team task {}…", task.short()),
            NoSuchSubTask { task, index } => {
                write!(f, "team task {}… has no sub-task {index}", task.short())
            }
            SubTaskNotYours { task, index } => {
                write!(f, "sub-task {index} of team task {}… is not assigned to you", task.short())
            }
            SubTaskDone { task, index } => write!(f, "sub-task {index} of team task {}… is already done", task.short()),
            NoSuchProposal(p) => write!(f, "proposal {}… does not exist", p.short()),
            ProposalWrongChannel { proposal, channel } => {
                write!(f, "proposal {}… belongs to channel {channel}", proposal.short())
            }
            BadProposal(why) => write!(f, "invalid proposal: {why}"),
            ProposalNotOpen { proposal, status } => {
                write!(f, "proposal {}… is {status}, not open", proposal.short())
            }
            VotingEnded { proposal, deadline_ms } => {
                write!(f, "voting on proposal {}… ended at {deadline_ms} ms", proposal.short())
            }
            VotingPeriodRunning { proposal, until_ms } => {
                write!(
                    f,
                    "proposal {}… cannot be closed before its voting period ends at {until_ms} ms",
                    proposal.short()
                )
            }
            QuorumNotReached { proposal, counted_milli, quorum_milli, deadline_ms } => {
                let w = |m: &u64| format!("{}.{:02}", m / 1000, (m % 1000) / 10);
                write!(
                    f,
                    "proposal {}… has not reached its quorum: members' votes weigh {} of the {} needed; \
                     voting goes on until {deadline_ms} ms",
                    proposal.short(),
                    w(counted_milli),
                    w(quorum_milli)
                )
            }
            GrantsMissing { tool, have, need } => write!(
                f,
                "tool {tool}: {have} of the {need} custodians needed have granted their share of the key \
                 for this task yet; their nodes do so once the task is in progress"
            ),
            NotCustodian { tool } => write!(f, "only a custodian of tool {tool} may grant its key"),
            BadGrant(why) => write!(f, "invalid tool grant: {why}"),
            NotAdmitted => {
                write!(f, "this identity is not admitted to the network yet: its first op must be an admission ticket")
            }
            BadTicket { bits } => {
                write!(f, "the admission ticket is not valid: its hash needs {bits} leading zero bits")
            }
            AlreadyAdmitted => write!(f, "this identity is already admitted"),
            BadVotingKey(why) => write!(f, "invalid voting key: {why}"),
            VotingKeyFixed => write!(f, "this identity already published another voting key"),
            VotingKeyTaken => write!(f, "another identity already published this voting key"),
            NoSuchRing(i) => write!(f, "the proposal has no anonymous ring {i}"),
            BadRingSignature => write!(f, "the ring signature does not verify for this proposal's ring"),
            AlreadyVoted => write!(f, "this member already voted on this proposal (anonymously or publicly)"),
            LinkRequired => {
                write!(f, "a member in this proposal's anonymous rings must link a public vote to its voting key")
            }
            LinkNotExpected => write!(f, "a linked vote from an identity outside this proposal's rings"),
            AnonymousNotFresh => write!(f, "an anonymous vote must be the only op of a fresh key (seq 1)"),
            BadEvidence(why) => write!(f, "the evidence proves no equivocation: {why}"),
            AlreadyPenalized(n) => write!(f, "node {}… was already penalized for equivocating", n.short()),
            NotExpired { proposal, deadline_ms } => {
                write!(f, "proposal {}… closes automatically only after {deadline_ms} ms", proposal.short())
            }
            NotRatifiable { proposal, kind } => {
                write!(
                    f,
                    "proposal {}… is a {kind} proposal; only network operations and code upgrades are ratified",
                    proposal.short()
                )
            }
            NotPendingRatification { proposal, status } => {
                write!(f, "proposal {}… is {status}, not pending ratification", proposal.short())
            }
            NotValidator { proposal } => {
                write!(f, "not in the validator set snapshotted when proposal {}… closed", proposal.short())
            }
            AlreadyRatified { proposal } => write!(f, "you already ratified proposal {}…", proposal.short()),
            BadKey => f.write_str("the X25519 public key is all zero"),
            NoSuchTool(t) => write!(f, "common tool {t} does not exist"),
            ToolWrongChannel { tool, channel } => write!(f, "common tool {tool} belongs to channel {channel}"),
            ToolInactive { tool, status } => write!(f, "common tool {tool} is {status}, not active"),
            UpkeepNotDue { tool, due_ms } => write!(f, "the upkeep of common tool {tool} is due at {due_ms} ms"),
            ToolNotRequired { task, tool } => {
                write!(f, "task {}… does not list common tool {tool}", task.short())
            }
            ToolSecretUnavailable(t) => {
                write!(f, "the credential of common tool {t} is not sealed to this node or cannot be opened")
            }
            ModulePresent(m) => {
                write!(f, "module {}… is already assembled; its pieces are no longer needed", m.short())
            }
            PieceCountMismatch { module, count, expected } => write!(
                f,
                "piece says module {}… has {count} pieces, but this author's earlier pieces say {expected}",
                module.short()
            ),
            DuplicatePiece { module, index } => {
                write!(f, "piece {index} of module {}… was already published by this author", module.short())
            }
            TooManyPendingModules { limit } => {
                write!(f, "this author already has {limit} incomplete modules; complete one before starting another")
            }
            Equivocation { seq } => {
                write!(f, "the author signed two different ops at seq {seq}; its ops from there on have no effect")
            }
            Overflow(what) => write!(f, "{what} would leave the range of u64; the op changes nothing"),
            NoAccount(n) => write!(f, "node {}… has no account to receive SP", n.short()),
        }
    }
}

impl std::error::Error for Reject {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refusal has its own code and a sentence that names the thing.
    #[test]
    fn reject_codes_are_unique_and_sentences_are_human() {
        let t = TaskId::default();
        let n = NodeId([7; 32]);
        let all = vec![
            Reject::ChannelExists("c".into()),
            Reject::NoSuchChannel("c".into()),
            Reject::GlobalNotAllowed("x"),
            Reject::AlreadySubscribed("c".into()),
            Reject::NotSubscribed("c".into()),
            Reject::NotSteward { channel: "c".into() },
            Reject::BadTitle { chars: 0 },
            Reject::BadTag(String::new()),
            Reject::DuplicateTag("a".into()),
            Reject::DuplicateTool("a".into()),
            Reject::SchemaMismatch("x"),
            Reject::InsufficientFunds { payer: Payer::Node(n), has: 1, needs: 2 },
            Reject::NoSuchTask(t),
            Reject::WrongChannel { task: t, channel: "c".into() },
            Reject::TaskDeleted(t),
            Reject::ClaimedByOther { task: t, assignee: n },
            Reject::NotClaimable { task: t, status: "open" },
            Reject::NotAssignee { task: t },
            Reject::WrongStatus { task: t, status: "a", needs: "b" },
            Reject::NotOwner { task: t },
            Reject::NotAnAuction(t),
            Reject::AuctionNotOpen { task: t, status: "x" },
            Reject::BidAfterDeadline { task: t, deadline_ms: 1 },
            Reject::BidOutOfRange { amount: 0, max: 1 },
            Reject::ZeroDays,
            Reject::OwnAuction(t),
            Reject::CloseBeforeDeadline { task: t, deadline_ms: 1 },
            Reject::NoBids(t),
            Reject::BadDeadline,
            Reject::Equivocation { seq: 1 },
            Reject::ReservedChannel("team-x".into()),
            Reject::ChannelDissolved("c".into()),
            Reject::ChannelSplit { channel: "c".into(), into: vec!["c-a".into(), "c-b".into()] },
            Reject::ChannelMerged { channel: "c".into(), into: "d".into() },
            Reject::BadTeam("x"),
            Reject::NotCoordinator { task: t },
            Reject::TeamNotForming { task: t, status: "x" },
            Reject::TeamNotInProgress { task: t, status: "x" },
            Reject::TeamFull { task: t, max: 2 },
            Reject::AlreadyInTeam(t),
            Reject::AlreadyApplied(t),
            Reject::NoSkills,
            Reject::NoSkillMatch(t),
            Reject::NotApplicant { task: t },
            Reject::NoSuchSubTask { task: t, index: 1 },
            Reject::SubTaskNotYours { task: t, index: 1 },
            Reject::SubTaskDone { task: t, index: 1 },
            Reject::NoSuchProposal(t),
            Reject::ProposalWrongChannel { proposal: t, channel: "c".into() },
            Reject::BadProposal("x"),
            Reject::ProposalNotOpen { proposal: t, status: "closed" },
            Reject::VotingEnded { proposal: t, deadline_ms: 1 },
            Reject::VotingPeriodRunning { proposal: t, until_ms: 1 },
            Reject::NotExpired { proposal: t, deadline_ms: 1 },
            Reject::QuorumNotReached { proposal: t, counted_milli: 1, quorum_milli: 2, deadline_ms: 3 },
            Reject::NotAdmitted,
            Reject::GrantsMissing { tool: "x".into(), have: 1, need: 2 },
            Reject::NotCustodian { tool: "x".into() },
            Reject::BadGrant("x"),
            Reject::BadTicket { bits: 20 },
            Reject::AlreadyAdmitted,
            Reject::BadVotingKey("x".into()),
            Reject::VotingKeyFixed,
            Reject::VotingKeyTaken,
            Reject::NoSuchRing(1),
            Reject::BadRingSignature,
            Reject::AlreadyVoted,
            Reject::LinkRequired,
            Reject::LinkNotExpected,
            Reject::AnonymousNotFresh,
            Reject::BadEvidence("x"),
            Reject::AlreadyPenalized(n),
            Reject::NotRatifiable { proposal: t, kind: "generic" },
            Reject::NotPendingRatification { proposal: t, status: "open" },
            Reject::NotValidator { proposal: t },
            Reject::AlreadyRatified { proposal: t },
            Reject::BadKey,
            Reject::NoSuchTool("x".into()),
            Reject::ToolWrongChannel { tool: "x".into(), channel: "c".into() },
            Reject::ToolInactive { tool: "x".into(), status: "deprecated" },
            Reject::UpkeepNotDue { tool: "x".into(), due_ms: 1 },
            Reject::ToolNotRequired { task: t, tool: "x".into() },
            Reject::ToolSecretUnavailable("x".into()),
            Reject::ModulePresent(ModuleHash([1; 32])),
            Reject::PieceCountMismatch { module: ModuleHash([1; 32]), count: 2, expected: 3 },
            Reject::DuplicatePiece { module: ModuleHash([1; 32]), index: 0 },
            Reject::TooManyPendingModules { limit: 4 },
            Reject::Overflow("minted SP"),
            Reject::NoAccount(n),
        ];
        let codes: std::collections::BTreeSet<&str> = all.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), all.len(), "duplicate reject codes");
        for r in &all {
            let s = r.to_string();
            assert!(s.len() > 10 && !s.contains("{}"), "{s}");
        }
        assert_eq!(
            Reject::ClaimedByOther { task: t, assignee: n }.to_string(),
            "task 00000000… is claimed by another node (07070707…)"
        );
    }
}
