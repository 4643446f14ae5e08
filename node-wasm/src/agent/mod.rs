//! The optional agent: off until the user enables it on a page. It watches
//! open tasks, auctions and proposals and suggests actions (claim, bid,
//! vote, and, when allowed, creating a task) with its reasons; the user
//! approves each one, or lets some kinds run by themselves. It can also
//! draft a policy module from a description. It never publishes or
//! activates a module, and nothing it does passes its guardrails unchecked.
//!
//! Sans-IO like `core` and `service`: the browser adapter
//! (`runtime::ledger::agent`) does the one piece of I/O, the chat endpoint's
//! `fetch`, and feeds the answer back as text. So every rule here runs and
//! is tested natively.
//!
//! - [`guardrails`]: rules `agent_allowed_kinds`, `agent_reserve`,
//!   `agent_bid_cap`, `agent_live_target`: checked on every suggestion
//!   when it is made and again when it is approved, whatever its source.
//! - [`policy`]: the default rule-based policy (skills against tags, reward
//!   per day, reputation against the other bidders).
//! - [`model`]: the OpenAI-compatible chat request and the parsing of its
//!   answer into actions (a hostile or confused answer is refused item by
//!   item, never trusted and never a panic).
//! - [`draft`]: drafting a policy module as WAT, compiling it and the
//!   proposal it prepares.
//! - [`session`]: the agent's state: its configuration, the suggestions and
//!   their fate, when the next cycle is due.

pub mod draft;
/// Native only: it compiles drafts with the `wat` crate.
#[cfg(not(target_arch = "wasm32"))]
pub mod fuzz;
pub mod guardrails;
pub mod model;
pub mod policy;
pub mod session;

// Native: drafts compile with the `wat` crate, which the page does not link.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

use crate::core::op::OpId;
use serde::{Deserialize, Serialize};

pub use guardrails::Guardrails;
pub use session::{Agent, AgentConfig, AgentStatus, Source, Suggestion, SuggestionStatus};

/// The kinds of action the agent may suggest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Claim,
    Bid,
    Vote,
    CreateTask,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Claim, Kind::Bid, Kind::Vote, Kind::CreateTask];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Claim => "claim",
            Kind::Bid => "bid",
            Kind::Vote => "vote",
            Kind::CreateTask => "create_task",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One action the agent suggests.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Claim an open fixed-reward task.
    Claim { task: OpId },
    /// Bid `amount` SP and `estimated_days` on an open auction.
    Bid { task: OpId, amount: u64, estimated_days: u32 },
    /// Vote on an open proposal.
    Vote { proposal: OpId, yes: bool },
    /// Create a creator-funded task (its reward is escrowed from the balance).
    CreateTask { channel: String, title: String, reward: u64, tags: Vec<String> },
}

impl Action {
    pub fn kind(&self) -> Kind {
        match self {
            Action::Claim { .. } => Kind::Claim,
            Action::Bid { .. } => Kind::Bid,
            Action::Vote { .. } => Kind::Vote,
            Action::CreateTask { .. } => Kind::CreateTask,
        }
    }

    /// The SP this action takes from the balance when it applies.
    pub fn cost(&self) -> u64 {
        match self {
            Action::CreateTask { reward, .. } => *reward,
            Action::Claim { .. } | Action::Bid { .. } | Action::Vote { .. } => 0,
        }
    }

    /// What it is about (a task or proposal id), so that two suggestions
    /// on the same item are recognised as one (a re-bid replaces a bid).
    pub fn subject(&self) -> String {
        match self {
            Action::Claim { task } | Action::Bid { task, .. } => task.to_text(),
            Action::Vote { proposal, .. } => proposal.to_text(),
            Action::CreateTask { channel, title, .. } => format!("{channel}/{title}"),
        }
    }
}

/// The body of the first fenced block (```` ``` ````, an optional language
/// tag up to the line's end, then the body up to the closing fence) in a
/// model's message, trimmed; `None` without a closed fence. Both the
/// actions (JSON) and a drafted module (WAT) come back this way.
pub fn first_fenced_block(text: &str) -> Option<&str> {
    let start = text.find("```")?;
    let after = &text[start + 3..];
    let body = &after[after.find('\n').map_or(0, |n| n + 1)..];
    body.find("```").map(|end| body[..end].trim())
}
