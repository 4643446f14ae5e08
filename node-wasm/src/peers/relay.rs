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
