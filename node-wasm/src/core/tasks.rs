//! Task rules: create, claim, start, complete, delete.
//!
//! Lifecycle: `open → claimed → in_progress → completed`, plus
//! `auction_open → claimed` (award) or `auction_open → open` (no bids), and
//! `deleted` from any state. The reward is escrowed when the task is created
//! (or, for auctions, when it is awarded), paid out minus tax on completion,
//! and refunded on deletion if not yet paid.

use crate::core::op::{Funding, GLOBAL_CHANNEL, MAX_TITLE_CHARS, NewTask, TaskId, TaskSchema};
use crate::core::reject::{Payer, Reject};
use crate::core::state::{Auction, AuctionStatus, Ctx, State, Task, TaskStatus};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Empty or only ASCII whitespace. Deliberately not `str::trim`, whose
/// Unicode tables may change between Rust releases: a fold rule must give
/// the same answer on every build of every node.
pub fn is_blank(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_whitespace())
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

impl State {
    /// Looks a task up for an op in channel `cx.channel`: it must exist, live
    /// in that channel (rule `channel_isolation`) and not be deleted.
    pub(crate) fn live_task(&self, cx: Ctx<'_>, id: TaskId) -> Result<&Task, Reject> {
        let t = self.tasks.get(&id).ok_or(Reject::NoSuchTask(id))?;
        if t.channel != cx.channel {
            return Err(Reject::WrongChannel { task: id, channel: t.channel.clone() });
        }
        if t.status == TaskStatus::Deleted {
            return Err(Reject::TaskDeleted(id));
        }
        Ok(t)
    }

    /// Rule `task_create`: schema-valid body, an existing non-global channel,
    /// treasury funding only by the channel's steward, and the reward
    /// escrowed from the payer, who must be able to afford it.
    pub(crate) fn task_create(&mut self, cx: Ctx<'_>, t: &NewTask) -> Result<(), Reject> {
        validate_new_task(t, cx.hlc.ms)?;
        if cx.channel == GLOBAL_CHANNEL {
            return Err(Reject::GlobalNotAllowed("creating tasks"));
        }
        let ch = self.channels.get(cx.channel).ok_or_else(|| Reject::NoSuchChannel(cx.channel.to_owned()))?;
        if ch.dissolved.is_some() {
            return Err(Reject::ChannelDissolved(cx.channel.to_owned()));
        }
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
        self.check_funds(&payer, escrow)?;
        self.escrow_from(&payer, escrow);
        let (status, auction) = match t.auction {
            Some(terms) => {
                (TaskStatus::AuctionOpen, Some(Auction { terms, bids: BTreeMap::new(), status: AuctionStatus::Open }))
            }
            None => (TaskStatus::Open, None),
        };
        self.tasks.insert(
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
    /// escrow pays `reward - tax` to the assignee and `tax` to the channel
    /// treasury; the assignee earns reputation unless it owns the task.
    pub(crate) fn task_complete(&mut self, cx: Ctx<'_>, id: TaskId) -> Result<(), Reject> {
        self.assignee_transition(cx, id, TaskStatus::InProgress, TaskStatus::Completed)?;
        let Some(t) = self.task_mut(&id) else {
            return Ok(());
        };
        let reward = t.escrow;
        t.escrow = 0;
        let channel = t.channel.clone();
        let owner = t.owner;
        let tags = t.tags.clone();
        let tax = self.policy_tax(reward, self.params.tax_bps);
        self.release_to(&Payer::Node(cx.author), reward - tax);
        self.release_to(&Payer::Treasury(channel), tax);
        if owner != cx.author {
            let milli = self.params.task_reputation_milli;
            if let Some(a) = self.accounts.get_mut(&cx.author) {
                a.reputation.credit(cx.hlc.ms, milli, &tags);
            }
        }
        Ok(())
    }

    /// Shared check for assignee-only transitions.
    fn assignee_transition(&mut self, cx: Ctx<'_>, id: TaskId, from: TaskStatus, to: TaskStatus) -> Result<(), Reject> {
        let t = self.live_task(cx, id)?;
        if t.assignee != Some(cx.author) {
            return Err(Reject::NotAssignee { task: id });
        }
        if t.status != from {
            return Err(Reject::WrongStatus { task: id, status: t.status.name(), needs: from.name() });
        }
        let t = self.task_mut(&id).ok_or(Reject::NoSuchTask(id))?;
        t.status = to;
        t.updated = cx.hlc;
        Ok(())
    }

    /// Rule `task_delete`: only the owner; any status but deleted. Escrow not
    /// yet paid out goes back to the payer (creator or treasury).
    pub(crate) fn task_delete(&mut self, cx: Ctx<'_>, id: TaskId) -> Result<(), Reject> {
        let t = self.live_task(cx, id)?;
        if t.owner != cx.author {
            return Err(Reject::NotOwner { task: id });
        }
        let payer = t.payer();
        let refund = t.escrow;
        self.release_to(&payer, refund);
        if let Some(t) = self.task_mut(&id) {
            t.escrow = 0;
            t.status = TaskStatus::Deleted;
            t.updated = cx.hlc;
        }
        Ok(())
    }
}
