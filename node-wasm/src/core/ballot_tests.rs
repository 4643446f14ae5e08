//! Anonymous ballot tests, named after the rules in `core/ballot.rs` and
//! `docs/PROTOCOL.md` ("Anonymous votes").

use super::gov_tests::{Author, T0, World, close, proposal, vote};
use crate::core::ballot::{self, Tier};
use crate::core::governance::{ProposalStatus, VoteOutcome};
use crate::core::hlc::Hlc;
use crate::core::op::{OpBody, OpId, ProposalKind, SignedOp, VerifiedOp};
use crate::core::reject::Reject;
use crate::core::replica::Replica;
use crate::core::ring::{self, VotingSecret};
use crate::core::state::State;
use crate::identity::Identity;
use crate::service::governance as service;

fn key_op(a: &mut Author, ms: u64) -> VerifiedOp {
    let intent = service::publish_voting_key(&a.key).expect("proof");
    a.op(ms, &intent.channel, intent.body)
}

/// `n` members with published voting keys, and a generic proposal by the
/// first, opened after the keys.
fn setup(n: u8) -> (World, Vec<Author>, OpId) {
    let mut w = World::new();
    let mut people: Vec<Author> = (1..=n).map(Author::new).collect();
    for (i, a) in people.iter_mut().enumerate() {
        let op = key_op(a, T0 + i as u64);
        w.applied(&op);
    }
    let p = people[0].op(T0 + 100, "global", proposal(ProposalKind::Generic, &[], None));
    w.applied(&p);
    (w, people, p.id())
}

fn anon(w: &World, a: &Author, p: OpId, yes: bool, ms: u64) -> VerifiedOp {
    service::anonymous_vote(w.r.state(), &a.key, p, yes, ms, false, &mut rand_core::OsRng).expect("anonymous vote")
}

fn linked(w: &World, a: &mut Author, p: OpId, yes: bool, ms: u64) -> VerifiedOp {
    let body = service::step(w.r.state(), &a.key, p, service::Step::Vote(yes)).expect("vote").body;
    assert!(matches!(body, OpBody::LinkedVote { .. }), "a ring member's public vote is linked");
    a.op(ms, "global", body)
}

#[test]
fn voting_key_publish_needs_a_proof_of_possession_and_is_fixed() {
    let mut w = World::new();
    let (mut a, mut b) = (Author::new(1), Author::new(2));
    let good = key_op(&mut a, T0);
    w.applied(&good);
    let OpBody::VotingKeyPublish { key, proof } = good.op().body.clone() else { unreachable!() };
    // B copies A's key and proof: the proof is bound to A's identity.
    let copied = b.op(T0 + 1, "global", OpBody::VotingKeyPublish { key, proof: proof.clone() });
    assert_eq!(w.rejected(&copied), Reject::VotingKeyTaken);
    // B's own proof for A's key cannot exist; a proof of B's key under A's
    // key is refused.
    let b_key = VotingSecret::from_seed(&b.key.seed()).public();
    let wrong = b.op(T0 + 2, "global", OpBody::VotingKeyPublish { key: b_key, proof });
    assert!(matches!(w.rejected(&wrong), Reject::BadVotingKey(_)));
    let ok = key_op(&mut b, T0 + 3);
    w.applied(&ok);
    // Publishing the same key again changes nothing; another key is refused.
    let again = key_op(&mut a, T0 + 4);
    w.applied(&again);
    let other = VotingSecret::from_seed(&[77; 32]);
    let proof = ballot::prove_possession(&other, &a.id()).unwrap();
    let switch = a.op(T0 + 5, "global", OpBody::VotingKeyPublish { key: other.public(), proof });
    assert_eq!(w.rejected(&switch), Reject::VotingKeyFixed);
}

#[test]
fn rings_fixed_at_open_split_by_tier_and_ignore_later_keys() {
    let (mut w, mut people, p) = setup(3);
    let ring = &w.proposal(p).ballot;
    assert_eq!(ring.rings.len(), 1, "three novices, one ring");
    assert_eq!(ring.rings[0].tier, Tier::Novice);
    assert_eq!(ring.rings[0].members.len(), 3);
    assert!(ring.rings[0].members.windows(2).all(|x| x[0] < x[1]), "sorted by key");
    // A key published after the proposal opened is not in its rings.
    let mut late = Author::new(9);
    let op = key_op(&mut late, T0 + 200);
    w.applied(&op);
    assert!(!w.proposal(p).ballot.ring_of.contains_key(&late.id()));
    assert!(service::anonymous_vote(w.r.state(), &late.key, p, true, T0 + 300, false, &mut rand_core::OsRng).is_err());
    // ... and its public vote is a plain one.
    let body = service::step(w.r.state(), &late.key, p, service::Step::Vote(true)).unwrap().body;
    assert!(matches!(body, OpBody::Vote { .. }));
    // A later proposal has it.
    let q = people[0].op(T0 + 400, "global", proposal(ProposalKind::Generic, &[], None));
    w.applied(&q);
    assert!(w.proposal(q.id()).ballot.ring_of.contains_key(&late.id()));
    assert_eq!(Tier::of(50_000), Tier::Novice);
    assert_eq!(Tier::of(50_001), Tier::Intermediate);
    assert_eq!(Tier::of(150_001), Tier::Expert);
}

#[test]
fn anonymous_vote_counts_with_its_tier_weight_and_names_nobody() {
    let (mut w, mut people, p) = setup(3);
    let before = w.r.state().ledger.accounts.len();
    let minted = w.r.state().ledger.minted;
    let v0 = anon(&w, &people[0], p, true, T0 + 200);
    let v1 = anon(&w, &people[1], p, false, T0 + 201);
    w.applied(&v0);
    w.applied(&v1);
    // The carriers are fresh keys: no account, nothing minted, and no
    // member's id anywhere in the ops.
    assert_eq!(w.r.state().ledger.accounts.len(), before);
    assert_eq!(w.r.state().ledger.minted, minted);
    for v in [&v0, &v1] {
        assert!(people.iter().all(|a| a.id() != v.op().author));
        let bytes = v.bytes();
        for a in &people {
            assert!(!bytes.windows(32).any(|x| x == a.id().0), "the voter's id is not in the op");
        }
    }
    let pub_vote = linked(&w, &mut people[2], p, true, T0 + 202);
    w.applied(&pub_vote);
    let t = w.r.state().tally(w.proposal(p), T0 + 300);
    assert_eq!((t.anonymous.total, t.anonymous.yes, t.anonymous.no), (2, 1, 1));
    assert_eq!(t.anonymous.by_tier["novice"], [1, 1]);
    assert_eq!(t.details.len(), 1, "one public vote");
    // Weights: public 1.00 (no reputation) + anonymous novice 1.0 yes; 1.0 no.
    assert_eq!(t.yes_weight_milli, t.details[0].weight_milli + Tier::Novice.weight_milli());
    assert_eq!(t.no_weight_milli, Tier::Novice.weight_milli());
    assert_eq!(t.outcome, VoteOutcome::Approved);
    let c = people[0].op(T0 + 500, "global", close(p));
    w.applied(&c);
    assert_eq!(w.proposal(p).status, ProposalStatus::Closed);
    assert_eq!(w.proposal(p).tally.as_ref().unwrap().anonymous.total, 2);
}

#[test]
fn one_vote_per_member_a_second_anonymous_vote_is_refused_in_any_order() {
    let (mut w, people, p) = setup(3);
    let first = anon(&w, &people[1], p, true, T0 + 200);
    let second = anon(&w, &people[1], p, false, T0 + 201);
    let other = anon(&w, &people[2], p, false, T0 + 202);
    assert_ne!(first.op().author, second.op().author, "two fresh carriers");
    w.applied(&first);
    assert_eq!(w.rejected(&second), Reject::AlreadyVoted);
    w.applied(&other);
    // Every delivery order gives one state: the earlier of the two counts.
    let setup_ops = w.log[..4].to_vec();
    let votes = [first, second, other];
    let mut hashes = std::collections::BTreeSet::new();
    for order in [[0, 1, 2], [1, 0, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1], [0, 2, 1]] {
        let mut r = Replica::open();
        for op in order.iter().map(|&i| &votes[i]).chain(&setup_ops) {
            r.receive_verified(op.clone(), u64::MAX / 2);
        }
        let t = r.state().tally(&r.state().gov.proposals[&p], T0 + 300);
        assert_eq!((t.anonymous.total, t.anonymous.yes), (2, 1));
        hashes.insert(r.state_hash());
    }
    assert_eq!(hashes.len(), 1);
    assert_eq!(hashes.into_iter().next().unwrap(), w.r.state_hash());
}

#[test]
fn one_vote_per_member_public_and_anonymous_cannot_both_count() {
    let (mut w, mut people, p) = setup(3);
    // Anonymous first, then a linked public vote: refused.
    let a = anon(&w, &people[0], p, true, T0 + 200);
    w.applied(&a);
    let body = OpBody::LinkedVote {
        proposal: p,
        yes: false,
        link: {
            let s = VotingSecret::from_seed(&people[0].key.seed());
            ring::sign(&s, &[s.public()], &p.0, &ballot::link_message(&people[0].id()), &[1; 32]).unwrap()
        },
    };
    let public = people[0].op(T0 + 201, "global", body);
    assert_eq!(w.rejected(&public), Reject::AlreadyVoted);
    // A public vote without the link, from a ring member: refused.
    let plain = people[1].op(T0 + 202, "global", vote(p, true));
    assert_eq!(w.rejected(&plain), Reject::LinkRequired);
    // Linked public first (and a re-vote), then anonymous: refused.
    let l1 = linked(&w, &mut people[1], p, true, T0 + 203);
    w.applied(&l1);
    let l2 = linked(&w, &mut people[1], p, false, T0 + 204);
    w.applied(&l2);
    let late = service::anonymous_vote(w.r.state(), &people[1].key, p, true, T0 + 205, false, &mut rand_core::OsRng);
    assert_eq!(late.unwrap_err(), Reject::AlreadyVoted.to_string(), "refused before signing");
    // Made anyway (a modified client): the fold refuses it.
    let mut forced = World::new();
    for op in &w.log[..4] {
        forced.applied(op);
    }
    let sneaky = anon(&forced, &people[1], p, true, T0 + 205);
    assert_eq!(w.rejected(&sneaky), Reject::AlreadyVoted);
    // A link by someone outside the rings is refused too.
    let mut out = Author::new(40);
    let s = VotingSecret::from_seed(&out.key.seed());
    let link = ring::sign(&s, &[s.public()], &p.0, &ballot::link_message(&out.id()), &[2; 32]).unwrap();
    let op = out.op(T0 + 206, "global", OpBody::LinkedVote { proposal: p, yes: true, link });
    assert_eq!(w.rejected(&op), Reject::LinkNotExpected);
}

#[test]
fn anonymous_vote_forged_moved_or_reused_is_refused() {
    let (mut w, people, p) = setup(3);
    let good = anon(&w, &people[0], p, true, T0 + 200);
    let OpBody::AnonymousVote { signature, ring, .. } = good.op().body.clone() else { unreachable!() };
    let carrier = Identity::from_seed([55; 32]);
    let mk = |body: OpBody, seq: u64, prev: OpId| {
        SignedOp::create(&carrier, seq, prev, Hlc::new(T0 + 210, 0), "global", body).unwrap()
    };
    // The signature moved onto another carrier's op.
    let moved = mk(OpBody::AnonymousVote { proposal: p, yes: true, ring, signature: signature.clone() }, 1, OpId::ZERO);
    assert_eq!(w.rejected(&moved), Reject::BadRingSignature);
    // The vote flipped.
    let flipped = Identity::from_seed([56; 32]);
    let op = SignedOp::create(
        &flipped,
        1,
        OpId::ZERO,
        Hlc::new(T0 + 211, 0),
        "global",
        OpBody::AnonymousVote { proposal: p, yes: false, ring, signature: signature.clone() },
    )
    .unwrap();
    assert_eq!(w.rejected(&op), Reject::BadRingSignature);
    // An outsider signs over a ring of its own keys claiming ring 0.
    let fake: Vec<VotingSecret> = (0..3).map(|i| VotingSecret::from_seed(&[100 + i; 32])).collect();
    let fake_ring: Vec<_> = fake.iter().map(VotingSecret::public).collect();
    let outsider = Identity::from_seed([57; 32]);
    let msg = ballot::anonymous_message(&outsider.node_id(), true, 0);
    let sig = ring::sign(&fake[0], &fake_ring, &p.0, &msg, &[3; 32]).unwrap();
    let op = SignedOp::create(
        &outsider,
        1,
        OpId::ZERO,
        Hlc::new(T0 + 212, 0),
        "global",
        OpBody::AnonymousVote { proposal: p, yes: true, ring: 0, signature: sig.clone() },
    )
    .unwrap();
    assert_eq!(w.rejected(&op), Reject::BadRingSignature);
    let op = SignedOp::create(
        &Identity::from_seed([59; 32]),
        1,
        OpId::ZERO,
        Hlc::new(T0 + 213, 0),
        "global",
        OpBody::AnonymousVote { proposal: p, yes: true, ring: 7, signature: sig },
    )
    .unwrap();
    assert_eq!(w.rejected(&op), Reject::NoSuchRing(7));
    // Not the carrier's first op.
    let other = Identity::from_seed([58; 32]);
    let at = |seq: u64, prev: OpId, body: OpBody| {
        SignedOp::create(&other, seq, prev, Hlc::new(T0 + 220 + seq, 0), "global", body).unwrap()
    };
    let first = at(1, OpId::ZERO, OpBody::SkillsSet { skills: vec!["x".into()] });
    w.applied(&first);
    let second = at(2, first.id(), OpBody::AnonymousVote { proposal: p, yes: true, ring, signature });
    assert_eq!(w.rejected(&second), Reject::AnonymousNotFresh);
    // The genuine one still counts.
    w.applied(&good);
}

#[test]
fn anonymous_vote_after_the_deadline_or_the_close_is_refused() {
    let (mut w, mut people, p) = setup(2);
    let deadline = w.proposal(p).deadline_ms;
    let late = anon(&w, &people[1], p, true, deadline + 1);
    assert!(matches!(w.rejected(&late), Reject::VotingEnded { .. }));
    let v = anon(&w, &people[0], p, true, T0 + 200);
    let c = people[0].op(T0 + 300, "global", close(p));
    w.applied(&v);
    w.applied(&c);
    let after = service::anonymous_vote(w.r.state(), &people[1].key, p, true, T0 + 400, false, &mut rand_core::OsRng);
    assert!(after.is_err());
}

#[test]
fn rings_fixed_at_open_small_tiers_join_the_tier_below_and_big_ones_split_evenly() {
    let mut w = World::new();
    let mut people: Vec<Author> = (1..=8).map(Author::new).collect();
    for (i, a) in people.iter_mut().enumerate() {
        let op = key_op(a, T0 + i as u64);
        w.applied(&op);
    }
    let mut st: State = w.r.state().clone();
    let set = |st: &mut State, who: &Author, points: u64| {
        if let Some(acc) = st.ledger.accounts.get_mut(&who.id()) {
            acc.reputation.total = points * 1000;
        }
    };
    // Four experts get their own ring; one lone intermediate joins the
    // novices (a ring of one would name it).
    for a in &people[..4] {
        set(&mut st, a, 200);
    }
    set(&mut st, &people[4], 100);
    let b = ballot::rings_at_open(&st.ledger.accounts, &st.gov.voting_keys, &st.params.rules, T0 + 10);
    let shape: Vec<(Tier, usize)> = b.rings.iter().map(|r| (r.tier, r.members.len())).collect();
    assert_eq!(shape, vec![(Tier::Expert, 4), (Tier::Novice, 4)]);
    assert_eq!(b.ring_of[&people[4].id()], 1, "the intermediate votes in the novice ring");
    // Three experts only, nobody in between: all eight in one novice ring.
    set(&mut st, &people[3], 0);
    set(&mut st, &people[4], 0);
    let b = ballot::rings_at_open(&st.ledger.accounts, &st.gov.voting_keys, &st.params.rules, T0 + 10);
    assert_eq!(b.rings.len(), 1);
    assert_eq!(b.rings[0].members.len(), 8);
    // 65 members: two rings of 32 and 33, not 64 and 1.
    let keys: std::collections::BTreeMap<_, _> = (0..65u8)
        .map(|i| {
            let id = Identity::from_seed([i + 1; 32]).node_id();
            (id, VotingSecret::from_seed(&[i + 1; 32]).public())
        })
        .collect();
    let mut accounts = std::collections::BTreeMap::new();
    for id in keys.keys() {
        let mut acc = crate::core::ledger::Account::new(0, Hlc::ZERO);
        acc.founder = true;
        accounts.insert(*id, acc);
    }
    let b = ballot::rings_at_open(&accounts, &keys, &st.params.rules, T0);
    let sizes: Vec<usize> = b.rings.iter().map(|r| r.members.len()).collect();
    assert_eq!(sizes, vec![32, 33]);
    assert_eq!(b.ring_of.len(), 65);
}
