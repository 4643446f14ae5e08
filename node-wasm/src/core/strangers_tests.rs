//! A network of strangers: the rules of "Genesis and who counts" in
//! `docs/PROTOCOL.md`, one named test per attack, on the default rules
//! (only the admission difficulty is lowered where a test must compute
//! tickets quickly; the rule is the same).

use super::gov_tests::{Author, T0, World, close, config, proposal, ratify, task, vote};
use crate::core::genesis::{Genesis, GenesisConfig, find_ticket};
use crate::core::governance::{ProposalStatus, VoteOutcome};
use crate::core::op::{ConfigValue, OpBody, ProposalKind};
use crate::core::reputation::DAY_MS;
use crate::core::rules::Rules;

/// The default rules with three founders and `bits` of admission work.
fn network(bits: u8, founders: &[&Author]) -> Genesis {
    Genesis {
        name: "strangers".into(),
        founders: founders.iter().map(|a| a.id()).collect(),
        config: GenesisConfig::safe(),
        rules: Rules { admission_bits: bits, ..Rules::default() },
    }
}

/// Signs and folds the admission ticket of `a`.
fn admit(w: &mut World, g: &Genesis, a: &mut Author, ms: u64) {
    let nonce = find_ticket(&g.hash(), &a.id(), g.rules.admission_bits, 0, 1 << 24).expect("a ticket");
    w.applied(&a.op(ms, "global", OpBody::Admit { nonce }));
}

const HOUR: u64 = 3_600_000;

#[test]
fn admission_ticket_a_fresh_key_can_do_nothing_before_it_and_a_ticket_is_its_own() {
    let f = Author::new(1);
    let g = network(10, &[&f]);
    let mut w = World::on(&g);
    let mut s = Author::new(50);
    let minted = w.r.state().ledger.minted;
    // Without a ticket: refused, nothing minted, no account.
    let r = w.rejected(&s.op(T0, "global", OpBody::ChannelCreate { description: String::new() }));
    assert_eq!(r.code(), "not_admitted");
    assert!(r.to_string().contains("admission ticket"), "{r}");
    assert_eq!(w.r.state().ledger.minted, minted);
    // Another identity's ticket (or a wrong nonce) does not admit it.
    let other = Author::new(51);
    let theirs = find_ticket(&g.hash(), &other.id(), 10, 0, 1 << 24).unwrap();
    let mut bad = theirs;
    while crate::core::genesis::ticket_valid(&g.hash(), &s.id(), bad, 10) {
        bad += 1;
    }
    assert_eq!(w.rejected(&s.op(T0 + 1, "global", OpBody::Admit { nonce: bad })).code(), "bad_ticket");
    // Its own ticket admits it and mints its SP, once.
    admit(&mut w, &g, &mut s, T0 + 2);
    assert_eq!(w.r.state().balance(&s.id()), 1000);
    assert_eq!(w.rejected(&s.op(T0 + 3, "global", OpBody::Admit { nonce: 0 })).code(), "already_admitted");
    w.applied(&s.op(T0 + 4, "dev", OpBody::ChannelCreate { description: String::new() }));
}

#[test]
fn colluding_keys_trading_tasks_earn_no_reputation_until_a_member_pays() {
    let (mut f, mut a, mut b) = (Author::new(1), Author::new(60), Author::new(61));
    let g = network(4, &[&f]);
    let mut w = World::on(&g);
    admit(&mut w, &g, &mut a, T0);
    admit(&mut w, &g, &mut b, T0 + 1);
    w.applied(&a.op(T0 + 2, "dev", OpBody::ChannelCreate { description: String::new() }));
    // Reward 0, then the minimum reward: neither pays reputation between
    // non-members, however many times they trade.
    let mut ms = T0 + 10;
    for reward in [0, 10, 10, 10] {
        let t = a.op(ms, "dev", task("trade", reward, &["x"]));
        w.applied(&t);
        for body in [
            OpBody::TaskClaim { task: t.id() },
            OpBody::TaskStart { task: t.id() },
            OpBody::TaskComplete { task: t.id() },
        ] {
            w.applied(&b.op(ms + 1, "dev", body));
            ms += 2;
        }
    }
    assert_eq!(w.r.state().ledger.accounts[&b.id()].reputation.total, 0);
    // A founder (a member) paying below the minimum: still nothing.
    let t = f.op(ms, "dev", task("tiny", 9, &[]));
    w.applied(&t);
    for body in
        [OpBody::TaskClaim { task: t.id() }, OpBody::TaskStart { task: t.id() }, OpBody::TaskComplete { task: t.id() }]
    {
        w.applied(&b.op(ms + 1, "dev", body));
        ms += 2;
    }
    assert_eq!(w.r.state().ledger.accounts[&b.id()].reputation.total, 0);
    // Real paid work for a member: 10 points, and b is now a member.
    let t = f.op(ms, "dev", task("real", 10, &[]));
    w.applied(&t);
    for body in
        [OpBody::TaskClaim { task: t.id() }, OpBody::TaskStart { task: t.id() }, OpBody::TaskComplete { task: t.id() }]
    {
        w.applied(&b.op(ms + 1, "dev", body));
        ms += 2;
    }
    let st = w.r.state();
    assert_eq!(st.ledger.accounts[&b.id()].reputation.total, 10_000);
    assert!(st.ledger.is_member(&b.id(), ms, &st.params.rules));
    assert!(!st.ledger.is_member(&a.id(), ms, &st.params.rules));
}

#[test]
fn daily_reputation_cap_bounds_what_one_identity_earns_in_a_day() {
    let (mut f, mut b) = (Author::new(1), Author::new(62));
    let g = network(4, &[&f]);
    let mut w = World::on(&g);
    admit(&mut w, &g, &mut b, T0);
    w.applied(&f.op(T0 + 1, "dev", OpBody::ChannelCreate { description: String::new() }));
    let mut ms = T0 + 10;
    fn run_task(w: &mut World, f: &mut Author, b: &mut Author, ms: &mut u64) {
        let t = f.op(*ms, "dev", task("paid", 10, &[]));
        w.applied(&t);
        for body in [
            OpBody::TaskClaim { task: t.id() },
            OpBody::TaskStart { task: t.id() },
            OpBody::TaskComplete { task: t.id() },
        ] {
            w.applied(&b.op(*ms + 1, "dev", body));
            *ms += 2;
        }
    }
    for _ in 0..10 {
        run_task(&mut w, &mut f, &mut b, &mut ms);
    }
    assert_eq!(w.r.state().ledger.accounts[&b.id()].reputation.total, 30_000, "3 tasks' worth, not 10");
    ms = T0 + DAY_MS + 10;
    run_task(&mut w, &mut f, &mut b, &mut ms);
    let total = w.r.state().ledger.accounts[&b.id()].reputation.at(ms).total;
    assert_eq!(total, 29_700 + 10_000, "a new day: decayed once, then credited again");
}

#[test]
fn votes_flooded_from_fresh_keys_are_shown_and_never_counted() {
    let (mut f1, mut f2, mut f3) = (Author::new(1), Author::new(2), Author::new(3));
    let g = network(4, &[&f1, &f2, &f3]);
    let mut w = World::on(&g);
    let p = f1.op(T0, "global", proposal(ProposalKind::Generic, &[], None));
    w.applied(&p);
    // 40 admitted fresh keys vote no.
    for i in 0..40u8 {
        let mut s = Author::with_seed([100 + i; 32]);
        admit(&mut w, &g, &mut s, T0 + 1 + u64::from(i));
        w.applied(&s.op(T0 + 100 + u64::from(i), "global", vote(p.id(), false)));
    }
    // Two of three founders vote yes: 2 of 3 members' weight, quorum met.
    w.applied(&f2.op(T0 + 200, "global", vote(p.id(), true)));
    w.applied(&f3.op(T0 + 201, "global", vote(p.id(), true)));
    let closable = w.proposal(p.id()).closable_ms;
    assert_eq!(closable, T0 + 6 * HOUR, "six hours by default");
    w.applied(&f1.op(closable, "global", close(p.id())));
    let t = w.proposal(p.id()).tally.clone().unwrap();
    assert_eq!(t.outcome, VoteOutcome::Approved, "{t:?}");
    assert_eq!(t.no_weight_milli, 0, "no counted no vote");
    assert_eq!(t.details.iter().filter(|d| !d.counted).count(), 40);
    // The base is the three members' weights (two earned a vote point).
    assert_eq!(t.eligible_weight_milli, 1_000 + 2 * 2_000);
    assert_eq!(t.quorum_weight_milli, 1_500);
    assert_eq!(t.yes_weight_milli, 4_000);
}

#[test]
fn quorum_a_close_before_enough_members_voted_is_refused_and_the_deadline_ends_it_without_effect() {
    let mut f1 = Author::new(1);
    let others: Vec<Author> = (2..=8).map(Author::new).collect();
    let mut founders = vec![&f1];
    founders.extend(others.iter());
    let g = network(4, &founders);
    let mut w = World::on(&g);
    let p = f1.op(T0, "global", proposal(ProposalKind::ConfigChange, &[], config("tax_bps", ConfigValue::Int(500))));
    w.applied(&p);
    w.applied(&f1.op(T0 + 1, "global", vote(p.id(), true)));
    // One of eight members (weight 2 with its vote point, of 2 + 7 × 1):
    // 22 % < 30 %.
    let closable = w.proposal(p.id()).closable_ms;
    let r = w.rejected(&f1.op(closable, "global", close(p.id())));
    assert_eq!(r.code(), "quorum_not_reached");
    assert!(r.to_string().contains("2.00 of the 2.70 needed"), "{r}");
    let deadline = w.proposal(p.id()).deadline_ms;
    w.applied(&f1.op(deadline + 1, "global", OpBody::ProposalExpire { proposal: p.id() }));
    let pr = w.proposal(p.id());
    assert_eq!(pr.status, ProposalStatus::Closed);
    assert_eq!(pr.tally.as_ref().unwrap().outcome, VoteOutcome::NoQuorum);
    assert_eq!(w.r.state().params.tax_bps, 200);
}

#[test]
fn three_call_takeover_by_one_identity_is_refused() {
    let (f1, f2, f3) = (Author::new(1), Author::new(2), Author::new(3));
    let g = network(4, &[&f1, &f2, &f3]);
    let mut w = World::on(&g);
    let mut m = Author::new(70);
    admit(&mut w, &g, &mut m, T0);
    let p = m.op(
        T0 + 1,
        "global",
        proposal(ProposalKind::ConfigChange, &[], config("validator_set_size", ConfigValue::Int(1))),
    );
    w.applied(&p);
    w.applied(&m.op(T0 + 2, "global", vote(p.id(), true)));
    // Call three at once: the voting period runs.
    assert_eq!(w.rejected(&m.op(T0 + 3, "global", close(p.id()))).code(), "voting_period_running");
    // After it: its vote does not count, so there is no quorum.
    let closable = w.proposal(p.id()).closable_ms;
    assert_eq!(w.rejected(&m.op(closable, "global", close(p.id()))).code(), "quorum_not_reached");
    assert_eq!(w.rejected(&m.op(closable + 1, "global", ratify(p.id()))).code(), "not_pending_ratification");
    // And even passed, the value is below the genesis's validator floor.
    let st = w.r.state();
    assert_eq!(st.params.validator_set_size, 7);
    let e = crate::core::config_range::check("validator_set_size", 1, &st.params.rules).unwrap_err();
    assert!(e.contains("at least 4") && e.contains("genesis"), "{e}");
}

#[test]
fn ratify_every_change_a_passed_change_waits_for_a_validator_majority_of_at_least_the_floor() {
    let (mut f1, mut f2, mut f3) = (Author::new(1), Author::new(2), Author::new(3));
    let g = network(4, &[&f1, &f2, &f3]);
    let mut w = World::on(&g);
    let p = f1.op(T0, "global", proposal(ProposalKind::ConfigChange, &[], config("tax_bps", ConfigValue::Int(300))));
    w.applied(&p);
    for (i, a) in [&mut f1, &mut f2, &mut f3].into_iter().enumerate() {
        w.applied(&a.op(T0 + 1 + i as u64, "global", vote(p.id(), true)));
    }
    let closable = w.proposal(p.id()).closable_ms;
    w.applied(&f1.op(closable, "global", close(p.id())));
    let pr = w.proposal(p.id()).clone();
    assert_eq!(pr.status, ProposalStatus::PendingRatification, "nothing executes at a close");
    assert_eq!(pr.validators.len(), 3, "the founders");
    // Three validators but a floor of 4: 3 ratifications needed, not 2.
    assert_eq!(pr.quorum(&w.r.state().params.rules), 3);
    w.applied(&f1.op(closable + 1, "global", ratify(p.id())));
    w.applied(&f2.op(closable + 2, "global", ratify(p.id())));
    assert_eq!(w.r.state().params.tax_bps, 200, "two of three is below the floor's majority");
    w.applied(&f3.op(closable + 3, "global", ratify(p.id())));
    assert_eq!(w.r.state().params.tax_bps, 300);
    assert_eq!(w.proposal(p.id()).status, ProposalStatus::Executed);
}

#[test]
fn low_id_keys_without_reputation_never_enter_the_validator_set() {
    let (mut f1, mut f2, mut f3) = (Author::new(200), Author::new(201), Author::new(202));
    let g = network(4, &[&f1, &f2, &f3]);
    let mut w = World::on(&g);
    // Grind 3,000 keys and keep the 10 lowest ids: all below the founders'.
    let mut seeds: Vec<([u8; 32], crate::identity::NodeId)> = (0..3_000u32)
        .map(|i| {
            let mut s = [7u8; 32];
            s[..4].copy_from_slice(&i.to_le_bytes());
            (s, crate::identity::Identity::from_seed(s).node_id())
        })
        .collect();
    seeds.sort_by_key(|(_, id)| *id);
    let founders = [f1.id(), f2.id(), f3.id()];
    for (k, (seed, id)) in seeds.iter().take(10).enumerate() {
        assert!(founders.iter().all(|f| id < f), "ground below every founder");
        let mut s = Author::with_seed(*seed);
        admit(&mut w, &g, &mut s, T0 + k as u64);
        // Aged far past the validator age, voting on everything.
        let _ = s;
    }
    let p = f1.op(T0 + 30 * DAY_MS, "global", proposal(ProposalKind::Generic, &[], None));
    w.applied(&p);
    for (i, a) in [&mut f1, &mut f2, &mut f3].into_iter().enumerate() {
        w.applied(&a.op(T0 + 30 * DAY_MS + 1 + i as u64, "global", vote(p.id(), true)));
    }
    let closable = w.proposal(p.id()).closable_ms;
    w.applied(&f1.op(closable, "global", close(p.id())));
    let mut v = w.r.state().gov.validators.clone();
    v.sort();
    let mut expect = founders.to_vec();
    expect.sort();
    assert_eq!(v, expect, "only eligible identities, however low their ids");
}
