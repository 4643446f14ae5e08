//! Keeps `node-wasm/synapse.d.ts` true to the state: a populated state
//! (every domain, closed and open items, a rejected op, an equivocation) is
//! serialized as `synapse.state()` returns it, and every field name in it
//! must appear as a declared member in the `.d.ts`. A field added to the
//! state without its type fails here instead of silently drifting.

use super::testkit::{T0, World};
use super::{Signer, channels, governance, tasks, teams, tools, upgrades};
use crate::core::hlc::Hlc;
use crate::core::op::{AuctionTerms, Command, OpBody, OpId, ProposalKind, SignedOp, ToolType};
use crate::core::upgrade::{ModuleHash, examples};
use std::collections::BTreeSet;

const DTS: &str = include_str!("../../synapse.d.ts");

/// Proposes `spec` in `channel`, has everyone vote yes, closes it after
/// the voting period and ratifies it while it waits for ratification.
fn pass(w: &World, channel: &str, spec: governance::ProposalSpec) -> OpId {
    let p = w.as_(0).run(|_| governance::propose(channel, spec)).expect("proposed");
    for who in 0..3 {
        w.as_(who).run(|st| governance::step(st, w.identity(), p, governance::Step::Vote(true))).expect("vote");
    }
    w.advance(2 * 24 * 3_600_000);
    w.as_(0).run(|st| governance::step(st, w.identity(), p, governance::Step::Close)).expect("close");
    for who in 0..3 {
        let pending = w.read(|st| st.gov.proposals[&p].status.name() == "pending_ratification");
        if pending {
            let _ = w.as_(who).run(|st| governance::step(st, w.identity(), p, governance::Step::Ratify));
        }
    }
    p
}

fn spec(kind: ProposalKind, title: &str, command: Option<Command>) -> governance::ProposalSpec {
    governance::ProposalSpec {
        kind,
        title: title.into(),
        description: "why".into(),
        tags: vec!["infra".into()],
        command,
    }
}

/// A state with something in every part.
fn populated() -> World {
    let w = World::dev();
    w.as_(2).run(|_| channels::subscribe("dev")).expect("carol joins");
    for who in 0..3 {
        w.as_(who).run(|_| Ok(tools::publish_key(&w.people[who]))).expect("key");
    }
    // Tasks: one done (reputation, taxes), one auction with a bid.
    let done = tasks::TaskSpec { title: "done".into(), reward: 100, tags: vec!["rust".into()], ..Default::default() };
    let t = w.as_(0).run(|_| tasks::create("dev", done)).expect("task");
    for s in [tasks::Step::Claim, tasks::Step::Start, tasks::Step::Complete] {
        w.as_(1).run(|st| tasks::step(st, t, s)).expect("step");
    }
    let terms = AuctionTerms { max_reward: 50, deadline_ms: T0 + 3_600_000 };
    let auction = tasks::TaskSpec { title: "auction".into(), auction: Some(terms), ..Default::default() };
    let a = w.as_(0).run(|_| tasks::create("dev", auction)).expect("auction");
    w.as_(1).run(|st| tasks::bid(st, a, 40, 2)).expect("bid");
    // A team that started (workspace channel).
    let sub = teams::SubTaskSpec {
        title: "part".into(),
        required_skills: vec!["rust".into()],
        reward: 10,
        ..Default::default()
    };
    let team =
        teams::TeamTaskSpec { title: "team".into(), subtasks: vec![sub], max_team_size: 3, ..Default::default() };
    let tt = w.as_(0).run(|_| teams::create("dev", team)).expect("team");
    w.as_(1).run(|_| Ok(teams::set_skills(vec!["rust".into()]))).expect("skills");
    w.as_(0).run(|st| teams::claim(st, tt)).expect("coordinate");
    w.as_(1).run(|st| teams::apply(st, tt)).expect("apply");
    let bob = w.id(1);
    w.as_(0).run(|st| teams::accept(st, tt, bob)).expect("accept");
    // Governance: a config change, a schema, a tool, a code upgrade; one left open.
    let cfg = governance::config_change("tax_bps", "300").expect("cmd");
    pass(&w, "global", spec(ProposalKind::ConfigChange, "tax", Some(cfg)));
    let def = r#"{"schema_name":"bug_v1","fields":{"x":{"type":"string","required":true}}}"#;
    let schema = Command::UpdateSchema { name: "bug_v1".into(), definition: def.into() };
    pass(&w, "global", spec(ProposalKind::Command, "schema", Some(schema)));
    let tool = tools::ToolSpec {
        tool_id: "hook".into(),
        description: "a hook".into(),
        tool_type: ToolType::Webhook,
        webhook_url: "https://example.test/".into(),
        monthly_cost_sp: 1,
        secret: "s".into(),
        recipients: None,
        title: None,
    };
    let tp = w.read(|st| tools::propose(st, &mut rand_core::OsRng, u64::MAX / 2, "dev", tool)).expect("sealed");
    let p = w.as_(0).run(|_| Ok(tp.intent.clone())).expect("tool proposal");
    for who in 0..3 {
        w.as_(who).run(|st| governance::step(st, w.identity(), p, governance::Step::Vote(true))).expect("vote");
    }
    w.advance(2 * 24 * 3_600_000);
    w.as_(0).run(|st| governance::step(st, w.identity(), p, governance::Step::Close)).expect("close");
    for who in 0..3 {
        let _ = w.as_(who).run(|st| governance::step(st, w.identity(), p, governance::Step::Ratify));
    }
    let me = w.id(0);
    let plan = w.read(|st| upgrades::publish(st, &me, examples::FLAT_TAX)).expect("plan");
    for i in plan.intents {
        w.as_(0).run(|_| Ok(i.clone())).expect("piece");
    }
    // A second module left half-published (`pending`).
    let big: Vec<u8> = examples::QUADRATIC_VOTE.iter().chain(examples::CHEAPEST_BID).copied().collect();
    let half = w.read(|st| upgrades::publish(st, &me, &big)).expect("plan");
    if let Some(first) = half.intents.into_iter().next() {
        w.as_(0).run(|_| Ok(first)).expect("piece");
    }
    let up = upgrades::UpgradeSpec {
        title: "flat".into(),
        description: String::new(),
        tags: vec![],
        module: plan.module.to_text(),
        policy: "tax".into(),
    };
    let u = w.read(|_| upgrades::propose("global", up)).expect("upgrade");
    pass(
        &w,
        "global",
        spec(
            ProposalKind::CodeUpgrade,
            "flat",
            match u.body {
                OpBody::ProposalCreate(p) => p.command,
                _ => None,
            },
        ),
    );
    w.as_(1).run(|_| governance::propose("dev", spec(ProposalKind::Generic, "open", None))).expect("open one");
    // Carol: a refused op, then two ops at one seq (an equivocation).
    let carol = &w.people[2];
    let (seq, prev) = w.replica.borrow().version_vector().get(&carol.node_id()).copied().unwrap_or((0, OpId::ZERO));
    let at = |ms| Hlc::new(w.now.get() + ms, 0);
    let refused =
        SignedOp::create(carol, seq + 1, prev, at(1), "dev", OpBody::TaskClaim { task: OpId::ZERO }).expect("op");
    let f1 = SignedOp::create(carol, seq + 2, refused.id(), at(2), "dev", OpBody::ChannelUnsubscribe).expect("op");
    let f2 =
        SignedOp::create(carol, seq + 2, refused.id(), at(3), "dev", OpBody::SkillsSet { skills: vec![] }).expect("op");
    for op in [refused, f1, f2] {
        w.replica.borrow_mut().receive_verified(op, u64::MAX / 2);
    }
    let _ = ModuleHash::BUILTIN;
    w
}

/// Every object key in `v`, skipping map keys that are data (ids, names).
fn keys(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let data = k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit())
                    || ["dev", "global", "hook", "rust", "infra", "bug_v1"].contains(&k.as_str())
                    || k.starts_with("team-")
                    || !k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !data {
                    out.insert(k.clone());
                }
                keys(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| keys(x, out)),
        _ => {}
    }
}

/// Whether the d.ts declares a member called `name` (`name:` or `name?:`).
fn declared(name: &str) -> bool {
    DTS.match_indices(name).any(|(i, _)| {
        let before = DTS[..i].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let after = DTS[i + name.len()..].trim_start_matches('?');
        before && after.starts_with(':')
    })
}

#[test]
fn the_dts_declares_every_field_of_the_snapshot() {
    let w = populated();
    let snap = serde_json::to_value(w.replica.borrow().snapshot()).expect("json");
    if let Ok(path) = std::env::var("SYNAPSE_DUMP_SNAPSHOT") {
        let _ = std::fs::write(path, serde_json::to_string_pretty(&snap).unwrap_or_default());
    }
    // The fixture really reaches every part (else the check proves little).
    let st = &snap["state"];
    for part in ["accounts", "channels", "tasks", "teams", "skills"] {
        assert!(st[part].as_object().is_some_and(|m| !m.is_empty()), "{part} is empty");
    }
    assert!(st["gov"]["execution_log"].as_array().is_some_and(|v| v.len() >= 3), "executions");
    assert!(st["tools"]["tools"].as_object().is_some_and(|m| !m.is_empty()), "no tool");
    assert!(st["upgrades"]["history"].as_array().is_some_and(|v| !v.is_empty()), "no activation");
    assert!(snap["rejected"].as_array().is_some_and(|v| !v.is_empty()), "no rejected op");
    assert!(snap["equivocators"].as_array().is_some_and(|v| !v.is_empty()), "no equivocation");
    let mut all = BTreeSet::new();
    keys(&snap, &mut all);
    let missing: Vec<&String> = all.iter().filter(|k| !declared(k)).collect();
    assert!(missing.is_empty(), "synapse.d.ts lacks these snapshot fields: {missing:?}");
}

#[test]
fn the_dts_declares_every_window_synapse_method_the_api_defines() {
    // The binding's JS names, as `js_name = ...` or the Rust name.
    let api = [
        include_str!("../runtime/api/channels.rs"),
        include_str!("../runtime/api/economy.rs"),
        include_str!("../runtime/api/events.rs"),
        include_str!("../runtime/api/governance.rs"),
        include_str!("../runtime/api/identity.rs"),
        include_str!("../runtime/api/network.rs"),
        include_str!("../runtime/api/ops.rs"),
        include_str!("../runtime/api/tasks.rs"),
        include_str!("../runtime/api/teams.rs"),
        include_str!("../runtime/api/tools.rs"),
        include_str!("../runtime/api/upgrades.rs"),
    ];
    let mut names = vec![];
    for src in api {
        let mut js_name: Option<String> = None;
        for line in src.lines().map(str::trim) {
            if let Some(i) = line.find("js_name = ") {
                let rest = &line[i + 10..];
                js_name = Some(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
            }
            if let Some(rest) = line.strip_prefix("pub fn ") {
                let rust: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                names.push(js_name.take().unwrap_or(rust));
            }
        }
    }
    assert!(names.len() > 50, "found only {names:?}");
    let missing: Vec<&String> = names.iter().filter(|n| !DTS.contains(&format!("  {n}("))).collect();
    assert!(missing.is_empty(), "synapse.d.ts lacks these window.synapse methods: {missing:?}");
}
