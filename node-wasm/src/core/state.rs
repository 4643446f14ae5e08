//! The replicated state: a pure function of the ops folded so far.
//!
//! Every map is a `BTreeMap`, so iteration (and therefore every decision and
//! the canonical hash) is in key order on every replica. No floats: SP are
//! `u64`, reputation is milli-points.
//!
//! `State::apply` is the single entry point of the fold. Rule handlers check
//! everything before they change anything, so a refused op leaves the state
//! exactly as it was (apart from the author's first-op mint, which happens
//! whatever the op does).

use crate::codec::Writer;
use crate::core::economy::Params;
use crate::core::governance::Governance;
use crate::core::hlc::Hlc;
use crate::core::op::{AuctionTerms, Funding, GLOBAL_CHANNEL, Op, OpBody, OpId, TaskId, TaskSchema};
use crate::core::reject::{Payer, Reject};
use crate::core::reputation::Reputation;
use crate::core::teams::TeamTask;
use crate::core::tools::Tools;
use crate::core::upgrades::Upgrades;
use crate::identity::NodeId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One identity's ledger entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Spendable SP.
    pub balance: u64,
    pub reputation: Reputation,
    /// Time of the first op folded for this identity (when it was minted).
    pub joined: Hlc,
}

/// A channel: a namespace for tasks with its own treasury.
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
}

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
    fn code(self) -> u8 {
        self as u8
    }
}

/// A bid in an auction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bid {
    pub amount: u64,
    pub estimated_days: u32,
    /// Time of the bid op (a rebid replaces it).
    pub at: Hlc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AuctionStatus {
    Open,
    Awarded {
        winner: NodeId,
        amount: u64,
    },
    /// Closed with no bids: the task became a normal open task.
    Reopened,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auction {
    pub terms: AuctionTerms,
    pub bids: BTreeMap<NodeId, Bid>,
    pub status: AuctionStatus,
}

/// A task as the fold sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub channel: String,
    /// The author of the creating op; may delete and close auctions early.
    pub owner: NodeId,
    pub funding: Funding,
    pub schema: TaskSchema,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub required_tools: Vec<String>,
    /// Fixed reward, or the winning bid once an auction is awarded.
    pub reward: u64,
    /// SP currently held in escrow for this task.
    pub escrow: u64,
    pub status: TaskStatus,
    pub assignee: Option<NodeId>,
    pub auction: Option<Auction>,
    pub created: Hlc,
    pub updated: Hlc,
}

impl Task {
    /// Who pays (and gets refunds) for this task.
    pub fn payer(&self) -> Payer {
        match self.funding {
            Funding::Creator => Payer::Node(self.owner),
            Funding::Treasury => Payer::Treasury(self.channel.clone()),
        }
    }
}

/// The whole derived state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub params: Params,
    pub accounts: BTreeMap<NodeId, Account>,
    pub channels: BTreeMap<String, Channel>,
    /// Tasks are shared (`Arc`) so that a checkpoint copy of the state copies
    /// pointers, not task contents; a rule that changes a task copies that
    /// one task on write (`task_mut`).
    pub tasks: BTreeMap<TaskId, Arc<Task>>,
    /// Team (composite) tasks, shared the same way.
    pub teams: BTreeMap<TaskId, Arc<TeamTask>>,
    /// Skill profiles (lowercased).
    pub skills: BTreeMap<NodeId, BTreeSet<String>>,
    /// All SP ever minted.
    /// Proposals, validators, the execution log, config version, schemas.
    pub gov: Governance,
    /// Published X25519 keys and common tools.
    pub tools: Tools,
    /// Policy modules, the active policy versions and their history.
    pub upgrades: Upgrades,
    pub minted: u64,
    /// Sum of every task's escrow (kept for the conservation check).
    pub escrow: u64,
    pub applied: u64,
    pub rejected: u64,
}

impl Default for State {
    fn default() -> State {
        State::genesis()
    }
}

/// The context an op is applied in.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    pub id: OpId,
    pub author: NodeId,
    pub hlc: Hlc,
    pub channel: &'a str,
}

impl State {
    /// The state before any op: only the `global` channel exists.
    pub fn genesis() -> State {
        let mut channels = BTreeMap::new();
        channels.insert(
            GLOBAL_CHANNEL.to_owned(),
            Channel {
                steward: None,
                description: "network-wide channel".to_owned(),
                created: Hlc::ZERO,
                treasury: 0,
                members: BTreeSet::new(),
                dissolved: None,
            },
        );
        State {
            params: Params::default(),
            accounts: BTreeMap::new(),
            channels,
            tasks: BTreeMap::new(),
            teams: BTreeMap::new(),
            skills: BTreeMap::new(),
            gov: Governance::default(),
            tools: Tools::default(),
            upgrades: Upgrades::default(),
            minted: 0,
            escrow: 0,
            applied: 0,
            rejected: 0,
        }
    }

    /// Folds one op. The author is minted its initial SP at its first op
    /// (whatever that op does); then the op's rule runs. `Err` means the op
    /// has no effect and says why.
    pub fn apply(&mut self, id: OpId, op: &Op) -> Result<(), Reject> {
        self.mint_if_new(op.author, op.hlc);
        let cx = Ctx { id, author: op.author, hlc: op.hlc, channel: &op.channel };
        let r = match &op.body {
            OpBody::ChannelCreate { description } => self.channel_create(cx, description),
            OpBody::ChannelSubscribe => self.channel_subscribe(cx),
            OpBody::ChannelUnsubscribe => self.channel_unsubscribe(cx),
            OpBody::TaskCreate(t) => self.task_create(cx, t),
            OpBody::TaskClaim { task } => self.task_claim(cx, *task),
            OpBody::TaskStart { task } => self.task_start(cx, *task),
            OpBody::TaskComplete { task } => self.task_complete(cx, *task),
            OpBody::TaskDelete { task } if self.teams.contains_key(task) => self.team_delete(cx, *task),
            OpBody::TaskDelete { task } => self.task_delete(cx, *task),
            OpBody::Bid { task, amount, estimated_days } => self.bid(cx, *task, *amount, *estimated_days),
            OpBody::AuctionClose { task } => self.auction_close(cx, *task),
            OpBody::SkillsSet { skills } => self.skills_set(cx, skills),
            OpBody::TeamTaskCreate(t) => self.team_task_create(cx, t),
            OpBody::TeamClaim { task } => self.team_claim(cx, *task),
            OpBody::TeamApply { task } => self.team_apply(cx, *task),
            OpBody::TeamAccept { task, applicant } => self.team_accept(cx, *task, *applicant),
            OpBody::SubTaskComplete { task, index } => self.subtask_complete(cx, *task, *index),
            OpBody::ProposalCreate(p) => self.proposal_create(cx, p),
            OpBody::Vote { proposal, yes } => self.vote(cx, *proposal, *yes),
            OpBody::ProposalClose { proposal } => self.proposal_close(cx, *proposal),
            OpBody::ProposalExpire { proposal } => self.proposal_expire(cx, *proposal),
            OpBody::Ratify { proposal } => self.ratify(cx, *proposal),
            OpBody::KeyPublish { x25519 } => self.key_publish(cx, *x25519),
            OpBody::ToolUpkeep { tool_id } => self.tool_upkeep(cx, tool_id),
            OpBody::ModulePiece { module, index, count, bytes } => {
                self.module_piece(cx, *module, *index, *count, bytes)
            }
        };
        match r {
            Ok(()) => self.applied += 1,
            Err(_) => self.rejected += 1,
        }
        r
    }

    /// Rule `mint_on_first_op`: 1000 SP (config) for each identity, once.
    fn mint_if_new(&mut self, author: NodeId, at: Hlc) {
        if self.accounts.contains_key(&author) {
            return;
        }
        let sp = self.params.initial_sp;
        self.minted = self.minted.saturating_add(sp);
        self.accounts.insert(author, Account { balance: sp, reputation: Reputation::new(at.ms), joined: at });
    }

    /// Rule `vote_reputation`, +1 point (config) to the voter's `_total` for
    /// its first public vote on a proposal, folded at `at` (no tag credit).
    pub fn credit_public_vote(&mut self, voter: NodeId, at: Hlc) {
        self.mint_if_new(voter, at);
        let milli = self.params.vote_reputation_milli;
        if let Some(a) = self.accounts.get_mut(&voter) {
            a.reputation.credit(at.ms, milli, &[]);
        }
    }

    /// A task for writing (copy-on-write if a checkpoint shares it).
    pub(crate) fn task_mut(&mut self, id: &TaskId) -> Option<&mut Task> {
        self.tasks.get_mut(id).map(Arc::make_mut)
    }

    /// A team task for writing (copy-on-write if a checkpoint shares it).
    pub(crate) fn team_mut(&mut self, id: &TaskId) -> Option<&mut TeamTask> {
        self.teams.get_mut(id).map(Arc::make_mut)
    }

    pub fn balance(&self, node: &NodeId) -> u64 {
        self.accounts.get(node).map_or(0, |a| a.balance)
    }

    pub fn treasury(&self, channel: &str) -> u64 {
        self.channels.get(channel).map_or(0, |c| c.treasury)
    }

    /// What `payer` can spend.
    pub(crate) fn funds(&self, payer: &Payer) -> u64 {
        match payer {
            Payer::Node(n) => self.balance(n),
            Payer::Treasury(c) => self.treasury(c),
        }
    }

    /// Checks that `payer` can spend `amount` (rule `no_overspend`).
    pub(crate) fn check_funds(&self, payer: &Payer, amount: u64) -> Result<(), Reject> {
        let has = self.funds(payer);
        if has < amount {
            return Err(Reject::InsufficientFunds { payer: payer.clone(), has, needs: amount });
        }
        Ok(())
    }

    /// Moves `amount` from `payer` into the escrow of `task`. Callers check
    /// funds first; this never underflows because it saturates only in the
    /// impossible case.
    pub(crate) fn escrow_from(&mut self, payer: &Payer, amount: u64) {
        match payer {
            Payer::Node(n) => {
                if let Some(a) = self.accounts.get_mut(n) {
                    a.balance -= amount.min(a.balance);
                }
            }
            Payer::Treasury(c) => {
                if let Some(ch) = self.channels.get_mut(c) {
                    ch.treasury -= amount.min(ch.treasury);
                }
            }
        }
        self.escrow += amount;
    }

    /// Pays `amount` out of the escrow to `payee`.
    pub(crate) fn release_to(&mut self, payee: &Payer, amount: u64) {
        self.escrow -= amount.min(self.escrow);
        match payee {
            Payer::Node(n) => {
                if let Some(a) = self.accounts.get_mut(n) {
                    a.balance += amount;
                }
            }
            Payer::Treasury(c) => {
                if let Some(ch) = self.channels.get_mut(c) {
                    ch.treasury += amount;
                }
            }
        }
    }

    /// SP conservation: balances + treasuries + escrow + tool upkeep paid == minted.
    pub fn sp_conserved(&self) -> bool {
        let balances: u128 = self.accounts.values().map(|a| a.balance as u128).sum();
        let treasuries: u128 = self.channels.values().map(|c| c.treasury as u128).sum();
        let escrow: u128 = self.tasks.values().map(|t| t.escrow as u128).sum::<u128>()
            + self.teams.values().map(|t| t.escrow as u128).sum::<u128>();
        escrow == self.escrow as u128
            && balances + treasuries + escrow + self.tools.spent as u128 == self.minted as u128
    }

    /// SHA-256 over a canonical binary encoding of the whole state (map
    /// entries in key order, every field length-prefixed or fixed-width).
    /// Independent of serde and of platform, so replicas compare exactly.
    pub fn state_hash(&self) -> [u8; 32] {
        let mut w = Writer::with_capacity(1024);
        self.encode_canonical(&mut w);
        Sha256::new().chain_update(b"synapse-ng/state/v1").chain_update(w.finish()).finalize().into()
    }

    fn encode_canonical(&self, w: &mut Writer) {
        let p = &self.params;
        w.u64(p.initial_sp)
            .u64(p.tax_bps)
            .u64(p.task_reputation_milli)
            .u64(p.vote_reputation_milli)
            .u64(self.minted)
            .u64(self.escrow)
            .u64(self.applied)
            .u64(self.rejected);
        w.u64(self.accounts.len() as u64);
        for (id, a) in &self.accounts {
            w.raw(&id.0).u64(a.balance);
            hlc(w, a.joined);
            let r = &a.reputation;
            w.u64(r.total).u64(r.anchor_ms).u64(r.tags.len() as u64);
            for (tag, v) in &r.tags {
                w.str(tag).u64(*v);
            }
        }
        w.u64(self.channels.len() as u64);
        for (name, c) in &self.channels {
            w.str(name);
            opt_node(w, c.steward.as_ref());
            w.str(&c.description);
            hlc(w, c.created);
            w.u64(c.treasury).u64(c.members.len() as u64);
            for m in &c.members {
                w.raw(&m.0);
            }
            match c.dissolved {
                None => {
                    w.u8(0);
                }
                Some(h) => {
                    w.u8(1);
                    hlc(w, h);
                }
            }
        }
        w.u64(self.tasks.len() as u64);
        for (id, t) in &self.tasks {
            w.raw(&id.0).raw(&t.id.0).str(&t.channel).raw(&t.owner.0);
            w.u8(t.funding as u8).u8(t.schema as u8);
            w.str(&t.title).str(&t.description);
            list(w, &t.tags);
            list(w, &t.required_tools);
            w.u64(t.reward).u64(t.escrow).u8(t.status.code());
            opt_node(w, t.assignee.as_ref());
            match &t.auction {
                None => {
                    w.u8(0);
                }
                Some(a) => {
                    w.u8(1).u64(a.terms.max_reward).u64(a.terms.deadline_ms).u64(a.bids.len() as u64);
                    for (n, b) in &a.bids {
                        w.raw(&n.0).u64(b.amount).u32(b.estimated_days);
                        hlc(w, b.at);
                    }
                    match a.status {
                        AuctionStatus::Open => {
                            w.u8(0);
                        }
                        AuctionStatus::Awarded { winner, amount } => {
                            w.u8(1).raw(&winner.0).u64(amount);
                        }
                        AuctionStatus::Reopened => {
                            w.u8(2);
                        }
                    }
                }
            }
            hlc(w, t.created);
            hlc(w, t.updated);
        }
        w.u64(self.teams.len() as u64);
        for (id, t) in &self.teams {
            w.raw(&id.0).str(&t.channel).raw(&t.owner.0);
            w.str(&t.title).str(&t.description);
            w.u64(t.subtasks.len() as u64);
            for s in &t.subtasks {
                w.str(&s.title).str(&s.description);
                list(w, &s.required_skills);
                w.u64(s.reward);
                opt_node(w, s.assignee.as_ref());
                w.u8(s.done as u8);
            }
            w.u64(t.coordinator_bonus).u8(t.max_team_size);
            opt_node(w, t.coordinator.as_ref());
            w.u64(t.members.len() as u64);
            for m in &t.members {
                w.raw(&m.0);
            }
            w.u64(t.applicants.len() as u64);
            for (n, m) in &t.applicants {
                w.raw(&n.0).u16(*m);
            }
            w.u8(t.status as u8).u64(t.escrow);
            match &t.workspace {
                None => {
                    w.u8(0);
                }
                Some(ws) => {
                    w.u8(1).str(ws);
                }
            }
            hlc(w, t.created);
            hlc(w, t.updated);
        }
        w.u64(self.skills.len() as u64);
        for (n, skills) in &self.skills {
            w.raw(&n.0).u64(skills.len() as u64);
            for s in skills {
                w.str(s);
            }
        }
        w.u64(p.proposal_min_voting_seconds).u64(p.proposal_auto_close_after_seconds).u64(p.validator_set_size);
        crate::core::governance::encode_canonical(&self.gov, w);
        crate::core::tools::encode_canonical(&self.tools, w);
        crate::core::upgrades::encode_canonical(&self.upgrades, w);
    }
}

pub(crate) fn hlc(w: &mut Writer, h: Hlc) {
    w.u64(h.ms).u32(h.logical);
}

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

pub(crate) fn list(w: &mut Writer, items: &[String]) {
    w.u64(items.len() as u64);
    for s in items {
        w.str(s);
    }
}
