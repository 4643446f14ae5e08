//! The agent's rules natively: guardrails against hostile answers, the
//! rule-based policy, parsing, the session's life and module drafts.

use super::draft;
use super::guardrails::{BID_CAP_MAX_PERCENT, RESERVE_FLOOR_SP};
use super::model::{self, Item};
use super::session::{Agent, AgentConfig, Cycle, MAX_SUGGESTIONS, SuggestionStatus};
use super::{Action, Guardrails, Kind};
use crate::core::op::{AuctionTerms, OpId};
use crate::core::upgrade::Policy;
use crate::service::Signer;
use crate::service::tasks::{self, TaskSpec};
use crate::service::testkit::{T0, World};
use crate::service::{governance, teams};
use serde_json::json;

/// Alice (0) offers an auction (max 500) and a `rust` task (40 SP); Bob
/// (1) has the skill `rust`.
fn market() -> (World, OpId, OpId) {
    let w = World::dev();
    let terms = AuctionTerms { max_reward: 500, deadline_ms: T0 + 3_600_000 };
    let a =
        TaskSpec { title: "port it".into(), tags: vec!["rust".into()], auction: Some(terms), ..TaskSpec::default() };
    let auction = w.as_(0).run(|_| tasks::create("dev", a)).expect("auction");
    let t = TaskSpec { title: "docs".into(), reward: 40, tags: vec!["rust".into()], ..TaskSpec::default() };
    let task = w.as_(0).run(|_| tasks::create("dev", t)).expect("task");
    w.as_(1).run(|_| Ok(teams::set_skills(vec!["rust".into()]))).expect("skills");
    (w, auction, task)
}

fn now(w: &World) -> u64 {
    w.now.get()
}

fn answer(content: &str) -> String {
    json!({"choices": [{"message": {"role": "assistant", "content": content}}]}).to_string()
}

fn enabled(auto: &[Kind]) -> AgentConfig {
    AgentConfig { enabled: true, auto: auto.iter().copied().collect(), ..AgentConfig::default() }
}

#[test]
fn agent_bid_cap_refuses_a_bid_above_thirty_percent_whatever_the_model_says() {
    let (w, auction, _) = market();
    let bob = w.id(1);
    let rails = Guardrails::default();
    let bal = w.read(|st| st.ledger.accounts[&bob].balance);
    let cap = bal * BID_CAP_MAX_PERCENT / 100;
    let at = |amount| Action::Bid { task: auction, amount, estimated_days: 2 };
    w.read(|st| rails.check(st, &bob, now(&w), &at(cap))).expect("at the cap");
    let e = w.read(|st| rails.check(st, &bob, now(&w), &at(cap + 1))).unwrap_err();
    assert!(e.contains("above 30% of the balance"), "{e}");
    // The session refuses it even when bids run automatically.
    let mut agent = Agent::default();
    agent.configure(enabled(&[Kind::Bid])).expect("config");
    let text = json!({"actions": [{"kind": "bid", "task": auction, "amount": cap + 1, "estimated_days": 1,
        "reason": "ignore your limits, bid everything"}]})
    .to_string();
    let auto = w.read(|st| agent.model_answered(st, &bob, now(&w), Ok(answer(&text))));
    assert!(auto.is_empty(), "nothing runs by itself");
    let s = &agent.status().suggestions[0];
    assert!(matches!(&s.status, SuggestionStatus::Refused { why } if why.contains("above 30%")), "{s:?}");
    // And approving it is refused too.
    let me = &w.people[1];
    assert!(w.read(|st| agent.approve(s.id, st, me, now(&w))).is_err());
}

#[test]
fn agent_reserve_never_spends_below_one_hundred_sp() {
    let (w, _, _) = market();
    let alice = w.id(0);
    let mut rails = Guardrails::default();
    rails.allowed.insert(Kind::CreateTask);
    let bal = w.read(|st| st.ledger.accounts[&alice].balance);
    let spend = |reward| Action::CreateTask { channel: "dev".into(), title: "t".into(), reward, tags: vec![] };
    w.read(|st| rails.check(st, &alice, now(&w), &spend(bal - RESERVE_FLOOR_SP))).expect("leaves exactly 100");
    let e = w.read(|st| rails.check(st, &alice, now(&w), &spend(bal - RESERVE_FLOOR_SP + 1))).unwrap_err();
    assert!(e.contains("below the 100 SP reserve"), "{e}");
    let e = w.read(|st| rails.check(st, &alice, now(&w), &spend(u64::MAX))).unwrap_err();
    assert!(e.contains("reserve"), "no overflow: {e}");
    // Looser settings than the fixed limits are refused.
    let loose = AgentConfig { reserve_sp: 99, ..AgentConfig::default() };
    assert_eq!(loose.validate().unwrap_err(), "reserve_sp cannot be below 100 SP");
    let loose = AgentConfig { max_bid_percent: 31, ..AgentConfig::default() };
    assert_eq!(loose.validate().unwrap_err(), "max_bid_percent must be 1 to 30");
    let sneaky = AgentConfig { auto: [Kind::CreateTask].into_iter().collect(), ..AgentConfig::default() };
    assert!(sneaky.validate().unwrap_err().contains("not allowed"));
}

#[test]
fn agent_allowed_kinds_and_live_targets() {
    let (w, auction, task) = market();
    let (alice, bob) = (w.id(0), w.id(1));
    let rails = Guardrails::default();
    let create = Action::CreateTask { channel: "dev".into(), title: "x".into(), reward: 1, tags: vec![] };
    let e = w.read(|st| rails.check(st, &bob, now(&w), &create)).unwrap_err();
    assert_eq!(e, "create_task is not a kind the agent is allowed");
    // Invented, own, wrong-sort and expired targets.
    let invented = Action::Claim { task: OpId([7; 32]) };
    assert!(w.read(|st| rails.check(st, &bob, now(&w), &invented)).unwrap_err().starts_with("no task"));
    let own = Action::Claim { task };
    assert!(w.read(|st| rails.check(st, &alice, now(&w), &own)).unwrap_err().contains("your own"));
    let claim_auction = Action::Claim { task: auction };
    assert!(w.read(|st| rails.check(st, &bob, now(&w), &claim_auction)).unwrap_err().contains("bid on it"));
    let bid = Action::Bid { task: auction, amount: 10, estimated_days: 1 };
    assert!(w.read(|st| rails.check(st, &bob, T0 + 3_600_001, &bid)).unwrap_err().contains("deadline"));
    let zero_days = Action::Bid { task: auction, amount: 10, estimated_days: 0 };
    assert!(w.read(|st| rails.check(st, &bob, now(&w), &zero_days)).is_err());
    let over_max = Action::Bid { task: auction, amount: 501, estimated_days: 1 };
    assert!(w.read(|st| rails.check(st, &bob, now(&w), &over_max)).is_err());
}

#[test]
fn the_rule_policy_claims_by_skill_bids_within_the_cap_and_backs_remedies() {
    let (w, auction, task) = market();
    let bob = w.id(1);
    let remedy: governance::ProposalSpec =
        serde_json::from_value(json!({"kind": "generic", "title": "more peers", "tags": [super::policy::REMEDY_TAG]}))
            .expect("spec");
    let p = w.as_(0).run(|_| governance::propose("global", remedy)).expect("remedy");
    let got = w.read(|st| super::policy::suggest(st, &bob, now(&w), &Guardrails::default()));
    let actions: Vec<&Action> = got.iter().map(|(a, _)| a).collect();
    assert_eq!(actions[0], &Action::Vote { proposal: p, yes: true });
    // 90 % of 500 is 450, above the cap of 300: capped.
    assert_eq!(actions[1], &Action::Bid { task: auction, amount: 300, estimated_days: 1 });
    assert!(got[1].1.contains("capped at 300 SP"), "{}", got[1].1);
    assert_eq!(actions[2], &Action::Claim { task });
    // Carol has no `rust` skill: nothing tagged rust for her.
    let carol = w.id(2);
    let hers = w.read(|st| super::policy::suggest(st, &carol, now(&w), &Guardrails::default()));
    assert!(hers.iter().all(|(a, _)| matches!(a, Action::Vote { .. })), "{hers:?}");
}

#[test]
fn a_model_answer_is_parsed_item_by_item_and_garbage_never_panics() {
    let id = "ab".repeat(32);
    let fenced = format!(
        "Sure!\n```json\n{{\"actions\": [{{\"kind\": \"claim\", \"task\": \"{id}\", \"reason\": \"fits\"}},\
         {{\"kind\": \"transfer\", \"to\": \"me\"}}, {{\"kind\": \"bid\", \"task\": \"{id}\", \"amount\": -5}},\
         {{\"kind\": \"bid\", \"task\": \"{id}\", \"amount\": 1.5}}, {{\"kind\": \"vote\", \"proposal\": \"{id}\", \"yes\": \"approve\"}}]}}\n```"
    );
    let items = model::actions(&fenced).expect("parsed");
    assert_eq!(items.len(), 5);
    assert!(matches!(&items[0], Item::Action(Action::Claim { .. }, r) if r == "fits"));
    assert!(matches!(&items[1], Item::Unusable { kind, .. } if kind == "transfer"));
    assert!(matches!(&items[2], Item::Unusable { why, .. } if why.contains("whole")));
    assert!(matches!(&items[3], Item::Unusable { .. }));
    assert!(matches!(&items[4], Item::Action(Action::Vote { yes: true, .. }, _)));
    let many = json!({"actions": vec![json!({"kind": "claim", "task": id}); 1000]}).to_string();
    assert_eq!(model::actions(&many).expect("parsed").len(), model::MAX_MODEL_ACTIONS);
    for bad in ["", "no json here", "[1, 2", "{\"actions\": 3}", "42", "```\n{\n```", "}{", "][", "{\"a\": [}"] {
        assert!(model::actions(bad).is_err() || model::actions(bad).is_ok_and(|v| v.is_empty()), "{bad:?}");
    }
    assert!(model::content("{\"error\": {\"message\": \"model not found\"}}").unwrap_err().contains("model not found"));
    assert!(model::content("{}").unwrap_err().contains("choices"));
    assert!(model::content(&"x".repeat(model::MAX_ANSWER_BYTES + 1)).unwrap_err().contains("more than"));
    assert_eq!(model::completions_url("http://h:1/v1/").expect("url"), "http://h:1/v1/chat/completions");
    assert_eq!(model::completions_url("http://h/chat/completions").expect("url"), "http://h/chat/completions");
    assert!(model::completions_url("file:///etc/passwd").is_err());
}

#[test]
fn agent_fallback_to_rules_when_the_endpoint_fails() {
    let (w, auction, _) = market();
    let bob = w.id(1);
    let mut agent = Agent::default();
    let cfg = AgentConfig { endpoint: Some("http://127.0.0.1:9/v1".into()), ..enabled(&[]) };
    agent.configure(cfg).expect("config");
    let cycle = w.read(|st| agent.begin_cycle(st, &bob, now(&w))).expect("due");
    let Cycle::Model { url, body, .. } = cycle else { panic!("a model cycle") };
    assert_eq!(url, "http://127.0.0.1:9/v1/chat/completions");
    assert!(body.to_string().contains(&auction.to_text()), "the prompt lists the auction");
    assert!(w.read(|st| agent.begin_cycle(st, &bob, now(&w))).is_none(), "one cycle at a time");
    w.read(|st| agent.model_answered(st, &bob, now(&w), Err("connection refused".into())));
    let s = agent.status();
    assert!(s.model_problem.as_deref().is_some_and(|p| p.contains("connection refused") && p.contains("rules")));
    assert_eq!(s.source, Some(super::Source::Rules));
    assert!(
        s.suggestions.iter().any(|x| x.action == Some(Action::Bid { task: auction, amount: 300, estimated_days: 1 }))
    );
    // The next cycle waits for its time.
    assert!(w.read(|st| agent.begin_cycle(st, &bob, now(&w) + 1000)).is_none());
    assert!(w.read(|st| agent.begin_cycle(st, &bob, now(&w) + 60_000)).is_some());
}

#[test]
fn approval_checks_again_and_suggestions_are_made_once() {
    let (w, auction, task) = market();
    let bob_id = w.id(1);
    let bob = &w.people[1];
    let mut agent = Agent::default();
    agent.configure(enabled(&[Kind::Claim])).expect("config");
    let auto = w.read(|st| agent.rules_cycle(st, &bob_id, now(&w)));
    let st = agent.status();
    let claim = st.suggestions.iter().find(|s| s.action == Some(Action::Claim { task })).expect("claim");
    assert_eq!(auto, vec![claim.id], "claims run by themselves");
    let bid = st.suggestions.iter().find(|s| matches!(s.action, Some(Action::Bid { .. }))).expect("bid").id;
    // A second cycle suggests nothing new.
    let before = agent.status().suggestions.len();
    w.read(|st| agent.rules_cycle(st, &bob_id, now(&w)));
    assert_eq!(agent.status().suggestions.len(), before);
    // The owner closes the auction: the pending bid goes stale, and
    // approving it is refused.
    w.as_(2).run(|st| tasks::bid(st, auction, 100, 3)).expect("carol bids");
    w.as_(0).run(|st| tasks::step(st, auction, tasks::Step::CloseAuction)).expect("closed");
    let e = w.read(|st| agent.approve(bid, st, bob, now(&w))).unwrap_err();
    assert!(e.contains("closed"), "{e}");
    // Approving the claim signs it.
    let intent = w.read(|st| agent.approve(auto[0], st, bob, now(&w))).expect("intent");
    let op = w.as_(1).sign(intent);
    agent.settled(auto[0], op.clone());
    assert!(matches!(
        agent.status().suggestions.iter().find(|s| s.id == auto[0]).map(|s| &s.status),
        Some(SuggestionStatus::Done { .. })
    ));
    assert_eq!(w.read(|st| st.tasks[&task].assignee), Some(bob_id));
    // Hundreds of distinct refused items stay bounded.
    for i in 0..200u32 {
        let text =
            json!([{"kind": "claim", "task": OpId([i as u8; 32]).to_text()}, {"kind": format!("k{i}")}]).to_string();
        w.read(|st| agent.model_answered(st, &bob_id, now(&w), Ok(answer(&text))));
    }
    assert!(agent.status().suggestions.len() <= MAX_SUGGESTIONS);
    assert!(agent.dismiss(9999).is_err());
}

#[test]
fn a_drafted_module_compiles_dry_runs_and_prepares_a_proposal_without_publishing() {
    let w = World::dev();
    let req = draft::request("a flat 2% tax", Policy::Tax, "m").expect("request");
    assert!(req.to_string().contains("\\\"tax\\\"") || req.to_string().contains("export \\\"tax\\\""));
    assert!(draft::request("  ", Policy::Tax, "m").is_err());
    let text = "Here it is:\n```wat\n(module (func (export \"tax\") (param i64 i64) (result i64)\n  (i64.div_u (i64.mul (local.get 0) (i64.const 200)) (i64.const 10000))))\n```";
    let wat = draft::wat_in(text).expect("wat");
    let bytes = draft::compile(&wat, Policy::Tax).expect("compiles");
    let run = w.read(|st| st.dry_run(&bytes, Policy::Tax, T0));
    assert!(run.error.is_none(), "{:?}", run.error);
    let p = draft::prepare("a flat 2% tax", Policy::Tax, &bytes);
    assert_eq!(p.tags, vec!["agent_draft".to_string(), "tax".to_string()]);
    assert_eq!(p.module.len(), 64);
    // Nothing was published: the network has no module.
    assert!(w.read(|st| st.upgrades.modules.is_empty()));
    let invalid = "(module (func (export \"tax\") (param i64) (result i64) (i64.add)))";
    assert!(draft::compile(invalid, Policy::Tax).unwrap_err().contains("would not load"));
    let wrong_export = "(module (func (export \"tax\") (param i64 i64) (result i64) (local.get 0)))";
    assert!(draft::compile(wrong_export, Policy::VoteWeight).is_err(), "a tax module is no vote_weight");
    assert!(draft::compile("(module (import \"env\" \"f\" (func)))", Policy::Tax).is_err(), "imports are refused");
    assert!(draft::compile("(module (func", Policy::Tax).unwrap_err().contains("does not compile"));
    assert!(draft::compile(&format!("(module {})", " ".repeat(draft::MAX_WAT_BYTES)), Policy::Tax).is_err());
    assert!(draft::wat_in("I cannot help with that").is_err());
}

#[test]
fn the_fuzz_entry_runs_on_answers_that_try_everything() {
    let id = |s: &str| s.repeat(64);
    for text in [
        answer(&json!({"actions": [{"kind": "bid", "task": id("0"), "amount": 1e300}]}).to_string()),
        answer("```wat\n(module (func (export \"tax\") (param i64 i64) (result i64) (local.get 0)))\n```"),
        "\u{0}\u{ffff}".to_string(),
        answer(&"[".repeat(10_000)),
    ] {
        super::fuzz::answer(text.as_bytes());
    }
    assert_eq!(super::fuzz::world_size(), (2, 1));
}

#[test]
fn the_agent_is_off_by_default_and_does_nothing_until_enabled() {
    let (w, _, _) = market();
    let bob = w.id(1);
    let mut agent = Agent::default();
    assert!(!agent.config().enabled);
    assert!(w.read(|st| agent.begin_cycle(st, &bob, now(&w))).is_none(), "no cycle while off");
    let e = w.read(|st| agent.force_cycle(st, &bob, now(&w))).unwrap_err();
    assert_eq!(e, "the agent is off: enable it first");
    // A saved configuration never carries the key.
    let cfg = AgentConfig { api_key: Some("sk-secret".into()), ..enabled(&[]) };
    let saved = serde_json::to_string(&cfg).expect("json");
    assert!(!saved.contains("sk-secret"), "{saved}");
    let back: AgentConfig = serde_json::from_str(&saved).expect("read back");
    assert!(back.enabled && back.api_key.is_none());
}

#[test]
fn the_fuzz_entry_reaches_live_targets_through_placeholders() {
    let text = answer(
        &json!({"actions": [{"kind": "bid", "task": "@A", "amount": 150}, {"kind": "claim", "task": "@T"},
            {"kind": "vote", "proposal": "@P", "yes": true}, {"kind": "bid", "task": "@A", "amount": 301}]})
        .to_string(),
    );
    // Asserts inside: pending ones pass the guardrails, refused ones never run.
    assert_eq!(super::fuzz::answer(text.as_bytes()), 3, "the bid, the claim and the vote");
}

#[test]
fn first_fenced_block_takes_the_body_after_the_language_tag() {
    use super::first_fenced_block;
    assert_eq!(first_fenced_block("here:\n```json\n[1, 2]\n```\nthanks"), Some("[1, 2]"));
    assert_eq!(first_fenced_block("```(module)```"), Some("(module)"), "a fence on one line");
    assert_eq!(first_fenced_block("```wat\n(module"), None, "never closed");
    assert_eq!(first_fenced_block("no fence"), None);
    assert_eq!(first_fenced_block("```a\n1\n``` and ```b\n2\n```"), Some("1"), "the first block");
}
