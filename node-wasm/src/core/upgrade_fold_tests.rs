//! Self-upgrade rules in the fold (`docs/UPGRADES.md`): `module_piece`,
//! activation by a ratified `code_upgrade`, the policy hooks, fallbacks
//! recorded in state, rollback, dry runs, and the same activation position
//! under any delivery order.

use super::gov_tests::{Author, T0, World, close, proposal, ratify, task, vote};
use crate::core::op::{AuctionTerms, Command, Funding, NewTask, OpBody, ProposalKind, TaskSchema, VerifiedOp};
use crate::core::reject::Reject;
use crate::core::replica::Replica;
use crate::core::state::TaskStatus;
use crate::core::upgrade::{BUILTIN, MAX_PIECE_BYTES, ModuleHash, Policy, examples, module_hash, split};
use crate::core::upgrades::MAX_PENDING_MODULES_PER_AUTHOR;

fn piece(module: &[u8], index: u16, count: u16, bytes: &[u8]) -> OpBody {
    OpBody::ModulePiece { module: module_hash(module), index, count, bytes: bytes.to_vec() }
}

/// Publishes `module` as pieces of at most `size` bytes.
fn publish(w: &mut World, who: &mut Author, ms: u64, module: &[u8], size: usize) -> ModuleHash {
    let pieces: Vec<&[u8]> = module.chunks(size).collect();
    for (i, p) in pieces.iter().enumerate() {
        w.applied(&who.op(ms + i as u64, "global", piece(module, i as u16, pieces.len() as u16, p)));
    }
    ModuleHash(module_hash(module))
}

fn upgrade(hash: [u8; 32], policy: Policy) -> OpBody {
    proposal(ProposalKind::CodeUpgrade, &[], Some(Command::CodeUpgrade { module_sha256: hash, policy }))
}

/// Proposes, approves (votes of `voters`), closes and ratifies (by every
/// author in `validators` until executed) a code upgrade. Returns the
/// execution-log entry's message and success.
fn pass_upgrade(w: &mut World, authors: &mut [Author], ms: u64, hash: [u8; 32], policy: Policy) -> (bool, String) {
    let p = authors[0].op(ms, "global", upgrade(hash, policy));
    w.applied(&p);
    for a in authors.iter_mut() {
        w.applied(&a.op(ms + 1, "global", vote(p.id(), true)));
    }
    w.applied(&authors[0].op(ms + 2, "global", close(p.id())));
    for a in authors.iter_mut() {
        let s = w.proposal(p.id()).status;
        if s != crate::core::governance::ProposalStatus::PendingRatification {
            break;
        }
        w.applied(&a.op(ms + 3, "global", ratify(p.id())));
    }
    let e = w.r.state().gov.execution_log.last().expect("executed");
    assert_eq!(e.proposal, p.id());
    (e.result.success, e.result.message.clone())
}

/// Three authors with some reputation: a completes two tasks from b.
fn three_with_reputation() -> (World, Vec<Author>) {
    let mut w = World::new();
    let (mut a, mut b, c) = (Author::new(1), Author::new(2), Author::new(3));
    w.applied(&b.op(T0 - 10, "dev", OpBody::ChannelCreate { description: "dev".into() }));
    for i in 0..2u64 {
        let t = b.op(T0 + 10 * i, "dev", task("work", 10, &["rust"]));
        w.applied(&t);
        w.applied(&a.op(T0 + 10 * i + 1, "dev", OpBody::TaskClaim { task: t.id() }));
        w.applied(&a.op(T0 + 10 * i + 2, "dev", OpBody::TaskStart { task: t.id() }));
        w.applied(&a.op(T0 + 10 * i + 3, "dev", OpBody::TaskComplete { task: t.id() }));
    }
    (w, vec![a, b, c])
}

#[test]
fn module_piece_assembles_in_any_order_and_refuses_duplicates_and_mismatches() {
    let mut w = World::new();
    let mut a = Author::new(1);
    let m = examples::QUADRATIC_VOTE;
    let parts: Vec<&[u8]> = m.chunks(m.len() / 3 + 1).collect();
    assert_eq!(parts.len(), 3);
    w.applied(&a.op(T0, "global", piece(m, 2, 3, parts[2])));
    assert_eq!(w.rejected(&a.op(T0 + 1, "global", piece(m, 2, 3, parts[2]))).code(), "duplicate_piece");
    assert_eq!(
        w.rejected(&a.op(T0 + 2, "global", piece(m, 0, 4, parts[0]))),
        Reject::PieceCountMismatch { module: ModuleHash(module_hash(m)), count: 4, expected: 3 }
    );
    w.applied(&a.op(T0 + 3, "global", piece(m, 0, 3, parts[0])));
    assert!(w.r.state().upgrades.modules.is_empty());
    assert_eq!(w.r.state().upgrades.pending[&ModuleHash(module_hash(m))][&a.id()].received, vec![0, 2]);
    w.applied(&a.op(T0 + 4, "global", piece(m, 1, 3, parts[1])));
    let u = &w.r.state().upgrades;
    let stored = &u.modules[&ModuleHash(module_hash(m))];
    assert_eq!(stored.bytes.as_slice(), m);
    assert_eq!(stored.assembled_by, a.id());
    assert!(u.pending.is_empty());
    assert_eq!(w.rejected(&a.op(T0 + 5, "global", piece(m, 0, 3, parts[0]))).code(), "module_present");
}

#[test]
fn module_piece_bad_bytes_from_one_author_never_block_another() {
    let mut w = World::new();
    let (mut honest, mut bad) = (Author::new(1), Author::new(2));
    let m = examples::FLAT_TAX;
    let half = m.len() / 2;
    // The bad author claims the module with garbage in piece 0.
    w.applied(&bad.op(T0, "global", piece(m, 0, 2, &vec![0xff; half])));
    w.applied(&honest.op(T0 + 1, "global", piece(m, 0, 2, &m[..half])));
    w.applied(&bad.op(T0 + 2, "global", piece(m, 1, 2, &m[half..])));
    let h = ModuleHash(module_hash(m));
    assert_eq!(w.r.state().upgrades.corrupt[&h], 1);
    assert!(w.r.state().upgrades.modules.is_empty());
    assert!(!w.r.state().upgrades.pending[&h].contains_key(&bad.id()));
    w.applied(&honest.op(T0 + 3, "global", piece(m, 1, 2, &m[half..])));
    assert_eq!(w.r.state().upgrades.modules[&h].bytes.as_slice(), m);
}

#[test]
fn module_piece_limits_pending_modules_per_author() {
    let mut w = World::new();
    let mut a = Author::new(1);
    for i in 0..MAX_PENDING_MODULES_PER_AUTHOR {
        let fake = vec![i as u8; 100];
        w.applied(&a.op(T0 + i as u64, "global", piece(&fake, 0, 2, &fake[..50])));
    }
    let fake = vec![99u8; 100];
    assert_eq!(
        w.rejected(&a.op(T0 + 10, "global", piece(&fake, 0, 2, &fake[..50]))),
        Reject::TooManyPendingModules { limit: MAX_PENDING_MODULES_PER_AUTHOR }
    );
}

#[test]
fn module_piece_structure_is_checked_at_decode() {
    let a = Author::new(1);
    let mk = |index, count, len: usize| {
        crate::core::op::SignedOp::create(
            &a.key,
            1,
            crate::core::op::OpId::ZERO,
            crate::core::hlc::Hlc::new(T0, 0),
            "global",
            OpBody::ModulePiece { module: [1; 32], index, count, bytes: vec![1; len] },
        )
    };
    assert!(mk(0, 1, MAX_PIECE_BYTES).is_ok());
    assert!(mk(0, 1, MAX_PIECE_BYTES + 1).is_err());
    assert!(mk(0, 1, 0).is_err());
    assert!(mk(2, 2, 10).is_err());
    assert!(mk(0, 0, 10).is_err());
    assert!(mk(0, 9, 10).is_err(), "more pieces than a module may have");
    assert_eq!(split(&vec![0; 70_000]).len(), 3);
}

#[test]
fn ratified_quadratic_module_weights_later_tallies_and_rollback_restores_builtin() {
    let (mut w, mut authors) = three_with_reputation();
    let t = T0 + 1000;
    // A tally before the upgrade uses the built-in weights.
    let before = authors[1].op(t, "global", proposal(ProposalKind::Generic, &[], None));
    w.applied(&before);
    w.applied(&authors[0].op(t + 1, "global", vote(before.id(), true)));
    w.applied(&authors[1].op(t + 2, "global", close(before.id())));
    let d0 = &w.proposal(before.id()).tally.as_ref().unwrap().details[0];
    let builtin_w = d0.weight_milli;
    assert_eq!(builtin_w, crate::core::governance::vote_weight_milli(&rep_total(d0.reputation_milli), &[]).0);

    let hash = publish(&mut w, &mut authors[2], t + 10, examples::QUADRATIC_VOTE, 200);
    let (ok, msg) = pass_upgrade(&mut w, &mut authors, t + 100, hash.0, Policy::VoteWeight);
    assert!(ok, "{msg}");
    assert_eq!(msg, format!("vote_weight: now module {}… (was the built-in policy)", hash.short()));
    let s = w.r.state();
    assert_eq!(s.upgrades.policies.active[&Policy::VoteWeight], hash);
    let act = &s.upgrades.history[0];
    assert_eq!((act.policy, act.module, act.previous), (Policy::VoteWeight, hash, ModuleHash::BUILTIN));
    assert_eq!(act.execution, s.gov.execution_log.len() as u64 - 1);

    // A new proposal's tally uses 1 + √points: a has 2 points (+ vote credits).
    let after = authors[1].op(t + 200, "global", proposal(ProposalKind::Generic, &[], None));
    w.applied(&after);
    w.applied(&authors[0].op(t + 201, "global", vote(after.id(), true)));
    w.applied(&authors[1].op(t + 202, "global", close(after.id())));
    let d = &w.proposal(after.id()).tally.as_ref().unwrap().details[0];
    let points_milli = d.reputation_milli;
    let isqrt = (points_milli * 1000).isqrt();
    assert_eq!(d.weight_milli, 1000 + isqrt);
    assert_ne!(d.weight_milli, crate::core::governance::vote_weight_milli(&rep_total(points_milli), &[]).0);
    // The closed, earlier tally is not recomputed.
    assert_eq!(w.proposal(before.id()).tally.as_ref().unwrap().details[0].weight_milli, builtin_w);

    // Rollback: the all-zero hash restores the built-in weights.
    let (ok, msg) = pass_upgrade(&mut w, &mut authors, t + 300, BUILTIN, Policy::VoteWeight);
    assert!(ok, "{msg}");
    assert!(msg.contains("now the built-in policy"), "{msg}");
    assert!(w.r.state().upgrades.policies.active.is_empty());
    let again = authors[1].op(t + 400, "global", proposal(ProposalKind::Generic, &[], None));
    w.applied(&again);
    w.applied(&authors[0].op(t + 401, "global", vote(again.id(), true)));
    w.applied(&authors[1].op(t + 402, "global", close(again.id())));
    let d = &w.proposal(again.id()).tally.as_ref().unwrap().details[0];
    assert_eq!(d.weight_milli, crate::core::governance::vote_weight_milli(&rep_total(d.reputation_milli), &[]).0);
    // Re-activating the earlier version needs no new pieces.
    let (ok, msg) = pass_upgrade(&mut w, &mut authors, t + 500, hash.0, Policy::VoteWeight);
    assert!(ok, "{msg}");
    assert_eq!(w.r.state().upgrades.history.len(), 3);
}

fn rep_total(milli: u64) -> crate::core::reputation::Reputation {
    crate::core::reputation::Reputation { total: milli, ..Default::default() }
}

#[test]
fn upgrade_without_the_module_or_for_the_wrong_policy_fails_and_changes_nothing() {
    let (mut w, mut authors) = three_with_reputation();
    let t = T0 + 1000;
    let m = examples::FLAT_TAX;
    let (ok, msg) = pass_upgrade(&mut w, &mut authors, t, module_hash(m), Policy::Tax);
    assert!(!ok);
    assert!(msg.starts_with("module_not_present"), "{msg}");
    publish(&mut w, &mut authors[2], t + 10, m, 4096);
    // Present now, but it does not export vote_weight.
    let (ok, msg) = pass_upgrade(&mut w, &mut authors, t + 100, module_hash(m), Policy::VoteWeight);
    assert!(!ok);
    assert!(msg.starts_with("module_missing_export"), "{msg}");
    assert!(w.r.state().upgrades.policies.active.is_empty());
    assert!(w.r.state().upgrades.history.is_empty());
}

#[test]
fn flat_tax_module_taxes_completed_tasks_after_activation() {
    let (mut w, mut authors) = three_with_reputation();
    let t = T0 + 1000;
    let hash = publish(&mut w, &mut authors[2], t, examples::FLAT_TAX, 4096);
    assert!(pass_upgrade(&mut w, &mut authors, t + 100, hash.0, Policy::Tax).0);
    let treasury = w.r.state().treasury("dev");
    let before_a = w.r.state().balance(&authors[0].id());
    let tk = authors[1].op(t + 200, "dev", task("taxed", 100, &[]));
    w.applied(&tk);
    w.applied(&authors[0].op(t + 201, "dev", OpBody::TaskClaim { task: tk.id() }));
    w.applied(&authors[0].op(t + 202, "dev", OpBody::TaskStart { task: tk.id() }));
    w.applied(&authors[0].op(t + 203, "dev", OpBody::TaskComplete { task: tk.id() }));
    // 5 % (flat) instead of the configured 2 %.
    assert_eq!(w.r.state().treasury("dev") - treasury, 5);
    assert_eq!(w.r.state().balance(&authors[0].id()) - before_a, 95);
}

#[test]
fn faulting_module_falls_back_to_builtin_and_the_fallback_is_recorded() {
    let (mut w, mut authors) = three_with_reputation();
    let t = T0 + 1000;
    let looping = wat::parse_str(
        r#"(module (func (export "tax") (param i64 i64) (result i64) (loop $l (br $l)) (i64.const 0)))"#,
    )
    .unwrap();
    let hash = publish(&mut w, &mut authors[2], t, &looping, 4096);
    assert!(pass_upgrade(&mut w, &mut authors, t + 100, hash.0, Policy::Tax).0);
    let treasury = w.r.state().treasury("dev");
    let tk = authors[1].op(t + 200, "dev", task("taxed", 100, &[]));
    w.applied(&tk);
    w.applied(&authors[0].op(t + 201, "dev", OpBody::TaskClaim { task: tk.id() }));
    w.applied(&authors[0].op(t + 202, "dev", OpBody::TaskStart { task: tk.id() }));
    w.applied(&authors[0].op(t + 203, "dev", OpBody::TaskComplete { task: tk.id() }));
    assert_eq!(w.r.state().treasury("dev") - treasury, 2, "built-in 2 % of 100");
    assert_eq!(w.r.state().upgrades.policies.fallbacks[&hash], 1);
}

#[test]
fn cheapest_bid_module_changes_the_auction_winner() {
    let (mut w, mut authors) = three_with_reputation();
    let t = T0 + 1000;
    let hash = publish(&mut w, &mut authors[2], t, examples::CHEAPEST_BID, 4096);
    assert!(pass_upgrade(&mut w, &mut authors, t + 100, hash.0, Policy::AuctionScore).0);
    let deadline = t + 1000;
    let auction = authors[1].op(
        t + 200,
        "dev",
        OpBody::TaskCreate(NewTask {
            schema: TaskSchema::TaskV2,
            title: "auction".into(),
            description: String::new(),
            reward: 0,
            tags: vec![],
            required_tools: vec![],
            funding: Funding::Creator,
            auction: Some(AuctionTerms { max_reward: 100, deadline_ms: deadline }),
        }),
    );
    w.applied(&auction);
    // a has reputation and is fast; c is cheaper. Built-in: a wins; module: c.
    w.applied(&authors[0].op(t + 201, "dev", OpBody::Bid { task: auction.id(), amount: 60, estimated_days: 1 }));
    w.applied(&authors[2].op(t + 202, "dev", OpBody::Bid { task: auction.id(), amount: 50, estimated_days: 9 }));
    let task = w.r.state().tasks[&auction.id()].clone();
    let mut builtin = w.r.state().clone();
    builtin.upgrades.policies.active.clear();
    assert_eq!(builtin.auction_winner(&task, deadline + 1).0.map(|x| x.0), Some(authors[0].id()));
    // The dry run of the module against the live state says so too.
    let dry = builtin.dry_run(examples::CHEAPEST_BID, Policy::AuctionScore, deadline + 1);
    assert_eq!(dry.changes.len(), 1, "{dry:?}");
    w.applied(&authors[1].op(deadline + 1, "dev", OpBody::AuctionClose { task: auction.id() }));
    let t = &w.r.state().tasks[&auction.id()];
    assert_eq!((t.status, t.assignee, t.reward), (TaskStatus::Claimed, Some(authors[2].id()), 50));
}

#[test]
fn dry_run_shows_changed_tallies_without_activating() {
    let (mut w, mut authors) = three_with_reputation();
    let t = T0 + 1000;
    let p = authors[1].op(t, "global", proposal(ProposalKind::Generic, &[], None));
    w.applied(&p);
    w.applied(&authors[0].op(t + 1, "global", vote(p.id(), true)));
    w.applied(&authors[2].op(t + 2, "global", vote(p.id(), false)));
    let hash_before = w.r.state_hash();
    let dry = w.r.state().dry_run(examples::QUADRATIC_VOTE, Policy::VoteWeight, t + 3);
    assert_eq!(dry.error, None);
    assert_eq!(dry.current, ModuleHash::BUILTIN);
    assert_eq!(dry.changes.len(), 1);
    let st = w.r.state();
    let (ra, rc) =
        (st.ledger.accounts[&authors[0].id()].reputation.total, st.ledger.accounts[&authors[2].id()].reputation.total);
    let builtin = |m: u64| crate::core::governance::vote_weight_milli(&rep_total(m), &[]).0;
    let quad = |m: u64| 1000 + (m * 1000).isqrt();
    let show = crate::core::governance::display_milli;
    assert_eq!(dry.changes[0].before, format!("yes {} / no {} → approved", show(builtin(ra)), show(builtin(rc))));
    assert_eq!(dry.changes[0].after, format!("yes {} / no {} → approved", show(quad(ra)), show(quad(rc))));
    assert_eq!(dry.samples.iter().find(|s| s.input == "4 reputation points").map(|s| s.after.as_str()), Some("3.00"));
    assert_eq!(w.r.state_hash(), hash_before, "a dry run changes nothing");
    let bad = w.r.state().dry_run(examples::FLAT_TAX, Policy::VoteWeight, t + 3);
    assert_eq!(bad.error.map(|e| e.code), Some("module_missing_export"));
    let tax = w.r.state().dry_run(examples::FLAT_TAX, Policy::Tax, t + 3);
    assert_eq!(
        tax.samples.iter().find(|s| s.input == "reward 100 SP").map(|s| (s.before.clone(), s.after.clone())),
        Some(("2".into(), "5".into()))
    );
}

fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// The same upgrade history delivered in many orders (pieces late, votes
/// before their proposal, ratifications first, duplicates) activates the
/// module at the same execution-log position with the same state hash.
#[test]
fn activation_happens_at_the_same_op_position_under_any_delivery_order() {
    let (mut w, mut authors) = three_with_reputation();
    let t = T0 + 1000;
    let hash = publish(&mut w, &mut authors[2], t, examples::QUADRATIC_VOTE, 100);
    assert!(pass_upgrade(&mut w, &mut authors, t + 100, hash.0, Policy::VoteWeight).0);
    let p = authors[1].op(t + 200, "global", proposal(ProposalKind::Generic, &[], None));
    w.applied(&p);
    w.applied(&authors[0].op(t + 201, "global", vote(p.id(), true)));
    w.applied(&authors[1].op(t + 202, "global", close(p.id())));
    assert!(pass_upgrade(&mut w, &mut authors, t + 300, BUILTIN, Policy::VoteWeight).0);
    let log: Vec<VerifiedOp> = w.log.clone();
    let want = w.r.state_hash();
    let want_hist = w.r.state().upgrades.history.clone();
    let mut next = xorshift(0x5E1F_0960_0D1E);
    for round in 0..30 {
        let mut ops = log.clone();
        for i in (1..ops.len()).rev() {
            ops.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        if round % 3 == 0 {
            let dup = ops[(next() % ops.len() as u64) as usize].clone();
            ops.push(dup);
        }
        let mut r = Replica::open_every(1 + round % 7);
        // Deliver in two batches, as after a partition.
        let cut = (next() % ops.len() as u64) as usize;
        for op in &ops[..cut] {
            r.receive_verified(op.clone(), u64::MAX / 2);
        }
        for op in &ops[cut..] {
            r.receive_verified(op.clone(), u64::MAX / 2);
        }
        assert_eq!(r.state_hash(), want, "round {round}");
        assert_eq!(r.state().upgrades.history, want_hist, "round {round}");
    }
}
