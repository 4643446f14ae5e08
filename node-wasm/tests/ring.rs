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
