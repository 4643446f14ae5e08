//! The anonymous ballot's cost in the fold (native): `members` identities
//! publish voting keys, one proposal opens (rings of up to 64), each member
//! votes anonymously; timed: folding the votes (each verified once), a
//! re-fold from scratch (the ring checks memoised), and the tally.
//!
//! ```text
//! cargo run --release -p node-wasm --example ballot_bench -- 256
//! ```

use node_wasm::core::hlc::Hlc;
use node_wasm::core::op::{NewProposal, OpBody, OpId, ProposalKind, SignedOp, VerifiedOp};
use node_wasm::core::replica::Replica;
use node_wasm::identity::Identity;
use node_wasm::service::governance as service;
use std::time::Instant;

const T0: u64 = 1_700_000_000_000;

fn main() {
    let members: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    let people: Vec<Identity> = (0..members)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Identity::from_seed(seed)
        })
        .collect();
    let mut setup: Vec<VerifiedOp> = Vec::new();
    for (i, p) in people.iter().enumerate() {
        let Ok(intent) = service::publish_voting_key(p) else { return };
        let Ok(op) = SignedOp::create(p, 1, OpId::ZERO, Hlc::new(T0 + i as u64, 0), &intent.channel, intent.body)
        else {
            return;
        };
        setup.push(op);
    }
    let body = OpBody::ProposalCreate(NewProposal {
        kind: ProposalKind::Generic,
        title: "bench".into(),
        description: String::new(),
        tags: vec![],
        command: None,
    });
    let Ok(create) = SignedOp::create(&people[0], 2, setup[0].id(), Hlc::new(T0 + 1_000_000, 0), "global", body) else {
        return;
    };
    let proposal = create.id();
    setup.push(create);
    let mut r = Replica::open();
    for op in &setup {
        r.receive_verified(op.clone(), u64::MAX / 2);
    }
    let rings = r.state().gov.proposals[&proposal].ballot.rings.len();
    let t = Instant::now();
    let mut votes = Vec::new();
    for (i, p) in people.iter().enumerate() {
        let at = T0 + 2_000_000 + i as u64;
        match service::anonymous_vote(r.state(), p, proposal, i % 3 != 0, at, false, &mut rand_core::OsRng) {
            Ok(v) => votes.push(v),
            Err(e) => return eprintln!("{e}"),
        }
    }
    let sign_ms = t.elapsed().as_secs_f64() * 1e3 / members as f64;
    let t = Instant::now();
    for v in &votes {
        r.receive_verified(v.clone(), u64::MAX / 2);
    }
    let fold_ms = t.elapsed().as_secs_f64() * 1e3 / members as f64;
    let mut again = Replica::open();
    let t = Instant::now();
    for op in setup.iter().chain(&votes) {
        again.receive_verified(op.clone(), u64::MAX / 2);
    }
    let refold_ms = t.elapsed().as_secs_f64() * 1e3;
    let p = &r.state().gov.proposals[&proposal];
    let t = Instant::now();
    let runs = 100;
    let mut total = 0;
    for _ in 0..runs {
        total = r.state().tally(p, T0 + 3_000_000).anonymous.total;
    }
    let tally_ms = t.elapsed().as_secs_f64() * 1e3 / runs as f64;
    assert_eq!(total as usize, members);
    assert_eq!(again.state_hash(), r.state_hash());
    println!("| members | rings | sign (ms/vote) | fold (ms/vote) | re-fold all (ms) | tally (ms) |");
    println!("|---|---|---|---|---|---|");
    println!("| {members} | {rings} | {sign_ms:.2} | {fold_ms:.2} | {refold_ms:.1} | {tally_ms:.2} |");
}
