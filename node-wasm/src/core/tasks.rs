//! The task board: tasks and their auctions, with the rules create, claim,
//! start, complete and delete (auction rules are in `auction.rs`).
//!
//! Lifecycle: `open → claimed → in_progress → completed`, plus
//! `auction_open → claimed` (award) or `auction_open → open` (no bids), and
//! `deleted` from any state. The reward is escrowed when the task is created
//! (or, for auctions, when it is awarded), paid out minus tax on completion,
//! and refunded on deletion if not yet paid. SP move through the [`Ledger`],
//! which the rules receive as an argument.

use crate::codec::Writer;
use crate::core::common::{Ctx, hlc, list, opt_node};
pub use crate::core::common::{TaskStatus, is_blank};
use crate::core::economy::Params;
use crate::core::hlc::Hlc;
use crate::core::ledger::Ledger;
use crate::core::op::{AuctionTerms, Funding, GLOBAL_CHANNEL, MAX_TITLE_CHARS, NewTask, TaskId, TaskSchema};
use crate::core::reject::{Payer, Reject};
use crate::core::upgrades::PolicyHooks;
use crate::identity::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

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

/// Every task by id. Tasks are shared (`Arc`) so that a checkpoint copy of
/// the state copies pointers, not task contents; a rule that changes a task
/// copies that one task on write ([`Tasks::task_mut`]). Derefs to the map so
/// readers keep writing `state.tasks.get(id)`; serialized as the bare map.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tasks(pub BTreeMap<TaskId, Arc<Task>>);

impl Deref for Tasks {
    type Target = BTreeMap<TaskId, Arc<Task>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Tasks {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Schema rules shared by the fold and local callers: `task_v1` has a fixed
/// reward and no auction; `task_v2` may carry an auction (then its reward is
/// 0 until award). Titles are 1..=200 characters; tags and tools non-blank
/// and unique.
pub fn validate_new_task(t: &NewTask, now_ms: u64) -> Result<(), Reject> {
    let chars = t.title.chars().count();
    if chars == 0 || chars > MAX_TITLE_CHARS || is_blank(&t.title) {
        return Err(Reject::BadTitle { chars });
    }
    let mut seen = BTreeSet::new();
    for tag in &t.tags {
        if is_blank(tag) {
            return Err(Reject::BadTag(tag.clone()));
        }
        if !seen.insert(tag.as_str()) {
            return Err(Reject::DuplicateTag(tag.clone()));
        }
    }
    let mut seen = BTreeSet::new();
    for tool in &t.required_tools {
        if is_blank(tool) {
            return Err(Reject::BadTag(tool.clone()));
        }
        if !seen.insert(tool.as_str()) {
            return Err(Reject::DuplicateTool(tool.clone()));
        }
    }
    match (&t.auction, t.schema) {
        (Some(_), TaskSchema::TaskV1) => {
            return Err(Reject::SchemaMismatch("task_v1 has no auction"));
        }
        (Some(a), TaskSchema::TaskV2) => {
            if t.reward != 0 {
                return Err(Reject::SchemaMismatch("an auction task's reward is set by the winning bid"));
            }
            if a.max_reward == 0 || a.deadline_ms <= now_ms {
                return Err(Reject::BadDeadline);
            }
        }
        (None, _) => {}
    }
    Ok(())
}

impl Tasks {
    /// A task for writing (copy-on-write if a checkpoint shares it).
    pub(crate) fn task_mut(&mut self, id: &TaskId) -> Option<&mut Task> {
        self.0.get_mut(id).map(Arc::make_mut)
    }

    /// Looks a task up for an op in channel `cx.channel`: it must exist, live
    /// in that channel (rule `channel_isolation`) and not be deleted.
    pub(crate) fn live_task(&self, cx: Ctx<'_>, id: TaskId) -> Result<&Task, Reject> {
        let t = self.0.get(&id).ok_or(Reject::NoSuchTask(id))?;
        if t.channel != cx.channel {
            return Err(Reject::WrongChannel { task: id, channel: t.channel.clone() });
        }
        if t.status == TaskStatus::Deleted {
            return Err(Reject::TaskDeleted(id));
        }
        Ok(t)
    }

    /// Rule `task_create`: schema-valid body, an existing non-global channel
    /// that accepts new work, treasury funding only by the channel's steward,
    /// and the reward escrowed from the payer, who must be able to afford it.
    pub(crate) fn task_create(&mut self, cx: Ctx<'_>, t: &NewTask, ledger: &mut Ledger) -> Result<(), Reject> {
        validate_new_task(t, cx.hlc.ms)?;
        if cx.channel == GLOBAL_CHANNEL {
            return Err(Reject::GlobalNotAllowed("creating tasks"));
        }
        let ch = ledger.channel(cx.channel)?;
        ch.check_accepts_new_work(cx.channel)?;
        let payer = match t.funding {
            Funding::Creator => Payer::Node(cx.author),
            Funding::Treasury => {
                if ch.steward != Some(cx.author) {
                    return Err(Reject::NotSteward { channel: cx.channel.to_owned() });
                }
                Payer::Treasury(cx.channel.to_owned())
            }
        };
        let escrow = if t.auction.is_some() { 0 } else { t.reward };
        ledger.escrow_from(&payer, escrow)?;
        let (status, auction) = match t.auction {
            Some(terms) => {
                (TaskStatus::AuctionOpen, Some(Auction { terms, bids: BTreeMap::new(), status: AuctionStatus::Open }))
            }
            None => (TaskStatus::Open, None),
        };
        self.0.insert(
            cx.id,
            Arc::new(Task {
                id: cx.id,
                channel: cx.channel.to_owned(),
                owner: cx.author,
                funding: t.funding,
                schema: t.schema,
                title: t.title.clone(),
                description: t.description.clone(),
                tags: t.tags.clone(),
                required_tools: t.required_tools.clone(),
                reward: t.reward,
                escrow,
                status,
                assignee: None,
                auction,
                created: cx.hlc,
                updated: cx.hlc,
            }),
        );
        Ok(())
    }

    /// Rule `task_claim`: only an open task; any node (the owner too) may
    /// claim. Of two concurrent claims the one earlier in the total order
    /// wins; the other is refused with `claimed_by_other`.
    pub(crate) fn task_claim(&mut self, cx: Ctx<'_>, id: TaskId) -> Result<(), Reject> {
        let t = self.live_task(cx, id)?;
        if t.status != TaskStatus::Open {
            // The status first: a completed task is not "claimed by another
            // node", even though it keeps its assignee.
            let held = matches!(t.status, TaskStatus::Claimed | TaskStatus::InProgress);
            return Err(match t.assignee {
                Some(a) if held && a != cx.author => Reject::ClaimedByOther { task: id, assignee: a },
                _ => Reject::NotClaimable { task: id, status: t.status.name() },
            });
        }
        let t = self.task_mut(&id).ok_or(Reject::NoSuchTask(id))?;
        t.status = TaskStatus::Claimed;
        t.assignee = Some(cx.author);
        t.updated = cx.hlc;
        Ok(())
    }

    /// Rule `task_start`: the assignee moves a claimed task to in_progress.
    pub(crate) fn task_start(&mut self, cx: Ctx<'_>, id: TaskId) -> Result<(), Reject> {
        self.assignee_transition(cx, id, TaskStatus::Claimed, TaskStatus::InProgress)?;
        Ok(())
    }

    /// Rule `task_complete`: the assignee completes an in-progress task. The
    /// escrow pays `reward - tax` (tax under the active policy) to the
    /// assignee and `tax` to the channel treasury; the assignee earns
    /// reputation unless it owns the task.
    pub(crate) fn task_complete(
        &mut self,
        cx: Ctx<'_>,
        id: TaskId,
        ledger: &mut Ledger,
        params: &Params,
        policy: &mut PolicyHooks<'_>,
    ) -> Result<(), Reject> {
        let t = self.check_assignee(cx, id, TaskStatus::InProgress)?;
        let reward = t.escrow;
        let owner = t.owner;
        let tags = t.tags.clone();
        // Read-only tax first: the payout is checked before anything changes,
        // and a policy fault is counted only for an op that applies.
        let tax = policy.view().tax(reward, params.tax_bps);
        // The view replaces a module's tax above the reward by the built-in
        // one; `checked_sub` turns any other surprise into a refusal, not a wrap.
        let net = reward.checked_sub(tax.value).ok_or(Reject::Overflow("the reward after tax"))?;
        let payouts = [(Payer::Node(cx.author), net), (Payer::Treasury(t.channel.clone()), tax.value)];
        ledger.check_release(&payouts)?;
        self.assignee_transition(cx, id, TaskStatus::InProgress, TaskStatus::Completed)?;
        policy.record_faults(tax.fault);
        if let Some(t) = self.task_mut(&id) {
            t.escrow = 0;
        }
        ledger.release(&payouts)?;
        if ledger.work_earns_reputation(&cx.author, &owner, reward, cx.hlc.ms, &params.rules) {
            ledger.credit_reputation(&cx.author, cx.hlc.ms, params.task_reputation_milli, &tags, &params.rules);
        }
        Ok(())
    }

    /// The live task `id` if `cx.author` is its assignee and it is in `from`.
    fn check_assignee(&self, cx: Ctx<'_>, id: TaskId, from: TaskStatus) -> Result<&Task, Reject> {
        let t = self.live_task(cx, id)?;
        if t.assignee != Some(cx.author) {
            return Err(Reject::NotAssignee { task: id });
        }
        if t.status != from {
            return Err(Reject::WrongStatus { task: id, status: t.status.name(), needs: from.name() });
        }
        Ok(t)
    }

    /// Shared check for assignee-only transitions.
    fn assignee_transition(&mut self, cx: Ctx<'_>, id: TaskId, from: TaskStatus, to: TaskStatus) -> Result<(), Reject> {
        self.check_assignee(cx, id, from)?;
        let t = self.task_mut(&id).ok_or(Reject::NoSuchTask(id))?;
        t.status = to;
        t.updated = cx.hlc;
        Ok(())
    }

    /// Rule `task_delete`: only the owner; any status but deleted. Escrow not
    /// yet paid out goes back to the payer (creator or treasury).
    pub(crate) fn task_delete(&mut self, cx: Ctx<'_>, id: TaskId, ledger: &mut Ledger) -> Result<(), Reject> {
        let t = self.live_task(cx, id)?;
        if t.owner != cx.author {
            return Err(Reject::NotOwner { task: id });
        }
        let payer = t.payer();
        let refund = t.escrow;
        ledger.release(&[(payer, refund)])?;
        if let Some(t) = self.task_mut(&id) {
            t.escrow = 0;
            t.status = TaskStatus::Deleted;
            t.updated = cx.hlc;
        }
        Ok(())
    }

    /// The tasks part of the canonical state encoding, in id order.
    pub(crate) fn encode_canonical(&self, w: &mut Writer) {
        w.u64(self.0.len() as u64);
        for (id, t) in &self.0 {
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
    }
}
