//! Governance rule tests (named after the rules in `docs/PROTOCOL.md`) and
//! the governance convergence property tests.

use crate::core::governance::{ProposalStatus, VoteOutcome, display_milli, log2_q32, vote_weight_milli};
use crate::core::hlc::Hlc;
use crate::core::op::{
    Command, ConfigValue, Funding, NewProposal, NewTask, OpBody, OpId, ProposalKind, SignedOp, SplitLogic, SplitPart,
    TaskSchema, VerifiedOp,
};
use crate::core::reject::Reject;
use crate::core::replica::{OpOutcome, Replica};
use crate::core::reputation::{MILLI, Reputation};
use crate::core::state::TaskStatus;
use crate::identity::{Identity, NodeId};

pub(super) const T0: u64 = 1_700_000_000_000;

pub(super) struct Author {
    pub(super) key: Identity,
    seq: u64,
    prev: OpId,
    last: Hlc,
}

impl Author {
    pub(super) fn new(seed: u8) -> Author {
        Author::with_seed([seed; 32])
    }

    pub(super) fn with_seed(seed: [u8; 32]) -> Author {
        Author { key: Identity::from_seed(seed), seq: 0, prev: OpId::ZERO, last: Hlc::ZERO }
    }

    pub(super) fn id(&self) -> NodeId {
        self.key.node_id()
    }

    pub(super) fn op(&mut self, ms: u64, channel: &str, body: OpBody) -> VerifiedOp {
        let hlc = if ms > self.last.ms { Hlc::new(ms, 0) } else { Hlc::new(self.last.ms, self.last.logical + 1) };
        self.seq += 1;
        let op = SignedOp::create(&self.key, self.seq, self.prev, hlc, channel, body).unwrap();
        self.prev = op.id();
        self.last = hlc;
        op
    }
}

pub(super) struct World {
    pub(super) r: Replica,
    pub(super) log: Vec<VerifiedOp>,
}

impl World {
    pub(super) fn new() -> World {
        World { r: Replica::open(), log: Vec::new() }
    }

    /// A world on the network `g` names.
    pub(super) fn on(g: &crate::core::genesis::Genesis) -> World {
        World { r: Replica::with_genesis(g), log: Vec::new() }
    }

    pub(super) fn feed(&mut self, op: &VerifiedOp) -> Option<OpOutcome> {
        self.log.push(op.clone());
        self.r.receive_verified(op.clone(), u64::MAX / 2);
        assert!(self.r.state().sp_conserved(), "SP not conserved");
        self.r.outcome(&op.id())
    }

    pub(super) fn applied(&mut self, op: &VerifiedOp) {
        assert_eq!(self.feed(op), Some(OpOutcome::Applied), "{:?}", op.op().body);
    }

    pub(super) fn rejected(&mut self, op: &VerifiedOp) -> Reject {
        match self.feed(op) {
            Some(OpOutcome::Rejected(r)) => r,
            other => panic!("expected rejection, got {other:?}"),
        }
    }

    /// Rule `ratify_every_change`: `p` is ratified by each of `authors`
    /// that is one of its validators, from `ms` on, until it leaves
    /// `pending_ratification`.
    pub(super) fn ratify_with(&mut self, p: OpId, ms: u64, authors: &mut [&mut Author]) {
        for (i, a) in authors.iter_mut().enumerate() {
            let pr = self.proposal(p);
            if pr.status != ProposalStatus::PendingRatification {
                return;
            }
            if pr.validators.contains(&a.id()) {
                let op = a.op(ms + i as u64, &pr.channel.clone(), ratify(p));
                self.applied(&op);
            }
        }
        assert_ne!(self.proposal(p).status, ProposalStatus::PendingRatification, "not enough validators ratified");
    }

    pub(super) fn proposal(&self, id: OpId) -> &crate::core::governance::Proposal {
        &self.r.state().gov.proposals[&id]
    }
}

pub(super) fn proposal(kind: ProposalKind, tags: &[&str], command: Option<Command>) -> OpBody {
    OpBody::ProposalCreate(NewProposal {
        kind,
        title: format!("{} proposal", kind.name()),
        description: String::new(),
        tags: tags.iter().map(|s| s.to_string()).collect(),
        command,
    })
}

pub(super) fn config(key: &str, value: ConfigValue) -> Option<Command> {
    Some(Command::ConfigChange { key: key.into(), value })
}

pub(super) fn task(title: &str, reward: u64, tags: &[&str]) -> OpBody {
    OpBody::TaskCreate(NewTask {
        schema: TaskSchema::TaskV1,
        title: title.into(),
        description: String::new(),
        reward,
        tags: tags.iter().map(|s| s.to_string()).collect(),
        required_tools: vec![],
        funding: Funding::Creator,
        auction: None,
    })
}

pub(super) fn vote(p: OpId, yes: bool) -> OpBody {
    OpBody::Vote { proposal: p, yes }
}

pub(super) fn close(p: OpId) -> OpBody {
    OpBody::ProposalClose { proposal: p }
}

pub(super) fn ratify(p: OpId) -> OpBody {
    OpBody::Ratify { proposal: p }
}

// ---- weights ---------------------------------------------------------------

fn rep(total_points: u64, tags: &[(&str, u64)]) -> Reputation {
    let mut r = Reputation::new(0);
    r.total = total_points * MILLI;
    for (t, v) in tags {
        r.tags.insert(t.to_string(), v * MILLI);
    }
    r
}

#[test]
fn log2_q32_is_exact_on_powers_of_two_and_monotonic() {
    assert_eq!(log2_q32(1), 0);
    assert_eq!(log2_q32(2), 1 << 32);
    assert_eq!(log2_q32(1024), 10 << 32);
    assert_eq!(log2_q32(u64::MAX) >> 32, 63);
    let mut last = 0;
    for x in 1..5000u64 {
        let v = log2_q32(x);
        assert!(v >= last);
        last = v;
    }
    // log2(3) = 1.5849625007...
    let l3 = log2_q32(3) as f64 / (1u64 << 32) as f64;
    assert!((l3 - 1.584_962_500_7).abs() < 1e-9, "{l3}");
}

#[test]
fn vote_weight_matches_the_reference_examples() {
    let w = |r: Reputation, tags: &[&str]| {
        let tags: Vec<String> = tags.iter().map(|s| s.to_string()).collect();
        display_milli(vote_weight_milli(&r, &tags).0)
    };
    assert_eq!(w(rep(0, &[]), &[]), "1.00");
    assert_eq!(w(rep(1, &[]), &[]), "2.00");
    assert_eq!(w(rep(20, &[]), &[]), "5.39");
    assert_eq!(w(rep(100, &[]), &[]), "7.66");
    assert_eq!(w(rep(1000, &[]), &[]), "10.97");
    assert_eq!(w(rep(10, &[("python", 10)]), &["python", "security"]), "7.92");
    // Untagged proposals ignore tag scores; the docstring example of the original.
    assert_eq!(w(rep(10, &[("python", 10)]), &[]), "4.46");
    assert_eq!(w(rep(1023, &[("security", 500)]), &["security", "refactor"]), "19.97");
    let (_, matched) = vote_weight_milli(&rep(10, &[("python", 10)]), &["python".into(), "security".into()]);
    assert_eq!(matched, vec!["python".to_string()]);
    // Huge reputations saturate instead of overflowing.
    let mut huge = rep(0, &[]);
    huge.total = u64::MAX;
    assert!(vote_weight_milli(&huge, &[]).0 > 50_000);
}

// ---- proposals and votes ---------------------------------------------------

#[test]
fn proposal_schema_checks_title_tags_and_command_kind() {
    let mut a = Author::new(1);
    let mut w = World::new();
    let bad = [
        proposal(ProposalKind::Generic, &[], config("tax_bps", ConfigValue::Int(1))),
        proposal(ProposalKind::ConfigChange, &[], None),
        proposal(
            ProposalKind::Command,
            &[],
            Some(Command::CodeUpgrade { module_sha256: [1; 32], policy: crate::core::upgrade::Policy::Tax }),
        ),
        proposal(ProposalKind::CodeUpgrade, &[], config("tax_bps", ConfigValue::Int(1))),
        proposal(ProposalKind::Generic, &["a", "a"], None),
    ];
    for (i, body) in bad.into_iter().enumerate() {
        let r = w.rejected(&a.op(T0 + i as u64, "global", body));
        assert!(matches!(r, Reject::BadProposal(_) | Reject::DuplicateTag(_)), "{r}");
    }
    let r = w.rejected(&a.op(T0 + 10, "nowhere", proposal(ProposalKind::Generic, &[], None)));
    assert_eq!(r.code(), "no_such_channel");
    w.applied(&a.op(T0 + 11, "global", proposal(ProposalKind::Generic, &["x"], None)));
}

#[test]
fn vote_revote_replaces_and_earns_one_point_once() {
    let (mut a, mut b) = (Author::new(1), Author::new(2));
    let mut w = World::new();
    let p = a.op(T0, "global", proposal(ProposalKind::Generic, &[], None));
    w.applied(&p);
    w.applied(&b.op(T0 + 1, "global", vote(p.id(), true)));
    w.applied(&b.op(T0 + 2, "global", vote(p.id(), false)));
    assert!(!w.proposal(p.id()).votes[&b.id()]);
    assert_eq!(w.r.state().ledger.accounts[&b.id()].reputation.total, MILLI);
    // Votes must carry the proposal's channel.
    let r = w.rejected(&b.op(T0 + 3, "dev", vote(p.id(), true)));
    assert_eq!(r.code(), "proposal_wrong_channel");
    let r = w.rejected(&b.op(T0 + 4, "global", vote(OpId([9; 32]), true)));
    assert_eq!(r.code(), "no_such_proposal");
}

#[test]
fn vote_outcome_ties_reject() {
    let (mut a, mut b, mut c) = (Author::new(1), Author::new(2), Author::new(3));
    let mut w = World::new();
    let p = a.op(T0, "global", proposal(ProposalKind::Generic, &[], None));
    w.applied(&p);
    w.applied(&b.op(T0 + 1, "global", vote(p.id(), true)));
    w.applied(&c.op(T0 + 2, "global", vote(p.id(), false)));
    w.applied(&a.op(T0 + 3, "global", close(p.id())));
    let pr = w.proposal(p.id());
    let t = pr.tally.as_ref().unwrap();
    assert_eq!(t.yes_weight_milli, t.no_weight_milli);
    assert_eq!(t.outcome, VoteOutcome::Rejected);
    assert_eq!(pr.status, ProposalStatus::Closed);
}

#[test]
fn vote_outcome_no_votes_is_pending() {
    let mut a = Author::new(1);
    let mut w = World::new();
    let p = a.op(T0, "global", proposal(ProposalKind::ConfigChange, &[], config("tax_bps", ConfigValue::Int(300))));
    w.applied(&p);
    w.applied(&a.op(T0 + 1, "global", close(p.id())));
    let pr = w.proposal(p.id());
    assert_eq!(pr.tally.as_ref().unwrap().outcome, VoteOutcome::Pending);
    assert_eq!(pr.status, ProposalStatus::Closed);
    assert_eq!(w.r.state().params.tax_bps, 200, "not executed");
    assert!(w.r.state().gov.execution_log.is_empty());
    // A closed proposal takes no more votes or closes.
    assert_eq!(w.rejected(&a.op(T0 + 2, "global", vote(p.id(), true))).code(), "proposal_not_open");
    assert_eq!(w.rejected(&a.op(T0 + 3, "global", close(p.id()))).code(), "proposal_not_open");
}

#[test]
fn vote_outcome_weighted_with_per_voter_breakdown() {
    // b earns 10 points on tag "python" by completing a task of a's; c has none.
    let (mut a, mut b, mut c) = (Author::new(1), Author::new(2), Author::new(3));
    let mut w = World::new();
    w.applied(&a.op(T0, "dev", OpBody::ChannelCreate { description: String::new() }));
    let t = a.op(T0 + 1, "dev", task("py", 10, &["python"]));
    w.applied(&t);
    w.applied(&b.op(T0 + 2, "dev", OpBody::TaskClaim { task: t.id() }));
    w.applied(&b.op(T0 + 3, "dev", OpBody::TaskStart { task: t.id() }));
    w.applied(&b.op(T0 + 4, "dev", OpBody::TaskComplete { task: t.id() }));
    let p = a.op(T0 + 5, "dev", proposal(ProposalKind::Generic, &["python", "security"], None));
    w.applied(&p);
    w.applied(&b.op(T0 + 6, "dev", vote(p.id(), true)));
    w.applied(&c.op(T0 + 7, "dev", vote(p.id(), false)));
    w.applied(&c.op(T0 + 8, "dev", close(p.id())));
    let t = w.proposal(p.id()).tally.clone().unwrap();
    assert_eq!(t.outcome, VoteOutcome::Approved);
    let by = |n: NodeId| t.details.iter().find(|d| d.voter == n).unwrap().clone();
    let db = by(b.id());
    // b: _total 11 (10 task + 1 vote), python 10 → 1 + log2(12) + log2(11) = 8.04.
    assert_eq!(db.reputation_milli, 11 * MILLI);
    assert_eq!(display_milli(db.weight_milli), "8.04");
    assert_eq!(db.tags_matched, vec!["python".to_string()]);
    let dc = by(c.id());
    assert_eq!(display_milli(dc.weight_milli), "2.00");
    assert!(dc.tags_matched.is_empty());
    assert_eq!(t.yes_weight_milli, db.weight_milli);
    assert_eq!(w.proposal(p.id()).status, ProposalStatus::Closed);
}

#[test]
fn proposal_close_waits_for_the_minimum_voting_period() {
    let (mut a, mut b) = (Author::new(1), Author::new(2));
    let mut w = World::new();
    let cfg = a.op(
        T0,
        "global",
        proposal(ProposalKind::ConfigChange, &[], config("proposal_min_voting_seconds", ConfigValue::Int(60))),
    );
    w.applied(&cfg);
    w.applied(&b.op(T0 + 1, "global", vote(cfg.id(), true)));
    w.applied(&b.op(T0 + 2, "global", close(cfg.id())));
    w.ratify_with(cfg.id(), T0 + 3, &mut [&mut a, &mut b]);
    assert_eq!(w.r.state().params.proposal_min_voting_seconds, 60);
    let p = a.op(T0 + 10, "global", proposal(ProposalKind::Generic, &[], None));
    w.applied(&p);
    let r = w.rejected(&b.op(T0 + 10 + 59_999, "global", close(p.id())));
    assert_eq!(r, Reject::VotingPeriodRunning { proposal: p.id(), until_ms: T0 + 10 + 60_000 });
    w.applied(&b.op(T0 + 10 + 60_000, "global", close(p.id())));
}

#[test]
fn proposal_expire_only_after_the_deadline() {
    let (mut a, mut b) = (Author::new(1), Author::new(2));
    let mut w = World::new();
    let p = a.op(T0, "global", proposal(ProposalKind::Generic, &[], None));
    w.applied(&p);
    let deadline = T0 + 86_400_000;
    assert_eq!(w.proposal(p.id()).deadline_ms, deadline);
    w.applied(&b.op(deadline, "global", vote(p.id(), true)));
    let r = w.rejected(&a.op(deadline, "global", OpBody::ProposalExpire { proposal: p.id() }));
    assert_eq!(r.code(), "not_expired");
    assert_eq!(w.rejected(&b.op(deadline + 1, "global", vote(p.id(), false))).code(), "voting_ended");
    w.applied(&a.op(deadline + 1, "global", OpBody::ProposalExpire { proposal: p.id() }));
    let pr = w.proposal(p.id());
    assert!(pr.closed_automatically);
    assert_eq!(pr.tally.as_ref().unwrap().outcome, VoteOutcome::Approved);
}

// ---- config_change -----------------------------------------------------------

#[test]
fn config_change_applies_from_its_point_on_and_is_versioned() {
    let (mut a, mut b) = (Author::new(1), Author::new(2));
    let mut w = World::new();
    w.applied(&a.op(T0, "dev", OpBody::ChannelCreate { description: String::new() }));
    let t1 = a.op(T0 + 1, "dev", task("before", 500, &[]));
    w.applied(&t1);
    w.applied(&b.op(T0 + 2, "dev", OpBody::TaskClaim { task: t1.id() }));
    w.applied(&b.op(T0 + 3, "dev", OpBody::TaskStart { task: t1.id() }));
    w.applied(&b.op(T0 + 4, "dev", OpBody::TaskComplete { task: t1.id() }));
    assert_eq!(w.r.state().treasury("dev"), 10);
    let p = a.op(T0 + 5, "dev", proposal(ProposalKind::ConfigChange, &[], config("tax_bps", ConfigValue::Int(500))));
    w.applied(&p);
    w.applied(&b.op(T0 + 6, "dev", vote(p.id(), true)));
    w.applied(&a.op(T0 + 7, "dev", close(p.id())));
    w.ratify_with(p.id(), T0 + 8, &mut [&mut a, &mut b]);
    let s = w.r.state();
    assert_eq!(s.params.tax_bps, 500);
    assert_eq!(s.gov.config_version, 1);
    assert_eq!(w.proposal(p.id()).status, ProposalStatus::Executed);
    let e = &s.gov.execution_log[0];
    assert!(e.result.success && e.result.message.contains("200 -> 500"), "{}", e.result.message);
    assert_eq!(e.op, w.log.last().unwrap().id());
    assert_eq!(s.treasury("dev"), 10, "not retroactive");
    let t2 = a.op(T0 + 8, "dev", task("after", 500, &[]));
    w.applied(&t2);
    w.applied(&b.op(T0 + 9, "dev", OpBody::TaskClaim { task: t2.id() }));
    w.applied(&b.op(T0 + 10, "dev", OpBody::TaskStart { task: t2.id() }));
    w.applied(&b.op(T0 + 11, "dev", OpBody::TaskComplete { task: t2.id() }));
    assert_eq!(w.r.state().treasury("dev"), 10 + 25);
}

#[test]
fn config_change_unknown_key_or_wrong_type_fails_with_a_reason() {
    let (mut a, mut b) = (Author::new(1), Author::new(2));
    let mut w = World::new();
    let cases = [
        ("no_such_key", ConfigValue::Int(1), "unknown config key"),
        ("tax_bps", ConfigValue::Bool(true), "tax_bps is an integer, got a boolean"),
        ("tax_bps", ConfigValue::Text("3".into()), "got a string"),
        ("tax_bps", ConfigValue::Int(10_001), "at most 10000"),
        ("validator_set_size", ConfigValue::Int(0), "at least 1"),
    ];
    for (i, (key, value, why)) in cases.into_iter().enumerate() {
        let ms = T0 + 10 * i as u64;
        let p = a.op(ms, "global", proposal(ProposalKind::ConfigChange, &[], config(key, value)));
        w.applied(&p);
        w.applied(&b.op(ms + 1, "global", vote(p.id(), true)));
        w.applied(&a.op(ms + 2, "global", close(p.id())));
        w.ratify_with(p.id(), ms + 3, &mut [&mut a, &mut b]);
        assert_eq!(w.proposal(p.id()).status, ProposalStatus::Failed);
        let e = w.r.state().gov.execution_log.last().unwrap().clone();
        assert!(!e.result.success && e.result.message.contains(why), "{}", e.result.message);
    }
    let s = w.r.state();
    assert_eq!(s.gov.config_version, 0);
    assert_eq!(s.params, crate::core::genesis::Genesis::open("test").params());
}

// ---- validators and ratification -------------------------------------------

/// Five nodes; `validator_set_size` set to 3 by an executed config change.
/// Reputation: d and e each completed a task (10 points), so with their votes
/// the set at the next close is {d, e} plus the lowest id among the others
/// with the highest remaining score.
struct Council {
    w: World,
    n: Vec<Author>,
}

impl Council {
    fn new() -> Council {
        let mut n: Vec<Author> = (1..=5).map(Author::new).collect();
        let mut w = World::new();
        w.applied(&n[0].op(T0, "dev", OpBody::ChannelCreate { description: String::new() }));
        for i in [3usize, 4] {
            let t = n[0].op(T0 + 10 * i as u64, "dev", task("work", 10, &["ops"]));
            w.applied(&t);
            w.applied(&n[i].op(T0 + 10 * i as u64 + 1, "dev", OpBody::TaskClaim { task: t.id() }));
            w.applied(&n[i].op(T0 + 10 * i as u64 + 2, "dev", OpBody::TaskStart { task: t.id() }));
            w.applied(&n[i].op(T0 + 10 * i as u64 + 3, "dev", OpBody::TaskComplete { task: t.id() }));
        }
        w.applied(&n[1].op(T0 + 100, "dev", OpBody::ChannelSubscribe));
        w.applied(&n[2].op(T0 + 101, "dev", OpBody::ChannelSubscribe));
        let p = n[0].op(
            T0 + 200,
            "global",
            proposal(ProposalKind::ConfigChange, &[], config("validator_set_size", ConfigValue::Int(3))),
        );
        w.applied(&p);
        w.applied(&n[0].op(T0 + 201, "global", vote(p.id(), true)));
        w.applied(&n[0].op(T0 + 202, "global", close(p.id())));
        let mut all: Vec<&mut Author> = n.iter_mut().collect();
        w.ratify_with(p.id(), T0 + 203, &mut all);
        assert_eq!(w.r.state().params.validator_set_size, 3);
        Council { w, n }
    }

    /// d, e: 10 points (tied: lower node id first); a: 1 point (its vote);
    /// b, c: 0 points.
    fn expected_validators(&self) -> Vec<NodeId> {
        let (d, e) = (self.n[3].id(), self.n[4].id());
        vec![d.min(e), d.max(e), self.n[0].id()]
    }
}

fn split_command() -> Command {
    Command::SplitChannel {
        target: "dev".into(),
        logic: SplitLogic::ByTag,
        parts: vec![
            SplitPart { channel: "dev-ui".into(), keys: vec!["ui".into()] },
            SplitPart { channel: "dev-core".into(), keys: vec!["core".into(), "rust".into()] },
        ],
    }
}

#[test]
fn validator_set_is_top_by_reputation_ties_by_node_id() {
    let c = Council::new();
    let s = c.w.r.state();
    let expect = c.expected_validators();
    assert_eq!(s.compute_validators(T0 + 300), expect);
    // Recomputed at the config proposal's close, before its change applied.
    assert_eq!(s.gov.validators.len(), 5);
}

#[test]
fn ratify_quorum_executes_exactly_once_and_refuses_the_rest() {
    let mut c = Council::new();
    let [a, b, _, d, e] = &mut c.n[..] else { unreachable!() };
    let w = &mut c.w;
    let ui = a.op(T0 + 300, "dev", task("button", 5, &["ui"]));
    let core = a.op(T0 + 301, "dev", task("fold", 5, &["rust"]));
    let other = a.op(T0 + 302, "dev", task("docs", 5, &["docs"]));
    for t in [&ui, &core, &other] {
        w.applied(t);
    }
    let p = a.op(T0 + 400, "dev", proposal(ProposalKind::NetworkOperation, &[], Some(split_command())));
    w.applied(&p);
    // Ratifying before the close is refused.
    assert_eq!(w.rejected(&d.op(T0 + 401, "dev", ratify(p.id()))).code(), "not_pending_ratification");
    w.applied(&a.op(T0 + 402, "dev", vote(p.id(), true)));
    w.applied(&b.op(T0 + 402, "dev", vote(p.id(), true)));
    w.applied(&b.op(T0 + 403, "dev", close(p.id())));
    let pr = w.proposal(p.id()).clone();
    assert_eq!(pr.status, ProposalStatus::PendingRatification);
    assert_eq!(pr.validators.len(), 3);
    assert_eq!(pr.quorum(&w.r.state().params.rules), 2);
    assert!(pr.validators.contains(&d.id()) && pr.validators.contains(&e.id()) && pr.validators.contains(&a.id()));
    // A non-validator's ratification has no effect.
    assert_eq!(w.rejected(&b.op(T0 + 404, "dev", ratify(p.id()))), Reject::NotValidator { proposal: p.id() });
    w.applied(&d.op(T0 + 405, "dev", ratify(p.id())));
    assert_eq!(w.rejected(&d.op(T0 + 406, "dev", ratify(p.id()))).code(), "already_ratified");
    assert!(w.r.state().gov.execution_log.len() == 1, "only the config change so far");
    let quorum_op = e.op(T0 + 407, "dev", ratify(p.id()));
    w.applied(&quorum_op);
    let s = w.r.state();
    assert_eq!(s.gov.execution_log.len(), 2);
    let entry = &s.gov.execution_log[1];
    assert_eq!(entry.op, quorum_op.id());
    assert_eq!(entry.ratified_by.len(), 2);
    assert!(entry.result.success, "{}", entry.result.message);
    assert_eq!(s.tasks[&ui.id()].channel, "dev-ui");
    assert_eq!(s.tasks[&core.id()].channel, "dev-core");
    assert_eq!(s.tasks[&other.id()].channel, "dev");
    assert_eq!(s.ledger.channels["dev-ui"].members, s.ledger.channels["dev"].members);
    assert_eq!(w.proposal(p.id()).status, ProposalStatus::Executed);
    // A third ratification after the quorum executes nothing.
    assert_eq!(w.rejected(&a.op(T0 + 408, "dev", ratify(p.id()))).code(), "not_pending_ratification");
    assert_eq!(w.r.state().gov.execution_log.len(), 2);
    // Ratifying a non-network-operation proposal is refused (in dev-core:
    // the split archived dev).
    let g = a.op(T0 + 500, "dev-core", proposal(ProposalKind::Generic, &[], None));
    w.applied(&g);
    assert_eq!(w.rejected(&d.op(T0 + 501, "dev-core", ratify(g.id()))).code(), "not_ratifiable");
    // The snapshot lists the refused ratifications with reasons.
    let snap = w.r.snapshot();
    assert!(snap.rejected.iter().filter(|r| r.kind == "ratify").count() >= 4);
}

#[test]
fn split_channel_by_title_prefix_moves_only_open_matching_tasks() {
    let (mut a, mut b) = (Author::new(1), Author::new(2));
    let mut w = World::new();
    w.applied(&a.op(T0, "dev", OpBody::ChannelCreate { description: String::new() }));
    let t1 = a.op(T0 + 1, "dev", task("UI: header", 5, &[]));
    let t2 = a.op(T0 + 2, "dev", task("ui: claimed one", 5, &[]));
    let t3 = a.op(T0 + 3, "dev", task("Core: fold", 5, &[]));
    for t in [&t1, &t2, &t3] {
        w.applied(t);
    }
    w.applied(&b.op(T0 + 4, "dev", OpBody::TaskClaim { task: t2.id() }));
    let cmd = Command::SplitChannel {
        target: "dev".into(),
        logic: SplitLogic::ByTitlePrefix,
        parts: vec![SplitPart { channel: "ui".into(), keys: vec!["ui:".into()] }],
    };
    let p = a.op(T0 + 5, "dev", proposal(ProposalKind::Command, &[], Some(cmd)));
    w.applied(&p);
    w.applied(&a.op(T0 + 6, "dev", vote(p.id(), true)));
    w.applied(&a.op(T0 + 7, "dev", close(p.id())));
    w.ratify_with(p.id(), T0 + 8, &mut [&mut a, &mut b]);
    let s = w.r.state();
    assert_eq!(s.tasks[&t1.id()].channel, "ui");
    assert_eq!(s.tasks[&t2.id()].channel, "dev", "claimed tasks stay");
    assert_eq!(s.tasks[&t3.id()].channel, "dev");
    // The moved task now lives in "ui": ops must name that channel.
    assert_eq!(w.rejected(&b.op(T0 + 8, "dev", OpBody::TaskClaim { task: t1.id() })).code(), "wrong_channel");
    w.applied(&b.op(T0 + 9, "ui", OpBody::TaskClaim { task: t1.id() }));
    assert_eq!(w.r.state().tasks[&t1.id()].status, TaskStatus::Claimed);
}

#[test]
fn split_channel_of_an_unknown_channel_fails_with_a_reason() {
    let mut a = Author::new(1);
    let mut w = World::new();
    let cmd = Command::SplitChannel { target: "nope".into(), logic: SplitLogic::ByTag, parts: vec![] };
    let p = a.op(T0, "global", proposal(ProposalKind::Command, &[], Some(cmd)));
    w.applied(&p);
    w.applied(&a.op(T0 + 1, "global", vote(p.id(), true)));
    w.applied(&a.op(T0 + 2, "global", close(p.id())));
    w.ratify_with(p.id(), T0 + 3, &mut [&mut a]);
    let e = &w.r.state().gov.execution_log[0];
    assert!(!e.result.success && e.result.message.contains("does not exist"));
    assert_eq!(w.proposal(p.id()).status, ProposalStatus::Failed);
}

#[test]
fn merge_channels_keep_all_moves_tasks_members_and_treasury() {
    let (mut a, mut b) = (Author::new(1), Author::new(2));
    let mut w = World::new();
    w.applied(&a.op(T0, "one", OpBody::ChannelCreate { description: String::new() }));
    w.applied(&b.op(T0 + 1, "two", OpBody::ChannelCreate { description: String::new() }));
    let t1 = a.op(T0 + 2, "one", task("a", 100, &[]));
    let t2 = b.op(T0 + 3, "two", task("b", 5, &[]));
    w.applied(&t1);
    w.applied(&t2);
    w.applied(&b.op(T0 + 4, "one", OpBody::TaskClaim { task: t1.id() }));
    w.applied(&b.op(T0 + 5, "one", OpBody::TaskStart { task: t1.id() }));
    w.applied(&b.op(T0 + 6, "one", OpBody::TaskComplete { task: t1.id() }));
    assert_eq!(w.r.state().treasury("one"), 2);
    let cmd =
        Command::MergeChannels { sources: vec!["one".into(), "two".into(), "ghost".into()], target: "all".into() };
    let p = a.op(T0 + 7, "global", proposal(ProposalKind::Command, &[], Some(cmd)));
    w.applied(&p);
    w.applied(&a.op(T0 + 8, "global", vote(p.id(), true)));
    w.applied(&a.op(T0 + 9, "global", close(p.id())));
    w.ratify_with(p.id(), T0 + 10, &mut [&mut a, &mut b]);
    let s = w.r.state();
    assert!(s.gov.execution_log[0].result.success, "{}", s.gov.execution_log[0].result.message);
    assert_eq!(s.tasks[&t1.id()].channel, "all");
    assert_eq!(s.tasks[&t2.id()].channel, "all");
    assert_eq!(s.treasury("all"), 2);
    assert_eq!(s.treasury("one"), 0);
    for source in ["one", "two"] {
        let ch = &s.ledger.channels[source];
        assert!(ch.archived && ch.merged_into.as_deref() == Some("all"), "{source} archived into all");
    }
    assert!(s.ledger.channels["all"].members.contains(&a.id()) && s.ledger.channels["all"].members.contains(&b.id()));
}

/// Runs `cmd` as an approved `command` proposal in `global` at `ms`.
fn execute_command(w: &mut World, a: &mut Author, others: &mut [&mut Author], ms: u64, cmd: Command) {
    let p = a.op(ms, "global", proposal(ProposalKind::Command, &[], Some(cmd)));
    w.applied(&p);
    w.applied(&a.op(ms + 1, "global", vote(p.id(), true)));
    w.applied(&a.op(ms + 2, "global", close(p.id())));
    let mut all: Vec<&mut Author> = vec![a];
    all.extend(others.iter_mut().map(|o| &mut **o));
    w.ratify_with(p.id(), ms + 3, &mut all);
    let e = w.r.state().gov.execution_log.last().cloned().unwrap();
    assert!(e.result.success, "{}", e.result.message);
}

fn split_dev_in_two() -> Command {
    Command::SplitChannel {
        target: "dev".into(),
        logic: SplitLogic::ByTag,
        parts: vec![
            SplitPart { channel: "dev-a".into(), keys: vec!["a".into()] },
            SplitPart { channel: "dev-b".into(), keys: vec!["b".into()] },
        ],
    }
}

#[test]
fn split_archives_the_source_channel() {
    let mut a = Author::new(1);
    let mut w = World::new();
    w.applied(&a.op(T0, "dev", OpBody::ChannelCreate { description: String::new() }));
    let ta = a.op(T0 + 1, "dev", task("for a", 5, &["a"]));
    w.applied(&ta);
    execute_command(&mut w, &mut a, &mut [], T0 + 10, split_dev_in_two());
    let s = w.r.state();
    let dev = &s.ledger.channels["dev"];
    assert!(dev.archived);
    assert_eq!(dev.split_into, vec!["dev-a".to_owned(), "dev-b".to_owned()]);
    assert_eq!(dev.merged_into, None);
    assert_eq!(s.tasks[&ta.id()].channel, "dev-a");
    assert!(!s.ledger.channels["dev-a"].archived && !s.ledger.channels["dev-b"].archived);
    // The JSON view (what the JS API serializes) shows where dev went.
    let json = serde_json::to_value(s).unwrap();
    assert_eq!(json["channels"]["dev"]["archived"], true);
    assert_eq!(json["channels"]["dev"]["split_into"], serde_json::json!(["dev-a", "dev-b"]));
    assert_eq!(json["channels"]["dev"]["merged_into"], serde_json::Value::Null);
    // An archived channel cannot be split again, and new proposals go elsewhere.
    let again = a.op(T0 + 20, "dev", proposal(ProposalKind::Generic, &[], None));
    let r = w.rejected(&again);
    assert_eq!(r, Reject::ChannelSplit { channel: "dev".into(), into: vec!["dev-a".into(), "dev-b".into()] });
    assert_eq!(r.to_string(), "channel dev was split into dev-a, dev-b");
}

#[test]
fn split_divides_the_treasury_among_the_new_channels() {
    // A completed task pays tax into dev's treasury; after the split an
    // archived dev could never spend it, so it is shared out.
    let (mut a, mut b) = (Author::new(1), Author::new(2));
    let mut w = World::new();
    w.applied(&a.op(T0, "dev", OpBody::ChannelCreate { description: String::new() }));
    let t = a.op(T0 + 1, "dev", task("paid", 101, &["a"]));
    w.applied(&t);
    w.applied(&b.op(T0 + 2, "dev", OpBody::TaskClaim { task: t.id() }));
    w.applied(&b.op(T0 + 3, "dev", OpBody::TaskStart { task: t.id() }));
    w.applied(&b.op(T0 + 4, "dev", OpBody::TaskComplete { task: t.id() }));
    let before = w.r.state().ledger.channels["dev"].treasury;
    assert!(before > 0, "tax reached the treasury");
    execute_command(&mut w, &mut a, &mut [&mut b], T0 + 10, split_dev_in_two());
    let s = w.r.state();
    let ch = &s.ledger.channels;
    assert_eq!(ch["dev"].treasury, 0);
    assert_eq!(ch["dev-a"].treasury + ch["dev-b"].treasury, before);
    assert_eq!(ch["dev-a"].treasury, before.div_ceil(2), "the remainder goes to the first");
    assert!(s.sp_conserved());
}

#[test]
fn merge_moves_proposals_and_archives_the_source() {
    let (mut a, mut b) = (Author::new(1), Author::new(2));
    let mut w = World::new();
    w.applied(&a.op(T0, "one", OpBody::ChannelCreate { description: String::new() }));
    w.applied(&b.op(T0 + 1, "two", OpBody::ChannelCreate { description: String::new() }));
    let t1 = a.op(T0 + 2, "one", task("a", 5, &[]));
    w.applied(&t1);
    let open = b.op(T0 + 3, "two", proposal(ProposalKind::Generic, &[], None));
    let closed = a.op(T0 + 4, "one", proposal(ProposalKind::Generic, &[], None));
    w.applied(&open);
    w.applied(&closed);
    w.applied(&a.op(T0 + 5, "one", close(closed.id())));
    let cmd = Command::MergeChannels { sources: vec!["one".into(), "two".into()], target: "all".into() };
    execute_command(&mut w, &mut a, &mut [&mut b], T0 + 10, cmd);
    let s = w.r.state();
    assert!(
        s.gov.execution_log[0].result.message.contains("1 tasks, 2 proposals"),
        "{}",
        s.gov.execution_log[0].result.message
    );
    assert_eq!(s.tasks[&t1.id()].channel, "all");
    assert_eq!(s.gov.proposals[&open.id()].channel, "all");
    assert_eq!(s.gov.proposals[&closed.id()].channel, "all");
    for source in ["one", "two"] {
        let ch = &s.ledger.channels[source];
        assert!(ch.archived && ch.split_into.is_empty());
        assert_eq!(ch.merged_into.as_deref(), Some("all"));
    }
    let json = serde_json::to_value(s).unwrap();
    assert_eq!(json["channels"]["two"]["merged_into"], "all");
    // The open proposal keeps collecting votes, in its new channel.
    assert_eq!(w.rejected(&a.op(T0 + 20, "two", vote(open.id(), true))).code(), "proposal_wrong_channel");
    w.applied(&a.op(T0 + 21, "all", vote(open.id(), true)));
    // New proposals in a merged source are refused with the target named.
    let r = w.rejected(&b.op(T0 + 22, "two", proposal(ProposalKind::Generic, &[], None)));
    assert_eq!(r.to_string(), "channel two was merged into all");
}

#[test]
fn archived_channel_refuses_new_tasks() {
    let (mut a, mut b) = (Author::new(1), Author::new(2));
    let mut w = World::new();
    w.applied(&a.op(T0, "dev", OpBody::ChannelCreate { description: String::new() }));
    w.applied(&a.op(T0 + 1, "old", OpBody::ChannelCreate { description: String::new() }));
    let claimed = a.op(T0 + 2, "dev", task("kept", 5, &["a"]));
    w.applied(&claimed);
    w.applied(&b.op(T0 + 3, "dev", OpBody::TaskClaim { task: claimed.id() }));
    execute_command(&mut w, &mut a, &mut [&mut b], T0 + 10, split_dev_in_two());
    let cmd = Command::MergeChannels { sources: vec!["old".into()], target: "dev-b".into() };
    execute_command(&mut w, &mut a, &mut [&mut b], T0 + 20, cmd);
    let r = w.rejected(&a.op(T0 + 30, "dev", task("new", 5, &[])));
    assert_eq!(r, Reject::ChannelSplit { channel: "dev".into(), into: vec!["dev-a".into(), "dev-b".into()] });
    assert_eq!(r.code(), "channel_split");
    let r = w.rejected(&a.op(T0 + 31, "old", task("new", 5, &[])));
    assert_eq!(r, Reject::ChannelMerged { channel: "old".into(), into: "dev-b".into() });
    assert_eq!(r.to_string(), "channel old was merged into dev-b");
    // Nor new members; work already claimed there finishes where it started.
    assert_eq!(w.rejected(&b.op(T0 + 32, "dev", OpBody::ChannelSubscribe)).code(), "channel_split");
    w.applied(&b.op(T0 + 33, "dev", OpBody::TaskStart { task: claimed.id() }));
    w.applied(&b.op(T0 + 34, "dev", OpBody::TaskComplete { task: claimed.id() }));
    // The destinations take new work.
    w.applied(&a.op(T0 + 35, "dev-a", task("new", 5, &[])));
}

#[test]
fn update_schema_versions_valid_definitions_and_refuses_bad_ones() {
    let mut a = Author::new(1);
    let mut w = World::new();
    let defs = [
        (r#"{"schema_name":"bug_v1","fields":{}}"#, true),
        (r#"{"schema_name":"bug_v1","fields":{"x":1}}"#, true),
        (r#"{"schema_name":"other","fields":{}}"#, false),
        (r#"{"schema_name":"bug_v1"}"#, false),
        ("not json", false),
    ];
    for (i, (def, ok)) in defs.into_iter().enumerate() {
        let ms = T0 + 10 * i as u64;
        let cmd = Command::UpdateSchema { name: "bug_v1".into(), definition: def.into() };
        let p = a.op(ms, "global", proposal(ProposalKind::Command, &[], Some(cmd)));
        w.applied(&p);
        w.applied(&a.op(ms + 1, "global", vote(p.id(), true)));
        w.applied(&a.op(ms + 2, "global", close(p.id())));
        w.ratify_with(p.id(), ms + 3, &mut [&mut a]);
        assert_eq!(w.r.state().gov.execution_log.last().unwrap().result.success, ok, "{def}");
    }
    assert_eq!(w.r.state().gov.schemas["bug_v1"].version, 2);
}

#[test]
fn code_upgrade_is_creatable_votable_and_ratifiable() {
    let (mut a, mut b) = (Author::new(1), Author::new(2));
    let mut w = World::new();
    let p = a.op(
        T0,
        "global",
        proposal(
            ProposalKind::CodeUpgrade,
            &[],
            Some(Command::CodeUpgrade { module_sha256: [7; 32], policy: crate::core::upgrade::Policy::Tax }),
        ),
    );
    w.applied(&p);
    w.applied(&b.op(T0 + 1, "global", vote(p.id(), true)));
    w.applied(&b.op(T0 + 2, "global", close(p.id())));
    assert_eq!(w.proposal(p.id()).status, ProposalStatus::PendingRatification);
    // Two validators (a and b): quorum 2.
    w.applied(&a.op(T0 + 3, "global", ratify(p.id())));
    assert_eq!(w.proposal(p.id()).status, ProposalStatus::PendingRatification);
    w.applied(&b.op(T0 + 4, "global", ratify(p.id())));
    // The module was never published: the command fails, with the reason in the log.
    assert_eq!(w.proposal(p.id()).status, ProposalStatus::Failed);
    let msg = &w.r.state().gov.execution_log[0].result.message;
    assert!(msg.starts_with("module_not_present"), "{msg}");
}

// ---- properties --------------------------------------------------------------

fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// A governance history with races: concurrent ratifications, a duplicate, a
/// non-validator's, votes racing the close, and a config change.
fn racy_history() -> (Vec<VerifiedOp>, OpId) {
    let mut c = Council::new();
    let [a, b, _, d, e] = &mut c.n[..] else { unreachable!() };
    let mut ops = c.w.log.clone();
    let mut push = |op: VerifiedOp| ops.push(op);
    push(a.op(T0 + 300, "dev", task("button", 5, &["ui"])));
    push(a.op(T0 + 301, "dev", task("fold", 5, &["core"])));
    let p = a.op(T0 + 400, "dev", proposal(ProposalKind::NetworkOperation, &[], Some(split_command())));
    let pid = p.id();
    push(p);
    push(a.op(T0 + 402, "dev", vote(pid, true)));
    push(b.op(T0 + 402, "dev", vote(pid, true)));
    push(d.op(T0 + 402, "dev", vote(pid, true)));
    push(b.op(T0 + 403, "dev", close(pid)));
    push(e.op(T0 + 403, "dev", vote(pid, false)));
    // All three validators and a non-validator ratify concurrently; d twice.
    push(b.op(T0 + 410, "dev", ratify(pid)));
    push(d.op(T0 + 410, "dev", ratify(pid)));
    push(e.op(T0 + 410, "dev", ratify(pid)));
    push(a.op(T0 + 410, "dev", ratify(pid)));
    push(d.op(T0 + 411, "dev", ratify(pid)));
    let q =
        e.op(T0 + 420, "global", proposal(ProposalKind::ConfigChange, &[], config("tax_bps", ConfigValue::Int(300))));
    let qid = q.id();
    push(q);
    push(a.op(T0 + 421, "global", vote(qid, true)));
    push(b.op(T0 + 421, "global", vote(qid, false)));
    push(d.op(T0 + 422, "global", close(qid)));
    (ops, pid)
}

#[test]
fn governance_converges_under_any_delivery_order_and_executes_once() {
    let (ops, pid) = racy_history();
    let mut reference = Replica::open();
    for op in &ops {
        reference.receive_verified(op.clone(), u64::MAX / 2);
    }
    let rs = reference.state();
    let p = &rs.gov.proposals[&pid];
    assert_eq!(p.status, ProposalStatus::Executed);
    let runs = rs.gov.execution_log.iter().filter(|e| e.proposal == pid).count();
    assert_eq!(runs, 1, "executed exactly once");
    let mut next = xorshift(0xDEAD_BEEF_1234_5678);
    for round in 0..40 {
        let mut shuffled = ops.clone();
        for i in (1..shuffled.len()).rev() {
            let j = (next() % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        // Duplicates too.
        let dup = shuffled[(next() % shuffled.len() as u64) as usize].clone();
        shuffled.push(dup);
        let mut r = Replica::open_every(1 + round % 5);
        for op in shuffled {
            r.receive_verified(op, u64::MAX / 2);
        }
        assert_eq!(r.state_hash(), reference.state_hash(), "round {round}");
        assert_eq!(r.state().gov.validators, rs.gov.validators);
        assert_eq!(r.state().gov.execution_log, rs.gov.execution_log);
        assert_eq!(r.state().params, rs.params);
    }
}

#[test]
fn non_validator_and_forged_ratifications_never_execute() {
    let mut c = Council::new();
    let [a, b, cc, d, _] = &mut c.n[..] else { unreachable!() };
    let w = &mut c.w;
    let p = a.op(T0 + 400, "dev", proposal(ProposalKind::NetworkOperation, &[], Some(split_command())));
    w.applied(&p);
    w.applied(&a.op(T0 + 401, "dev", vote(p.id(), true)));
    w.applied(&b.op(T0 + 401, "dev", vote(p.id(), true)));
    w.applied(&b.op(T0 + 402, "dev", close(p.id())));
    let before = w.r.state().gov.execution_log.len();
    // Non-validators b and c ratify: no effect.
    for x in [b, cc] {
        let r = w.rejected(&x.op(T0 + 403, "dev", ratify(p.id())));
        assert_eq!(r.code(), "not_validator");
    }
    // A ratification "from" validator d signed by someone else never verifies.
    let real = d.op(T0 + 404, "dev", ratify(p.id()));
    let mut forged = real.bytes().to_vec();
    let n = forged.len();
    forged[n - 1] ^= 0x55;
    let mut r2 = Replica::open();
    for op in &w.log {
        r2.receive_verified(op.clone(), u64::MAX / 2);
    }
    assert!(r2.receive(&forged, u64::MAX / 2).is_err());
    assert_eq!(r2.state().gov.execution_log.len(), before);
    assert_eq!(w.r.state().gov.execution_log.len(), before);
    assert_eq!(w.proposal(p.id()).status, ProposalStatus::PendingRatification);
    // Random garbage ratify bodies do not panic and execute nothing.
    let mut next = xorshift(42);
    let mut rnd = Author::new(99);
    for i in 0..50u64 {
        let mut id = [0u8; 32];
        for chunk in id.chunks_mut(8) {
            chunk.copy_from_slice(&next().to_be_bytes());
        }
        let op = rnd.op(T0 + 500 + i, "dev", ratify(OpId(id)));
        let _ = w.feed(&op);
    }
    assert_eq!(w.r.state().gov.execution_log.len(), before);
}

// ---- common tools ------------------------------------------------------------

/// A deterministic RNG for sealing in tests (the core never draws randomness).
struct TestRng(u64);

impl rand_core::RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_be_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for TestRng {}

fn tool_task(title: &str, reward: u64, tools: &[&str]) -> OpBody {
    OpBody::TaskCreate(NewTask {
        schema: TaskSchema::TaskV1,
        title: title.into(),
        description: String::new(),
        reward,
        tags: vec![],
        required_tools: tools.iter().map(|s| s.to_string()).collect(),
        funding: Funding::Creator,
        auction: None,
    })
}

/// a: steward of `dev`; b: member. Both publish X25519 keys; the treasury
/// collects 10 SP of tax. `acquire` passes a command proposal that buys tool
/// `gh` (4 SP a month) with `plaintext` sealed to b only.
struct ToolWorld {
    w: World,
    a: Author,
    b: Author,
    ms: std::cell::Cell<u64>,
}

impl ToolWorld {
    fn new() -> ToolWorld {
        let (mut a, mut b) = (Author::new(1), Author::new(2));
        let mut w = World::new();
        w.applied(&a.op(T0, "dev", OpBody::ChannelCreate { description: String::new() }));
        w.applied(&b.op(T0 + 1, "dev", OpBody::ChannelSubscribe));
        w.applied(&a.op(T0 + 2, "global", OpBody::KeyPublish { x25519: a.key.x25519_public() }));
        w.applied(&b.op(T0 + 3, "global", OpBody::KeyPublish { x25519: b.key.x25519_public() }));
        let mut tw = ToolWorld { w, a, b, ms: std::cell::Cell::new(T0 + 10) };
        tw.fund(500);
        tw
    }

    fn tick(&self) -> u64 {
        self.ms.set(self.ms.get() + 1);
        self.ms.get()
    }

    /// a posts a task of `reward`, b completes it: the treasury gets the tax.
    fn fund(&mut self, reward: u64) {
        let t = self.a.op(self.tick(), "dev", tool_task("fund", reward, &[]));
        self.w.applied(&t);
        for body in [
            OpBody::TaskClaim { task: t.id() },
            OpBody::TaskStart { task: t.id() },
            OpBody::TaskComplete { task: t.id() },
        ] {
            let op = self.b.op(self.tick(), "dev", body);
            self.w.applied(&op);
        }
    }

    fn pass(&mut self, cmd: Command) -> crate::core::governance::ExecEntry {
        let p = self.a.op(self.tick(), "dev", proposal(ProposalKind::Command, &[], Some(cmd)));
        self.w.applied(&p);
        let v = self.a.op(self.tick(), "dev", vote(p.id(), true));
        self.w.applied(&v);
        let c = self.a.op(self.tick(), "dev", close(p.id()));
        self.w.applied(&c);
        let ms = self.tick();
        self.ms.set(ms + 2);
        self.w.ratify_with(p.id(), ms, &mut [&mut self.a, &mut self.b]);
        self.w.r.state().gov.execution_log.last().unwrap().clone()
    }

    fn acquire(&mut self, seed: u64, plaintext: &str) -> crate::core::governance::ExecEntry {
        // Rule `tool_custody`: a and b are the validators, so the custodians.
        let custodians = crate::core::tools::custodians(self.w.r.state(), self.ms.get());
        assert_eq!(custodians.len(), 2, "a and b are validators with keys");
        let secret =
            crate::core::tools::seal_tool_secret(&mut TestRng(seed), "gh", plaintext.as_bytes(), &custodians).unwrap();
        self.pass(Command::AcquireCommonTool(crate::core::op::NewTool {
            channel: "dev".into(),
            tool_id: "gh".into(),
            description: "GitHub token".into(),
            tool_type: crate::core::op::ToolType::ApiKey,
            webhook_url: String::new(),
            monthly_cost_sp: 4,
            secret,
        }))
    }

    /// Rule `tool_grant`: both custodians hand their share of "gh" to the
    /// assignee of `task`, as their nodes do.
    fn grant_all(&mut self, task: OpId) {
        let st = self.w.r.state().clone();
        let tool = &st.tools.tools["gh"];
        let assignee = st.tasks[&task].assignee.expect("assigned");
        let key = st.tools.keys[&assignee];
        for who in [0, 1] {
            let ms = self.tick();
            let author = if who == 0 { &mut self.a } else { &mut self.b };
            let (index, grant) =
                crate::core::tools::grant_share(&mut TestRng(ms), tool, &author.key, task, assignee, &key).unwrap();
            let op = author.op(ms, "dev", OpBody::ToolGrant { tool_id: "gh".into(), task, index, grant });
            self.w.applied(&op);
        }
    }
}

#[test]
fn tool_access_needs_all_three_layers_and_a_sealed_key() {
    use crate::core::tools::open_tool_secret;
    let mut tw = ToolWorld::new();
    assert_eq!(tw.w.r.state().treasury("dev"), 10);
    let e = tw.acquire(7, "sk-live-SECRET-123");
    assert!(e.result.success, "{}", e.result.message);
    assert_eq!(tw.w.r.state().treasury("dev"), 6);
    let t = tw.a.op(tw.tick(), "dev", tool_task("use gh", 0, &["gh"]));
    let plain = tw.a.op(tw.tick(), "dev", tool_task("no tools", 0, &[]));
    tw.w.applied(&t);
    tw.w.applied(&plain);
    // Not assigned yet.
    let state = tw.w.r.state().clone();
    assert_eq!(open_tool_secret(&state, &tw.b.key, "gh", t.id()), Err(Reject::NotAssignee { task: t.id() }));
    let claim = tw.b.op(tw.tick(), "dev", OpBody::TaskClaim { task: t.id() });
    tw.w.applied(&claim);
    let state = tw.w.r.state().clone();
    assert_eq!(open_tool_secret(&state, &tw.b.key, "gh", t.id()).unwrap_err().code(), "wrong_status");
    let start = tw.b.op(tw.tick(), "dev", OpBody::TaskStart { task: t.id() });
    tw.w.applied(&start);
    let state = tw.w.r.state().clone();
    assert_eq!(open_tool_secret(&state, &tw.b.key, "gh", t.id()).unwrap_err().code(), "grants_missing");
    tw.grant_all(t.id());
    let state = tw.w.r.state().clone();
    assert_eq!(open_tool_secret(&state, &tw.b.key, "gh", t.id()).unwrap(), "sk-live-SECRET-123");
    // Someone else cannot use it through b's task.
    assert_eq!(open_tool_secret(&state, &tw.a.key, "gh", t.id()), Err(Reject::NotAssignee { task: t.id() }));
    // A task that does not list the tool.
    for body in [OpBody::TaskClaim { task: plain.id() }, OpBody::TaskStart { task: plain.id() }] {
        let op = tw.b.op(tw.tick(), "dev", body);
        tw.w.applied(&op);
    }
    let state = tw.w.r.state().clone();
    assert_eq!(open_tool_secret(&state, &tw.b.key, "gh", plain.id()).unwrap_err().code(), "tool_not_required");
    // a, assignee of its own task listing the tool, has no grant for it
    // yet: being a custodian gives it one share, not the key.
    let ta = tw.a.op(tw.tick(), "dev", tool_task("a uses gh", 0, &["gh"]));
    tw.w.applied(&ta);
    for body in [OpBody::TaskClaim { task: ta.id() }, OpBody::TaskStart { task: ta.id() }] {
        let op = tw.a.op(tw.tick(), "dev", body);
        tw.w.applied(&op);
    }
    let state = tw.w.r.state().clone();
    assert_eq!(open_tool_secret(&state, &tw.a.key, "gh", ta.id()).unwrap_err().code(), "grants_missing");
    // Deprecated tools cannot be used.
    let e = tw.pass(Command::DeprecateCommonTool { channel: "dev".into(), tool_id: "gh".into() });
    assert!(e.result.success);
    let state = tw.w.r.state().clone();
    assert_eq!(open_tool_secret(&state, &tw.b.key, "gh", t.id()).unwrap_err().code(), "tool_inactive");
}

/// Rule `tool_custody`, against a member with modified client code: c is
/// a member of the channel with a published key but neither a custodian
/// nor the assignee; a (a custodian) is not the assignee either. Neither
/// can rebuild the key from what the state holds, whatever checks its code
/// skips; a custodian granting its share to c is refused by the fold, and
/// even that one share is below the threshold; a task c makes for itself
/// unlocks nothing under rules where c is not a member.
#[test]
fn tool_custody_a_member_who_is_not_the_assignee_never_obtains_the_secret() {
    use crate::core::tools::{grant_share, open_tool_secret, rebuild};
    let mut tw = ToolWorld::new();
    assert!(tw.acquire(11, "sk-custody-42").result.success);
    // c joins the channel and publishes its key after the acquisition.
    let mut c = Author::new(3);
    tw.w.applied(&c.op(tw.tick(), "dev", OpBody::ChannelSubscribe));
    tw.w.applied(&c.op(tw.tick(), "global", OpBody::KeyPublish { x25519: c.key.x25519_public() }));
    let t = tw.a.op(tw.tick(), "dev", tool_task("use gh", 0, &["gh"]));
    tw.w.applied(&t);
    for body in [OpBody::TaskClaim { task: t.id() }, OpBody::TaskStart { task: t.id() }] {
        let op = tw.b.op(tw.tick(), "dev", body);
        tw.w.applied(&op);
    }
    tw.grant_all(t.id());
    let st = tw.w.r.state().clone();
    let tool = st.tools.tools["gh"].clone();
    assert_eq!(tool.threshold(), 2);
    assert_eq!(open_tool_secret(&st, &tw.b.key, "gh", t.id()).unwrap(), "sk-custody-42", "the assignee can");
    for (who, key) in [("c, a member", &c.key), ("a, a custodian", &tw.a.key)] {
        assert_eq!(open_tool_secret(&st, key, "gh", t.id()).unwrap_err().code(), "not_assignee", "{who}");
        // Skipping the layers (a modified client) gives nothing either.
        let e = rebuild(&tool, t.id(), key).unwrap_err();
        assert_eq!(e, Reject::GrantsMissing { tool: "gh".into(), have: 0, need: 2 }, "{who}");
    }
    assert!(grant_share(&mut TestRng(1), &tool, &c.key, t.id(), c.id(), &c.key.x25519_public()).is_none());
    // A custodian leaking its share to c: refused by the fold ...
    let (index, leak) = grant_share(&mut TestRng(2), &tool, &tw.a.key, t.id(), c.id(), &c.key.x25519_public()).unwrap();
    let op =
        tw.a.op(tw.tick(), "dev", OpBody::ToolGrant { tool_id: "gh".into(), task: t.id(), index, grant: leak.clone() });
    assert_eq!(tw.w.rejected(&op).code(), "bad_grant");
    // ... and even with it in hand, one share is below the threshold.
    let mut leaked = tool.clone();
    leaked.grants.insert(t.id(), [(index, leak)].into_iter().collect());
    assert_eq!(
        rebuild(&leaked, t.id(), &c.key).unwrap_err(),
        Reject::GrantsMissing { tool: "gh".into(), have: 1, need: 2 }
    );
    // Upkeep still works with the custody in place.
    let due = tw.w.r.state().tools.tools["gh"].paid_until_ms;
    let pay = tw.b.op(due, "dev", OpBody::ToolUpkeep { tool_id: "gh".into() });
    tw.w.applied(&pay);
}

/// Rule `tool_grant`: a task created by a non-member unlocks no tool, so a
/// fresh key cannot create, claim and start its own task to get a grant.
#[test]
fn tool_grant_for_a_task_created_by_a_non_member_is_refused() {
    use crate::core::genesis::{Genesis, GenesisConfig};
    use crate::core::rules::Rules;
    let (mut a, mut b) = (Author::new(1), Author::new(2));
    let g = Genesis {
        name: "custody".into(),
        founders: vec![a.id(), b.id()],
        config: GenesisConfig { proposal_min_voting_seconds: 0, validator_set_size: 2, ..GenesisConfig::safe() },
        rules: Rules { admission_bits: 0, voting_floor_seconds: 0, validator_floor: 2, ..Rules::default() },
    };
    let mut w = World::on(&g);
    let ms = T0;
    w.applied(&a.op(ms, "dev", OpBody::ChannelCreate { description: String::new() }));
    for (i, x) in [&mut a, &mut b].into_iter().enumerate() {
        w.applied(&x.op(ms + 1 + i as u64, "global", OpBody::KeyPublish { x25519: x.key.x25519_public() }));
    }
    let mut c = Author::new(3);
    w.applied(&c.op(ms + 5, "dev", OpBody::ChannelSubscribe));
    w.applied(&c.op(ms + 6, "global", OpBody::KeyPublish { x25519: c.key.x25519_public() }));
    // Acquire gh with a and b as custodians (founders are eligible).
    let custodians = crate::core::tools::custodians(w.r.state(), ms + 7);
    assert_eq!(custodians.len(), 2, "the founders; c is not eligible");
    let secret = crate::core::tools::seal_tool_secret(&mut TestRng(5), "gh", b"tok", &custodians).unwrap();
    let cmd = Command::AcquireCommonTool(crate::core::op::NewTool {
        channel: "dev".into(),
        tool_id: "gh".into(),
        description: String::new(),
        tool_type: crate::core::op::ToolType::ApiKey,
        webhook_url: String::new(),
        monthly_cost_sp: 0,
        secret,
    });
    let p = a.op(ms + 10, "dev", proposal(ProposalKind::Command, &[], Some(cmd)));
    w.applied(&p);
    w.applied(&a.op(ms + 11, "dev", vote(p.id(), true)));
    w.applied(&b.op(ms + 12, "dev", vote(p.id(), true)));
    w.applied(&a.op(ms + 13, "dev", close(p.id())));
    w.ratify_with(p.id(), ms + 14, &mut [&mut a, &mut b]);
    assert!(w.r.state().tools.tools.contains_key("gh"), "{:?}", w.r.state().gov.execution_log);
    // c makes itself a task that needs the tool, claims and starts it.
    let t = c.op(ms + 20, "dev", tool_task("mine", 0, &["gh"]));
    w.applied(&t);
    for body in [OpBody::TaskClaim { task: t.id() }, OpBody::TaskStart { task: t.id() }] {
        w.applied(&c.op(ms + 21, "dev", body));
    }
    let st = w.r.state().clone();
    // The custodians' nodes grant nothing for it, and a grant is refused.
    let mut rng = TestRng(9);
    let key = c.key.x25519_public();
    let (index, grant) =
        crate::core::tools::grant_share(&mut rng, &st.tools.tools["gh"], &a.key, t.id(), c.id(), &key).unwrap();
    let op = a.op(ms + 30, "dev", OpBody::ToolGrant { tool_id: "gh".into(), task: t.id(), index, grant });
    let r = w.rejected(&op);
    assert!(r.to_string().contains("not a member"), "{r}");
}

#[test]
fn acquire_common_tool_refusals_have_reasons() {
    let mut tw = ToolWorld::new();
    let c = Author::new(3);
    let some = (tw.b.id(), tw.b.key.x25519_public());
    let mk = |tool_id: &str, cost: u64, to: Vec<(NodeId, [u8; 32])>| {
        // No custodian at all cannot be sealed: seal to one, then drop it.
        let sealed_to = if to.is_empty() { vec![some] } else { to.clone() };
        let mut secret = crate::core::tools::seal_tool_secret(&mut TestRng(3), tool_id, b"x", &sealed_to).unwrap();
        secret.recipients.truncate(to.len());
        Command::AcquireCommonTool(crate::core::op::NewTool {
            channel: "dev".into(),
            tool_id: tool_id.into(),
            description: String::new(),
            tool_type: crate::core::op::ToolType::Webhook,
            webhook_url: "http://127.0.0.1:9/hook".into(),
            monthly_cost_sp: cost,
            secret,
        })
    };
    let b = (tw.b.id(), tw.b.key.x25519_public());
    let cases = [
        (mk("t1", 11, vec![b]), "first month costs 11 SP"),
        (mk("t2", 1, vec![(c.id(), c.key.x25519_public())]), "has not published an X25519 key"),
        (mk("t3", 1, vec![]), "no sealed credential"),
        (mk("t4", 1, vec![b, b]), "listed twice"),
    ];
    for (cmd, why) in cases {
        let e = tw.pass(cmd);
        assert!(!e.result.success && e.result.message.contains(why), "{}", e.result.message);
    }
    assert!(tw.w.r.state().tools.tools.is_empty());
    assert_eq!(tw.w.r.state().treasury("dev"), 10);
    assert!(tw.pass(mk("t5", 1, vec![b])).result.success);
    assert!(tw.pass(mk("t5", 1, vec![b])).result.message.contains("already exists"));
}

#[test]
fn tool_upkeep_charges_monthly_and_suspends_then_reactivates() {
    use crate::core::tools::{ToolStatus, UPKEEP_PERIOD_MS};
    let mut tw = ToolWorld::new();
    assert!(tw.acquire(9, "hunter2").result.success);
    let due = tw.w.r.state().tools.tools["gh"].paid_until_ms;
    let early = tw.b.op(due - 1, "dev", OpBody::ToolUpkeep { tool_id: "gh".into() });
    assert_eq!(tw.w.rejected(&early).code(), "upkeep_not_due");
    let wrong = tw.b.op(due, "global", OpBody::ToolUpkeep { tool_id: "gh".into() });
    assert_eq!(tw.w.rejected(&wrong).code(), "tool_wrong_channel");
    let pay = tw.b.op(due, "dev", OpBody::ToolUpkeep { tool_id: "gh".into() });
    tw.w.applied(&pay);
    assert_eq!(tw.w.r.state().treasury("dev"), 2);
    assert_eq!(tw.w.r.state().tools.tools["gh"].paid_until_ms, due + UPKEEP_PERIOD_MS);
    assert_eq!(tw.w.r.state().tools.spent, 8);
    let short = tw.a.op(due + UPKEEP_PERIOD_MS, "dev", OpBody::ToolUpkeep { tool_id: "gh".into() });
    tw.w.applied(&short);
    assert_eq!(tw.w.r.state().tools.tools["gh"].status, ToolStatus::InactiveFundingIssue);
    assert_eq!(tw.w.r.state().treasury("dev"), 2, "nothing taken");
    let again = tw.a.op(due + UPKEEP_PERIOD_MS + 1, "dev", OpBody::ToolUpkeep { tool_id: "gh".into() });
    assert_eq!(tw.w.rejected(&again).code(), "tool_inactive");
    tw.ms.set(due + UPKEEP_PERIOD_MS + 10);
    let reactivate = Command::ReactivateCommonTool { channel: "dev".into(), tool_id: "gh".into() };
    let e = tw.pass(reactivate.clone());
    assert!(!e.result.success && e.result.message.contains("cannot pay"), "{}", e.result.message);
    tw.fund(500);
    let e = tw.pass(reactivate);
    assert!(e.result.success, "{}", e.result.message);
    let s = tw.w.r.state();
    assert_eq!(s.tools.tools["gh"].status, ToolStatus::Active);
    assert_eq!(s.treasury("dev"), 2 + 10 - 4);
    assert!(s.sp_conserved());
}

#[test]
fn key_publish_refuses_the_zero_key_and_replaces() {
    let mut a = Author::new(1);
    let mut w = World::new();
    assert_eq!(w.rejected(&a.op(T0, "global", OpBody::KeyPublish { x25519: [0; 32] })), Reject::BadKey);
    w.applied(&a.op(T0 + 1, "global", OpBody::KeyPublish { x25519: [1; 32] }));
    w.applied(&a.op(T0 + 2, "global", OpBody::KeyPublish { x25519: [2; 32] }));
    assert_eq!(w.r.state().tools.keys[&a.id()], [2; 32]);
}

#[test]
fn tool_plaintext_never_appears_in_ops_snapshot_or_state() {
    let mut next = xorshift(0x5EC2E7);
    for round in 0..8 {
        let mut tw = ToolWorld::new();
        let mut secret = format!("sk-{round}-");
        for _ in 0..3 {
            secret.push_str(&format!("{:016x}", next()));
        }
        assert!(tw.acquire(next(), &secret).result.success);
        let t = tw.a.op(tw.tick(), "dev", tool_task("use", 0, &["gh"]));
        tw.w.applied(&t);
        for body in [OpBody::TaskClaim { task: t.id() }, OpBody::TaskStart { task: t.id() }] {
            let op = tw.b.op(tw.tick(), "dev", body);
            tw.w.applied(&op);
        }
        tw.grant_all(t.id());
        let state = tw.w.r.state().clone();
        assert_eq!(crate::core::tools::open_tool_secret(&state, &tw.b.key, "gh", t.id()).unwrap(), secret);
        let needle = secret.as_bytes();
        let contains = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        for op in &tw.w.log {
            assert!(!contains(op.bytes()), "plaintext in an op");
            assert!(!contains(format!("{:?}", op.op()).as_bytes()));
        }
        let json = serde_json::to_string(&tw.w.r.snapshot()).unwrap();
        assert!(!contains(json.as_bytes()), "plaintext in the snapshot");
        assert!(!contains(format!("{:?}", tw.w.r.state()).as_bytes()), "plaintext in the state");
        // Hex and base64 spellings too.
        assert!(!json.contains(&hex::encode(needle)));
    }
}

// ---- random governance histories ------------------------------------------------

/// A random governance history: 6 authors propose (generic, config changes
/// of the validator set size and tax, splits as network operations, code
/// upgrades), vote, close, expire and ratify at random — most ratifications
/// race, many come from non-validators or repeat.
fn random_history(seed: u64) -> Vec<VerifiedOp> {
    let mut next = xorshift(seed | 1);
    let mut authors: Vec<Author> = (1..=6).map(|i| Author::new(40 + i)).collect();
    let mut ops = Vec::new();
    let mut ms = T0;
    let first = authors[0].op(ms, "dev", OpBody::ChannelCreate { description: String::new() });
    ops.push(first);
    let mut proposals: Vec<OpId> = Vec::new();
    for i in 0..120 {
        ms += 1 + next() % 3;
        let who = (next() % authors.len() as u64) as usize;
        let pick = |n: u64, len: usize| (n % len.max(1) as u64) as usize;
        let body = match next() % 10 {
            0 | 1 => {
                let (kind, cmd) = match next() % 5 {
                    0 => (ProposalKind::Generic, None),
                    1 => (ProposalKind::ConfigChange, config("validator_set_size", ConfigValue::Int(1 + next() % 5))),
                    2 => (ProposalKind::Command, config("tax_bps", ConfigValue::Int(next() % 400))),
                    3 => (ProposalKind::NetworkOperation, Some(split_command())),
                    _ => (
                        ProposalKind::CodeUpgrade,
                        Some(Command::CodeUpgrade {
                            module_sha256: [i as u8; 32],
                            policy: crate::core::upgrade::Policy::Tax,
                        }),
                    ),
                };
                let tags: &[&str] = if next().is_multiple_of(2) { &["ops"] } else { &[] };
                proposal(kind, tags, cmd)
            }
            2 if i % 7 == 0 => task("t", 10, &["ops", "ui"]),
            2..=4 if !proposals.is_empty() => vote(proposals[pick(next(), proposals.len())], !next().is_multiple_of(3)),
            5 if !proposals.is_empty() => close(proposals[pick(next(), proposals.len())]),
            6 if !proposals.is_empty() && next().is_multiple_of(4) => {
                ms += 86_400_001;
                OpBody::ProposalExpire { proposal: proposals[pick(next(), proposals.len())] }
            }
            _ if !proposals.is_empty() => ratify(proposals[pick(next(), proposals.len())]),
            _ => OpBody::ChannelSubscribe,
        };
        let is_proposal = matches!(body, OpBody::ProposalCreate(_));
        let op = authors[who].op(ms, "dev", body);
        if is_proposal {
            proposals.push(op.id());
        }
        ops.push(op);
    }
    ops
}

fn check_governance_invariants(r: &Replica) {
    let s = r.state();
    // Exactly once: no proposal has two log entries; indexes are positions.
    let mut seen = std::collections::BTreeSet::new();
    for (i, e) in s.gov.execution_log.iter().enumerate() {
        assert_eq!(e.index, i as u64);
        assert!(seen.insert(e.proposal), "proposal executed twice");
        let p = &s.gov.proposals[&e.proposal];
        assert_eq!(p.execution, Some(e.index));
        // Rule `ratify_every_change`: every execution had its quorum.
        assert!(e.ratified_by.len() >= p.quorum(&s.params.rules));
        assert!(e.ratified_by.iter().all(|v| p.validators.contains(v)), "non-validator in a quorum");
    }
    // Every applied ratification came from a validator of its proposal.
    for (id, op, _) in r.store().iter() {
        if let OpBody::Ratify { proposal } = &op.op().body
            && r.outcome(id) == Some(OpOutcome::Applied)
        {
            assert!(s.gov.proposals[proposal].validators.contains(&op.op().author));
        }
    }
    assert!(s.sp_conserved());
}

#[test]
fn governance_random_histories_converge_and_execute_once() {
    let mut next = xorshift(0xC0FF_EE12_3456_789B);
    let (mut executed, mut ratified) = (0, 0);
    for case in 0..24 {
        let ops = random_history(next());
        let mut reference = Replica::open();
        for op in &ops {
            reference.receive_verified(op.clone(), u64::MAX / 2);
        }
        check_governance_invariants(&reference);
        executed += reference.state().gov.execution_log.len();
        ratified += reference.state().gov.execution_log.iter().filter(|e| !e.ratified_by.is_empty()).count();
        for round in 0..3 {
            let mut shuffled = ops.clone();
            for i in (1..shuffled.len()).rev() {
                let j = (next() % (i as u64 + 1)) as usize;
                shuffled.swap(i, j);
            }
            let mut r = Replica::open_every(1 + (case + round) as u64 % 7);
            for op in shuffled {
                r.receive_verified(op, u64::MAX / 2);
            }
            assert_eq!(r.state_hash(), reference.state_hash(), "case {case} round {round}");
            assert_eq!(r.state().gov.validators, reference.state().gov.validators);
            assert_eq!(r.state().gov.execution_log, reference.state().gov.execution_log);
            check_governance_invariants(&r);
        }
    }
    assert!(executed > 5, "the generator must exercise execution ({executed})");
    assert_eq!(ratified, executed, "nothing executes without ratification");
}
