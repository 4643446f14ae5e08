//! The OpenAI-compatible chat endpoint: the request the page sends
//! (`POST {endpoint}/chat/completions`) and the parsing of the answer.
//!
//! The answer is untrusted text. It is size-limited, parsed item by item,
//! and every item either becomes an [`Action`] (then checked by the
//! guardrails like any other suggestion) or is listed as refused with the
//! reason; nothing in it can panic the node or skip a check.

use super::{Action, Kind};
use crate::core::governance::ProposalStatus;
use crate::core::op::OpId;
use crate::core::state::{AuctionStatus, State, TaskStatus};
use crate::identity::NodeId;
use serde_json::{Value, json};

/// The largest answer read, in bytes.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// The most actions taken from one answer.
pub const MAX_MODEL_ACTIONS: usize = 16;
/// The most items of each sort described in the prompt.
pub const MAX_PROMPT_ITEMS: usize = 20;
/// How long the page waits for the endpoint.
pub const TIMEOUT_MS: u32 = 30_000;

/// The chat-completions URL of an endpoint the user named: a base URL such
/// as `http://localhost:11434/v1`, or the full `…/chat/completions`.
pub fn completions_url(endpoint: &str) -> Result<String, String> {
    let e = endpoint.trim();
    if !(e.starts_with("http://") || e.starts_with("https://")) || e.len() > 2048 {
        return Err("the endpoint must be an http:// or https:// URL".into());
    }
    if e.ends_with("/chat/completions") {
        Ok(e.to_string())
    } else {
        Ok(format!("{}/chat/completions", e.trim_end_matches('/')))
    }
}

const SYSTEM: &str = "You are the assistant of one member of Synapse-NG, a network where members \
earn Synapse Points (SP) by doing tasks, bid in auctions and vote on proposals. Suggest actions \
for this member. Answer with JSON only: {\"actions\": [ ... ]}, each action one of \
{\"kind\": \"claim\", \"task\": ID, \"reason\": TEXT}, \
{\"kind\": \"bid\", \"task\": ID, \"amount\": SP, \"estimated_days\": DAYS, \"reason\": TEXT}, \
{\"kind\": \"vote\", \"proposal\": ID, \"yes\": true|false, \"reason\": TEXT}, \
{\"kind\": \"create_task\", \"channel\": NAME, \"title\": TEXT, \"reward\": SP, \"tags\": [TEXT], \"reason\": TEXT}. \
IDs are the 64-hex ids given. Only the allowed kinds will be considered. \
A bid above the bid cap, or an action leaving less than the reserve, is refused.";

/// The chat request for `me` on `st`: the member, its limits, and the open
/// tasks, auctions and proposals (at most [`MAX_PROMPT_ITEMS`] of each).
pub fn request(st: &State, me: &NodeId, now_ms: u64, model: &str, rails: &super::Guardrails) -> Value {
    let acct = st.ledger.accounts.get(me);
    let balance = acct.map_or(0, |a| a.balance);
    let skills: Vec<&String> = st.skills.get(me).map(|s| s.iter().collect()).unwrap_or_default();
    let open = |s: TaskStatus| s == TaskStatus::Open;
    let tasks: Vec<Value> = st
        .tasks
        .values()
        .filter(|t| open(t.status) && t.assignee.is_none() && &t.owner != me)
        .take(MAX_PROMPT_ITEMS)
        .map(|t| json!({"id": t.id, "title": t.title, "tags": t.tags, "reward": t.reward}))
        .collect();
    let auctions: Vec<Value> = st
        .tasks
        .values()
        .filter_map(|t| t.auction.as_ref().map(|a| (t, a)))
        .filter(|(t, a)| a.status == AuctionStatus::Open && now_ms <= a.terms.deadline_ms && &t.owner != me)
        .take(MAX_PROMPT_ITEMS)
        .map(|(t, a)| {
            json!({"id": t.id, "title": t.title, "tags": t.tags, "max_reward": a.terms.max_reward,
                   "bids": a.bids.len(), "mine": a.bids.get(me).map(|b| b.amount)})
        })
        .collect();
    let proposals: Vec<Value> = st
        .gov
        .proposals
        .values()
        .filter(|p| p.status == ProposalStatus::Open && now_ms <= p.deadline_ms && !p.votes.contains_key(me))
        .take(MAX_PROMPT_ITEMS)
        .map(|p| json!({"id": p.id, "title": p.title, "description": p.description, "tags": p.tags}))
        .collect();
    let allowed: Vec<&str> = rails.allowed.iter().map(|k| k.name()).collect();
    let context = json!({
        "balance_sp": balance,
        "reputation_milli": acct.map_or(0, |a| a.reputation.total),
        "skills": skills,
        "allowed_kinds": allowed,
        "reserve_sp": rails.reserve_sp,
        "bid_cap_sp": rails.bid_cap(balance),
        "open_tasks": tasks,
        "open_auctions": auctions,
        "open_proposals": proposals,
    });
    json!({
        "model": model,
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": context.to_string()},
        ],
    })
}

/// One item of a model's answer: an action with its reason, or why it was
/// not understood (`kind` as the model wrote it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Action(Action, String),
    Unusable { kind: String, why: String },
}

/// The message text of an OpenAI chat-completions answer.
pub fn content(body: &str) -> Result<String, String> {
    if body.len() > MAX_ANSWER_BYTES {
        return Err(format!("the answer is {} bytes, more than {MAX_ANSWER_BYTES}", body.len()));
    }
    let v: Value = serde_json::from_str(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    if let Some(err) = v.get("error") {
        let msg = err.get("message").and_then(Value::as_str).unwrap_or("unknown error");
        return Err(format!("the endpoint answered an error: {}", clip(msg)));
    }
    v.pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .map(String::from)
        .ok_or_else(|| "the answer has no choices[0].message.content".to_string())
}

/// The JSON inside a message: the text itself, or the first fenced block,
/// or the span from the first `{`/`[` to the last `}`/`]`.
fn json_in(text: &str) -> Option<Value> {
    let t = text.trim();
    if let Ok(v) = serde_json::from_str(t) {
        return Some(v);
    }
    if let Some(body) = super::first_fenced_block(t)
        && let Ok(v) = serde_json::from_str(body)
    {
        return Some(v);
    }
    let open = t.find(['{', '['])?;
    let close = t.rfind(['}', ']'])?;
    if close <= open {
        return None;
    }
    serde_json::from_str(&t[open..=close]).ok()
}

/// The actions in a message's text: at most [`MAX_MODEL_ACTIONS`] items,
/// each parsed on its own.
pub fn actions(text: &str) -> Result<Vec<Item>, String> {
    let v = json_in(text).ok_or("the model's message holds no JSON")?;
    let list = match &v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("actions") {
            Some(Value::Array(a)) => a,
            _ => return Err("the model's JSON has no \"actions\" list".into()),
        },
        _ => return Err("the model's JSON is neither a list nor an object".into()),
    };
    Ok(list.iter().take(MAX_MODEL_ACTIONS).map(item).collect())
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

fn item(v: &Value) -> Item {
    let kind = v.get("kind").or_else(|| v.get("action")).and_then(Value::as_str).unwrap_or("").to_string();
    let reason = clip(v.get("reason").and_then(Value::as_str).unwrap_or("(no reason given)"));
    match parse_action(&kind, v) {
        Ok(a) => Item::Action(a, reason),
        Err(why) => Item::Unusable { kind: clip(&kind), why },
    }
}

fn id(v: &Value, field: &str) -> Result<OpId, String> {
    let s = v.get(field).and_then(Value::as_str).ok_or_else(|| format!("no {field} id"))?;
    OpId::parse(s).ok_or_else(|| format!("{field} id {:?} is not 64 hex characters", clip(s)))
}

/// A whole, non-negative amount: `12` or `12.0`, never `-1`, `1.5` or `"12"`.
fn whole(v: &Value, field: &str) -> Result<u64, String> {
    match v.get(field) {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f <= 9.0e15).map(|f| f as u64))
            .ok_or_else(|| format!("{field} must be a whole, non-negative number")),
        _ => Err(format!("no {field} number")),
    }
}

fn parse_action(kind: &str, v: &Value) -> Result<Action, String> {
    match Kind::parse(kind) {
        Some(Kind::Claim) => Ok(Action::Claim { task: id(v, "task")? }),
        Some(Kind::Bid) => {
            let days = whole(v, "estimated_days").unwrap_or(1);
            Ok(Action::Bid {
                task: id(v, "task")?,
                amount: whole(v, "amount")?,
                estimated_days: u32::try_from(days).map_err(|_| "estimated_days is too large".to_string())?,
            })
        }
        Some(Kind::Vote) => {
            let yes = match v.get("yes").or_else(|| v.get("vote")) {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) if s == "yes" || s == "approve" => true,
                Some(Value::String(s)) if s == "no" || s == "reject" => false,
                _ => return Err("a vote needs \"yes\": true or false".into()),
            };
            Ok(Action::Vote { proposal: id(v, "proposal")?, yes })
        }
        Some(Kind::CreateTask) => {
            let text = |f: &str| v.get(f).and_then(Value::as_str).map(clip).unwrap_or_default();
            let tags = v
                .get("tags")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).take(8).map(clip).collect())
                .unwrap_or_default();
            Ok(Action::CreateTask { channel: text("channel"), title: text("title"), reward: whole(v, "reward")?, tags })
        }
        None => Err(format!("{:?} is not an action the agent knows", clip(kind))),
    }
}
