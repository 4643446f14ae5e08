//! Common tools: proposing one (its secret sealed here, per recipient),
//! publishing this node's key, upkeep, and the local check that opens a
//! tool's secret for the assignee of a task that lists it.
//!
//! The webhook call itself is I/O and lives in `runtime::webhook`; what
//! to call, with which secret and body, is decided here.

use super::{Intent, Result, channels};
use crate::core::op::{Command, GLOBAL_CHANNEL, NewProposal, NewTool, OpBody, OpId, ProposalKind, ToolType};
use crate::core::state::State;
use crate::core::tools::{ToolStatus, open_tool_secret, seal_tool_secret};
use crate::identity::{Identity, NodeId};

/// `proposeTool`'s argument. `secret` never leaves this node in clear: it
/// is sealed here to `recipients` (default: every member of the channel;
/// on `global`, every node that published a key).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    pub tool_id: String,
    #[serde(default)]
    pub description: String,
    pub tool_type: ToolType,
    #[serde(default)]
    pub webhook_url: String,
    #[serde(default)]
    pub monthly_cost_sp: u64,
    pub secret: String,
    #[serde(default)]
    pub recipients: Option<Vec<NodeId>>,
    #[serde(default)]
    pub title: Option<String>,
}

/// The proposal and how many recipients the secret was sealed to.
#[derive(Clone, Debug)]
pub struct ToolProposal {
    pub intent: Intent,
    pub sealed_to: usize,
}

/// The recipients of a tool's secret with their X25519 keys. Every one
/// must have published a key: a member who could not open the secret
/// would find out only when trying to use the tool.
pub fn recipients(st: &State, channel: &str, listed: Option<&[NodeId]>) -> Result<Vec<(NodeId, [u8; 32])>> {
    let ids: Vec<NodeId> = match listed {
        Some(r) => r.to_vec(),
        None if channel == GLOBAL_CHANNEL => st.tools.keys.keys().copied().collect(),
        None => st.ledger.channels.get(channel).map(|c| c.members.iter().copied().collect()).unwrap_or_default(),
    };
    let keyed: Vec<(NodeId, [u8; 32])> = ids
        .into_iter()
        .map(|id| {
            st.tools
                .keys
                .get(&id)
                .map(|k| (id, *k))
                .ok_or_else(|| format!("node {} has not published an X25519 key", id.short()))
        })
        .collect::<Result<_>>()?;
    if keyed.is_empty() {
        return Err("no recipients: nobody could open the secret".into());
    }
    Ok(keyed)
}

/// Proposes acquiring a common tool for `channel` as a network operation,
/// sealing the secret with randomness from `rng`.
pub fn propose<R: rand_core::CryptoRngCore>(
    st: &State,
    rng: &mut R,
    channel: &str,
    spec: ToolSpec,
) -> Result<ToolProposal> {
    let to = recipients(st, channel, spec.recipients.as_deref())?;
    let secret = seal_tool_secret(rng, &spec.tool_id, spec.secret.as_bytes(), &to)
        .ok_or_else(|| "could not seal the secret".to_string())?;
    let tool = NewTool {
        channel: channel.to_owned(),
        tool_id: spec.tool_id.clone(),
        description: spec.description,
        tool_type: spec.tool_type,
        webhook_url: spec.webhook_url,
        monthly_cost_sp: spec.monthly_cost_sp,
        secret,
    };
    let p = NewProposal {
        kind: ProposalKind::NetworkOperation,
        title: spec.title.unwrap_or_else(|| format!("Acquire common tool {}", spec.tool_id)),
        description: String::new(),
        tags: vec![],
        command: Some(Command::AcquireCommonTool(tool)),
    };
    Ok(ToolProposal { intent: Intent::new(channel, OpBody::ProposalCreate(p)), sealed_to: to.len() })
}

/// Publishes `me`'s X25519 key so tool secrets can be sealed to it.
pub fn publish_key(me: &Identity) -> Intent {
    Intent::new(GLOBAL_CHANNEL, OpBody::KeyPublish { x25519: me.x25519_public() })
}

/// Deadline op: charges a tool's monthly upkeep once due.
pub fn upkeep(st: &State, tool_id: &str) -> Result<Intent> {
    Ok(Intent::new(channels::of_tool(st, tool_id)?, OpBody::ToolUpkeep { tool_id: tool_id.to_owned() }))
}

/// What using a tool takes, once the local check passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolUse {
    /// An `api_key` tool: the key itself, for the user.
    Key(String),
    /// A `webhook` tool: POST `body` to `url` with `Authorization: Bearer <secret>`.
    Webhook { url: String, secret: String, body: String },
}

/// Opens tool `tool_id`'s secret for task `task` after the three-layer
/// check (the tool is active, `me` is the assignee of the in-progress
/// task, the task lists the tool). Never signs anything.
pub fn open(st: &State, me: &Identity, tool_id: &str, task: OpId) -> Result<ToolUse> {
    let secret = open_tool_secret(st, me, tool_id, task).map_err(|e| e.to_string())?;
    let tool = st.tools.tools.get(tool_id).ok_or_else(|| format!("no common tool {tool_id:?} is known here"))?;
    Ok(match tool.tool_type {
        ToolType::ApiKey => ToolUse::Key(secret),
        ToolType::Webhook => {
            let body = serde_json::json!({"tool": tool_id, "task": task.to_text(), "node": me.node_id()}).to_string();
            ToolUse::Webhook { url: tool.webhook_url.clone(), secret, body }
        }
    })
}

/// One tool as the Tools view lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ToolRow {
    pub tool_id: String,
    pub channel: String,
    pub tool_type: ToolType,
    pub status: ToolStatus,
    pub monthly_cost_sp: u64,
    pub paid_until_ms: u64,
    pub description: String,
    /// `me`'s in-progress tasks that list the tool (it may use it for them).
    pub my_tasks: Vec<(OpId, String)>,
}

/// Every common tool, by id.
pub fn list(st: &State, me: &NodeId) -> Vec<ToolRow> {
    st.tools
        .tools
        .values()
        .map(|t| ToolRow {
            tool_id: t.tool_id.clone(),
            channel: t.channel.clone(),
            tool_type: t.tool_type,
            status: t.status,
            monthly_cost_sp: t.monthly_cost_sp,
            paid_until_ms: t.paid_until_ms,
            description: t.description.clone(),
            my_tasks: super::tasks::needing_tool(st, me, &t.tool_id),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::governance::{self, Step};
    use crate::service::testkit::World;
    use crate::service::{Signer, tasks};

    fn spec(kind: ToolType) -> ToolSpec {
        ToolSpec {
            tool_id: "hook".into(),
            description: String::new(),
            tool_type: kind,
            webhook_url: "https://example.test/hook".into(),
            monthly_cost_sp: 0,
            secret: "s3cret".into(),
            recipients: None,
            title: None,
        }
    }

    #[test]
    fn refusals() {
        let w = World::dev();
        let mut rng = rand_core::OsRng;
        // Nobody in `dev` published a key yet.
        let e = w.read(|st| propose(st, &mut rng, "dev", spec(ToolType::ApiKey))).unwrap_err();
        assert!(e.ends_with("has not published an X25519 key"), "{e}");
        let e = w.read(|st| propose(st, &mut rng, "nowhere", spec(ToolType::ApiKey))).unwrap_err();
        assert_eq!(e, "no recipients: nobody could open the secret");
        assert_eq!(w.read(|st| upkeep(st, "hook")).unwrap_err(), "no common tool \"hook\" is known here");
        let e = w.read(|st| open(st, &w.people[0], "hook", OpId::ZERO)).unwrap_err();
        assert!(!e.is_empty());
    }

    #[test]
    fn a_tool_is_proposed_acquired_and_opened_by_the_assignee_only() {
        let w = World::dev();
        for who in 0..2 {
            w.as_(who).run(|_| Ok(publish_key(&w.people[who]))).expect("key");
        }
        let mut rng = rand_core::OsRng;
        let tp = w.read(|st| propose(st, &mut rng, "dev", spec(ToolType::ApiKey))).expect("sealed");
        assert_eq!(tp.sealed_to, 2);
        let p = w.as_(0).run(|_| Ok(tp.intent.clone())).expect("proposed");
        for who in 0..2 {
            w.as_(who).run(|st| governance::step(st, p, Step::Vote(true))).expect("vote");
        }
        w.advance(2 * 24 * 3_600_000);
        w.as_(0).run(|st| governance::step(st, p, Step::Close)).expect("close");
        // Network operations wait for the validators' ratification.
        let validators = w.read(|st| st.gov.proposals[&p].validators.clone());
        for v in validators {
            let who = (0..3).find(|i| w.id(*i) == v).expect("a known validator");
            w.as_(who).run(|st| governance::step(st, p, Step::Ratify)).expect("ratify");
        }
        assert_eq!(w.read(|st| list(st, &w.id(1)).len()), 1, "acquired");
        let ts = tasks::TaskSpec { title: "use it".into(), required_tools: vec!["hook".into()], ..Default::default() };
        let t = w.as_(0).run(|_| tasks::create("dev", ts)).expect("task");
        for s in [tasks::Step::Claim, tasks::Step::Start] {
            w.as_(1).run(|st| tasks::step(st, t, s)).expect("step");
        }
        assert_eq!(w.read(|st| list(st, &w.id(1)))[0].my_tasks.len(), 1);
        assert_eq!(w.read(|st| open(st, &w.people[1], "hook", t)), Ok(ToolUse::Key("s3cret".into())));
        assert!(w.read(|st| open(st, &w.people[0], "hook", t)).is_err(), "not the assignee");
    }
}
