//! Common tools: proposing one (its secret sealed here, its key split among
//! the custodians), publishing this node's key, upkeep, the grants a
//! custodian's node publishes for the assignees of tasks that need a tool,
//! and the local check that opens a tool's secret for the assignee.
//!
//! The webhook call itself is I/O and lives in `runtime::webhook`; what
//! to call, with which secret and body, is decided here.

use super::{Intent, Result, channels};
use crate::core::op::{Command, GLOBAL_CHANNEL, NewProposal, NewTool, OpBody, OpId, ProposalKind, ToolType};
use crate::core::state::State;
use crate::core::tools::{ToolStatus, open_tool_secret, seal_tool_secret};
use crate::identity::{Identity, NodeId};

/// `proposeTool`'s argument. `secret` never leaves this node in clear: it
/// is encrypted here and its key split among `recipients`, the custodians
/// (default: the validator set now, rule `tool_custody`).
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

/// The custodians of a tool's key with their X25519 keys (rule
/// `tool_custody`): the validators at `now_ms` unless listed. Every one
/// must have published a key: a custodian who could not open its share
/// could never grant it.
pub fn recipients(st: &State, now_ms: u64, listed: Option<&[NodeId]>) -> Result<Vec<(NodeId, [u8; 32])>> {
    let ids: Vec<NodeId> = match listed {
        Some(r) => r.to_vec(),
        // Validators without a key yet cannot hold a share: skipped.
        None => st.compute_validators(now_ms).into_iter().filter(|v| st.tools.keys.contains_key(v)).collect(),
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
        return Err("no custodians: the network has no validator yet to hold the tool's key".into());
    }
    Ok(keyed)
}

/// Rule `tool_grant` (the custodian's node): for every active tool `me`
/// is a custodian of, and every in-progress task of its channel that lists
/// it, whose assignee has published a key and has no grant from `me` yet,
/// the `tool_grant` op that seals `me`'s share to that assignee.
pub fn grants_due<R: rand_core::CryptoRngCore>(st: &State, me: &Identity, now_ms: u64, rng: &mut R) -> Vec<Intent> {
    let id = me.node_id();
    let mut out = vec![];
    for tool in st.tools.tools.values().filter(|t| t.status == ToolStatus::Active) {
        let Some(index) = tool.secret.recipients.iter().position(|k| k.recipient == id) else { continue };
        let Ok(index) = u8::try_from(index) else { continue };
        for t in st.tasks.values() {
            let wanted = t.channel == tool.channel
                && t.status == crate::core::state::TaskStatus::InProgress
                && t.required_tools.contains(&tool.tool_id)
                && st.ledger.is_member(&t.owner, now_ms, &st.params.rules)
                && !tool.grants.get(&t.id).is_some_and(|g| g.contains_key(&index));
            let (true, Some(assignee)) = (wanted, t.assignee) else { continue };
            let Some(key) = st.tools.keys.get(&assignee) else { continue };
            if let Some((index, grant)) = crate::core::tools::grant_share(rng, tool, me, t.id, assignee, key) {
                let body = OpBody::ToolGrant { tool_id: tool.tool_id.clone(), task: t.id, index, grant };
                out.push(Intent::new(&tool.channel, body));
            }
        }
    }
    out
}

/// Proposes acquiring a common tool for `channel` as a network operation,
/// sealing the secret with randomness from `rng`.
pub fn propose<R: rand_core::CryptoRngCore>(
    st: &State,
    rng: &mut R,
    now_ms: u64,
    channel: &str,
    spec: ToolSpec,
) -> Result<ToolProposal> {
    if !st.ledger.channels.contains_key(channel) {
        return Err(format!("no channel {channel:?} is known here"));
    }
    let to = recipients(st, now_ms, spec.recipients.as_deref())?;
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
        // No validator published a key yet.
        let now = u64::MAX / 2;
        let e = w.read(|st| propose(st, &mut rng, now, "dev", spec(ToolType::ApiKey))).unwrap_err();
        assert_eq!(e, "no custodians: the network has no validator yet to hold the tool's key");
        let listed = ToolSpec { recipients: Some(vec![w.id(0)]), ..spec(ToolType::ApiKey) };
        let e = w.read(|st| propose(st, &mut rng, now, "dev", listed)).unwrap_err();
        assert!(e.ends_with("has not published an X25519 key"), "{e}");
        let e = w.read(|st| propose(st, &mut rng, now, "nowhere", spec(ToolType::ApiKey))).unwrap_err();
        assert_eq!(e, "no channel \"nowhere\" is known here");
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
        let tp = w.read(|st| propose(st, &mut rng, u64::MAX / 2, "dev", spec(ToolType::ApiKey))).expect("sealed");
        assert_eq!(tp.sealed_to, 2, "the validators with a key are the custodians");
        let p = w.as_(0).run(|_| Ok(tp.intent.clone())).expect("proposed");
        for who in 0..2 {
            w.as_(who).run(|st| governance::step(st, w.identity(), p, Step::Vote(true))).expect("vote");
        }
        w.advance(2 * 24 * 3_600_000);
        w.as_(0).run(|st| governance::step(st, w.identity(), p, Step::Close)).expect("close");
        // Network operations wait for the validators' ratification.
        let validators = w.read(|st| st.gov.proposals[&p].validators.clone());
        for v in validators {
            let who = (0..3).find(|i| w.id(*i) == v).expect("a known validator");
            w.as_(who).run(|st| governance::step(st, w.identity(), p, Step::Ratify)).expect("ratify");
        }
        assert_eq!(w.read(|st| list(st, &w.id(1)).len()), 1, "acquired");
        let ts = tasks::TaskSpec { title: "use it".into(), required_tools: vec!["hook".into()], ..Default::default() };
        let t = w.as_(0).run(|_| tasks::create("dev", ts)).expect("task");
        for s in [tasks::Step::Claim, tasks::Step::Start] {
            w.as_(1).run(|st| tasks::step(st, t, s)).expect("step");
        }
        assert_eq!(w.read(|st| list(st, &w.id(1)))[0].my_tasks.len(), 1);
        // Before the custodians' grants the assignee cannot open it either.
        let e = w.read(|st| open(st, &w.people[1], "hook", t)).unwrap_err();
        assert!(e.contains("0 of the 2 custodians"), "{e}");
        // Each custodian's node grants its share to the assignee (once).
        for who in 0..2 {
            let due = w.read(|st| grants_due(st, &w.people[who], u64::MAX / 2, &mut rng));
            assert_eq!(due.len(), 1);
            w.as_(who).run(|_| Ok(due[0].clone())).expect("grant");
            assert!(w.read(|st| grants_due(st, &w.people[who], u64::MAX / 2, &mut rng)).is_empty(), "granted once");
        }
        assert_eq!(w.read(|st| open(st, &w.people[1], "hook", t)), Ok(ToolUse::Key("s3cret".into())));
        assert!(w.read(|st| open(st, &w.people[0], "hook", t)).is_err(), "not the assignee");
    }
}
