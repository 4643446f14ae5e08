//! Peer scoring, GossipSub v1.1 adapted to browsers.
//!
//! ```text
//! score = w2·min(P2, cap)  −  Σ_topics w3·P3²  −  w4·P4²  −  w7·P7²
//! P2  first deliveries of valid messages (decaying)
//! P3  mesh delivery deficit: max(0, ratio·expected − delivered) once the
//!     peer has been in the topic mesh for the activation time and enough
//!     messages were expected of it
//! P4  invalid messages (the validator rejected them, or Input::Invalid)
//! P7  misbehaviour: GRAFT during backoff, WANT_PIECE for an unknown id,
//!     broken WANT promises, malformed packets, control-cap excess
//! ```
//! There is no IP-colocation term (P6): browsers behind TURN or relays share
//! addresses, so it would punish honest users. Scores survive disconnects
//! (a peer cannot wash its score by reconnecting) and decay every heartbeat.
//! Squared counters make a single accident cheap and a pattern expensive.

use super::config::ScoreParams;
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone)]
struct MeshStats {
    joined_ms: u64,
    expected: f64,
    delivered: f64,
}

/// One peer's counters.
#[derive(Debug, Default, Clone)]
pub struct PeerScore {
    first_deliveries: f64,
    invalid: f64,
    behaviour: f64,
    mesh: BTreeMap<String, MeshStats>,
}

impl PeerScore {
    pub fn score(&self, now: u64, p: &ScoreParams) -> f64 {
        let mut s = p.first_delivery_weight * self.first_deliveries.min(p.first_delivery_cap);
        for m in self.mesh.values() {
            if now.saturating_sub(m.joined_ms) >= p.mesh_activation_ms && m.expected >= p.mesh_min_expected {
                let deficit = p.mesh_delivery_ratio * m.expected - m.delivered;
                if deficit > 0.0 {
                    s -= p.mesh_deficit_weight * deficit * deficit;
                }
            }
        }
        s - p.invalid_weight * self.invalid * self.invalid - p.behaviour_weight * self.behaviour * self.behaviour
    }

    pub fn first_delivery(&mut self) {
        self.first_deliveries += 1.0;
    }

    pub fn invalid(&mut self) {
        self.invalid += 1.0;
    }

    pub fn misbehaved(&mut self) {
        self.behaviour += 1.0;
    }

    pub fn joined_mesh(&mut self, topic: &str, now: u64) {
        self.mesh.insert(topic.to_owned(), MeshStats { joined_ms: now, ..MeshStats::default() });
    }

    pub fn left_mesh(&mut self, topic: &str) {
        self.mesh.remove(topic);
    }

    /// A message arrived on `topic` while the peer was in its mesh.
    pub fn mesh_expected(&mut self, topic: &str) {
        if let Some(m) = self.mesh.get_mut(topic) {
            m.expected += 1.0;
        }
    }

    /// The peer delivered a message on `topic` (first or duplicate).
    pub fn mesh_delivered(&mut self, topic: &str) {
        if let Some(m) = self.mesh.get_mut(topic) {
            m.delivered += 1.0;
        }
    }

    pub fn decay(&mut self, p: &ScoreParams) {
        self.first_deliveries = zeroed(self.first_deliveries * p.first_delivery_decay);
        self.invalid = zeroed(self.invalid * p.invalid_decay);
        self.behaviour = zeroed(self.behaviour * p.behaviour_decay);
        for m in self.mesh.values_mut() {
            m.expected = zeroed(m.expected * p.mesh_decay);
            m.delivered = zeroed(m.delivered * p.mesh_decay);
        }
    }

    /// Nothing left worth remembering about a disconnected peer.
    pub fn is_neutral(&self) -> bool {
        self.first_deliveries == 0.0 && self.invalid == 0.0 && self.behaviour == 0.0 && self.mesh.is_empty()
    }
}

/// Counters below 0.01 are dropped so that decayed scores reach exactly 0.
fn zeroed(x: f64) -> f64 {
    if x < 0.01 { 0.0 } else { x }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_messages_graylist_quickly() {
        let p = ScoreParams::default();
        let mut s = PeerScore::default();
        s.invalid();
        assert!(s.score(0, &p) < p.gossip_threshold);
        s.invalid();
        assert!(s.score(0, &p) < p.publish_threshold);
        s.invalid();
        assert!(s.score(0, &p) < p.graylist_threshold);
    }

    #[test]
    fn mesh_deficit_only_after_activation() {
        let p = ScoreParams::default();
        let mut s = PeerScore::default();
        s.joined_mesh("t", 0);
        for _ in 0..100 {
            s.mesh_expected("t");
        }
        assert_eq!(s.score(p.mesh_activation_ms - 1, &p), 0.0);
        assert!(s.score(p.mesh_activation_ms, &p) < 0.0);
        for _ in 0..5 {
            s.mesh_delivered("t");
        }
        assert_eq!(s.score(p.mesh_activation_ms, &p), 0.0);
    }

    #[test]
    fn decay_returns_to_neutral() {
        let p = ScoreParams::default();
        let mut s = PeerScore::default();
        s.misbehaved();
        for _ in 0..1000 {
            s.decay(&p);
        }
        assert!(s.is_neutral());
    }
}
