//! Finality (rules in `core/finality.rs` and `docs/PROTOCOL.md`
//! "Finality"): one named test per attack, each with a control showing what
//! the same ops did before the rule.

use super::gov_tests::{Author, T0, World, close, config, proposal, task, vote};
use crate::core::genesis::{Genesis, GenesisConfig};
use crate::core::governance::ProposalStatus;
use crate::core::op::{ConfigValue, OpBody, ProposalKind, VerifiedOp};
use crate::core::replica::{OpOutcome, Replica};
use crate::core::rules::Rules;

/// Epochs of 10 s; epoch `E0` is `[T0, T0 + 10 s)`.
const EPOCH: u64 = 10_000;
const E0: u64 = T0 / EPOCH;

/// The default rules (fresh keys are neither members nor validators), no
/// admission work, no voting floor, epochs of 10 s, four founders: the
/// validators (quorum 3).
fn network(founders: &[&Author]) -> Genesis {
    Genesis {
        name: "finality".into(),
        founders: founders.iter().map(|a| a.id()).collect(),
        config: GenesisConfig { proposal_min_voting_seconds: 0, ..GenesisConfig::safe() },
        rules: Rules { admission_bits: 0, voting_floor_seconds: 0, epoch_seconds: EPOCH / 1000, ..Rules::default() },
    }
}

fn founders() -> [Author; 4] {
    [Author::new(1), Author::new(2), Author::new(3), Author::new(4)]
}

/// Each of `voters` signs the checkpoint it is due at wall time `now`
/// (one epoch after `epoch` ended), and the replica ticks.
fn sign(w: &mut World, voters: &mut [&mut Author], now: u64) {
    for (i, a) in voters.iter_mut().enumerate() {
        let Some(body) = w.r.checkpoint_due(&a.id(), now) else { continue };
        let op = a.op(now + i as u64, "global", body);
        w.applied(&op);
    }
    w.r.tick(u64::MAX / 2);
}

/// Any op that applies anywhere.
fn skills() -> OpBody {
    OpBody::SkillsSet { skills: vec!["rust".into()] }
}

/// The `dev` channel, where tasks live.
fn dev(w: &mut World, a: &mut Author) {
    w.applied(&a.op(T0 + 10, "dev", OpBody::ChannelCreate { description: String::new() }));
}

/// Wall time at which epoch `e` is due for signing.
fn due(e: u64) -> u64 {
    (e + 2) * EPOCH
}

/// A config proposal, a tie (a yes, b no) and a close: rejected.
fn tied_proposal(w: &mut World, a: &mut Author, b: &mut Author) -> crate::core::op::OpId {
    let p = a.op(
        T0 + 1_000,
        "global",
        proposal(ProposalKind::ConfigChange, &[], config("task_tax_bps", ConfigValue::Int(100))),
    );
    w.applied(&p);
    w.applied(&a.op(T0 + 2_000, "global", vote(p.id(), true)));
    w.applied(&b.op(T0 + 2_001, "global", vote(p.id(), false)));
    w.applied(&a.op(T0 + 3_000, "global", close(p.id())));
    assert_eq!(w.proposal(p.id()).status, ProposalStatus::Closed);
    p.id()
}

#[test]
fn late_op_a_backdated_vote_after_finality_changes_nothing() {
    let [mut a, mut b, mut c, mut d] = founders();
    let g = network(&[&a, &b, &c, &d]);
    // Control: without finality, d's vote dated before the close (a clock
    // 45 s behind, or a modified client) reopens the outcome everywhere.
    let mut control = World::on(&g);
    let (mut a2, mut b2, mut d2) = (Author::new(1), Author::new(2), Author::new(4));
    let p = tied_proposal(&mut control, &mut a2, &mut b2);
    let backdated = d2.op(T0 + 2_500, "global", vote(p, true));
    control.feed(&backdated);
    assert_eq!(control.proposal(p).status, ProposalStatus::PendingRatification, "the attack works without finality");

    let mut w = World::on(&g);
    let p = tied_proposal(&mut w, &mut a, &mut b);
    sign(&mut w, &mut [&mut a, &mut b, &mut c], due(E0));
    let f = w.r.last_final().expect("epoch E0 is final with 3 of 4 validators");
    assert_eq!((f.epoch, f.signers.len()), (E0, 3));
    let before = w.r.state_hash();
    let backdated = d.op(T0 + 2_500, "global", vote(p, true));
    assert_eq!(w.feed(&backdated), Some(OpOutcome::Late));
    assert_eq!(w.proposal(p).status, ProposalStatus::Closed);
    assert_eq!(w.r.state_hash(), before, "a late op changes nothing");
    assert_eq!(w.r.snapshot().counts.late, 1);
    // The late op's author goes on: its next op (dated now) applies.
    w.applied(&d.op(due(E0) + 100, "global", skills()));
}

#[test]
fn late_op_a_fresh_key_backdating_a_bid_changes_no_award() {
    let [mut a, mut b, mut c, mut d] = founders();
    let g = network(&[&a, &b, &c, &d]);
    let mut w = World::on(&g);
    let mut t = task("auctioned", 0, &["x"]);
    if let OpBody::TaskCreate(n) = &mut t {
        n.schema = crate::core::op::TaskSchema::TaskV2;
        n.auction = Some(crate::core::op::AuctionTerms { max_reward: 100, deadline_ms: T0 + 5_000 });
    }
    dev(&mut w, &mut a);
    let t = a.op(T0 + 1_000, "dev", t);
    w.applied(&t);
    w.applied(&b.op(T0 + 2_000, "dev", OpBody::Bid { task: t.id(), amount: 90, estimated_days: 3 }));
    w.applied(&c.op(T0 + 6_000, "dev", OpBody::AuctionClose { task: t.id() }));
    let award = |w: &World| w.r.state().tasks.get(&t.id()).map(|t| (t.assignee, t.reward));
    let awarded = award(&w);
    assert_eq!(awarded.map(|x| x.0), Some(Some(b.id())));
    // Control: without finality the backdated underbid takes the award.
    let mut control = World::on(&g);
    for op in w.log.clone() {
        control.feed(&op);
    }
    let mut m = Author::new(90);
    let bid = m.op(T0 + 3_000, "dev", OpBody::Bid { task: t.id(), amount: 10, estimated_days: 1 });
    control.feed(&bid);
    assert_eq!(award(&control).map(|x| x.0), Some(Some(m.id())), "the attack works without finality");
    sign(&mut w, &mut [&mut a, &mut b, &mut c, &mut d], due(E0));
    assert!(w.r.last_final().is_some());
    // A fresh key underbids, dated before the deadline.
    assert_eq!(w.feed(&bid), Some(OpOutcome::Late));
    assert_eq!(award(&w), awarded);
}

#[test]
fn fork_after_final_claw_back_after_finality_is_impossible() {
    let [mut a, mut b, mut c, mut d] = founders();
    let g = network(&[&a, &b, &c, &d]);
    let pay = |w: &mut World, a: &mut Author, b: &mut Author| {
        dev(w, a);
        let t = a.op(T0 + 1_000, "dev", task("paid", 100, &["x"]));
        w.applied(&t);
        w.applied(&b.op(T0 + 1_100, "dev", OpBody::TaskClaim { task: t.id() }));
        w.applied(&b.op(T0 + 1_200, "dev", OpBody::TaskStart { task: t.id() }));
        w.applied(&b.op(T0 + 1_300, "dev", OpBody::TaskComplete { task: t.id() }));
    };
    // A second op at a's seq 1: a's task (and b's pay) would vanish.
    let fork_of = |seed: u8| {
        let mut twin = Author::new(seed);
        twin.op(T0 + 5, "twin", OpBody::ChannelCreate { description: "twin".into() })
    };
    let mut control = World::on(&g);
    let (mut a2, mut b2) = (Author::new(1), Author::new(2));
    pay(&mut control, &mut a2, &mut b2);
    let paid = control.r.state().balance(&b2.id());
    control.feed(&fork_of(1));
    assert!(control.r.state().balance(&b2.id()) < paid, "without finality a fork claws the payment back");

    let mut w = World::on(&g);
    pay(&mut w, &mut a, &mut b);
    let paid = w.r.state().balance(&b.id());
    sign(&mut w, &mut [&mut a, &mut b, &mut c, &mut d], due(E0));
    assert!(w.r.last_final().is_some());
    // A twin at a final seq is neither kept nor acted upon: nodes that
    // pruned that seq and nodes that did not behave the same.
    let before = w.r.state_hash();
    assert_eq!(w.feed(&fork_of(1)), None);
    assert_eq!(w.r.state().balance(&b.id()), paid, "what was final stays");
    assert_eq!(w.r.state_hash(), before);
    // A fork after the final head still cuts the author from there.
    let (mut a1, mut a2) = (Author::new(1), Author::new(1));
    for op in w.log.iter().filter(|o| o.op().author == a.id()) {
        let _ = (
            a1.op(op.op().hlc.ms, &op.op().channel, op.op().body.clone()),
            a2.op(op.op().hlc.ms, &op.op().channel, op.op().body.clone()),
        );
    }
    let x = a1.op(due(E0) + 500, "x", OpBody::ChannelCreate { description: String::new() });
    let y = a2.op(due(E0) + 500, "y", OpBody::ChannelCreate { description: String::new() });
    w.feed(&x);
    w.feed(&y);
    assert_eq!(w.r.equivocators().len(), 1);
    assert!(!w.r.state().ledger.channels.contains_key("x") && !w.r.state().ledger.channels.contains_key("y"));
    assert_eq!(w.r.state().balance(&b.id()), paid);
}

#[test]
fn final_is_final_the_worst_op_refolds_at_most_what_came_after_the_checkpoint() {
    let [mut a, mut b, mut c, mut d] = founders();
    let g = network(&[&a, &b, &c, &d]);
    let mut w = World { r: Replica::with_genesis_every(&g, 16), log: Vec::new() };
    let mut m = Author::new(90);
    // 400 ops in epoch E0, then the checkpoint, then 40 ops after it.
    for i in 0..400 {
        w.applied(&a.op(T0 + 10 + i, "global", OpBody::SkillsSet { skills: vec![format!("s{i}")] }));
    }
    sign(&mut w, &mut [&mut a, &mut b, &mut c, &mut d], due(E0));
    let end = w.r.last_final().unwrap().end_ms;
    for i in 0..40 {
        w.applied(&b.op(due(E0) + 1_000 + i, "global", OpBody::SkillsSet { skills: vec![format!("t{i}")] }));
    }
    // The attacker's best: dated before everything (late: nothing re-folds)
    // or just after the final end (re-folds only the ops after it).
    let applies = w.r.fold_stats().applies;
    assert_eq!(w.feed(&m.op(T0 + 1, "global", skills())), Some(OpOutcome::Late));
    assert_eq!(w.r.fold_stats().applies, applies);
    let mut m2 = Author::new(91);
    w.feed(&m2.op(end, "global", skills()));
    let refolded = w.r.fold_stats().applies - applies;
    let after_final = 40 + 4 + 1; // b's ops, the votes, the attacker's op
    assert!(refolded <= after_final, "re-folded {refolded} ops, at most {after_final} came after the checkpoint");
}

#[test]
fn finality_quorum_finality_waits_while_validators_are_offline_and_ops_go_on() {
    let [mut a, mut b, mut c, mut d] = founders();
    let g = network(&[&a, &b, &c, &d]);
    let mut w = World::on(&g);
    w.applied(&a.op(T0 + 1, "global", skills()));
    // Two of four validators online: below the quorum of 3.
    sign(&mut w, &mut [&mut a, &mut b], due(E0));
    assert!(w.r.last_final().is_none());
    let waiting = w.r.finality(due(E0)).waiting.unwrap();
    assert!(waiting.contains("2 matching validator signatures, at least 3 needed"), "{waiting}");
    // Ops still apply (dated in the unfinal past, too).
    w.applied(&c.op(T0 + 2, "global", skills()));
    w.applied(&b.op(due(E0) + 1_000, "global", skills()));
    // A third validator comes back: the next due epoch becomes final, and
    // it covers everything before it.
    sign(&mut w, &mut [&mut a, &mut b, &mut c], due(E0 + 1));
    assert_eq!(w.r.last_final().map(|f| f.epoch), Some(E0 + 1));
    assert_eq!(w.feed(&d.op(T0 + 3, "global", skills())), Some(OpOutcome::Late));
}

#[test]
fn finality_quorum_votes_of_fresh_keys_do_not_count() {
    let [mut a, b, c, d] = founders();
    let g = network(&[&a, &b, &c, &d]);
    let mut w = World::on(&g);
    w.applied(&a.op(T0 + 1, "global", skills()));
    // Fresh keys copy an honest vote: they are not validators.
    let mut sybils: Vec<Author> = (100..110).map(Author::new).collect();
    let body = w.r.checkpoint_due(&a.id(), due(E0)).unwrap();
    for (i, s) in sybils.iter_mut().enumerate() {
        w.applied(&s.op(due(E0) + i as u64, "global", body.clone()));
    }
    w.r.tick(u64::MAX / 2);
    assert!(w.r.last_final().is_none());
    assert!(w.r.checkpoint_due(&sybils[0].id(), due(E0)).is_none(), "a fresh key is never asked to sign");
}

#[test]
fn late_op_replicas_that_got_a_late_op_before_the_votes_converge() {
    let [mut a, mut b, mut c, d] = founders();
    let g = network(&[&a, &b, &c, &d]);
    let mut m = Author::new(90);
    let mut log: Vec<VerifiedOp> = Vec::new();
    let mut w = World::on(&g);
    let p = tied_proposal(&mut w, &mut a, &mut b);
    sign(&mut w, &mut [&mut a, &mut b, &mut c], due(E0));
    log.extend(w.log.iter().cloned());
    // The backdated op reaches one replica before the votes, the other after.
    let late = m.op(T0 + 2_500, "global", vote(p, true));
    let mut first = Replica::with_genesis(&g);
    first.receive_batch(log.iter().cloned(), u64::MAX / 2);
    first.receive_verified(late.clone(), u64::MAX / 2);
    assert_eq!(first.outcome(&late.id()), Some(OpOutcome::Applied), "folded before finality");
    first.tick(u64::MAX / 2);
    let mut second = Replica::with_genesis(&g);
    second.receive_batch(log.iter().cloned(), u64::MAX / 2);
    second.tick(u64::MAX / 2);
    second.receive_verified(late.clone(), u64::MAX / 2);
    for r in [&first, &second] {
        assert_eq!(r.last_final().map(|f| f.epoch), Some(E0));
        assert_eq!(r.outcome(&late.id()), Some(OpOutcome::Late));
    }
    assert_eq!(first.state_hash(), second.state_hash());
    assert_eq!(first.state_hash(), w.r.state_hash());
}

#[test]
fn checkpoint_vote_a_second_vote_for_one_epoch_is_counted_not_used() {
    let [mut a, mut b, mut c, mut d] = founders();
    let g = network(&[&a, &b, &c, &d]);
    let mut w = World::on(&g);
    w.applied(&a.op(T0 + 1, "global", skills()));
    let Some(OpBody::Checkpoint(mut v)) = w.r.checkpoint_due(&a.id(), due(E0)) else { panic!("a vote is due") };
    w.applied(&a.op(due(E0), "global", OpBody::Checkpoint(v.clone())));
    v.state = [9; 32];
    w.applied(&a.op(due(E0) + 1, "global", OpBody::Checkpoint(v)));
    assert_eq!(w.r.finality(due(E0)).double_votes, 1);
    sign(&mut w, &mut [&mut b, &mut c, &mut d], due(E0));
    assert_eq!(w.r.last_final().map(|f| f.signers.len()), Some(4));
}

/// A world with ops before and after a final checkpoint of epoch `E0`.
fn finalized_world() -> (Genesis, World, [Author; 4]) {
    let [mut a, mut b, mut c, mut d] = founders();
    let g = network(&[&a, &b, &c, &d]);
    let mut w = World::on(&g);
    dev(&mut w, &mut a);
    let t = a.op(T0 + 1_000, "dev", task("paid", 100, &["x"]));
    w.applied(&t);
    w.applied(&b.op(T0 + 1_100, "dev", OpBody::TaskClaim { task: t.id() }));
    tied_proposal(&mut w, &mut a, &mut b);
    sign(&mut w, &mut [&mut a, &mut b, &mut c, &mut d], due(E0));
    assert_eq!(w.r.last_final().map(|f| f.epoch), Some(E0));
    w.applied(&b.op(due(E0) + 1_000, "dev", OpBody::TaskStart { task: t.id() }));
    w.applied(&b.op(due(E0) + 1_100, "dev", OpBody::TaskComplete { task: t.id() }));
    (g, w, [a, b, c, d])
}

#[test]
fn snapshot_join_from_a_checkpoint_reaches_the_state_of_full_replay() {
    use crate::core::snapshot::{Record, verify};
    let (g, w, _) = finalized_world();
    let (rec, snap) = w.r.export_final().expect("a final checkpoint");
    let rec = Record::decode(&rec.encode()).unwrap();
    let (f, state) = verify(&g, &rec, &snap).unwrap();
    assert_eq!(f.signers.len(), 4);
    let mut joined = Replica::from_checkpoint(f, state, rec.certificate, 1024);
    // The joiner gets every op (peers may send old ones too): those the
    // checkpoint covers are dropped, the rest folded.
    for op in &w.log {
        joined.receive_verified(op.clone(), u64::MAX / 2);
    }
    joined.tick(u64::MAX / 2);
    assert_eq!(joined.state_hash(), w.r.state_hash());
    let after = w.log.iter().filter(|o| o.op().hlc.ms >= joined.last_final().unwrap().end_ms).count();
    assert_eq!(joined.store().len(), after, "only ops after the checkpoint are held");
    assert!(after < w.log.len());
}

#[test]
fn snapshot_join_refuses_a_tampered_snapshot_too_few_votes_and_another_network() {
    use crate::core::snapshot::{Record, verify};
    let (g, w, _) = finalized_world();
    let (rec, snap) = w.r.export_final().unwrap();
    let mut bad = snap.to_vec();
    let i = bad.len() / 2;
    bad[i] ^= 1;
    assert!(verify(&g, &rec, &bad).unwrap_err().contains("hash"));
    let few = Record { certificate: rec.certificate[..2].to_vec(), ..rec.clone() };
    assert!(verify(&g, &few, &snap).unwrap_err().contains("2 of 4 validators signed, 3 needed"));
    // Fresh keys copying the vote are not validators of that state.
    let mut sybils = Record { certificate: rec.certificate[..2].to_vec(), ..rec.clone() };
    for i in 0..3u8 {
        let mut s = Author::new(200 + i);
        let v = rec.certificate[0].op();
        sybils.certificate.push(s.op(v.hlc.ms, "global", v.body.clone()));
    }
    assert!(verify(&g, &sybils, &snap).is_err());
    let other = Genesis { name: "other".into(), ..g.clone() };
    assert!(verify(&other, &rec, &snap).is_err());
    assert!(Record::decode(&rec.encode()[..40]).is_err());
}

/// Rule `late_op`, bounded: a key can sign backdated ops without end (each
/// is refused as late), and their ids must leave memory with the ops once a
/// final frontier covers the author past them and they are pruned. The
/// `late_ops` counter keeps the figure. Before the fix the late set only
/// ever grew.
#[test]
fn late_op_ids_leave_memory_with_their_pruned_ops() {
    let (_, mut w, [mut a, mut b, mut c, mut d]) = finalized_world();
    let mut m = Author::new(90);
    for i in 0..50 {
        let op = m.op(T0 + 2_500 + i, "global", skills());
        assert_eq!(w.feed(&op), Some(OpOutcome::Late));
    }
    assert_eq!((w.r.late_held(), w.r.finality(due(E0 + 1)).late_ops), (50, 50));
    // The key goes on with an op dated now: the next frontiers cover it.
    w.applied(&m.op(due(E0) + 2_000, "global", skills()));
    for e in 1..=3 {
        sign(&mut w, &mut [&mut a, &mut b, &mut c, &mut d], due(E0 + e));
    }
    assert_eq!(w.r.last_final().map(|f| f.epoch), Some(E0 + 3));
    w.r.prune();
    assert_eq!(w.r.late_held(), 0, "the late ids left with their ops");
    assert_eq!(w.r.finality(due(E0 + 4)).late_ops, 50, "the counter keeps the figure");
}

/// Rule `catch_up_from_checkpoint` after an absence longer than peers keep
/// ops: every new op of theirs reaches the returning node behind a gap (the
/// ops in between were pruned), so their checkpoint votes never become
/// ready there. Before the fix the node saw no lag, never fetched the
/// checkpoint that fills the gap, and stayed behind for good (a page back
/// from a day-behind clock, in headless Chromium, kept a closed proposal
/// open).
#[test]
fn catch_up_from_checkpoint_sees_votes_behind_a_gap() {
    let (g, away, [mut a, mut b, mut c, mut d]) = finalized_world();
    let mut on = World::on(&g);
    for op in away.log.clone() {
        on.feed(&op);
    }
    let mut away = away;
    for e in 1..=4 {
        sign(&mut on, &mut [&mut a, &mut b, &mut c, &mut d], due(E0 + e));
    }
    assert_eq!(on.r.last_final().map(|f| f.epoch), Some(E0 + 4));
    assert_eq!(away.r.finality_lag(), 0);
    // Only the newest votes reach the node that was away.
    let newest: Vec<VerifiedOp> = on.log[on.log.len() - 4..].to_vec();
    for op in &newest {
        assert_eq!(away.feed(op), Some(OpOutcome::Pending));
    }
    assert!(away.r.finality_lag() >= 3, "lag {}", away.r.finality_lag());
    // A backdated op refused before the catch-up stays counted after it.
    let mut m = Author::new(90);
    assert_eq!(away.feed(&m.op(T0 + 2_500, "global", skills())), Some(OpOutcome::Late));
    // The checkpoint it fetches fills the gap; the held votes then fold.
    let (rec, snap) = on.r.export_final().expect("final");
    away.r.adopt_checkpoint(&g, &rec.encode(), &snap).expect("adopted");
    assert_eq!(away.r.last_final().map(|f| f.epoch), Some(E0 + 4));
    // Then version-vector sync brings the ops after the checkpoint.
    for op in on.log.clone() {
        away.r.receive_verified(op, u64::MAX / 2);
    }
    assert_eq!(away.r.state_hash(), on.r.state_hash());
    assert_eq!(away.r.finality_lag(), 0);
    assert_eq!(away.r.finality(due(E0 + 6)).late_ops, 1, "counted once, carried over the adoption");
}

#[test]
fn prune_final_keeps_the_state_and_bounds_the_store() {
    let (_, mut w, [mut a, mut b, mut c, mut d]) = finalized_world();
    assert!(w.r.prune().is_empty(), "rule prune_margin: nothing before the second final checkpoint");
    sign(&mut w, &mut [&mut a, &mut b, &mut c, &mut d], due(E0 + 2));
    assert_eq!(w.r.last_final().map(|f| f.epoch), Some(E0 + 2));
    let hash = w.r.state_hash();
    let held = w.r.store().len();
    let pruned = w.r.prune().len();
    assert!(pruned > 0 && w.r.store().len() == held - pruned, "{pruned} of {held}");
    assert_eq!(w.r.state_hash(), hash);
    // A pruned op sent again is not kept; new ops still apply.
    let old = w.log[1].clone();
    w.r.receive_verified(old.clone(), u64::MAX / 2);
    assert!(!w.r.contains(&old.id()));
    w.applied(&a.op(due(E0 + 2) + 2_000, "global", skills()));
    assert_eq!(w.r.store().len(), held - pruned + 1);
}

#[test]
fn refeed_ops_dropped_too_far_ahead_are_folded_once_their_chain_is_there() {
    // A router delivers each op once: a replica that dropped one (too far
    // ahead of a chain it did not have yet) must take it back from there.
    let mut a = Author::new(1);
    let ops: Vec<VerifiedOp> =
        (0..4_200u64).map(|i| a.op(T0 + i, "global", OpBody::SkillsSet { skills: vec![format!("s{i}")] })).collect();
    let mut r = Replica::open();
    let last = ops.last().unwrap().clone();
    assert_eq!(r.receive_verified(last.clone(), u64::MAX / 2), crate::core::replica::Received::Dropped);
    r.receive_batch(ops[..4_199].iter().cloned(), u64::MAX / 2);
    assert!(!r.contains(&last.id()), "dropped, and the router will not deliver it again");
    let (taken, dropped) = r.refeed(ops.iter().map(|o| o.bytes()), u64::MAX / 2);
    assert_eq!((taken, dropped), (1, 0));
    assert_eq!(r.outcome(&last.id()), Some(OpOutcome::Applied));
}

#[test]
fn snapshot_join_at_every_cut_of_a_rich_history_reaches_the_state_of_full_replay() {
    // The golden history (tasks, an auction, a team, governance, a module
    // assembled and activated, an anonymous ballot) without its forks and
    // their evidence (a checkpoint would list those as forks), cut at every
    // op time: a node that starts from the encoded state of the ops before
    // the cut and folds the ops after it must reach the full replay's state.
    use crate::core::finality::{Final, Head};
    use crate::core::fold::OrderKey;
    use crate::core::snapshot::{decode_state, encode_state};
    let all = crate::core::vectors::golden_history();
    let mut at_seq = std::collections::BTreeMap::new();
    for o in &all {
        *at_seq.entry((o.op().author, o.op().seq)).or_insert(0) += 1;
    }
    let mut ops: Vec<VerifiedOp> = all
        .into_iter()
        .filter(|o| at_seq[&(o.op().author, o.op().seq)] == 1 && !matches!(o.op().body, OpBody::Evidence { .. }))
        .collect();
    ops.sort_by_key(|o| OrderKey::of(o));
    let fold_all = |r: &mut Replica, ops: &[VerifiedOp]| {
        for op in ops {
            r.receive_verified(op.clone(), u64::MAX / 2);
        }
    };
    let mut full = Replica::open_every(4);
    fold_all(&mut full, &ops);
    let want = full.state_hash();
    let mut cuts = 0;
    for k in 1..ops.len() {
        let end_ms = ops[k].op().hlc.ms;
        if ops[k - 1].op().hlc.ms >= end_ms {
            continue;
        }
        let mut before = Replica::open_every(4);
        fold_all(&mut before, &ops[..k]);
        let bytes = encode_state(before.state());
        let state = decode_state(&bytes).unwrap();
        assert_eq!(&state, before.state(), "cut {k}: the state round-trips");
        let mut frontier = std::collections::BTreeMap::new();
        for o in &ops[..k] {
            frontier.insert(o.op().author, Head { seq: o.op().seq, id: o.id(), hlc: o.op().hlc });
        }
        let f = Final {
            epoch: 1,
            end_ms,
            frontier,
            forks: Default::default(),
            frontier_hash: [0; 32],
            state_hash: crate::core::snapshot::digest(&bytes),
            signers: vec![],
        };
        let mut joined = Replica::from_checkpoint(f, state, vec![], 4);
        // Every op arrives, old ones too, in reverse.
        for op in ops.iter().rev() {
            joined.receive_verified(op.clone(), u64::MAX / 2);
        }
        joined.tick(u64::MAX / 2);
        assert_eq!(hex::encode(joined.state_hash()), hex::encode(want), "cut {k} of {}", ops.len());
        cuts += 1;
    }
    assert!(cuts > 20, "{cuts} cuts");
}

#[test]
fn prune_margin_a_joiner_from_the_previous_checkpoint_still_gets_the_ops_after_it() {
    // A joiner fetched the checkpoint of E0; by the time it has it, the
    // next one is final at its peer, which pruned. The ops between the two
    // must still be there, or the joiner can never fold on from E0.
    use crate::core::snapshot::{Record, verify};
    let (g, mut w, [mut a, mut b, mut c, mut d]) = finalized_world();
    let (rec0, snap0) = w.r.export_final().unwrap();
    let e2 = E0 + 2;
    sign(&mut w, &mut [&mut a, &mut b, &mut c, &mut d], due(e2));
    assert_eq!(w.r.last_final().map(|f| f.epoch), Some(e2));
    w.r.prune();
    w.applied(&a.op(due(e2) + 1_000, "global", skills()));
    let (f, state) = verify(&g, &Record::decode(&rec0.encode()).unwrap(), &snap0).unwrap();
    let mut joined = Replica::from_checkpoint(f, state, rec0.certificate, 1024);
    // What the pruned peer still holds (its router serves the same).
    let held: Vec<VerifiedOp> = w.r.store().iter().map(|(_, op, _)| op.clone()).collect();
    joined.receive_batch(held, u64::MAX / 2);
    joined.tick(u64::MAX / 2);
    assert_eq!(joined.last_final().map(|f| f.epoch), Some(e2), "the joiner finalizes E2 itself");
    assert_eq!(joined.state_hash(), w.r.state_hash());
    // The next final checkpoint prunes what E2 covers at last.
    let e4 = E0 + 4;
    let before = w.r.store().len();
    sign(&mut w, &mut [&mut a, &mut b, &mut c, &mut d], due(e4));
    assert_eq!(w.r.last_final().map(|f| f.epoch), Some(e4));
    assert!(!w.r.prune().is_empty() && w.r.store().len() < before + 4);
}

/// The eclipse found in the 100,000-task browser benchmark: a fresh key
/// writes a state where it alone is a validator, signs a "checkpoint" of
/// it a few epochs ahead, and a node with a final checkpoint of its own
/// (lagging, as a busy validator does) fetched and adopted it: its whole
/// state replaced. The fabricated snapshot verifies on its own terms
/// (control); rule `catch_up_anchored` refuses it, and the fresh key's
/// votes no longer make the node think it lags.
#[test]
fn catch_up_anchored_a_fresh_key_cannot_replace_a_nodes_state_with_its_own_checkpoint() {
    use crate::core::finality::{Epochs, Forks, Frontier, frontier_hash};
    use crate::core::op::CheckpointVote;
    use crate::core::snapshot::{Record, digest, encode_state, verify};
    let (g, mut w, [a, ..]) = finalized_world();
    let tasks = w.r.state().tasks.len();
    // Fresh keys are free: as many as the network's validator floor.
    let mut ms: Vec<Author> = (66..66 + g.rules.validator_floor.max(1) as u8).map(Author::new).collect();
    // The fabricated state: the honest one, with the fresh keys its only founders.
    let mut fake = w.r.state().clone();
    let template = fake.ledger.accounts.get(&a.id()).cloned().expect("a founder's account");
    for acc in fake.ledger.accounts.values_mut() {
        acc.founder = false;
    }
    for m in &ms {
        fake.ledger.accounts.insert(m.id(), template.clone());
    }
    fake.tasks.clear();
    let snap = encode_state(&fake);
    let epoch = E0 + 5;
    let ep = Epochs::of(&g.rules).unwrap();
    let (frontier, forks) = (Frontier::new(), Forks::new());
    let body = CheckpointVote {
        epoch,
        base: None,
        frontier: frontier_hash(&frontier, &forks),
        state: digest(&snap),
        moved: vec![],
    };
    let votes: Vec<VerifiedOp> =
        ms.iter_mut().map(|m| m.op(due(epoch), "global", OpBody::Checkpoint(body.clone()))).collect();
    let rec = Record {
        epoch,
        end_ms: ep.end_ms(epoch),
        frontier,
        forks,
        state_hash: digest(&snap),
        certificate: votes.clone(),
    };
    // Control: on its own terms the forgery is a valid checkpoint.
    let (f, _) = verify(&g, &rec, &snap).expect("self-consistent");
    assert_eq!(f.signers.len(), ms.len());
    // Their votes reach the node: they do not count as a sign of lag.
    for v in votes {
        w.r.receive_verified(v, u64::MAX / 2);
    }
    w.r.tick(u64::MAX / 2);
    assert_eq!(w.r.finality_lag(), 0, "a vote by a key that is no validator here starts no fetch");
    let honest = w.r.state_hash();
    let e = w.r.adopt_checkpoint(&g, &rec.encode(), &snap).unwrap_err();
    assert!(e.contains("catch_up_anchored") && e.contains("0 of the 4 validators"), "{e}");
    assert_eq!(w.r.state_hash(), honest, "the node's state is untouched");
    assert_eq!(w.r.state().tasks.len(), tasks);
}
