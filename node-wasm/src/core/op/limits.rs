//! Every structural limit of the wire format. Each bound exists so that a
//! decoded op has a known worst-case size: ops are stored forever by every
//! replica and folded on every device, so one hostile author must not be able
//! to make a single op (or the state it builds) unboundedly expensive.
//! Changing any of these changes which ops peers accept: a protocol change.

use crate::core::upgrade::{MAX_MODULE_BYTES, MAX_PIECE_BYTES};

/// Largest signed op accepted, in bytes: caps what one message can make
/// every peer store and relay, whatever the body.
pub const MAX_OP_BYTES: usize = 64 * 1024;
/// Channel names are 1..=64 bytes of `[a-z0-9._-]`: short enough to embed in
/// a pub/sub topic and in team workspace names.
pub const MAX_CHANNEL_BYTES: usize = 64;
/// Titles: the schema limit (200 characters), shown in lists and logs.
pub const MAX_TITLE_CHARS: usize = 200;
/// Titles in bytes: 200 characters of at most 4 UTF-8 bytes each, so the
/// decoder can bound the bytes before counting characters.
pub const MAX_TITLE_BYTES: usize = MAX_TITLE_CHARS * 4;
/// Free text (task, channel and proposal descriptions, schema definitions):
/// room for a real description while keeping an op well under
/// [`MAX_OP_BYTES`].
pub const MAX_DESCRIPTION_BYTES: usize = 16 * 1024;
/// Tags per task or proposal (and split keys per part): tags drive
/// reputation per tag, so their number bounds the work of one credit.
pub const MAX_TAGS: usize = 16;
/// Bytes per tag or skill: tags are keys of every account's reputation map,
/// which is hashed with the state.
pub const MAX_TAG_BYTES: usize = 32;
/// Required tools per task: each one is looked up when a credential opens.
pub const MAX_TOOLS: usize = 16;
/// Bytes per required-tool name.
pub const MAX_TOOL_BYTES: usize = 64;
/// Sub-tasks per team task: the assignment rule is recomputed on every
/// accept and is quadratic in sub-tasks × members.
pub const MAX_SUBTASKS: usize = 16;
/// Skills per profile: matched against every sub-task on apply and accept.
pub const MAX_SKILLS: usize = 32;
/// Description of one sub-task: smaller than a task's so that a full team
/// task (16 sub-tasks) still fits in one op.
pub const MAX_SUBTASK_DESCRIPTION_BYTES: usize = 4 * 1024;
/// Tool ids are required-tool names, so they share [`MAX_TOOL_BYTES`].
pub const MAX_TOOL_ID_BYTES: usize = MAX_TOOL_BYTES;
/// Webhook URLs: long enough for real endpoints, short enough for the state.
pub const MAX_URL_BYTES: usize = 2048;
/// A tool's encrypted credential: API keys and tokens, not files.
pub const MAX_SECRET_BYTES: usize = 4096;
/// Members a credential is sealed to: 64 sealed keys keep the
/// `acquire_common_tool` op within [`MAX_OP_BYTES`].
pub const MAX_RECIPIENTS: usize = 64;
/// A sealed data key is exactly AES-256-GCM over 32 bytes: 32 + 16 tag bytes.
/// Any other length cannot be a valid sealed key, so it is refused on decode.
pub const SEALED_KEY_BYTES: usize = 48;
/// Config keys: the whitelist's names are short; more is never valid.
pub const MAX_CONFIG_KEY_BYTES: usize = 64;
/// Text config values (none is used yet): bounded like any free text.
pub const MAX_CONFIG_TEXT_BYTES: usize = 1024;
/// Schema names are map keys of the governance state.
pub const MAX_SCHEMA_NAME_BYTES: usize = 64;
/// Split parts and merge sources per command: each one may create a channel.
pub const MAX_CHANNEL_PARTS: usize = 16;
/// Most pieces a module may have (`MAX_MODULE_BYTES / MAX_PIECE_BYTES`): a
/// larger count could never assemble, so it is refused on decode instead of
/// parking pieces forever.
pub const MAX_MODULE_PIECES: u16 = (MAX_MODULE_BYTES / MAX_PIECE_BYTES) as u16;

/// Most heads a checkpoint vote lists (84 bytes each: well inside
/// [`MAX_OP_BYTES`]).
pub const MAX_FRONTIER_MOVED: usize = 512;

/// Members in one anonymous-ballot ring: signing and checking a vote costs
/// about 0.4 ms per member in Chromium (64 members: 26 ms to sign, 29 ms to
/// verify; 256: 123 and 100 ms), and every node verifies every vote once
/// before forwarding it. 64 keeps a vote well under a frame's time on
/// every node; larger memberships get several rings per tier.
pub const MAX_ANON_RING: usize = 64;

/// Each op quoted by an equivocation evidence op: two of them and the
/// header fit in [`MAX_OP_BYTES`]. An equivocator whose forked ops are
/// larger escapes the penalty (not the exclusion of its ops).
pub const MAX_EVIDENCE_OP_BYTES: usize = 32 * 1024 - 512;
