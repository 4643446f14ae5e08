//! The binary wire form of ops: one canonical encoding per value, strict
//! decoding with every length capped (limits in `limits.rs`). The same
//! `encode_command` bytes feed the state hash (a proposal's command), so the
//! wire form and the canonical state form can never drift apart.

use super::bodies::*;
use super::ids::{OpId, TaskId, valid_channel_name};
use super::limits::*;
use super::signed::Op;
use crate::codec::{DecodeError, Reader, Writer};
use crate::core::hlc::Hlc;
use crate::core::upgrade::{MAX_PIECE_BYTES, Policy};
use crate::identity::NodeId;

/// The only op encoding version this node speaks.
pub const OP_VERSION: u8 = 1;
/// Signature domain for ops.
pub const OP_DOMAIN: &[u8] = b"synapse-ng/op/v1";

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

    pub(super) fn decode_payload(r: &mut Reader<'_>) -> Result<Op, DecodeError> {
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
        OpBody::LinkedVote { proposal, yes, link } => {
            w.u8(48).raw(&proposal.0).u8(u8::from(*yes));
            encode_ring_signature(w, link);
        }
        OpBody::AnonymousVote { proposal, yes, ring, signature } => {
            w.u8(51).raw(&proposal.0).u8(u8::from(*yes)).u16(*ring);
            encode_ring_signature(w, signature);
        }
        OpBody::Evidence { first, second } => {
            w.u8(52).bytes(first).bytes(second);
        }
        OpBody::VotingKeyPublish { key, proof } => {
            w.u8(49).raw(&key.0);
            encode_ring_signature(w, proof);
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
        OpBody::ToolGrant { tool_id, task, index, grant } => {
            w.u8(47).str(tool_id).raw(&task.0).u8(*index);
            encode_sealed_key(w, grant);
        }
        OpBody::ToolUpkeep { tool_id } => {
            w.u8(46).str(tool_id);
        }
        OpBody::ModulePiece { module, index, count, bytes } => {
            w.u8(50).raw(module).u16(*index).u16(*count).bytes(bytes);
        }
        OpBody::Admit { nonce } => {
            w.u8(60).u64(*nonce);
        }
        OpBody::Checkpoint(v) => {
            w.u8(70).u64(v.epoch);
            match v.base {
                Some(b) => w.u8(1).u64(b),
                None => w.u8(0),
            };
            w.raw(&v.frontier).raw(&v.state).u16(v.moved.len().min(MAX_FRONTIER_MOVED) as u16);
            for h in v.moved.iter().take(MAX_FRONTIER_MOVED) {
                w.raw(&h.author.0).u64(h.seq).raw(&h.id.0).u64(h.hlc.ms).u32(h.hlc.logical);
            }
        }
    }
}

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
                encode_sealed_key(w, k);
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

/// A sealed box: `recipient:[32] ephemeral:[32] nonce:[12]
/// bytes(sealed_key)` (the tool secret's custodians and a tool grant).
pub(crate) fn encode_sealed_key(w: &mut Writer, k: &SealedKey) {
    w.raw(&k.recipient.0).raw(&k.ephemeral).raw(&k.nonce).bytes(&k.sealed_key);
}

fn decode_sealed_key(r: &mut Reader<'_>) -> Result<SealedKey, DecodeError> {
    let recipient = NodeId(r.array()?);
    let ephemeral = r.array()?;
    let nonce = r.array()?;
    let sealed_key = r.bytes("sealed key", SEALED_KEY_BYTES)?.to_vec();
    if sealed_key.len() != SEALED_KEY_BYTES {
        return Err(DecodeError::Invalid("sealed key length"));
    }
    Ok(SealedKey { recipient, ephemeral, nonce, sealed_key })
}

fn decode_channel(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let c = r.str("channel", MAX_CHANNEL_BYTES)?;
    if !valid_channel_name(c) {
        return Err(DecodeError::Invalid("channel name"));
    }
    Ok(c.to_owned())
}

/// A ring signature: image, first challenge, then a u16 count of
/// responses (1 to `max`). Whether the points and scalars are canonical is
/// the verifier's check (`core/ring.rs`).
fn encode_ring_signature(w: &mut Writer, s: &crate::core::ring::RingSignature) {
    w.raw(&s.image.0).raw(&s.c0).u16(s.responses.len() as u16);
    for x in &s.responses {
        w.raw(x);
    }
}

fn decode_ring_signature(r: &mut Reader<'_>, max: usize) -> Result<crate::core::ring::RingSignature, DecodeError> {
    let image = crate::core::ring::KeyImage(r.array()?);
    let c0 = r.array()?;
    let n = usize::from(r.u16()?);
    if n == 0 || n > max {
        return Err(DecodeError::TooLong { field: "ring responses", len: n, max });
    }
    let mut responses = Vec::with_capacity(n);
    for _ in 0..n {
        responses.push(r.array()?);
    }
    Ok(crate::core::ring::RingSignature { image, c0, responses })
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
                recipients.push(decode_sealed_key(r)?);
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
        48 => {
            OpBody::LinkedVote { proposal: task(r)?, yes: decode_bool(r, "vote")?, link: decode_ring_signature(r, 1)? }
        }
        51 => OpBody::AnonymousVote {
            proposal: task(r)?,
            yes: decode_bool(r, "vote")?,
            ring: r.u16()?,
            signature: decode_ring_signature(r, MAX_ANON_RING)?,
        },
        52 => OpBody::Evidence {
            first: r.bytes("evidence op", MAX_EVIDENCE_OP_BYTES)?.to_vec(),
            second: r.bytes("evidence op", MAX_EVIDENCE_OP_BYTES)?.to_vec(),
        },
        49 => OpBody::VotingKeyPublish {
            key: crate::core::ring::VotingKey(r.array()?),
            proof: decode_ring_signature(r, 1)?,
        },
        42 => OpBody::ProposalClose { proposal: task(r)? },
        43 => OpBody::ProposalExpire { proposal: task(r)? },
        44 => OpBody::Ratify { proposal: task(r)? },
        45 => OpBody::KeyPublish { x25519: r.array()? },
        46 => OpBody::ToolUpkeep { tool_id: r.str("tool id", MAX_TOOL_ID_BYTES)?.to_owned() },
        47 => {
            let tool_id = r.str("tool id", MAX_TOOL_ID_BYTES)?.to_owned();
            let task = task(r)?;
            let index = r.u8()?;
            if usize::from(index) >= MAX_RECIPIENTS {
                return Err(DecodeError::Invalid("custodian index"));
            }
            OpBody::ToolGrant { tool_id, task, index, grant: decode_sealed_key(r)? }
        }
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
        60 => OpBody::Admit { nonce: r.u64()? },
        70 => OpBody::Checkpoint(decode_checkpoint_vote(r)?),
        t => return Err(DecodeError::UnknownTag(t)),
    })
}

/// A checkpoint vote: at most [`MAX_FRONTIER_MOVED`] heads, strictly sorted
/// by author (one head per author, one encoding per vote), seqs from 1.
fn decode_checkpoint_vote(r: &mut Reader<'_>) -> Result<CheckpointVote, DecodeError> {
    let epoch = r.u64()?;
    let base = match r.u8()? {
        0 => None,
        1 => Some(r.u64()?),
        _ => return Err(DecodeError::Invalid("checkpoint base flag")),
    };
    let frontier = r.array()?;
    let state = r.array()?;
    let n = usize::from(r.u16()?);
    if n > MAX_FRONTIER_MOVED {
        return Err(DecodeError::TooLong { field: "moved", len: n, max: MAX_FRONTIER_MOVED });
    }
    let mut moved: Vec<FrontierHead> = Vec::with_capacity(n);
    for _ in 0..n {
        let h = FrontierHead {
            author: NodeId(r.array()?),
            seq: r.u64()?,
            id: OpId(r.array()?),
            hlc: Hlc::new(r.u64()?, r.u32()?),
        };
        if h.seq == 0 || moved.last().is_some_and(|p| p.author >= h.author) {
            return Err(DecodeError::Invalid("checkpoint heads must be sorted by author, seqs from 1"));
        }
        moved.push(h);
    }
    Ok(CheckpointVote { epoch, base, frontier, state, moved })
}
