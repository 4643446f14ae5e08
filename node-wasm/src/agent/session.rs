//! The agent's state: its configuration, its suggestions and their fate,
//! and when its next cycle is due. Time is an input (`now_ms`); the
//! browser adapter runs the cycles it asks for and reports back.
//!
//! A cycle asks either the rule-based policy or, when the user named an
//! endpoint, the model; a failed or unusable model answer is said in
//! `model_problem` and the cycle falls back to the rules (rule
//! `agent_fallback_to_rules`). Each suggestion is checked by the
//! guardrails when it is made and again when it is approved; the kinds in
//! `auto` are returned to the adapter to sign without asking.

use super::{Action, Guardrails, Kind, model, policy};
use crate::core::op::OpId;
use crate::core::state::State;
use crate::identity::{Identity, NodeId};
use crate::service::tasks::{self, Step, TaskSpec};
use crate::service::{Intent, governance};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Suggestions kept (the oldest settled ones go first).
pub const MAX_SUGGESTIONS: usize = 64;
pub const MIN_CYCLE_SECONDS: u64 = 5;
pub const MAX_CYCLE_SECONDS: u64 = 3_600;

/// `agentConfigure`'s argument. Unknown fields are refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    #[serde(default)]
    pub enabled: bool,
    /// An OpenAI-compatible base URL (`http://localhost:11434/v1`); none:
    /// the rule-based policy.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "default_model")]
    pub model: String,
    /// Sent as a bearer token; never shown back.
    #[serde(default, skip_serializing)]
    pub api_key: Option<String>,
    #[serde(default = "default_allowed")]
    pub allowed: BTreeSet<Kind>,
    /// Kinds signed without asking (a subset of `allowed`).
    #[serde(default)]
    pub auto: BTreeSet<Kind>,
    #[serde(default = "default_reserve")]
    pub reserve_sp: u64,
    #[serde(default = "default_bid_percent")]
    pub max_bid_percent: u64,
    #[serde(default = "default_cycle")]
    pub cycle_seconds: u64,
}

fn default_model() -> String {
    "llama3.2".into()
}
fn default_allowed() -> BTreeSet<Kind> {
    Guardrails::default().allowed
}
fn default_reserve() -> u64 {
    super::guardrails::RESERVE_FLOOR_SP
}
fn default_bid_percent() -> u64 {
    super::guardrails::BID_CAP_MAX_PERCENT
}
fn default_cycle() -> u64 {
    60
}

impl Default for AgentConfig {
    /// Off, rule-based, claim/bid/vote with approval, the fixed limits.
    fn default() -> AgentConfig {
        AgentConfig {
            enabled: false,
            endpoint: None,
            model: default_model(),
            api_key: None,
            allowed: default_allowed(),
            auto: BTreeSet::new(),
            reserve_sp: default_reserve(),
            max_bid_percent: default_bid_percent(),
            cycle_seconds: default_cycle(),
        }
    }
}

impl AgentConfig {
    pub fn guardrails(&self) -> Guardrails {
        Guardrails { allowed: self.allowed.clone(), reserve_sp: self.reserve_sp, max_bid_percent: self.max_bid_percent }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.guardrails().validate()?;
        if let Some(k) = self.auto.iter().find(|k| !self.allowed.contains(k)) {
            return Err(format!("{} cannot run automatically: it is not allowed", k.name()));
        }
        if let Some(e) = &self.endpoint {
            model::completions_url(e)?;
        }
        if self.model.trim().is_empty() || self.model.len() > 200 {
            return Err("model must be 1 to 200 characters".into());
        }
        if self.api_key.as_ref().is_some_and(|k| k.len() > 1024) {
            return Err("api_key is longer than 1024 characters".into());
        }
        if !(MIN_CYCLE_SECONDS..=MAX_CYCLE_SECONDS).contains(&self.cycle_seconds) {
            return Err(format!("cycle_seconds must be {MIN_CYCLE_SECONDS} to {MAX_CYCLE_SECONDS}"));
        }
        Ok(())
    }
}

/// Where a suggestion came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Rules,
    Model,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SuggestionStatus {
    /// Waiting for the user.
    Pending,
    /// Refused by a guardrail (or not understood): never signed.
    Refused {
        why: String,
    },
    /// Signed: the op's id.
    Done {
        op: OpId,
    },
    /// Approved, but the node refused to sign it.
    Failed {
        why: String,
    },
    Dismissed,
    /// No longer possible (the auction closed, the task was taken…).
    Stale {
        why: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    pub id: u64,
    /// The action; `None` for an answer item that was not understood.
    pub action: Option<Action>,
    /// The kind as written (for items not understood).
    pub kind: String,
    pub reason: String,
    pub source: Source,
    pub status: SuggestionStatus,
    pub at_ms: u64,
    /// Signed without asking (its kind is in `auto`).
    pub automatic: bool,
}

/// What the adapter must do for a due cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cycle {
    /// Run the rule-based policy ([`Agent::rules_cycle`]).
    Rules,
    /// POST `body` to `url` and hand the answer to [`Agent::model_answered`].
    Model { url: String, api_key: Option<String>, body: serde_json::Value },
}

/// What `agent()` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentStatus {
    pub config: AgentConfig,
    pub has_api_key: bool,
    /// Where the last cycle's suggestions came from.
    pub source: Option<Source>,
    /// Why the model was not used on the last cycle.
    pub model_problem: Option<String>,
    pub cycles: u64,
    pub busy: bool,
    pub next_cycle_ms: u64,
    /// Newest first.
    pub suggestions: Vec<Suggestion>,
}

#[derive(Default)]
pub struct Agent {
    cfg: AgentConfig,
    suggestions: Vec<Suggestion>,
    next_id: u64,
    next_cycle_ms: u64,
    source: Option<Source>,
    model_problem: Option<String>,
    cycles: u64,
    busy: bool,
}

impl Agent {
    pub fn config(&self) -> &AgentConfig {
        &self.cfg
    }

    /// Replaces the configuration (validated first); the next cycle is due
    /// at once. A key left out keeps the one set before.
    pub fn configure(&mut self, mut cfg: AgentConfig) -> Result<(), String> {
        cfg.validate()?;
        if cfg.api_key.is_none() && cfg.endpoint == self.cfg.endpoint {
            cfg.api_key = self.cfg.api_key.take();
        }
        self.cfg = cfg;
        self.next_cycle_ms = 0;
        self.model_problem = None;
        Ok(())
    }

    /// The cycle to run now, if one is due (and none is running).
    pub fn begin_cycle(&mut self, st: &State, me: &NodeId, now_ms: u64) -> Option<Cycle> {
        if !self.cfg.enabled || self.busy || now_ms < self.next_cycle_ms {
            return None;
        }
        Some(self.start(st, me, now_ms))
    }

    /// A cycle now, due or not (the user asked). Refused while the agent
    /// is off (nothing runs, automatically or not, until it is enabled) or
    /// while a cycle runs.
    pub fn force_cycle(&mut self, st: &State, me: &NodeId, now_ms: u64) -> Result<Cycle, String> {
        if !self.cfg.enabled {
            return Err("the agent is off: enable it first".into());
        }
        if self.busy {
            return Err("an agent cycle is already running".into());
        }
        Ok(self.start(st, me, now_ms))
    }

    fn start(&mut self, st: &State, me: &NodeId, now_ms: u64) -> Cycle {
        self.busy = true;
        self.next_cycle_ms = now_ms.saturating_add(self.cfg.cycle_seconds.saturating_mul(1000));
        match self.cfg.endpoint.as_deref().map(model::completions_url) {
            Some(Ok(url)) => Cycle::Model {
                url,
                api_key: self.cfg.api_key.clone(),
                body: model::request(st, me, now_ms, &self.cfg.model, &self.cfg.guardrails()),
            },
            _ => Cycle::Rules,
        }
    }

    /// Runs the rule-based policy; returns the suggestions to sign
    /// without asking.
    pub fn rules_cycle(&mut self, st: &State, me: &NodeId, now_ms: u64) -> Vec<u64> {
        let items = policy::suggest(st, me, now_ms, &self.cfg.guardrails())
            .into_iter()
            .map(|(a, r)| model::Item::Action(a, r))
            .collect();
        self.finish(st, me, now_ms, items, Source::Rules)
    }

    /// Takes the endpoint's answer (the body, or why there is none). Rule
    /// `agent_fallback_to_rules`: anything unusable falls back to the rules.
    pub fn model_answered(&mut self, st: &State, me: &NodeId, now_ms: u64, answer: Result<String, String>) -> Vec<u64> {
        match answer.and_then(|body| model::content(&body)).and_then(|text| model::actions(&text)) {
            Ok(items) => {
                self.model_problem = None;
                self.finish(st, me, now_ms, items, Source::Model)
            }
            Err(why) => {
                self.model_problem = Some(format!("{why}; using the rules instead"));
                self.rules_cycle(st, me, now_ms)
            }
        }
    }

    fn finish(&mut self, st: &State, me: &NodeId, now_ms: u64, items: Vec<model::Item>, source: Source) -> Vec<u64> {
        self.busy = false;
        self.cycles = self.cycles.saturating_add(1);
        self.source = Some(source);
        let rails = self.cfg.guardrails();
        // Pending suggestions the state has overtaken.
        for s in &mut self.suggestions {
            if s.status == SuggestionStatus::Pending
                && let Some(a) = &s.action
                && let Err(why) = rails.check(st, me, now_ms, a)
            {
                s.status = SuggestionStatus::Stale { why };
            }
        }
        let mut auto = vec![];
        for item in items {
            let (action, kind, reason, status) = match item {
                model::Item::Action(a, reason) => {
                    if self.already_suggested(&a) {
                        continue;
                    }
                    let status = match rails.check(st, me, now_ms, &a) {
                        Ok(()) => SuggestionStatus::Pending,
                        Err(why) => SuggestionStatus::Refused { why },
                    };
                    let kind = a.kind().name().to_string();
                    (Some(a), kind, reason, status)
                }
                model::Item::Unusable { kind, why } => (None, kind, String::new(), SuggestionStatus::Refused { why }),
            };
            self.next_id = self.next_id.saturating_add(1);
            let automatic = status == SuggestionStatus::Pending
                && action.as_ref().is_some_and(|a| self.cfg.auto.contains(&a.kind()));
            if automatic {
                auto.push(self.next_id);
            }
            self.suggestions.push(Suggestion {
                id: self.next_id,
                action,
                kind,
                reason,
                source,
                status,
                at_ms: now_ms,
                automatic,
            });
        }
        self.bound();
        auto
    }

    /// Rule `agent_suggest_once`: an action on an item already pending or
    /// done is not suggested again, nor is the very action refused before.
    fn already_suggested(&self, a: &Action) -> bool {
        self.suggestions.iter().any(|s| {
            s.action.as_ref().is_some_and(|x| match s.status {
                SuggestionStatus::Pending | SuggestionStatus::Done { .. } | SuggestionStatus::Dismissed => {
                    x.kind() == a.kind() && x.subject() == a.subject()
                }
                _ => x == a,
            })
        })
    }

    fn bound(&mut self) {
        while self.suggestions.len() > MAX_SUGGESTIONS {
            let i = self.suggestions.iter().position(|s| s.status != SuggestionStatus::Pending).unwrap_or(0);
            self.suggestions.remove(i);
        }
    }

    /// The intent of pending suggestion `id`, checked again now. A check
    /// that fails marks it refused (or stale) and says why.
    pub fn approve(&mut self, id: u64, st: &State, me: &Identity, now_ms: u64) -> Result<Intent, String> {
        let rails = self.cfg.guardrails();
        let s = self.suggestions.iter_mut().find(|s| s.id == id).ok_or_else(|| format!("no suggestion {id}"))?;
        if s.status != SuggestionStatus::Pending {
            return Err(format!("suggestion {id} is not pending"));
        }
        let Some(action) = s.action.clone() else { return Err(format!("suggestion {id} has no action")) };
        if let Err(why) = rails.check(st, &me.node_id(), now_ms, &action) {
            s.status = SuggestionStatus::Refused { why: why.clone() };
            return Err(why);
        }
        intent(st, me, &action)
    }

    /// Records what signing an approved suggestion gave.
    pub fn settled(&mut self, id: u64, result: Result<OpId, String>) {
        if let Some(s) = self.suggestions.iter_mut().find(|s| s.id == id) {
            s.status = match result {
                Ok(op) => SuggestionStatus::Done { op },
                Err(why) => SuggestionStatus::Failed { why },
            };
        }
    }

    pub fn dismiss(&mut self, id: u64) -> Result<(), String> {
        let s = self.suggestions.iter_mut().find(|s| s.id == id).ok_or_else(|| format!("no suggestion {id}"))?;
        if s.status != SuggestionStatus::Pending {
            return Err(format!("suggestion {id} is not pending"));
        }
        s.status = SuggestionStatus::Dismissed;
        Ok(())
    }

    /// Ends a cycle that could not run at all (the adapter failed before
    /// asking anything).
    pub fn abandon_cycle(&mut self, why: String) {
        self.busy = false;
        self.model_problem = Some(why);
    }

    pub fn status(&self) -> AgentStatus {
        AgentStatus {
            config: self.cfg.clone(),
            has_api_key: self.cfg.api_key.is_some(),
            source: self.source,
            model_problem: self.model_problem.clone(),
            cycles: self.cycles,
            busy: self.busy,
            next_cycle_ms: self.next_cycle_ms,
            suggestions: self.suggestions.iter().rev().cloned().collect(),
        }
    }
}

/// The service command an action stands for.
pub fn intent(st: &State, me: &Identity, action: &Action) -> Result<Intent, String> {
    match action {
        Action::Claim { task } => tasks::step(st, *task, Step::Claim),
        Action::Bid { task, amount, estimated_days } => tasks::bid(st, *task, *amount, *estimated_days),
        Action::Vote { proposal, yes } => governance::step(st, me, *proposal, governance::Step::Vote(*yes)),
        Action::CreateTask { channel, title, reward, tags } => tasks::create(
            channel,
            TaskSpec { title: title.clone(), reward: *reward, tags: tags.clone(), ..TaskSpec::default() },
        ),
    }
}
