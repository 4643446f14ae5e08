//! The small types every layer of the state shares: the context an op is
//! applied in, a task's status, a channel, and the helpers of the canonical
//! encoding. This module imports no layer, so every layer can import it.
//!
//! Layers of the state, bottom to top. Each imports only layers above it in
//! this list (test `core_imports_are_one_way` fails on a cycle, or on a layer
//! importing `state`); what a rule needs from another layer is an argument.
//!
//! 1. `common`: these shared types.
//! 2. `ledger` + `channels`: accounts, escrow, channels and treasuries.
//! 3. `upgrades`: policy modules and the hooks rules call (needs no ledger).
//! 4. `tasks` + `auction`: the task board (pays through the ledger).
//! 5. `teams`: team tasks and skill profiles (ledger, upgrades).
//! 6. `tools`: X25519 keys and common tools (ledger, tasks).
//! 7. `governance`: proposals, votes, validators, execution log (ledger,
//!    upgrades); returns the commands to run instead of running them.
//! 8. `split_merge`: the channel-reshaping commands (ledger, tasks,
//!    governance).
//!
//! On top: `state` (dispatch and hash), `commands` (runs executed
//! commands), `dry_run`, then `fold` and `replica`. Below everything: `op`,
//! `hlc`, `reject`, `reputation`, `economy` and the `upgrade` sandbox.

use crate::codec::Writer;
use crate::core::hlc::Hlc;
use crate::core::op::OpId;
use crate::core::reject::Reject;
use crate::identity::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Prefix reserved for team workspace channels: `channel_create` refuses it
/// (the ledger's rule) and team rules create such channels, so it lives
/// below both.
pub const WORKSPACE_PREFIX: &str = "team-";

/// The context an op is applied in.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    pub id: OpId,
    pub author: NodeId,
    pub hlc: Hlc,
    pub channel: &'a str,
}

/// Empty or only ASCII whitespace. Deliberately not `str::trim`, whose
/// Unicode tables may change between Rust releases: a fold rule must give
/// the same answer on every build of every node.
pub fn is_blank(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_whitespace())
}

/// A task's place in its lifecycle. Shared because tools (credential access)
/// and governance (which tasks a split moves) read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    AuctionOpen,
    Claimed,
    InProgress,
    Completed,
    Deleted,
}

impl TaskStatus {
    pub fn name(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::AuctionOpen => "auction_open",
            TaskStatus::Claimed => "claimed",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Completed => "completed",
            TaskStatus::Deleted => "deleted",
        }
    }

    /// The status byte of the canonical encoding.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// A channel: a namespace for tasks with its own treasury. The map of
/// channels belongs to the ledger (treasuries are SP); the type is here
/// because every layer that creates tasks or proposals checks it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// The creator; the only node that may fund tasks from the treasury.
    /// `None` for `global`.
    pub steward: Option<NodeId>,
    pub description: String,
    pub created: Hlc,
    /// SP held by the channel (collected tax).
    pub treasury: u64,
    pub members: BTreeSet<NodeId>,
    /// Set when a team workspace is dissolved; no new members or tasks.
    pub dissolved: Option<Hlc>,
    /// Set when governance split or merged this channel away. Its work now
    /// lives in `split_into` or `merged_into`, so it takes no new tasks,
    /// proposals or members, and the refusal names where to go instead.
    #[serde(default)]
    pub archived: bool,
    /// The destinations of the split that archived this channel, in the
    /// order the split listed them.
    #[serde(default)]
    pub split_into: Vec<String>,
    /// The target of the merge that archived this channel (its tasks and
    /// proposals moved there).
    #[serde(default)]
    pub merged_into: Option<String>,
}

impl Channel {
    /// A fresh channel with no treasury and no members.
    pub fn new(steward: Option<NodeId>, description: String, created: Hlc) -> Channel {
        Channel {
            steward,
            description,
            created,
            treasury: 0,
            members: BTreeSet::new(),
            dissolved: None,
            archived: false,
            split_into: Vec::new(),
            merged_into: None,
        }
    }

    /// Dissolved (a finished team workspace) or archived (split or merged
    /// away): either way the channel takes no new work.
    pub fn is_closed(&self) -> bool {
        self.dissolved.is_some() || self.archived
    }

    /// Whether new tasks, team tasks, proposals and members may enter this
    /// channel (named `name`); the refusal says why not and, for an archived
    /// channel, where its work went.
    pub fn check_accepts_new_work(&self, name: &str) -> Result<(), Reject> {
        if self.dissolved.is_some() {
            return Err(Reject::ChannelDissolved(name.to_owned()));
        }
        if self.archived {
            return Err(match &self.merged_into {
                Some(into) => Reject::ChannelMerged { channel: name.to_owned(), into: into.clone() },
                None => Reject::ChannelSplit { channel: name.to_owned(), into: self.split_into.clone() },
            });
        }
        Ok(())
    }
}

// ---- canonical encoding helpers (the bytes that feed the state hash) ----

/// An HLC as `ms:u64 logical:u32`.
pub(crate) fn hlc(w: &mut Writer, h: Hlc) {
    w.u64(h.ms).u32(h.logical);
}

/// An optional HLC: tag byte 0, or 1 and the HLC.
pub(crate) fn opt_hlc(w: &mut Writer, h: Option<Hlc>) {
    match h {
        None => {
            w.u8(0);
        }
        Some(h) => {
            w.u8(1);
            hlc(w, h);
        }
    }
}

/// An optional node id: tag byte 0, or 1 and the 32 bytes.
pub(crate) fn opt_node(w: &mut Writer, n: Option<&NodeId>) {
    match n {
        None => {
            w.u8(0);
        }
        Some(n) => {
            w.u8(1).raw(&n.0);
        }
    }
}

/// A list of strings: `count:u64` then each string.
pub(crate) fn list(w: &mut Writer, items: &[String]) {
    w.u64(items.len() as u64);
    for s in items {
        w.str(s);
    }
}

/// A set of node ids: `count:u64` then each id, in order.
pub(crate) fn nodes<'a>(w: &mut Writer, ids: impl ExactSizeIterator<Item = &'a NodeId>) {
    w.u64(ids.len() as u64);
    for n in ids {
        w.raw(&n.0);
    }
}
