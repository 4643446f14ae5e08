//! The fuzz entry for what a chat endpoint can answer (`fuzz/fuzz_targets/
//! agent_answer.rs`): any bytes as the HTTP body, through the session on a
//! state with an open task, an auction and a proposal, then as a module
//! draft. Must not panic, and nothing refused may end up pending.

use super::session::{Agent, AgentConfig, SuggestionStatus};
use super::{Kind, draft};
use crate::core::op::AuctionTerms;
use crate::core::replica::Replica;
use crate::core::upgrade::Policy;
use crate::identity::Identity;
use crate::service::governance::{self, ProposalSpec};
use crate::service::tasks::{self, TaskSpec};
use crate::service::{Intent, channels, teams};

const T0: u64 = 1_700_000_000_000;

fn world() -> (Replica, Identity) {
    let mut r = Replica::open();
    let alice = Identity::from_seed([1; 32]);
    let bob = Identity::from_seed([2; 32]);
    let mut t = T0;
    let mut act = |who: &Identity, intent: crate::service::Result<Intent>| {
        t += 1000;
        if let Ok(i) = intent {
            let _ = r.act(who, &i.channel, i.body, t);
        }
    };
    act(&alice, channels::create("dev", "dev work"));
    act(&bob, channels::subscribe("dev"));
    act(&bob, Ok(teams::set_skills(vec!["rust".into()])));
    let fixed = TaskSpec { title: "fixed".into(), reward: 40, tags: vec!["rust".into()], ..TaskSpec::default() };
    act(&alice, tasks::create("dev", fixed));
    let terms = AuctionTerms { max_reward: 500, deadline_ms: T0 + 3_600_000 };
    let auction =
        TaskSpec { title: "auction".into(), tags: vec!["rust".into()], auction: Some(terms), ..TaskSpec::default() };
    act(&alice, tasks::create("dev", auction));
    let p: Result<ProposalSpec, _> = serde_json::from_value(serde_json::json!({"kind": "generic", "title": "p"}));
    act(&alice, p.map_err(|e| e.to_string()).and_then(|p| governance::propose("global", p)));
    (r, bob)
}

/// Feeds `data` to the agent as an endpoint's answer and as a draft;
/// returns how many suggestions passed the guardrails.
pub fn answer(data: &[u8]) -> usize {
    thread_local! {
        static WORLD: (Replica, Identity) = world();
    }
    let raw = String::from_utf8_lossy(data);
    WORLD.with(|(r, bob)| {
        let st = r.state();
        // `@T`, `@A` and `@P` stand for the live task, auction and proposal,
        // so the fuzzer reaches the pending and automatic paths (it cannot
        // guess a 64-hex id).
        let id_of = |auction: bool| {
            st.tasks.values().find(|t| t.auction.is_some() == auction).map(|t| t.id.to_text()).unwrap_or_default()
        };
        let proposal = st.gov.proposals.keys().next().map(|p| p.to_text()).unwrap_or_default();
        let text = raw.replace("@T", &id_of(false)).replace("@A", &id_of(true)).replace("@P", &proposal);
        let me = bob.node_id();
        let mut agent = Agent::default();
        let cfg = AgentConfig {
            enabled: true,
            auto: [Kind::Bid, Kind::Claim].into_iter().collect(),
            ..AgentConfig::default()
        };
        if agent.configure(cfg).is_err() {
            return 0;
        }
        let auto = agent.model_answered(st, &me, T0 + 10_000, Ok(text.to_string()));
        let rails = agent.config().guardrails();
        let mut passed = 0;
        for s in agent.status().suggestions {
            if let (SuggestionStatus::Pending, Some(a)) = (&s.status, &s.action) {
                assert!(rails.check(st, &me, T0 + 10_000, a).is_ok(), "a pending suggestion passes the guardrails");
                passed += 1;
            } else {
                assert!(!auto.contains(&s.id), "only pending suggestions run by themselves");
            }
        }
        for id in auto {
            let _ = agent.approve(id, st, bob, T0 + 10_000);
        }
        if let Ok(wat) = draft::wat_in(&text) {
            let _ = draft::compile(&wat, Policy::Tax);
        }
        passed
    })
}

/// (tasks, proposals) in the fuzz state (a test checks the state is not
/// empty, so the fuzzer reaches the guardrails' live-target rules).
#[cfg(test)]
pub(crate) fn world_size() -> (usize, usize) {
    let (r, _) = world();
    (r.state().tasks.len(), r.state().gov.proposals.len())
}
