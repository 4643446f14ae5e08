//! Tasks and auctions: creating them, moving them through their life
//! (claim → start → complete, or delete), bidding and closing auctions.

use super::{Intent, Result, channels};
use crate::core::op::{AuctionTerms, Funding, NewTask, OpBody, OpId, TaskSchema};
use crate::core::state::{State, Task, TaskStatus};
use std::sync::Arc;

/// `createTask`'s argument: a fixed-reward task, or an auction when
/// `auction` is given (then `reward` must be 0). Unknown fields are
/// refused, so a misspelt `rewrad` is an error rather than a free task.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub reward: u64,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub required_tools: Vec<String>,
    /// `"creator"` (default) or `"treasury"`.
    #[serde(default = "creator")]
    pub funding: Funding,
    #[serde(default)]
    pub auction: Option<AuctionTerms>,
}

fn creator() -> Funding {
    Funding::Creator
}

impl Default for TaskSpec {
    /// An untitled, unrewarded, creator-funded task (fill in what you need).
    fn default() -> TaskSpec {
        TaskSpec {
            title: String::new(),
            description: String::new(),
            reward: 0,
            tags: vec![],
            required_tools: vec![],
            funding: Funding::Creator,
            auction: None,
        }
    }
}

/// Creates a task in `channel`; the reward is escrowed when it applies.
/// An auction task uses schema `task_v2`, a fixed-reward one `task_v1`.
pub fn create(channel: &str, spec: TaskSpec) -> Result<Intent> {
    if channel.trim().is_empty() {
        return Err("choose a channel".into());
    }
    let schema = if spec.auction.is_some() { TaskSchema::TaskV2 } else { TaskSchema::TaskV1 };
    let task = NewTask {
        schema,
        title: spec.title,
        description: spec.description,
        reward: spec.reward,
        tags: spec.tags,
        required_tools: spec.required_tools,
        funding: spec.funding,
        auction: spec.auction,
    };
    Ok(Intent::new(channel, OpBody::TaskCreate(task)))
}

/// The one-click steps of a task's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Claim,
    /// The assignee starts work on a claimed task.
    Start,
    /// The assignee completes it: reward minus tax to the assignee.
    Complete,
    /// The owner deletes an unfinished task; its escrow is refunded.
    Delete,
    /// Closes an auction (after its deadline, or early by its owner).
    CloseAuction,
}

/// Step `step` on task `task`, in the task's channel.
pub fn step(st: &State, task: OpId, step: Step) -> Result<Intent> {
    let body = match step {
        Step::Claim => OpBody::TaskClaim { task },
        Step::Start => OpBody::TaskStart { task },
        Step::Complete => OpBody::TaskComplete { task },
        Step::Delete => OpBody::TaskDelete { task },
        Step::CloseAuction => OpBody::AuctionClose { task },
    };
    Ok(Intent::new(channels::of_task(st, task)?, body))
}

/// Bids (or re-bids) `amount` SP on an auction task.
pub fn bid(st: &State, task: OpId, amount: u64, estimated_days: u32) -> Result<Intent> {
    Ok(Intent::new(channels::of_task(st, task)?, OpBody::Bid { task, amount, estimated_days }))
}

/// An SP amount from JavaScript (a double): whole, non-negative and exact.
pub fn whole_sp(amount: f64) -> Result<u64> {
    if amount >= 0.0 && amount.fract() == 0.0 && amount <= 9.0e15 {
        Ok(amount as u64)
    } else {
        Err("amount must be a whole number of SP".into())
    }
}

/// Every task that is not deleted, newest first (ties broken by id, so
/// every node lists them in the same order).
pub fn live(st: &State) -> Vec<Arc<Task>> {
    let mut v: Vec<Arc<Task>> = st.tasks.values().filter(|t| t.status != TaskStatus::Deleted).cloned().collect();
    v.sort_by_key(|t| (std::cmp::Reverse(t.created.ms), std::cmp::Reverse(t.created.logical), t.id.0));
    v
}

/// The in-progress tasks assigned to `me` that list tool `tool_id` (those
/// it may use the tool for).
pub fn needing_tool(st: &State, me: &crate::identity::NodeId, tool_id: &str) -> Vec<(OpId, String)> {
    st.tasks
        .values()
        .filter(|k| {
            k.assignee.as_ref() == Some(me)
                && k.status == TaskStatus::InProgress
                && k.required_tools.iter().any(|t| t == tool_id)
        })
        .map(|k| (k.id, k.title.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Signer;
    use crate::service::testkit::World;

    fn spec(title: &str, reward: u64) -> TaskSpec {
        TaskSpec { title: title.into(), reward, ..TaskSpec::default() }
    }

    #[test]
    fn refusals() {
        assert_eq!(create(" ", spec("t", 1)).unwrap_err(), "choose a channel");
        assert_eq!(whole_sp(1.5).unwrap_err(), "amount must be a whole number of SP");
        assert!(whole_sp(-1.0).is_err() && whole_sp(f64::NAN).is_err() && whole_sp(1e16).is_err());
        assert_eq!(whole_sp(42.0), Ok(42));
        let w = World::dev();
        let e = w.read(|st| step(st, OpId::ZERO, Step::Claim)).unwrap_err();
        assert!(e.starts_with("no task 0000") && e.ends_with("is known here"), "{e}");
        // Unknown fields are refused when the spec comes from JSON.
        let bad = serde_json::from_value::<TaskSpec>(serde_json::json!({"title": "t", "rewrad": 5}));
        assert!(bad.unwrap_err().to_string().contains("rewrad"));
        // The core refuses what the service cannot know: completing an unstarted task.
        let t = w.as_(0).run(|_| create("dev", spec("mine", 10))).expect("created");
        w.as_(1).run(|st| step(st, t, Step::Claim)).expect("claimed");
        let e = w.as_(1).run(|st| step(st, t, Step::Complete)).unwrap_err();
        assert!(!e.is_empty());
    }

    #[test]
    fn a_task_goes_from_open_to_done() {
        let w = World::dev();
        let t = w.as_(0).run(|_| create("dev", spec("write docs", 100))).expect("created");
        assert_eq!(w.read(|st| live(st).len()), 1);
        for s in [Step::Claim, Step::Start] {
            w.as_(1).run(|st| step(st, t, s)).expect("step");
        }
        let tool_tasks = w.read(|st| needing_tool(st, &w.id(1), "x"));
        assert!(tool_tasks.is_empty(), "the task lists no tool");
        w.as_(1).run(|st| step(st, t, Step::Complete)).expect("complete");
        assert_eq!(w.read(|st| st.tasks[&t].status), TaskStatus::Completed);
    }

    #[test]
    fn an_auction_takes_bids_and_closes() {
        let w = World::dev();
        let terms = AuctionTerms { max_reward: 50, deadline_ms: crate::service::testkit::T0 + 3_600_000 };
        let s = TaskSpec { auction: Some(terms), ..spec("auctioned", 0) };
        let t = w.as_(0).run(|_| create("dev", s)).expect("auction");
        w.as_(1).run(|st| bid(st, t, 40, 2)).expect("bid");
        w.as_(0).run(|st| step(st, t, Step::CloseAuction)).expect("owner closes early");
        assert_eq!(w.read(|st| st.tasks[&t].assignee), Some(w.id(1)));
    }
}
