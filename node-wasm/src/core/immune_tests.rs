//! Immune system fold tests (`core/immune.rs`), named after its rules.

use super::gov_tests::{Author, T0, World, proposal, vote};
use crate::core::hlc::Hlc;
use crate::core::immune::EQUIVOCATION_BAN_MS;
use crate::core::op::{OpBody, ProposalKind, SignedOp, VerifiedOp};
use crate::core::reject::Reject;
use crate::core::replica::Replica;

fn evidence(a: &VerifiedOp, b: &VerifiedOp) -> OpBody {
    OpBody::Evidence { first: a.bytes().to_vec(), second: b.bytes().to_vec() }
}

/// `m` earns reputation (a public vote), then signs two ops at its seq 3.
fn forked() -> (World, Author, Author, VerifiedOp, VerifiedOp) {
    let mut w = World::new();
    let (mut m, mut r) = (Author::new(1), Author::new(2));
    let p = r.op(T0, "global", proposal(ProposalKind::Generic, &[], None));
    w.applied(&p);
    let v = m.op(T0 + 1, "global", vote(p.id(), true));
    w.applied(&v);
    let s2 = m.op(T0 + 2, "global", OpBody::SkillsSet { skills: vec!["a".into()] });
    w.applied(&s2);
    let x = m.op(T0 + 3, "global", OpBody::SkillsSet { skills: vec!["b".into()] });
    let y = SignedOp::create(
        &m.key,
        3,
        s2.id(),
        Hlc::new(T0 + 4, 0),
        "global",
        OpBody::SkillsSet { skills: vec!["c".into()] },
    )
    .unwrap();
    w.feed(&x);
    w.feed(&y);
    (w, m, r, x, y)
}

#[test]
fn equivocation_evidence_slashes_reputation_and_bans_from_validators_once() {
    let (mut w, m, mut r, x, y) = forked();
    assert!(w.r.state().ledger.accounts[&m.id()].reputation.total > 0, "earned by its vote");
    assert!(w.r.state().compute_validators(T0 + 10).contains(&m.id()));
    let proofs = w.r.equivocation_proofs();
    assert_eq!(proofs.len(), 1, "the replica holds the fork");
    assert_eq!(proofs[0].0, m.id());
    let e = r.op(T0 + 10, "global", evidence(&x, &y));
    w.applied(&e);
    let acc = &w.r.state().ledger.accounts[&m.id()];
    assert_eq!(acc.reputation.total, 0);
    assert_eq!(acc.slashed_at_seq, Some(3));
    assert_eq!(acc.banned_until_ms, e.op().hlc.ms + EQUIVOCATION_BAN_MS);
    assert!(!w.r.state().compute_validators(T0 + 11).contains(&m.id()), "out of the validator set");
    assert!(w.r.state().compute_validators(acc.banned_until_ms).contains(&m.id()), "back after the ban");
    assert!(w.r.equivocation_proofs().is_empty(), "nothing left to prove");
    // Once only.
    let again = r.op(T0 + 12, "global", evidence(&y, &x));
    assert_eq!(w.rejected(&again), Reject::AlreadyPenalized(m.id()));
}

#[test]
fn equivocation_evidence_forged_or_mismatched_is_refused() {
    let (mut w, m, mut r, x, _) = forked();
    let mut other = Author::new(3);
    let o1 = other.op(T0 + 5, "global", OpBody::SkillsSet { skills: vec!["z".into()] });
    let cases: Vec<(OpBody, Reject)> = vec![
        (evidence(&x, &x), Reject::BadEvidence("the two ops are the same op")),
        (evidence(&x, &o1), Reject::BadEvidence("the ops have different authors")),
    ];
    for (body, want) in cases {
        let op = r.op(T0 + 20, "global", body);
        assert_eq!(w.rejected(&op), want);
    }
    // Another seq of the same author.
    let mut m2 = m;
    let _ = &mut m2;
    let seq2 = w.log.iter().find(|o| o.op().author == m2.id() && o.op().seq == 2).unwrap().clone();
    let op = r.op(T0 + 21, "global", evidence(&x, &seq2));
    assert_eq!(w.rejected(&op), Reject::BadEvidence("the ops are at different seqs"));
    // A tampered op (the signature no longer verifies).
    let mut bad = x.bytes().to_vec();
    let n = bad.len();
    bad[n - 70] ^= 1;
    let op = r.op(T0 + 22, "global", OpBody::Evidence { first: bad, second: x.bytes().to_vec() });
    assert_eq!(w.rejected(&op), Reject::BadEvidence("an op does not verify"));
    assert_eq!(w.r.state().ledger.accounts[&m2.id()].slashed_at_seq, None);
}

#[test]
fn equivocation_evidence_gives_one_state_in_any_delivery_order() {
    let (w, m, mut r, x, y) = forked();
    let mut q = Author::new(4);
    let e1 = r.op(T0 + 10, "global", evidence(&x, &y));
    let e2 = q.op(T0 + 11, "global", evidence(&y, &x));
    let mut all: Vec<VerifiedOp> = w.log.clone();
    all.push(e1);
    all.push(e2);
    let mut hashes = std::collections::BTreeSet::new();
    for k in 0..all.len() {
        let mut order = all.clone();
        order.rotate_left(k);
        if k % 2 == 1 {
            order.reverse();
        }
        let mut rep = Replica::open();
        for op in order {
            rep.receive_verified(op, u64::MAX / 2);
        }
        assert_eq!(rep.state().ledger.accounts[&m.id()].slashed_at_seq, Some(3));
        hashes.insert(rep.state_hash());
    }
    assert_eq!(hashes.len(), 1);
}
