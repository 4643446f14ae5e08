//! What an op says: [`OpBody`] and the payload types its variants carry
//! (new tasks, team tasks, proposals, commands, sealed tool secrets). Plain
//! data with serde for the JS API; the binary wire form is in `codec.rs`.

use serde::{Deserialize, Serialize};

use super::ids::{OpId, TaskId};
use crate::core::upgrade::Policy;
use crate::identity::NodeId;

/// Which task schema a task body claims to follow (see `schema.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskSchema {
    /// Fixed reward, no auction.
    TaskV1,
    /// Allows an auction instead of a fixed reward.
    TaskV2,
}

/// Who pays a task's reward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Funding {
    /// The creating node's balance.
    Creator,
    /// The treasury of the task's channel.
    Treasury,
}

/// Auction terms of a task (`task_v2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionTerms {
    /// Highest acceptable bid, SP.
    pub max_reward: u64,
    /// Bids are accepted up to and including this op time (HLC ms); a close
    /// op is valid only after it.
    pub deadline_ms: u64,
}

/// The fields of a task-creation op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTask {
    pub schema: TaskSchema,
    pub title: String,
    pub description: String,
    /// Fixed reward in SP (must be 0 for an auction: the winning bid sets it).
    pub reward: u64,
    pub tags: Vec<String>,
    pub required_tools: Vec<String>,
    pub funding: Funding,
    pub auction: Option<AuctionTerms>,
}

/// One sub-task of a team task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSubTask {
    pub title: String,
    pub description: String,
    pub required_skills: Vec<String>,
    pub reward: u64,
}

/// The fields of a team-task (composite task) creation op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTeamTask {
    pub title: String,
    pub description: String,
    pub subtasks: Vec<NewSubTask>,
    /// Paid to the coordinator when every sub-task is done.
    pub coordinator_bonus: u64,
    /// Members plus the coordinator.
    pub max_team_size: u8,
}

/// The kind of a governance proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalKind {
    /// No effect beyond its outcome.
    Generic,
    /// Carries a `config_change` command, executed at an approving close.
    ConfigChange,
    /// Carries any command, executed at an approving close.
    Command,
    /// Carries a command, executed once validators ratify it.
    NetworkOperation,
    /// Names a WASM module by SHA-256; recorded once validators ratify it.
    CodeUpgrade,
}

impl ProposalKind {
    pub fn name(self) -> &'static str {
        match self {
            ProposalKind::Generic => "generic",
            ProposalKind::ConfigChange => "config_change",
            ProposalKind::Command => "command",
            ProposalKind::NetworkOperation => "network_operation",
            ProposalKind::CodeUpgrade => "code_upgrade",
        }
    }
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// A typed configuration value (the type is checked against the key's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum ConfigValue {
    Int(u64),
    Bool(bool),
    Text(String),
}

impl ConfigValue {
    pub fn type_name(&self) -> &'static str {
        match self {
            ConfigValue::Int(_) => "integer",
            ConfigValue::Bool(_) => "boolean",
            ConfigValue::Text(_) => "string",
        }
    }
}

/// How `split_channel` picks the tasks to move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitLogic {
    /// A task moves to the first part listing one of its tags.
    ByTag,
    /// A task moves to the first part listing a prefix of its title
    /// (ASCII case-insensitive).
    ByTitlePrefix,
}

/// One destination of a split: a channel and its tags or title prefixes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitPart {
    pub channel: String,
    pub keys: Vec<String>,
}

/// A command a proposal executes (at close, or at ratification).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "operation", rename_all = "snake_case")]
pub enum Command {
    ConfigChange {
        key: String,
        value: ConfigValue,
    },
    SplitChannel {
        target: String,
        logic: SplitLogic,
        parts: Vec<SplitPart>,
    },
    /// Conflict resolution `keep_all` (the only mode).
    MergeChannels {
        sources: Vec<String>,
        target: String,
    },
    /// `definition` is JSON text: an object with `schema_name` (= `name`) and `fields`.
    UpdateSchema {
        name: String,
        definition: String,
    },
    /// Switches `policy` to the module whose bytes hash to `module_sha256`
    /// (published as `module_piece` ops); the all-zero hash restores the
    /// built-in policy (rollback). See `core/upgrades.rs`.
    CodeUpgrade {
        #[serde(with = "hex32")]
        module_sha256: [u8; 32],
        policy: Policy,
    },
    AcquireCommonTool(NewTool),
    DeprecateCommonTool {
        channel: String,
        tool_id: String,
    },
    /// Pays a month and reactivates a tool suspended for lack of funds.
    ReactivateCommonTool {
        channel: String,
        tool_id: String,
    },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::ConfigChange { .. } => "config_change",
            Command::SplitChannel { .. } => "split_channel",
            Command::MergeChannels { .. } => "merge_channels",
            Command::UpdateSchema { .. } => "update_schema",
            Command::CodeUpgrade { .. } => "code_upgrade",
            Command::AcquireCommonTool(_) => "acquire_common_tool",
            Command::DeprecateCommonTool { .. } => "deprecate_common_tool",
            Command::ReactivateCommonTool { .. } => "reactivate_common_tool",
        }
    }
}

/// What kind of common tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolType {
    /// The secret is handed to the authorized caller.
    ApiKey,
    /// The node calls `webhook_url` with the secret.
    Webhook,
}

/// One author's head in a finality frontier: the last op of its chain that
/// the checkpoint includes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FrontierHead {
    pub author: NodeId,
    pub seq: u64,
    pub id: OpId,
    /// Its HLC: the author's next op must exceed it.
    pub hlc: crate::core::hlc::Hlc,
}

/// Rule `checkpoint_vote`: a validator's signature (the op's) on the state
/// at the end of epoch `epoch`: the frontier (every author's last op with an
/// HLC before the epoch's end) and the state hash after folding exactly
/// those ops. `moved` lists the heads that differ from the frontier of the
/// final epoch `base` (all heads when `base` is `None`), so a node holding
/// extra, late ops can tell which ones the quorum did not include; it is
/// empty when more than [`super::limits::MAX_FRONTIER_MOVED`] heads moved
/// (nodes then rely on having the same ops).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointVote {
    pub epoch: u64,
    pub base: Option<u64>,
    #[serde(with = "hex32")]
    pub frontier: [u8; 32],
    #[serde(with = "hex32")]
    pub state: [u8; 32],
    pub moved: Vec<FrontierHead>,
}

/// A data key sealed to one recipient: X25519 with an ephemeral key, HKDF-SHA256,
/// AES-256-GCM over the 32-byte data key (48 bytes with the tag).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedKey {
    pub recipient: NodeId,
    pub ephemeral: [u8; 32],
    pub nonce: [u8; 12],
    pub sealed_key: Vec<u8>,
}

/// A secret encrypted once under a fresh data key, plus that key sealed to
/// each authorized recipient. Contains no plaintext.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    pub nonce: [u8; 12],
    pub ciphertext: Vec<u8>,
    pub recipients: Vec<SealedKey>,
}

/// The fields of an `acquire_common_tool` command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTool {
    pub channel: String,
    pub tool_id: String,
    pub description: String,
    pub tool_type: ToolType,
    /// Only for webhooks (public; the credential is in `secret`).
    pub webhook_url: String,
    pub monthly_cost_sp: u64,
    pub secret: SealedSecret,
}

/// The fields of a proposal-creation op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProposal {
    pub kind: ProposalKind,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub command: Option<Command>,
}

/// What an op does. Tags are part of the wire format; never reuse one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OpBody {
    /// Creates the op's channel; the author becomes its steward and first member.
    ChannelCreate {
        description: String,
    },
    /// The author joins the op's channel.
    ChannelSubscribe,
    /// The author leaves the op's channel.
    ChannelUnsubscribe,
    /// Creates a task in the op's channel; its id is this op's id.
    TaskCreate(NewTask),
    TaskClaim {
        task: TaskId,
    },
    /// The assignee starts work ("progress" in the original).
    TaskStart {
        task: TaskId,
    },
    TaskComplete {
        task: TaskId,
    },
    TaskDelete {
        task: TaskId,
    },
    /// A bid (or a rebid, which replaces the bidder's earlier one).
    Bid {
        task: TaskId,
        amount: u64,
        estimated_days: u32,
    },
    /// Awards an auction (or reopens it when nobody bid).
    AuctionClose {
        task: TaskId,
    },
    /// Replaces the author's skill profile.
    SkillsSet {
        skills: Vec<String>,
    },
    /// Creates a team task in the op's channel, fully escrowed.
    TeamTaskCreate(NewTeamTask),
    /// The author becomes the team task's coordinator.
    TeamClaim {
        task: TaskId,
    },
    /// The author applies to join the team.
    TeamApply {
        task: TaskId,
    },
    /// The coordinator accepts an applicant.
    TeamAccept {
        task: TaskId,
        applicant: NodeId,
    },
    /// The assignee of sub-task `index` reports it done.
    SubTaskComplete {
        task: TaskId,
        index: u8,
    },
    /// Creates a proposal in the op's channel (`global` allowed); its id is this op's id.
    ProposalCreate(NewProposal),
    /// A public vote; a re-vote replaces the author's earlier one.
    Vote {
        proposal: OpId,
        yes: bool,
    },
    /// Rule `one_vote_per_member`: the public vote of a member in the
    /// proposal's anonymous rings, carrying its key image for the proposal
    /// (a one-member ring signature under its voting key).
    LinkedVote {
        proposal: OpId,
        yes: bool,
        link: crate::core::ring::RingSignature,
    },
    /// Rule `anonymous_vote`: a vote signed by ring `ring` of the proposal,
    /// carried by the only op of a fresh key.
    AnonymousVote {
        proposal: OpId,
        yes: bool,
        ring: u16,
        signature: crate::core::ring::RingSignature,
    },
    /// Rule `equivocation_evidence`: two signed ops of one author at one
    /// seq, as their full bytes (each at most [`super::MAX_EVIDENCE_OP_BYTES`]).
    Evidence {
        #[serde(with = "hex_bytes")]
        first: Vec<u8>,
        #[serde(with = "hex_bytes")]
        second: Vec<u8>,
    },
    /// Rule `voting_key_publish`: the author's voting key (Ristretto), with
    /// a proof that it holds the secret.
    VotingKeyPublish {
        key: crate::core::ring::VotingKey,
        proof: crate::core::ring::RingSignature,
    },
    /// Closes a proposal after its minimum voting period.
    ProposalClose {
        proposal: OpId,
    },
    /// Deadline op: closes a proposal whose auto-close time has passed.
    ProposalExpire {
        proposal: OpId,
    },
    /// A validator's signature on an approved network operation.
    Ratify {
        proposal: OpId,
    },
    /// Publishes the author's X25519 public key (the op's Ed25519 signature
    /// binds it to the identity); a later publish replaces it.
    KeyPublish {
        x25519: [u8; 32],
    },
    /// Deadline op: charges a tool's monthly upkeep once it is due.
    ToolUpkeep {
        tool_id: String,
    },
    /// Rule `tool_grant`: custodian `index` of a tool hands its share of the
    /// tool's key to the assignee of an in-progress task that requires the
    /// tool, sealed to the assignee's X25519 key.
    ToolGrant {
        tool_id: String,
        task: TaskId,
        index: u8,
        grant: SealedKey,
    },
    /// Rule `admission_ticket`: admits the author to the network with a
    /// proof-of-work nonce (see `core/genesis.rs`); mints its initial SP.
    Admit {
        nonce: u64,
    },
    /// Rule `checkpoint_vote` (see [`CheckpointVote`]); changes nothing in
    /// the state: the replica counts these toward finality.
    Checkpoint(CheckpointVote),
    /// Piece `index` of `count` of a policy module whose whole bytes hash to
    /// `module` (SHA-256). Pieces travel and are stored like any op.
    ModulePiece {
        #[serde(with = "hex32")]
        module: [u8; 32],
        index: u16,
        count: u16,
        #[serde(with = "hex_bytes")]
        bytes: Vec<u8>,
    },
}

pub use crate::codec::{hex_bytes, hex32};

impl OpBody {
    /// Short name for logs, errors and the snapshot.
    pub fn kind(&self) -> &'static str {
        match self {
            OpBody::ChannelCreate { .. } => "channel_create",
            OpBody::ChannelSubscribe => "channel_subscribe",
            OpBody::ChannelUnsubscribe => "channel_unsubscribe",
            OpBody::TaskCreate(_) => "task_create",
            OpBody::TaskClaim { .. } => "task_claim",
            OpBody::TaskStart { .. } => "task_start",
            OpBody::TaskComplete { .. } => "task_complete",
            OpBody::TaskDelete { .. } => "task_delete",
            OpBody::Bid { .. } => "bid",
            OpBody::AuctionClose { .. } => "auction_close",
            OpBody::SkillsSet { .. } => "skills_set",
            OpBody::TeamTaskCreate(_) => "team_task_create",
            OpBody::TeamClaim { .. } => "team_claim",
            OpBody::TeamApply { .. } => "team_apply",
            OpBody::TeamAccept { .. } => "team_accept",
            OpBody::SubTaskComplete { .. } => "subtask_complete",
            OpBody::ProposalCreate(_) => "proposal_create",
            OpBody::Vote { .. } => "vote",
            OpBody::LinkedVote { .. } => "linked_vote",
            OpBody::AnonymousVote { .. } => "anonymous_vote",
            OpBody::VotingKeyPublish { .. } => "voting_key_publish",
            OpBody::Evidence { .. } => "evidence",
            OpBody::ProposalClose { .. } => "proposal_close",
            OpBody::ProposalExpire { .. } => "proposal_expire",
            OpBody::ModulePiece { .. } => "module_piece",
            OpBody::Ratify { .. } => "ratify",
            OpBody::KeyPublish { .. } => "key_publish",
            OpBody::ToolUpkeep { .. } => "tool_upkeep",
            OpBody::ToolGrant { .. } => "tool_grant",
            OpBody::Admit { .. } => "admit",
            OpBody::Checkpoint(_) => "checkpoint",
        }
    }

    /// The task an op acts on, if any (not for `TaskCreate`).
    pub fn task(&self) -> Option<TaskId> {
        match self {
            OpBody::TaskClaim { task }
            | OpBody::TaskStart { task }
            | OpBody::TaskComplete { task }
            | OpBody::TaskDelete { task }
            | OpBody::Bid { task, .. }
            | OpBody::AuctionClose { task }
            | OpBody::TeamClaim { task }
            | OpBody::TeamApply { task }
            | OpBody::TeamAccept { task, .. }
            | OpBody::SubTaskComplete { task, .. } => Some(*task),
            _ => None,
        }
    }
}
