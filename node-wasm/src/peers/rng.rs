//! Injected randomness: a hash-based generator seeded once by the driver
//! with 32 bytes from the platform's CSPRNG (the simulator seeds it from its
//! own seed, so runs repeat). SHA-256 over (seed, counter) is unpredictable
//! to a peer without the seed, which the handshake nonces need.

use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct Rng {
    seed: [u8; 32],
    counter: u64,
}

impl Rng {
    pub fn new(seed: [u8; 32]) -> Rng {
        Rng { seed, counter: 0 }
    }

    /// 32 fresh bytes.
    pub fn bytes32(&mut self) -> [u8; 32] {
        self.counter = self.counter.wrapping_add(1);
        let mut h = Sha256::new();
        h.update(b"synapse-ng/peers/rng/v1");
        h.update(self.seed);
        h.update(self.counter.to_le_bytes());
        h.finalize().into()
    }

    pub fn next_u64(&mut self) -> u64 {
        let b = self.bytes32();
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    pub fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
}
