//! Ring signature cost by ring size (native): sign and verify a vote on a
//! proposal with rings of 16, 64 and 256 members.
//!
//! ```text
//! cargo run --release -p node-wasm --example ring_bench
//! ```

use node_wasm::core::ring::{VotingKey, VotingSecret, sign, verify};
use std::time::Instant;

fn main() {
    println!("| ring | sign (ms) | verify (ms) | signature bytes |");
    println!("|---|---|---|---|");
    for n in [16usize, 64, 256] {
        let secrets: Vec<VotingSecret> = (0..n)
            .map(|i| {
                VotingSecret::from_seed(
                    &[(i % 251) as u8, (i / 251) as u8, 1, 2].repeat(8).try_into().unwrap_or([0; 32]),
                )
            })
            .collect();
        let ring: Vec<VotingKey> = secrets.iter().map(VotingSecret::public).collect();
        let runs = (2_048 / n).max(4);
        let t = Instant::now();
        let mut sig = None;
        for r in 0..runs {
            sig = sign(&secrets[r % n], &ring, &[7; 32], b"yes", &[r as u8; 32]).ok();
        }
        let sign_ms = t.elapsed().as_secs_f64() * 1e3 / runs as f64;
        let Some(sig) = sig else { return };
        let t = Instant::now();
        for _ in 0..runs {
            let _ = verify(&sig, &ring, &[7; 32], b"yes");
        }
        let verify_ms = t.elapsed().as_secs_f64() * 1e3 / runs as f64;
        println!("| {n} | {sign_ms:.2} | {verify_ms:.2} | {} |", 64 + 32 * sig.responses.len());
    }
}
