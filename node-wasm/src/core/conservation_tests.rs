//! Property test of rule `checked_sp` and the config ranges: random sequences
//! of signed ops (tasks, auctions, team tasks, votes, config changes through
//! approved proposals, splits and merges), many with extreme values, folded
//! one by one. After every op: SP is conserved, escrow matches the tasks', and
//! a config change outside its key's range changed nothing. Tests run in a
//! debug build, so any unchecked overflow would panic here.

use super::config_range::CONFIG_RANGES;
use super::gov_tests::{Author, T0, close, config, proposal, ratify, task, vote};
use crate::core::economy::Params;
use crate::core::governance::ProposalStatus;
use crate::core::op::{
    AuctionTerms, Command, ConfigValue, Funding, NewSubTask, NewTeamTask, OpBody, OpId, ProposalKind, SplitLogic,
    SplitPart, TaskSchema, VerifiedOp,
};
use crate::core::reject::Reject;
use crate::core::reputation::DAY_MS;
use crate::core::state::{State, TaskStatus};
use crate::core::upgrades::CompiledModules;
use crate::identity::NodeId;
use crate::pubsub::rng::SplitMix64;

const CHANNELS: &[&str] = &["dev", "ops", "dev-a", "dev-b"];

/// An SP amount: mostly small, often an edge (0, 1, around what the author
/// holds, `u64::MAX` and its neighbours).
fn amount(rng: &mut SplitMix64, held: u64) -> u64 {
    match rng.below(10) {
        0 => 0,
        1 => 1,
        2 => held,
        3 => held.saturating_add(1),
        4 => u64::MAX,
        5 => u64::MAX - 1,
        6 => u64::MAX / 2 + 1,
        _ => rng.below(300),
    }
}

/// A config value for the row `r`: its edges, one past them, the extremes.
fn config_value(rng: &mut SplitMix64, min: u64, max: u64) -> u64 {
    match rng.below(9) {
        0 => min,
        1 => max,
        2 => max.saturating_add(1),
        3 => min.wrapping_sub(1), // u64::MAX when min is 0
        4 => u64::MAX,
        5 => 0,
        6 => u64::MAX / 1000 + 1,
        _ => min + rng.below((max - min).min(10_000) + 1),
    }
}

struct Run {
    rng: SplitMix64,
    authors: Vec<Author>,
    state: State,
    modules: CompiledModules,
    ms: u64,
    tasks: Vec<OpId>,
    teams: Vec<OpId>,
    ops: usize,
    config_checks: usize,
}

impl Run {
    fn new(seed: u64) -> Run {
        Run {
            rng: SplitMix64::new(seed),
            authors: (1..=4).map(|i| Author::new(90 + i)).collect(),
            state: State::open(),
            modules: CompiledModules::default(),
            ms: T0,
            tasks: Vec::new(),
            teams: Vec::new(),
            ops: 0,
            config_checks: 0,
        }
    }

    fn pick<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        (!v.is_empty()).then(|| v[self.rng.below(v.len() as u64) as usize])
    }

    /// Signs `body` by author `who` and folds it; checks the invariants.
    fn fold(&mut self, who: usize, channel: &str, body: OpBody) -> (VerifiedOp, bool) {
        self.ms += 1 + self.rng.below(3);
        if self.rng.below(40) == 0 {
            // Now and then a long gap: reputation decays, deadlines pass.
            self.ms += DAY_MS * (1 + self.rng.below(400));
        }
        let op = self.authors[who].op(self.ms, channel, body);
        let r = self.state.apply(op.id(), op.op(), &self.modules);
        let ok = r.is_ok();
        // With every config value in its range, no counter comes near u64.
        assert!(!matches!(r, Err(Reject::Overflow(_))), "{r:?} after {:?}", op.op().body);
        self.ops += 1;
        let s = &self.state;
        assert!(s.sp_conserved(), "SP not conserved after {:?}", op.op().body);
        let balances: u128 = s.ledger.accounts.values().map(|a| a.balance as u128).sum();
        assert!(balances <= s.ledger.minted as u128);
        if matches!(op.op().body, OpBody::TaskCreate(_)) && ok {
            self.tasks.push(op.id());
        }
        if matches!(op.op().body, OpBody::TeamTaskCreate(_)) && ok {
            self.teams.push(op.id());
        }
        (op, ok)
    }

    /// A config change through a proposal approved by two votes and closed
    /// by its proposer; if it executed, checks the range rule.
    fn config_change(&mut self) {
        let row = &CONFIG_RANGES[self.rng.below(CONFIG_RANGES.len() as u64) as usize];
        let v = config_value(&mut self.rng, row.min, row.max);
        let who = self.rng.below(4) as usize;
        let (p, ok) =
            self.fold(who, "global", proposal(ProposalKind::ConfigChange, &[], config(row.key, ConfigValue::Int(v))));
        if !ok {
            return;
        }
        for voter in 0..4 {
            if voter != who {
                self.fold(voter, "global", vote(p.id(), true));
            }
        }
        let (before, version) = (self.state.params, self.state.gov.config_version);
        self.fold(who, "global", close(p.id()));
        self.ratify_all(p.id());
        let pr = &self.state.gov.proposals[&p.id()];
        let s = &self.state;
        match pr.status {
            ProposalStatus::Executed => {
                assert!((row.min..=row.max).contains(&v), "{} = {v} applied outside its range", row.key);
                assert_eq!(s.gov.config_version, version + 1);
            }
            ProposalStatus::Failed => {
                assert!(!(row.min..=row.max).contains(&v), "{} = {v} refused inside its range", row.key);
                assert_eq!((s.params, s.gov.config_version), (before, version), "a refused change changed params");
                let e = s.gov.execution_log.last().unwrap();
                assert!(e.result.message.contains(row.key) && e.result.message.contains(&v.to_string()));
            }
            _ => return,
        }
        self.config_checks += 1;
    }

    /// A split or merge through an approved proposal (moves treasuries).
    fn channel_command(&mut self) {
        let command = if self.rng.below(2) == 0 {
            Command::SplitChannel {
                target: "dev".into(),
                logic: SplitLogic::ByTag,
                parts: vec![
                    SplitPart { channel: "dev-a".into(), keys: vec!["a".into()] },
                    SplitPart { channel: "dev-b".into(), keys: vec!["b".into()] },
                ],
            }
        } else {
            Command::MergeChannels { sources: vec!["ops".into(), "dev-b".into()], target: "dev-a".into() }
        };
        let (p, ok) = self.fold(0, "global", proposal(ProposalKind::Command, &[], Some(command)));
        if ok {
            for voter in 1..4 {
                self.fold(voter, "global", vote(p.id(), true));
            }
            self.fold(0, "global", close(p.id()));
            self.ratify_all(p.id());
        }
    }

    /// Rule `ratify_every_change`: every author ratifies (the validators'
    /// ratifications apply, the others are refused).
    fn ratify_all(&mut self, p: OpId) {
        for who in 0..4 {
            self.fold(who, "global", ratify(p));
        }
    }

    /// A whole team task: created by `c` in `dev-a` or `dev`, claimed by
    /// `c`, every other author applies and is accepted, then each assigned
    /// member completes its sub-task (the last one pays everybody out).
    fn team_flow(&mut self, c: usize) {
        let held = self.state.balance(&self.authors[c].id());
        let ch = if self.rng.below(2) == 0 { "dev" } else { "dev-a" };
        let n = 1 + self.rng.below(3) as usize;
        let subtasks = (0..n)
            .map(|_| NewSubTask {
                title: "s".into(),
                description: String::new(),
                required_skills: vec!["rust".into()],
                reward: if self.rng.below(4) == 0 { amount(&mut self.rng, held) } else { self.rng.below(held / 4 + 1) },
            })
            .collect();
        let coordinator_bonus = if self.rng.below(4) == 0 { amount(&mut self.rng, held) } else { self.rng.below(50) };
        let body = OpBody::TeamTaskCreate(NewTeamTask {
            title: "team".into(),
            description: String::new(),
            subtasks,
            coordinator_bonus,
            max_team_size: 4,
        });
        let (op, ok) = self.fold(c, ch, body);
        if !ok {
            return;
        }
        let task = op.id();
        self.fold(c, ch, OpBody::TeamClaim { task });
        for who in (0..4).filter(|w| *w != c) {
            self.fold(who, ch, OpBody::TeamApply { task });
            let applicant = self.authors[who].id();
            self.fold(c, ch, OpBody::TeamAccept { task, applicant });
        }
        let assigned: Vec<(u8, NodeId)> = self.state.teams.get(&task).map_or_else(Vec::new, |t| {
            t.subtasks.iter().enumerate().filter_map(|(i, s)| s.assignee.map(|a| (i as u8, a))).collect()
        });
        for (index, a) in assigned {
            if let Some(who) = self.authors.iter().position(|x| x.id() == a) {
                self.fold(who, ch, OpBody::SubTaskComplete { task, index });
            }
        }
    }

    fn open_auctions(&self) -> Vec<OpId> {
        let open = |id: &&OpId| self.state.tasks.get(id).is_some_and(|t| t.status == TaskStatus::AuctionOpen);
        self.tasks.iter().filter(open).copied().collect()
    }

    fn step(&mut self) {
        let who = self.rng.below(4) as usize;
        let channel = CHANNELS[self.rng.below(CHANNELS.len() as u64) as usize];
        let held = self.state.balance(&self.authors[who].id());
        let body = match self.rng.below(20) {
            0 => return self.config_change(),
            1 if self.rng.below(4) == 0 => return self.channel_command(),
            1 | 2 => OpBody::ChannelCreate { description: String::new() },
            3 => OpBody::ChannelSubscribe,
            4..=6 => {
                let reward = amount(&mut self.rng, held);
                let mut t = match task("t", reward, &["a", "b"][..1 + self.rng.below(2) as usize]) {
                    OpBody::TaskCreate(t) => t,
                    _ => unreachable!(),
                };
                if self.rng.below(3) == 0 {
                    t.funding = Funding::Treasury;
                }
                if self.rng.below(3) == 0 {
                    t.reward = 0;
                    t.schema = TaskSchema::TaskV2;
                    let max_reward = amount(&mut self.rng, held).max(1);
                    t.auction = Some(AuctionTerms { max_reward, deadline_ms: self.ms + 20 + self.rng.below(200) });
                }
                OpBody::TaskCreate(t)
            }
            7 | 8 => match self.pick(&self.tasks.clone()) {
                Some(task) => match self.rng.below(4) {
                    0 => OpBody::TaskClaim { task },
                    1 => OpBody::TaskStart { task },
                    2 => OpBody::TaskComplete { task },
                    _ => OpBody::TaskDelete { task },
                },
                None => OpBody::ChannelSubscribe,
            },
            9 => {
                // A claim, start and complete in a row: completions happen.
                if let Some(task) = self.pick(&self.tasks.clone()) {
                    let ch = self.state.tasks.get(&task).map(|t| t.channel.clone()).unwrap_or_default();
                    for body in [OpBody::TaskClaim { task }, OpBody::TaskStart { task }] {
                        self.fold(who, &ch, body);
                    }
                    self.fold(who, &ch, OpBody::TaskComplete { task });
                }
                return;
            }
            10 | 11 => match self.pick(&self.open_auctions()) {
                Some(task) => {
                    let max =
                        self.state.tasks.get(&task).and_then(|t| t.auction.as_ref()).map_or(0, |a| a.terms.max_reward);
                    let amount = match self.rng.below(5) {
                        0 => max,
                        1 => max.saturating_add(1),
                        2 => u64::MAX,
                        3 => 0,
                        _ => 1 + self.rng.below(max.clamp(1, 1000)),
                    };
                    let days = [0, 1, 7, u32::MAX][self.rng.below(4) as usize];
                    let ch = self.state.tasks.get(&task).map(|t| t.channel.clone()).unwrap_or_default();
                    self.fold(who, &ch, OpBody::Bid { task, amount, estimated_days: days });
                    return;
                }
                None => OpBody::ChannelSubscribe,
            },
            12 => match self.pick(&self.open_auctions()) {
                Some(task) => {
                    let ch = self.state.tasks.get(&task).map(|t| t.channel.clone()).unwrap_or_default();
                    self.fold(who, &ch, OpBody::AuctionClose { task });
                    return;
                }
                None => OpBody::ChannelSubscribe,
            },
            13 => OpBody::SkillsSet { skills: vec!["rust".into()] },
            14 => {
                let n = 1 + self.rng.below(2) as usize;
                let subtasks = (0..n)
                    .map(|_| NewSubTask {
                        title: "s".into(),
                        description: String::new(),
                        required_skills: vec!["rust".into()],
                        reward: amount(&mut self.rng, held / 2),
                    })
                    .collect();
                OpBody::TeamTaskCreate(NewTeamTask {
                    title: "team".into(),
                    description: String::new(),
                    subtasks,
                    coordinator_bonus: amount(&mut self.rng, held / 4),
                    max_team_size: 4,
                })
            }
            15..=17 => match self.pick(&self.teams.clone()) {
                Some(task) => {
                    let ch = self.state.teams.get(&task).map(|t| t.channel.clone()).unwrap_or_default();
                    let applicant = self.authors[self.rng.below(4) as usize].id();
                    let body = match self.rng.below(5) {
                        0 => OpBody::TeamClaim { task },
                        1 => OpBody::TeamApply { task },
                        2 => OpBody::TeamAccept { task, applicant },
                        3 => OpBody::SubTaskComplete { task, index: self.rng.below(2) as u8 },
                        _ => OpBody::TaskDelete { task },
                    };
                    self.fold(who, &ch, body);
                    return;
                }
                None => OpBody::ChannelSubscribe,
            },
            18 if self.rng.below(2) == 0 => return self.team_flow(who),
            18 => match self.state.gov.proposals.keys().next_back().copied() {
                Some(p) => vote(p, self.rng.below(2) == 0),
                None => OpBody::ChannelSubscribe,
            },
            _ => OpBody::ChannelUnsubscribe,
        };
        let channel = match &body {
            OpBody::SkillsSet { .. } | OpBody::Vote { .. } => "global",
            _ => channel,
        };
        self.fold(who, channel, body);
    }
}

#[test]
fn random_config_changes_and_ops_keep_sp_conserved() {
    let (mut ops, mut config_checks, mut completed, mut rejected) = (0, 0, 0, 0);
    for seed in 0..200u64 {
        let mut run = Run::new(0x5EED_0000 + seed);
        // Everyone holds a skill and is in `dev` and `ops`, so work can flow.
        run.fold(0, "dev", OpBody::ChannelCreate { description: String::new() });
        run.fold(1, "ops", OpBody::ChannelCreate { description: String::new() });
        for who in 0..4 {
            run.fold(who, "global", OpBody::SkillsSet { skills: vec!["rust".into()] });
            run.fold(who, "dev", OpBody::ChannelSubscribe);
            run.fold(who, "ops", OpBody::ChannelSubscribe);
        }
        while run.ops < 200 {
            run.step();
        }
        ops += run.ops;
        config_checks += run.config_checks;
        completed += run.state.tasks.values().filter(|t| t.status == TaskStatus::Completed).count();
        rejected += run.state.rejected;
    }
    // The generator must reach the interesting paths, not only refusals.
    assert!(ops >= 40_000, "{ops}");
    assert!(config_checks > 500, "config changes executed or failed: {config_checks}");
    assert!(completed > 200, "completed tasks: {completed}");
    assert!(rejected > 0);
}

/// The original bug: with `initial_sp = u64::MAX` (no longer settable by
/// `config_change`, set here directly) the second identity's mint would
/// overflow `minted`. Now that op is refused and nothing is minted.
#[test]
fn a_mint_that_would_overflow_is_refused_and_sp_stays_conserved() {
    let mut s = State::open();
    s.params = Params { initial_sp: u64::MAX, ..s.params };
    let modules = CompiledModules::default();
    let (mut a, mut b) = (Author::new(1), Author::new(2));
    let op = a.op(T0, "dev", OpBody::ChannelCreate { description: String::new() });
    assert!(s.apply(op.id(), op.op(), &modules).is_ok());
    assert_eq!(s.ledger.minted, u64::MAX);
    let op = b.op(T0 + 1, "dev", OpBody::ChannelSubscribe);
    let r = s.apply(op.id(), op.op(), &modules).unwrap_err();
    assert_eq!(r.code(), "overflow");
    assert!(r.to_string().contains("minted"), "{r}");
    assert!(!s.ledger.accounts.contains_key(&b.id()));
    assert_eq!((s.ledger.minted, s.rejected), (u64::MAX, 1));
    assert!(s.sp_conserved());
    // The rich account can escrow all of it; the escrow total is checked.
    let op = a.op(T0 + 2, "dev", task("all", u64::MAX, &[]));
    assert!(s.apply(op.id(), op.op(), &modules).is_ok());
    assert_eq!(s.ledger.escrow, u64::MAX);
    assert!(s.sp_conserved());
}

/// The ledger's checked primitives refuse, and change nothing, when a move
/// would overflow a counter, exceed the escrow or pay a missing payee.
#[test]
fn ledger_moves_are_checked_and_all_or_nothing() {
    use crate::core::hlc::Hlc;
    use crate::core::ledger::Ledger;
    use crate::core::reject::Payer;
    let (a, b) = (Author::new(1).id(), Author::new(2).id());
    let mut l = Ledger::genesis();
    l.mint_if_new(a, Hlc::new(T0, 0), u64::MAX - 5).unwrap();
    l.mint_if_new(b, Hlc::new(T0, 0), 5).unwrap();
    assert_eq!(l.mint_if_new(Author::new(3).id(), Hlc::new(T0, 0), 1).unwrap_err().code(), "overflow");
    l.escrow_from(&Payer::Node(a), u64::MAX - 5).unwrap();
    let before = l.clone();
    // More than the payer holds; the escrow total would overflow.
    assert_eq!(l.escrow_from(&Payer::Node(b), 6).unwrap_err().code(), "insufficient_funds");
    assert_eq!(l.escrow_from(&Payer::Node(b), 5).map(|_| ()), Ok(()));
    let full = l.clone();
    l = before.clone();
    l.escrow = u64::MAX - 1; // as if something else were held
    assert_eq!(l.escrow_from(&Payer::Node(b), 5).unwrap_err().code(), "overflow");
    l = full;
    let snapshot = l.clone();
    // Payouts above the escrow, to a missing payee, or overflowing a payee
    // (listed twice) are refused whole.
    let g = crate::core::op::GLOBAL_CHANNEL.to_owned();
    for payouts in [
        vec![(Payer::Node(a), u64::MAX), (Payer::Treasury(g.clone()), 1)],
        vec![(Payer::Node(Author::new(9).id()), 1)],
        vec![(Payer::Treasury("nope".into()), 1)],
    ] {
        assert!(l.release(&payouts).is_err(), "{payouts:?}");
        assert_eq!(l, snapshot);
    }
    l.release(&[(Payer::Node(a), u64::MAX - 1), (Payer::Treasury(g), 1)]).unwrap();
    assert_eq!((l.escrow, l.balance(&a), l.treasury("global")), (0, u64::MAX - 1, 1));
}
