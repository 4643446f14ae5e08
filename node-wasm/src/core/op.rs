//! Signed operations: the only thing replicas exchange about shared state.
//!
//! Wire format (big-endian, every length capped, no trailing bytes; see
//! `docs/PROTOCOL.md` for the full table):
//!
//! ```text
//! signed_op = payload signature:[64]
//! payload   = version:u8 (=1) author:[32] seq:u64 prev:[32]
//!             hlc_ms:u64 hlc_logical:u32 channel:str body
//! body      = tag:u8 fields...
//! ```
//!
//! The signature is Ed25519 over `"synapse-ng/op/v1" || 0x00 || payload`
//! (the identity module's domain separation), checked with `verify_strict`.
//! The op id is SHA-256 of the whole signed op (payload and signature), so
//! the id commits to exactly the bytes peers exchange.
//!
//! Decoding is strict and canonical: one value has exactly one encoding
//! (booleans and option tags must be 0 or 1, list counts are exact, text is
//! UTF-8 within its byte limit). Structural limits (sizes, channel-name
//! syntax, `seq >= 1`, a zero `prev` for `seq == 1`) are enforced here;
//! semantic rules (is this claim allowed now?) are the fold's job, so a
//! well-formed op is always kept as evidence even when it has no effect.

use crate::codec::{DecodeError, Reader, Writer};
use crate::core::hlc::Hlc;
use crate::core::upgrade::{MAX_MODULE_BYTES, MAX_PIECE_BYTES, Policy};
use crate::identity::{Identity, IdentityError, NodeId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The only op encoding version this node speaks.
pub const OP_VERSION: u8 = 1;
/// Signature domain for ops.
pub const OP_DOMAIN: &[u8] = b"synapse-ng/op/v1";
/// Largest signed op accepted, in bytes.
pub const MAX_OP_BYTES: usize = 64 * 1024;
/// Channel names: 1..=64 bytes of `[a-z0-9._-]`.
pub const MAX_CHANNEL_BYTES: usize = 64;
/// Titles: the schema limit is 200 characters; 4 bytes per char at most.
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_TITLE_BYTES: usize = MAX_TITLE_CHARS * 4;
/// Free text (task and channel descriptions).
pub const MAX_DESCRIPTION_BYTES: usize = 16 * 1024;
/// Tags and required tools per task, and their lengths.
pub const MAX_TAGS: usize = 16;
pub const MAX_TAG_BYTES: usize = 32;
pub const MAX_TOOLS: usize = 16;
pub const MAX_TOOL_BYTES: usize = 64;
/// Team (composite) tasks: sub-tasks per team task, skills per profile.
pub const MAX_SUBTASKS: usize = 16;
pub const MAX_SKILLS: usize = 32;
pub const MAX_SUBTASK_DESCRIPTION_BYTES: usize = 4 * 1024;
/// The pub/sub topic every op travels on. An author's ops form one chain
/// (seq + prev) across all channels and an op is folded only once its whole
/// chain is present, so every node must receive every op: a node that missed
/// an author's op on a channel it does not follow would hold all of that
/// author's later ops — including SP-moving ones — as pending. Balances and
/// reputation are therefore identical whatever a node subscribes to.
/// Channels are namespaces (task lists, treasuries, membership), filtered in
/// the view, not separate op streams. See PROTOCOL.md, "Sharding".
pub const OPS_TOPIC: &str = "global";
/// The network-wide channel that always exists.
pub const GLOBAL_CHANNEL: &str = "global";

/// A 32-byte content hash naming an op (and the task an op created).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct OpId(pub [u8; 32]);

/// Tasks are named by the id of the op that created them.
pub type TaskId = OpId;

impl OpId {
    pub const ZERO: OpId = OpId([0; 32]);

    pub fn to_text(&self) -> String {
        hex::encode(self.0)
    }

    /// First 8 hex characters, for messages and logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    pub fn parse(text: &str) -> Option<OpId> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(OpId(out))
    }
}

impl fmt::Debug for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpId({})", self.short())
    }
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl Serialize for OpId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_text())
    }
}

impl<'de> Deserialize<'de> for OpId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        OpId::parse(&text).ok_or_else(|| serde::de::Error::custom("op id must be 64 hex chars"))
    }
}

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

/// Most pieces a module may have (`MAX_MODULE_BYTES / MAX_PIECE_BYTES`).
pub const MAX_MODULE_PIECES: u16 = (MAX_MODULE_BYTES / MAX_PIECE_BYTES) as u16;

/// `[u8; 32]` as 64 lowercase hex characters in JSON.
pub mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut out = [0u8; 32];
        if text.len() != 64 || hex::decode_to_slice(text.as_bytes(), &mut out).is_err() {
            return Err(serde::de::Error::custom("expected 64 hex characters (a SHA-256)"));
        }
        Ok(out)
    }
}

/// Byte strings as lowercase hex in JSON.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        hex::decode(text.as_bytes()).map_err(|_| serde::de::Error::custom("expected hex bytes"))
    }
}

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
            OpBody::ProposalClose { .. } => "proposal_close",
            OpBody::ProposalExpire { .. } => "proposal_expire",
            OpBody::ModulePiece { .. } => "module_piece",
            OpBody::Ratify { .. } => "ratify",
            OpBody::KeyPublish { .. } => "key_publish",
            OpBody::ToolUpkeep { .. } => "tool_upkeep",
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

/// The signed content of an op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub author: NodeId,
    /// 1-based position in the author's chain.
    pub seq: u64,
    /// Id of the author's op `seq - 1`; zero for `seq == 1`.
    pub prev: OpId,
    pub hlc: Hlc,
    pub channel: String,
    pub body: OpBody,
}

/// Why an op could not be built or accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpError {
    Decode(DecodeError),
    TooLarge(usize),
    Signature(IdentityError),
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::Decode(e) => write!(f, "malformed op: {e}"),
            OpError::TooLarge(n) => write!(f, "op is {n} bytes, the limit is {MAX_OP_BYTES}"),
            OpError::Signature(e) => write!(f, "op signature: {e}"),
        }
    }
}

impl std::error::Error for OpError {}

impl From<DecodeError> for OpError {
    fn from(e: DecodeError) -> Self {
        OpError::Decode(e)
    }
}

/// Channel-name syntax: 1..=64 bytes of lowercase ASCII letters, digits, `.`,
/// `_` and `-`. Keeps names URL/topic-safe and gives each name one spelling.
pub fn valid_channel_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CHANNEL_BYTES
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

impl Op {
    /// The canonical payload bytes (what is signed).
    pub fn encode_payload(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(128);
        w.u8(OP_VERSION)
            .raw(&self.author.0)
            .u64(self.seq)
            .raw(&self.prev.0)
            .u64(self.hlc.ms)
            .u32(self.hlc.logical)
            .str(&self.channel);
        encode_body(&mut w, &self.body);
        w.finish()
    }

    /// Strictly decodes a bare payload (no signature). For fuzzing the fold
    /// and for tools; peers' ops always go through [`SignedOp::decode`].
    pub fn decode_unsigned(payload: &[u8]) -> Result<Op, DecodeError> {
        let mut r = Reader::new(payload);
        let op = Op::decode_payload(&mut r)?;
        r.finish()?;
        Ok(op)
    }

    fn decode_payload(r: &mut Reader<'_>) -> Result<Op, DecodeError> {
        let v = r.u8()?;
        if v != OP_VERSION {
            return Err(DecodeError::UnknownVersion(v));
        }
        let author = NodeId(r.array()?);
        let seq = r.u64()?;
        if seq == 0 {
            return Err(DecodeError::Invalid("seq (must be >= 1)"));
        }
        let prev = OpId(r.array()?);
        if seq == 1 && prev != OpId::ZERO {
            return Err(DecodeError::Invalid("prev (must be zero for seq 1)"));
        }
        let hlc = Hlc::new(r.u64()?, r.u32()?);
        let channel = r.str("channel", MAX_CHANNEL_BYTES)?;
        if !valid_channel_name(channel) {
            return Err(DecodeError::Invalid("channel name"));
        }
        let body = decode_body(r)?;
        Ok(Op { author, seq, prev, hlc, channel: channel.to_owned(), body })
    }
}

fn encode_body(w: &mut Writer, body: &OpBody) {
    match body {
        OpBody::ChannelCreate { description } => {
            w.u8(1).str(description);
        }
        OpBody::ChannelSubscribe => {
            w.u8(2);
        }
        OpBody::ChannelUnsubscribe => {
            w.u8(3);
        }
        OpBody::TaskCreate(t) => {
            w.u8(10)
                .u8(match t.schema {
                    TaskSchema::TaskV1 => 1,
                    TaskSchema::TaskV2 => 2,
                })
                .str(&t.title)
                .str(&t.description)
                .u64(t.reward);
            encode_list(w, &t.tags);
            encode_list(w, &t.required_tools);
            w.u8(match t.funding {
                Funding::Creator => 0,
                Funding::Treasury => 1,
            });
            match &t.auction {
                None => {
                    w.u8(0);
                }
                Some(a) => {
                    w.u8(1).u64(a.max_reward).u64(a.deadline_ms);
                }
            }
        }
        OpBody::TaskClaim { task } => {
            w.u8(11).raw(&task.0);
        }
        OpBody::TaskStart { task } => {
            w.u8(12).raw(&task.0);
        }
        OpBody::TaskComplete { task } => {
            w.u8(13).raw(&task.0);
        }
        OpBody::TaskDelete { task } => {
            w.u8(14).raw(&task.0);
        }
        OpBody::Bid { task, amount, estimated_days } => {
            w.u8(20).raw(&task.0).u64(*amount).u32(*estimated_days);
        }
        OpBody::AuctionClose { task } => {
            w.u8(21).raw(&task.0);
        }
        OpBody::SkillsSet { skills } => {
            w.u8(30);
            encode_list(w, skills);
        }
        OpBody::TeamTaskCreate(t) => {
            w.u8(31).str(&t.title).str(&t.description).u64(t.coordinator_bonus).u8(t.max_team_size).u8(t
                .subtasks
                .len()
                .min(255)
                as u8);
            for st in t.subtasks.iter().take(255) {
                w.str(&st.title).str(&st.description);
                encode_list(w, &st.required_skills);
                w.u64(st.reward);
            }
        }
        OpBody::TeamClaim { task } => {
            w.u8(32).raw(&task.0);
        }
        OpBody::TeamApply { task } => {
            w.u8(33).raw(&task.0);
        }
        OpBody::TeamAccept { task, applicant } => {
            w.u8(34).raw(&task.0).raw(&applicant.0);
        }
        OpBody::SubTaskComplete { task, index } => {
            w.u8(35).raw(&task.0).u8(*index);
        }
        OpBody::ProposalCreate(p) => {
            w.u8(40).u8(p.kind.code()).str(&p.title).str(&p.description);
            encode_list(w, &p.tags);
            match &p.command {
                None => {
                    w.u8(0);
                }
                Some(c) => {
                    w.u8(1);
                    encode_command(w, c);
                }
            }
        }
        OpBody::Vote { proposal, yes } => {
            w.u8(41).raw(&proposal.0).u8(u8::from(*yes));
        }
        OpBody::ProposalClose { proposal } => {
            w.u8(42).raw(&proposal.0);
        }
        OpBody::ProposalExpire { proposal } => {
            w.u8(43).raw(&proposal.0);
        }
        OpBody::Ratify { proposal } => {
            w.u8(44).raw(&proposal.0);
        }
        OpBody::KeyPublish { x25519 } => {
            w.u8(45).raw(x25519);
        }
        OpBody::ToolUpkeep { tool_id } => {
            w.u8(46).str(tool_id);
        }
        OpBody::ModulePiece { module, index, count, bytes } => {
            w.u8(50).raw(module).u16(*index).u16(*count).bytes(bytes);
        }
    }
}

/// Tool ids, webhook URLs, secret ciphertexts and recipients per tool.
pub const MAX_TOOL_ID_BYTES: usize = MAX_TOOL_BYTES;
pub const MAX_URL_BYTES: usize = 2048;
pub const MAX_SECRET_BYTES: usize = 4096;
pub const MAX_RECIPIENTS: usize = 64;
/// AES-256-GCM over a 32-byte key: 32 + 16 tag bytes.
pub const SEALED_KEY_BYTES: usize = 48;

/// Largest config key and text value, schema name and schema definition.
pub const MAX_CONFIG_KEY_BYTES: usize = 64;
pub const MAX_CONFIG_TEXT_BYTES: usize = 1024;
pub const MAX_SCHEMA_NAME_BYTES: usize = 64;
/// Split parts and merge sources per command.
pub const MAX_CHANNEL_PARTS: usize = 16;

pub(crate) fn encode_command(w: &mut Writer, c: &Command) {
    match c {
        Command::ConfigChange { key, value } => {
            w.u8(1).str(key);
            match value {
                ConfigValue::Int(v) => {
                    w.u8(0).u64(*v);
                }
                ConfigValue::Bool(b) => {
                    w.u8(1).u8(u8::from(*b));
                }
                ConfigValue::Text(t) => {
                    w.u8(2).str(t);
                }
            }
        }
        Command::SplitChannel { target, logic, parts } => {
            w.u8(2).str(target).u8(match logic {
                SplitLogic::ByTag => 0,
                SplitLogic::ByTitlePrefix => 1,
            });
            w.u8(parts.len().min(255) as u8);
            for p in parts.iter().take(255) {
                w.str(&p.channel);
                encode_list(w, &p.keys);
            }
        }
        Command::MergeChannels { sources, target } => {
            w.u8(3);
            encode_list(w, sources);
            w.str(target).u8(0);
        }
        Command::UpdateSchema { name, definition } => {
            w.u8(4).str(name).str(definition);
        }
        Command::CodeUpgrade { module_sha256, policy } => {
            w.u8(5).raw(module_sha256).u8(policy.tag());
        }
        Command::AcquireCommonTool(t) => {
            w.u8(6).str(&t.channel).str(&t.tool_id).str(&t.description);
            w.u8(match t.tool_type {
                ToolType::ApiKey => 0,
                ToolType::Webhook => 1,
            });
            w.str(&t.webhook_url).u64(t.monthly_cost_sp);
            w.raw(&t.secret.nonce).bytes(&t.secret.ciphertext).u8(t.secret.recipients.len().min(255) as u8);
            for k in t.secret.recipients.iter().take(255) {
                w.raw(&k.recipient.0).raw(&k.ephemeral).raw(&k.nonce).bytes(&k.sealed_key);
            }
        }
        Command::DeprecateCommonTool { channel, tool_id } => {
            w.u8(7).str(channel).str(tool_id);
        }
        Command::ReactivateCommonTool { channel, tool_id } => {
            w.u8(8).str(channel).str(tool_id);
        }
    }
}

fn decode_channel(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let c = r.str("channel", MAX_CHANNEL_BYTES)?;
    if !valid_channel_name(c) {
        return Err(DecodeError::Invalid("channel name"));
    }
    Ok(c.to_owned())
}

fn decode_bool(r: &mut Reader<'_>, what: &'static str) -> Result<bool, DecodeError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::Invalid(what)),
    }
}

fn decode_command(r: &mut Reader<'_>) -> Result<Command, DecodeError> {
    Ok(match r.u8()? {
        1 => {
            let key = r.str("config key", MAX_CONFIG_KEY_BYTES)?.to_owned();
            let value = match r.u8()? {
                0 => ConfigValue::Int(r.u64()?),
                1 => ConfigValue::Bool(decode_bool(r, "config bool")?),
                2 => ConfigValue::Text(r.str("config text", MAX_CONFIG_TEXT_BYTES)?.to_owned()),
                t => return Err(DecodeError::UnknownTag(t)),
            };
            Command::ConfigChange { key, value }
        }
        2 => {
            let target = decode_channel(r)?;
            let logic = match r.u8()? {
                0 => SplitLogic::ByTag,
                1 => SplitLogic::ByTitlePrefix,
                _ => return Err(DecodeError::Invalid("split logic")),
            };
            let n = r.u8()? as usize;
            if n > MAX_CHANNEL_PARTS {
                return Err(DecodeError::TooLong { field: "split parts", len: n, max: MAX_CHANNEL_PARTS });
            }
            let mut parts = Vec::with_capacity(n);
            for _ in 0..n {
                let channel = decode_channel(r)?;
                let keys = decode_list(r, "split keys", MAX_TAGS, MAX_TITLE_BYTES)?;
                parts.push(SplitPart { channel, keys });
            }
            Command::SplitChannel { target, logic, parts }
        }
        3 => {
            let sources = decode_list(r, "merge sources", MAX_CHANNEL_PARTS, MAX_CHANNEL_BYTES)?;
            if !sources.iter().all(|s| valid_channel_name(s)) {
                return Err(DecodeError::Invalid("channel name"));
            }
            let target = decode_channel(r)?;
            if r.u8()? != 0 {
                return Err(DecodeError::Invalid("merge conflict resolution"));
            }
            Command::MergeChannels { sources, target }
        }
        4 => Command::UpdateSchema {
            name: r.str("schema name", MAX_SCHEMA_NAME_BYTES)?.to_owned(),
            definition: r.str("schema definition", MAX_DESCRIPTION_BYTES)?.to_owned(),
        },
        5 => Command::CodeUpgrade {
            module_sha256: r.array()?,
            policy: Policy::from_tag(r.u8()?).ok_or(DecodeError::Invalid("policy"))?,
        },
        6 => {
            let channel = decode_channel(r)?;
            let tool_id = r.str("tool id", MAX_TOOL_ID_BYTES)?.to_owned();
            let description = r.str("tool description", MAX_DESCRIPTION_BYTES)?.to_owned();
            let tool_type = match r.u8()? {
                0 => ToolType::ApiKey,
                1 => ToolType::Webhook,
                _ => return Err(DecodeError::Invalid("tool type")),
            };
            let webhook_url = r.str("webhook url", MAX_URL_BYTES)?.to_owned();
            let monthly_cost_sp = r.u64()?;
            let nonce = r.array()?;
            let ciphertext = r.bytes("tool secret", MAX_SECRET_BYTES)?.to_vec();
            let n = r.u8()? as usize;
            if n > MAX_RECIPIENTS {
                return Err(DecodeError::TooLong { field: "recipients", len: n, max: MAX_RECIPIENTS });
            }
            let mut recipients = Vec::with_capacity(n);
            for _ in 0..n {
                let recipient = NodeId(r.array()?);
                let ephemeral = r.array()?;
                let nonce = r.array()?;
                let sealed_key = r.bytes("sealed key", SEALED_KEY_BYTES)?.to_vec();
                if sealed_key.len() != SEALED_KEY_BYTES {
                    return Err(DecodeError::Invalid("sealed key length"));
                }
                recipients.push(SealedKey { recipient, ephemeral, nonce, sealed_key });
            }
            Command::AcquireCommonTool(NewTool {
                channel,
                tool_id,
                description,
                tool_type,
                webhook_url,
                monthly_cost_sp,
                secret: SealedSecret { nonce, ciphertext, recipients },
            })
        }
        7 => Command::DeprecateCommonTool {
            channel: decode_channel(r)?,
            tool_id: r.str("tool id", MAX_TOOL_ID_BYTES)?.to_owned(),
        },
        8 => Command::ReactivateCommonTool {
            channel: decode_channel(r)?,
            tool_id: r.str("tool id", MAX_TOOL_ID_BYTES)?.to_owned(),
        },
        t => return Err(DecodeError::UnknownTag(t)),
    })
}

/// A list of short strings: `count:u8` then each as `str`. Callers keep counts
/// within limits; `decode_list` enforces them.
fn encode_list(w: &mut Writer, items: &[String]) {
    w.u8(items.len().min(255) as u8);
    for s in items.iter().take(255) {
        w.str(s);
    }
}

fn decode_list(
    r: &mut Reader<'_>,
    field: &'static str,
    max_items: usize,
    max_bytes: usize,
) -> Result<Vec<String>, DecodeError> {
    let n = r.u8()? as usize;
    if n > max_items {
        return Err(DecodeError::TooLong { field, len: n, max: max_items });
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(r.str(field, max_bytes)?.to_owned());
    }
    Ok(out)
}

fn decode_body(r: &mut Reader<'_>) -> Result<OpBody, DecodeError> {
    let tag = r.u8()?;
    let task = |r: &mut Reader<'_>| -> Result<TaskId, DecodeError> { Ok(OpId(r.array()?)) };
    Ok(match tag {
        1 => OpBody::ChannelCreate { description: r.str("channel description", MAX_DESCRIPTION_BYTES)?.to_owned() },
        2 => OpBody::ChannelSubscribe,
        3 => OpBody::ChannelUnsubscribe,
        10 => {
            let schema = match r.u8()? {
                1 => TaskSchema::TaskV1,
                2 => TaskSchema::TaskV2,
                t => return Err(DecodeError::UnknownTag(t)),
            };
            let title = r.str("title", MAX_TITLE_BYTES)?.to_owned();
            let description = r.str("description", MAX_DESCRIPTION_BYTES)?.to_owned();
            let reward = r.u64()?;
            let tags = decode_list(r, "tags", MAX_TAGS, MAX_TAG_BYTES)?;
            let required_tools = decode_list(r, "required_tools", MAX_TOOLS, MAX_TOOL_BYTES)?;
            let funding = match r.u8()? {
                0 => Funding::Creator,
                1 => Funding::Treasury,
                _ => return Err(DecodeError::Invalid("funding")),
            };
            let auction = match r.u8()? {
                0 => None,
                1 => Some(AuctionTerms { max_reward: r.u64()?, deadline_ms: r.u64()? }),
                _ => return Err(DecodeError::Invalid("auction flag")),
            };
            OpBody::TaskCreate(NewTask { schema, title, description, reward, tags, required_tools, funding, auction })
        }
        11 => OpBody::TaskClaim { task: task(r)? },
        12 => OpBody::TaskStart { task: task(r)? },
        13 => OpBody::TaskComplete { task: task(r)? },
        14 => OpBody::TaskDelete { task: task(r)? },
        20 => OpBody::Bid { task: task(r)?, amount: r.u64()?, estimated_days: r.u32()? },
        21 => OpBody::AuctionClose { task: task(r)? },
        30 => OpBody::SkillsSet { skills: decode_list(r, "skills", MAX_SKILLS, MAX_TAG_BYTES)? },
        31 => {
            let title = r.str("title", MAX_TITLE_BYTES)?.to_owned();
            let description = r.str("description", MAX_DESCRIPTION_BYTES)?.to_owned();
            let coordinator_bonus = r.u64()?;
            let max_team_size = r.u8()?;
            let n = r.u8()? as usize;
            if n > MAX_SUBTASKS {
                return Err(DecodeError::TooLong { field: "subtasks", len: n, max: MAX_SUBTASKS });
            }
            let mut subtasks = Vec::with_capacity(n);
            for _ in 0..n {
                subtasks.push(NewSubTask {
                    title: r.str("subtask title", MAX_TITLE_BYTES)?.to_owned(),
                    description: r.str("subtask description", MAX_SUBTASK_DESCRIPTION_BYTES)?.to_owned(),
                    required_skills: decode_list(r, "required_skills", MAX_TAGS, MAX_TAG_BYTES)?,
                    reward: r.u64()?,
                });
            }
            OpBody::TeamTaskCreate(NewTeamTask { title, description, subtasks, coordinator_bonus, max_team_size })
        }
        32 => OpBody::TeamClaim { task: task(r)? },
        33 => OpBody::TeamApply { task: task(r)? },
        34 => OpBody::TeamAccept { task: task(r)?, applicant: NodeId(r.array()?) },
        35 => OpBody::SubTaskComplete { task: task(r)?, index: r.u8()? },
        40 => {
            let kind = match r.u8()? {
                0 => ProposalKind::Generic,
                1 => ProposalKind::ConfigChange,
                2 => ProposalKind::Command,
                3 => ProposalKind::NetworkOperation,
                4 => ProposalKind::CodeUpgrade,
                t => return Err(DecodeError::UnknownTag(t)),
            };
            let title = r.str("title", MAX_TITLE_BYTES)?.to_owned();
            let description = r.str("description", MAX_DESCRIPTION_BYTES)?.to_owned();
            let tags = decode_list(r, "tags", MAX_TAGS, MAX_TAG_BYTES)?;
            let command = match r.u8()? {
                0 => None,
                1 => Some(decode_command(r)?),
                _ => return Err(DecodeError::Invalid("command flag")),
            };
            OpBody::ProposalCreate(NewProposal { kind, title, description, tags, command })
        }
        41 => OpBody::Vote { proposal: task(r)?, yes: decode_bool(r, "vote")? },
        42 => OpBody::ProposalClose { proposal: task(r)? },
        43 => OpBody::ProposalExpire { proposal: task(r)? },
        44 => OpBody::Ratify { proposal: task(r)? },
        45 => OpBody::KeyPublish { x25519: r.array()? },
        46 => OpBody::ToolUpkeep { tool_id: r.str("tool id", MAX_TOOL_ID_BYTES)?.to_owned() },
        50 => {
            let module = r.array()?;
            let index = r.u16()?;
            let count = r.u16()?;
            if count == 0 || count > MAX_MODULE_PIECES || index >= count {
                return Err(DecodeError::Invalid("module piece index/count"));
            }
            let bytes = r.bytes("module piece", MAX_PIECE_BYTES)?.to_vec();
            if bytes.is_empty() {
                return Err(DecodeError::Invalid("empty module piece"));
            }
            OpBody::ModulePiece { module, index, count, bytes }
        }
        t => return Err(DecodeError::UnknownTag(t)),
    })
}

/// An op with its author's signature, its canonical bytes and its id.
/// Constructed only by [`SignedOp::create`] and [`SignedOp::decode`], so the
/// bytes, id and fields always agree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedOp {
    op: Op,
    signature: [u8; 64],
    bytes: Vec<u8>,
    id: OpId,
}

/// A [`SignedOp`] whose signature has been checked. Only [`SignedOp::verify`]
/// (and, crate-private, the strict-equivalent batch verifier through
/// `VerifiedOp::from_external_check`) makes one, so the log can only ever
/// hold verified ops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedOp(SignedOp);

impl std::ops::Deref for VerifiedOp {
    type Target = SignedOp;
    fn deref(&self) -> &SignedOp {
        &self.0
    }
}

impl VerifiedOp {
    /// Wraps an op whose signature was checked outside [`SignedOp::verify`].
    /// Call **only** after a check proven equivalent to `verify_strict` on
    /// `OP_DOMAIN || 0 || payload` (the WebCrypto path with the
    /// [`crate::core::strict`] pre-checks): anything else would let an op
    /// that other nodes reject into the log and split the network.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // used by runtime::webcrypto
    pub(crate) fn from_external_check(op: SignedOp) -> VerifiedOp {
        VerifiedOp(op)
    }

    pub fn into_inner(self) -> SignedOp {
        self.0
    }
}

/// SHA-256 of the signed bytes.
pub fn op_id(bytes: &[u8]) -> OpId {
    OpId(Sha256::digest(bytes).into())
}

impl SignedOp {
    /// Builds and signs an op as `identity`. Fails if the result would not
    /// decode (a field over its limit), so everything we emit is acceptable
    /// to every peer.
    pub fn create(
        identity: &Identity,
        seq: u64,
        prev: OpId,
        hlc: Hlc,
        channel: &str,
        body: OpBody,
    ) -> Result<VerifiedOp, OpError> {
        let op = Op { author: identity.node_id(), seq, prev, hlc, channel: channel.to_owned(), body };
        let mut bytes = op.encode_payload();
        let signature = identity.sign(OP_DOMAIN, &bytes);
        bytes.extend_from_slice(&signature);
        let decoded = SignedOp::decode(&bytes)?;
        debug_assert_eq!(decoded.op, op);
        Ok(VerifiedOp(decoded))
    }

    /// Strict decoding of an op from a peer. Does not check the signature.
    pub fn decode(bytes: &[u8]) -> Result<SignedOp, OpError> {
        if bytes.len() > MAX_OP_BYTES {
            return Err(OpError::TooLarge(bytes.len()));
        }
        if bytes.len() < 64 {
            return Err(OpError::Decode(DecodeError::Truncated));
        }
        let (payload, sig) = bytes.split_at(bytes.len() - 64);
        let mut r = Reader::new(payload);
        let op = Op::decode_payload(&mut r)?;
        r.finish()?;
        let mut signature = [0u8; 64];
        signature.copy_from_slice(sig);
        Ok(SignedOp { op, signature, id: op_id(bytes), bytes: bytes.to_vec() })
    }

    /// Checks the author's signature with `verify_strict`.
    pub fn verify(self) -> Result<VerifiedOp, OpError> {
        let payload = &self.bytes[..self.bytes.len() - 64];
        self.op.author.verify(OP_DOMAIN, payload, &self.signature).map_err(OpError::Signature)?;
        Ok(VerifiedOp(self))
    }

    pub fn op(&self) -> &Op {
        &self.op
    }
    /// The signed payload (the op bytes without the signature).
    pub fn payload(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - 64]
    }
    pub fn id(&self) -> OpId {
        self.id
    }
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_bodies() -> Vec<OpBody> {
        let t = OpId([9; 32]);
        vec![
            OpBody::ChannelCreate { description: "dev".into() },
            OpBody::ChannelSubscribe,
            OpBody::ChannelUnsubscribe,
            OpBody::TaskCreate(NewTask {
                schema: TaskSchema::TaskV2,
                title: "Fix the bug ✓".into(),
                description: "d".into(),
                reward: 0,
                tags: vec!["rust".into(), "wasm".into()],
                required_tools: vec!["gh".into()],
                funding: Funding::Treasury,
                auction: Some(AuctionTerms { max_reward: 100, deadline_ms: 99 }),
            }),
            OpBody::TaskCreate(NewTask {
                schema: TaskSchema::TaskV1,
                title: "t".into(),
                description: String::new(),
                reward: 5,
                tags: vec![],
                required_tools: vec![],
                funding: Funding::Creator,
                auction: None,
            }),
            OpBody::TaskClaim { task: t },
            OpBody::TaskStart { task: t },
            OpBody::TaskComplete { task: t },
            OpBody::TaskDelete { task: t },
            OpBody::Bid { task: t, amount: 3, estimated_days: 2 },
            OpBody::AuctionClose { task: t },
            OpBody::SkillsSet { skills: vec!["rust".into(), "ui".into()] },
            OpBody::TeamTaskCreate(NewTeamTask {
                title: "team".into(),
                description: "d".into(),
                subtasks: vec![NewSubTask {
                    title: "s".into(),
                    description: String::new(),
                    required_skills: vec!["rust".into()],
                    reward: 7,
                }],
                coordinator_bonus: 3,
                max_team_size: 4,
            }),
            OpBody::TeamClaim { task: t },
            OpBody::TeamApply { task: t },
            OpBody::TeamAccept { task: t, applicant: NodeId([5; 32]) },
            OpBody::SubTaskComplete { task: t, index: 2 },
            OpBody::ProposalCreate(NewProposal {
                kind: ProposalKind::Generic,
                title: "p".into(),
                description: String::new(),
                tags: vec!["python".into()],
                command: None,
            }),
            OpBody::ProposalCreate(NewProposal {
                kind: ProposalKind::ConfigChange,
                title: "c".into(),
                description: "d".into(),
                tags: vec![],
                command: Some(Command::ConfigChange { key: "tax_bps".into(), value: ConfigValue::Int(300) }),
            }),
            OpBody::ProposalCreate(NewProposal {
                kind: ProposalKind::Command,
                title: "b".into(),
                description: String::new(),
                tags: vec![],
                command: Some(Command::ConfigChange { key: "x".into(), value: ConfigValue::Bool(true) }),
            }),
            OpBody::ProposalCreate(NewProposal {
                kind: ProposalKind::Command,
                title: "t".into(),
                description: String::new(),
                tags: vec![],
                command: Some(Command::ConfigChange { key: "x".into(), value: ConfigValue::Text("v".into()) }),
            }),
            OpBody::ProposalCreate(NewProposal {
                kind: ProposalKind::NetworkOperation,
                title: "s".into(),
                description: String::new(),
                tags: vec![],
                command: Some(Command::SplitChannel {
                    target: "dev".into(),
                    logic: SplitLogic::ByTitlePrefix,
                    parts: vec![SplitPart { channel: "dev-ui".into(), keys: vec!["UI:".into()] }],
                }),
            }),
            OpBody::ProposalCreate(NewProposal {
                kind: ProposalKind::Command,
                title: "m".into(),
                description: String::new(),
                tags: vec![],
                command: Some(Command::MergeChannels { sources: vec!["a".into(), "b".into()], target: "c".into() }),
            }),
            OpBody::ProposalCreate(NewProposal {
                kind: ProposalKind::Command,
                title: "u".into(),
                description: String::new(),
                tags: vec![],
                command: Some(Command::UpdateSchema { name: "x".into(), definition: "{}".into() }),
            }),
            OpBody::ProposalCreate(NewProposal {
                kind: ProposalKind::CodeUpgrade,
                title: "w".into(),
                description: String::new(),
                tags: vec![],
                command: Some(Command::CodeUpgrade { module_sha256: [4; 32], policy: Policy::Tax }),
            }),
            OpBody::Vote { proposal: t, yes: true },
            OpBody::Vote { proposal: t, yes: false },
            OpBody::ProposalClose { proposal: t },
            OpBody::ProposalExpire { proposal: t },
            OpBody::Ratify { proposal: t },
            OpBody::KeyPublish { x25519: [3; 32] },
            OpBody::ToolUpkeep { tool_id: "gh".into() },
            OpBody::ModulePiece { module: [5; 32], index: 1, count: 2, bytes: vec![0, 97, 115, 109] },
            OpBody::ProposalCreate(NewProposal {
                kind: ProposalKind::Command,
                title: "tool".into(),
                description: String::new(),
                tags: vec![],
                command: Some(Command::AcquireCommonTool(NewTool {
                    channel: "dev".into(),
                    tool_id: "gh".into(),
                    description: "d".into(),
                    tool_type: ToolType::Webhook,
                    webhook_url: "http://127.0.0.1/hook".into(),
                    monthly_cost_sp: 5,
                    secret: SealedSecret {
                        nonce: [1; 12],
                        ciphertext: vec![1, 2, 3],
                        recipients: vec![SealedKey {
                            recipient: NodeId([2; 32]),
                            ephemeral: [3; 32],
                            nonce: [4; 12],
                            sealed_key: vec![5; SEALED_KEY_BYTES],
                        }],
                    },
                })),
            }),
            OpBody::ProposalCreate(NewProposal {
                kind: ProposalKind::NetworkOperation,
                title: "dep".into(),
                description: String::new(),
                tags: vec![],
                command: Some(Command::DeprecateCommonTool { channel: "dev".into(), tool_id: "gh".into() }),
            }),
            OpBody::ProposalCreate(NewProposal {
                kind: ProposalKind::Command,
                title: "re".into(),
                description: String::new(),
                tags: vec![],
                command: Some(Command::ReactivateCommonTool { channel: "dev".into(), tool_id: "gh".into() }),
            }),
        ]
    }

    #[test]
    fn op_round_trips_and_verifies() {
        let me = Identity::from_seed([1; 32]);
        for (i, body) in sample_bodies().into_iter().enumerate() {
            let seq = i as u64 + 1;
            let prev = if seq == 1 { OpId::ZERO } else { OpId([1; 32]) };
            let op = SignedOp::create(&me, seq, prev, Hlc::new(10, 2), "dev", body).unwrap();
            let back = SignedOp::decode(op.bytes()).unwrap();
            assert_eq!(back.op(), op.op());
            assert_eq!(back.id(), op.id());
            assert_eq!(back.id(), op_id(op.bytes()));
            back.verify().unwrap();
        }
    }

    /// The JS API hands bodies in as JSON (serde): every body round-trips.
    #[test]
    fn op_bodies_round_trip_through_json() {
        for body in sample_bodies() {
            let json = serde_json::to_string(&body).unwrap();
            let back: OpBody = serde_json::from_str(&json).unwrap();
            assert_eq!(back, body, "{json}");
        }
        let json = r#"{"type":"proposal_create","kind":"config_change","title":"t","description":"","tags":[],
            "command":{"operation":"config_change","key":"tax_bps","value":{"type":"int","value":300}}}"#;
        let body: OpBody = serde_json::from_str(json).unwrap();
        assert!(matches!(body, OpBody::ProposalCreate(NewProposal { kind: ProposalKind::ConfigChange, .. })));
    }

    #[test]
    fn op_signature_binds_every_byte() {
        let me = Identity::from_seed([1; 32]);
        let op = SignedOp::create(&me, 1, OpId::ZERO, Hlc::new(1, 0), "dev", OpBody::ChannelSubscribe).unwrap();
        let bytes = op.bytes().to_vec();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 1;
            if let Ok(d) = SignedOp::decode(&b) {
                assert!(d.verify().is_err(), "flip at byte {i} still verified");
            }
        }
    }

    #[test]
    fn op_decoding_is_strict() {
        let me = Identity::from_seed([1; 32]);
        let op = SignedOp::create(&me, 1, OpId::ZERO, Hlc::new(1, 0), "dev", OpBody::ChannelSubscribe).unwrap();
        let bytes = op.bytes();
        // Trailing byte inside the payload (before the signature).
        let mut b = bytes[..bytes.len() - 64].to_vec();
        b.push(0);
        b.extend_from_slice(op.signature());
        assert!(SignedOp::decode(&b).is_err());
        // Unknown version.
        let mut b = bytes.to_vec();
        b[0] = 2;
        assert_eq!(SignedOp::decode(&b), Err(OpError::Decode(DecodeError::UnknownVersion(2))));
        // Too large.
        assert!(matches!(SignedOp::decode(&vec![0; MAX_OP_BYTES + 1]), Err(OpError::TooLarge(_))));
        // seq 0 and non-zero prev at seq 1 cannot even be built.
        assert!(SignedOp::create(&me, 0, OpId::ZERO, Hlc::ZERO, "a", OpBody::ChannelSubscribe).is_err());
        assert!(SignedOp::create(&me, 1, OpId([1; 32]), Hlc::ZERO, "a", OpBody::ChannelSubscribe).is_err());
        // Bad channel names.
        for name in ["", "Dev", "a b", &"x".repeat(65)] {
            assert!(SignedOp::create(&me, 1, OpId::ZERO, Hlc::ZERO, name, OpBody::ChannelSubscribe).is_err());
        }
        // Over-long lists.
        let body = OpBody::TaskCreate(NewTask {
            schema: TaskSchema::TaskV1,
            title: "t".into(),
            description: String::new(),
            reward: 0,
            tags: vec!["x".into(); MAX_TAGS + 1],
            required_tools: vec![],
            funding: Funding::Creator,
            auction: None,
        });
        assert!(SignedOp::create(&me, 1, OpId::ZERO, Hlc::ZERO, "a", body).is_err());
    }

    #[test]
    fn op_decoder_never_panics_on_garbage() {
        // A tiny xorshift so the test needs no RNG crate.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let me = Identity::from_seed([1; 32]);
        let seeds: Vec<Vec<u8>> = sample_bodies()
            .into_iter()
            .map(|b| SignedOp::create(&me, 2, OpId([3; 32]), Hlc::new(5, 0), "c", b).unwrap().bytes().to_vec())
            .collect();
        for i in 0..20_000 {
            let mut b = seeds[i % seeds.len()].clone();
            let flips = 1 + next() % 4;
            for _ in 0..flips {
                let pos = (next() as usize) % b.len();
                b[pos] = next() as u8;
            }
            if next() % 8 == 0 {
                let cut = (next() as usize) % b.len();
                b.truncate(cut);
            }
            if let Ok(op) = SignedOp::decode(&b) {
                let _ = op.verify();
            }
        }
    }
}
