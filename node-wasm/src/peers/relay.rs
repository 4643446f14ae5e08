//! Signal relaying through peers, for when the rendezvous is unreachable.
//!
//! A node sends a signed [`RelaySignal`](crate::wire::RelaySignal) to the
//! peers that list the target among their neighbours (any proven peer if
//! none does); each relay forwards it at most one hop, and only to a peer it
//! has proven. Rule `relay_rate_limit`: a peer may have this node forward at
//! most [`MAX_RELAYS_PER_SEC`] signals per second, so it cannot use us as an
//! amplifier (a negotiation needs a handful).

use crate::identity::NodeId;
use std::collections::BTreeMap;

/// Signals one peer may have this node forward per second.
pub const MAX_RELAYS_PER_SEC: u32 = 50;
/// Length of one rate window.
const WINDOW_MS: f64 = 1000.0;

/// Per-source fixed one-second windows.
#[derive(Debug, Default)]
pub struct RelayWindows {
    windows: BTreeMap<NodeId, (f64, u32)>,
}

impl RelayWindows {
    /// Counts one relay from `via` at `now`; true while within the rate.
    pub fn admit(&mut self, via: NodeId, now: f64) -> bool {
        let w = self.windows.entry(via).or_insert((now, 0));
        if now - w.0 >= WINDOW_MS {
            *w = (now, 0);
        }
        w.1 = w.1.saturating_add(1);
        w.1 <= MAX_RELAYS_PER_SEC
    }

    /// Forgets a peer's window (it disconnected), so the map stays bounded
    /// by the number of connections.
    pub fn forget(&mut self, via: &NodeId) {
        self.windows.remove(via);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    #[test]
    fn relay_rate_limit_resets_each_second() {
        let a = Identity::from_seed([1; 32]).node_id();
        let b = Identity::from_seed([2; 32]).node_id();
        let mut w = RelayWindows::default();
        for _ in 0..MAX_RELAYS_PER_SEC {
            assert!(w.admit(a, 10.0));
        }
        assert!(!w.admit(a, 500.0), "51st in the same second");
        assert!(w.admit(b, 500.0), "windows are per source");
        assert!(w.admit(a, 1010.0), "a new window");
    }
}

/// How far a relayed signal's send time may be from our clock (either way):
/// wide enough for unsynchronised clocks, and the span nonces are kept for.
pub const RELAY_WINDOW_MS: u64 = 5 * 60_000;
/// Nonces remembered per source within the window.
const MAX_NONCES_PER_SOURCE: usize = 512;
/// Sources remembered at most; when full, new sources are refused until
/// old entries expire (evicting would let captured signals be replayed).
const MAX_SOURCES: usize = 1024;

/// Rule `relay_replay_window`: a signal relayed to this node carries the
/// time it was sent and a nonce, inside what its author signed. It is
/// refused when the time is outside [`RELAY_WINDOW_MS`] of our clock, or
/// when the same (author, nonce) was already seen: an old offer replayed
/// by a peer that once carried it cannot tear down a working connection.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: BTreeMap<NodeId, BTreeMap<u64, u64>>,
}

impl ReplayGuard {
    /// Checks and records one relayed signal of `from` sent at `sent_ms`
    /// with `nonce`, at our wall time `wall_ms`.
    pub fn admit(&mut self, from: NodeId, nonce: u64, sent_ms: u64, wall_ms: u64) -> Result<(), &'static str> {
        if sent_ms.abs_diff(wall_ms) > RELAY_WINDOW_MS {
            return Err("sent too long ago (or too far ahead of our clock)");
        }
        if !self.seen.contains_key(&from) && self.seen.len() >= MAX_SOURCES {
            self.seen.retain(|_, nonces| {
                nonces.retain(|_, exp| *exp > wall_ms);
                !nonces.is_empty()
            });
            if self.seen.len() >= MAX_SOURCES {
                return Err("too many relaying sources to remember");
            }
        }
        let nonces = self.seen.entry(from).or_default();
        if nonces.contains_key(&nonce) {
            return Err("replayed");
        }
        if nonces.len() >= MAX_NONCES_PER_SOURCE {
            nonces.retain(|_, exp| *exp > wall_ms);
            if nonces.len() >= MAX_NONCES_PER_SOURCE {
                return Err("too many recent signals from this source");
            }
        }
        nonces.insert(nonce, sent_ms.max(wall_ms).saturating_add(RELAY_WINDOW_MS));
        Ok(())
    }
}

#[cfg(test)]
mod replay_tests {
    use super::*;
    use crate::identity::Identity;

    #[test]
    fn relay_replay_window_refuses_old_and_repeated_signals() {
        let a = Identity::from_seed([1; 32]).node_id();
        let mut g = ReplayGuard::default();
        let now = 1_000_000_000;
        assert!(g.admit(a, 7, now, now).is_ok());
        assert_eq!(g.admit(a, 7, now, now + 10), Err("replayed"));
        assert!(g.admit(a, 8, now - RELAY_WINDOW_MS, now).is_ok(), "at the edge of the window");
        assert!(g.admit(a, 9, now - RELAY_WINDOW_MS - 1, now).is_err(), "too old");
        assert!(g.admit(a, 10, now + RELAY_WINDOW_MS + 1, now).is_err(), "too far ahead");
        // Past the window a nonce is forgotten, but so is its signal's time.
        assert!(g.admit(a, 7, now, now + 2 * RELAY_WINDOW_MS).is_err());
    }

    #[test]
    fn replay_memory_is_bounded() {
        let mut g = ReplayGuard::default();
        let a = Identity::from_seed([1; 32]).node_id();
        for n in 0..MAX_NONCES_PER_SOURCE as u64 {
            assert!(g.admit(a, n, 0, 0).is_ok());
        }
        assert!(g.admit(a, u64::MAX, 0, 0).is_err(), "full for this source");
        for s in 0..MAX_SOURCES as u32 {
            let mut seed = [3u8; 32];
            seed[..4].copy_from_slice(&s.to_le_bytes());
            let _ = g.admit(Identity::from_seed(seed).node_id(), 1, 0, 0);
        }
        assert!(g.seen.len() <= MAX_SOURCES);
    }
}
