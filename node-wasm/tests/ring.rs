//! Ring signatures (`core::ring`) in headless Chromium: votes signed and
//! verified in wasm for rings of 16, 64 and 256 members, timed (the
//! figures that set the ring-size limit; docs/BENCHMARKS.md, "Ring
//! signatures").
//!
//! `wasm-pack test --headless --chrome --mode no-install node-wasm --test ring -- --nocapture`
//! (add `--release` before `--headless` for an optimized build).
#![cfg(target_arch = "wasm32")]

use node_wasm::console_log;
use node_wasm::core::ring::{RingError, VotingKey, VotingSecret, sign, verify};
use node_wasm::runtime::util::{now_ms, random_bytes};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn ring_sign_and_verify_by_ring_size_in_the_browser() {
    let proposal = random_bytes::<32>();
    for n in [16usize, 64, 256] {
        let secrets: Vec<VotingSecret> = (0..n).map(|_| VotingSecret::from_seed(&random_bytes::<32>())).collect();
        let ring: Vec<VotingKey> = secrets.iter().map(VotingSecret::public).collect();
        let runs = (512 / n).max(2);
        let mut sign_ms = 0.0;
        let mut verify_ms = 0.0;
        for r in 0..runs {
            let me = &secrets[(r * 7) % n];
            let t = now_ms();
            let sig = sign(me, &ring, &proposal, b"yes", &random_bytes::<32>()).expect("a member signs");
            sign_ms += now_ms() - t;
            let t = now_ms();
            let image = verify(&sig, &ring, &proposal, b"yes");
            verify_ms += now_ms() - t;
            assert_eq!(image, Ok(me.image(&proposal)));
            assert_eq!(verify(&sig, &ring, &proposal, b"no"), Err(RingError::Invalid));
        }
        console_log!(
            "ring of {n}: sign {:.1} ms, verify {:.1} ms (mean of {runs})",
            sign_ms / runs as f64,
            verify_ms / runs as f64
        );
    }
}

/// The anonymous ballot in the fold, in Chromium: 64 members publish voting
/// keys, a proposal opens (one ring of 64), each votes anonymously; timed:
/// folding the votes (each ring signature verified once), and the tally.
#[wasm_bindgen_test]
fn anonymous_ballot_fold_and_tally_in_the_browser() {
    use node_wasm::core::hlc::Hlc;
    use node_wasm::core::op::{NewProposal, OpBody, OpId, ProposalKind, SignedOp};
    use node_wasm::core::replica::Replica;
    use node_wasm::identity::Identity;
    use node_wasm::service::governance as service;
    const T0: u64 = 1_700_000_000_000;
    let people: Vec<Identity> = (0..64).map(|_| Identity::from_seed(random_bytes::<32>())).collect();
    let mut r = Replica::open();
    let mut first = None;
    for (i, p) in people.iter().enumerate() {
        let intent = service::publish_voting_key(p).expect("proof");
        let op = SignedOp::create(p, 1, OpId::ZERO, Hlc::new(T0 + i as u64, 0), &intent.channel, intent.body)
            .expect("signed");
        first.get_or_insert(op.id());
        r.receive_verified(op, u64::MAX / 2);
    }
    let body = OpBody::ProposalCreate(NewProposal {
        kind: ProposalKind::Generic,
        title: "ballot".into(),
        description: String::new(),
        tags: vec![],
        command: None,
    });
    let create = SignedOp::create(&people[0], 2, first.expect("a key op"), Hlc::new(T0 + 1_000, 0), "global", body)
        .expect("signed");
    let proposal = create.id();
    r.receive_verified(create, u64::MAX / 2);
    let votes: Vec<_> = people
        .iter()
        .enumerate()
        .map(|(i, p)| {
            service::anonymous_vote(
                r.state(),
                p,
                proposal,
                i % 2 == 0,
                T0 + 2_000 + i as u64,
                false,
                &mut rand_core::OsRng,
            )
            .expect("a ring member votes")
        })
        .collect();
    let t = now_ms();
    for v in votes {
        r.receive_verified(v, u64::MAX / 2);
    }
    let fold_ms = (now_ms() - t) / 64.0;
    let p = r.state().gov.proposals[&proposal].clone();
    let t = now_ms();
    let tally = r.state().tally(&p, T0 + 10_000);
    let tally_ms = now_ms() - t;
    assert_eq!((tally.anonymous.total, tally.anonymous.yes), (64, 32));
    console_log!("anonymous ballot, ring of 64: fold {fold_ms:.1} ms per vote, tally of 64 votes {tally_ms:.2} ms");
}
