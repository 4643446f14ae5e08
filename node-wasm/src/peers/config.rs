//! The peer manager's configuration.

use crate::session::ProofMode;

/// Transport configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// ICE server URLs (`stun:`/`turn:`); none are needed on one machine.
    pub ice_servers: Vec<String>,
    /// `iceTransportPolicy: "relay"`: connect through TURN relays only.
    pub relay_only: bool,
    /// Honest unless a test asks for a forged identity proof.
    pub proof_mode: ProofMode,
    /// Simultaneous peer connections.
    pub max_connections: usize,
    /// RTCPeerConnections this tab may ever create: Chromium allows only
    /// ~500 per tab lifetime, so creation is capped below that.
    pub connection_budget: u32,
    /// Time for a peer to prove its identity once the channel is open.
    pub handshake_timeout_ms: u32,
    /// Peers learned from peer records are dialled only while fewer than
    /// this many are proven; below it a dropped connection is replaced by
    /// another wanted peer.
    pub target_degree: usize,
    /// The directory is dialled only up to this many connections (a random
    /// sample of it), not everyone it lists: gossip needs a bounded degree.
    pub high_degree: usize,
    /// A connection not proven this long after it was created is dropped
    /// (an offer that never completes must not hold a slot forever).
    pub pending_timeout_ms: u32,
    /// Connections created for offers from peers we did not dial that are
    /// not proven yet, at most.
    pub max_pending_inbound: usize,
    /// Of the lifetime budget, this many RTCPeerConnections are kept for
    /// connections this node dials itself: strangers' offers cannot spend
    /// them.
    pub dial_reserve: u32,
    /// Connections (proven or pending, dialled or accepted) above which
    /// offers from new peers are refused with a bye (`max_degree`): a
    /// node dials up to `high_degree` and accepts a few more, so newcomers
    /// find room, but 50 pages do not form a full mesh.
    pub max_degree: usize,
    /// New peers one peer record may make this node dial, at most.
    pub max_record_dials: usize,
    /// This node's own dials not proven yet, at most at once: peers listed
    /// by a rendezvous may be Sybils that never answer, and each holds a
    /// slot until `pending_timeout_ms`; the rest wait in the dial queue.
    pub max_pending_dials: usize,
    /// This node's network: its genesis hash (rule `same_genesis`).
    pub genesis: [u8; 32],
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            ice_servers: vec![],
            relay_only: false,
            proof_mode: ProofMode::Honest,
            max_connections: 64,
            connection_budget: 400,
            handshake_timeout_ms: 10_000,
            target_degree: 8,
            high_degree: 16,
            pending_timeout_ms: 15_000,
            max_pending_inbound: 8,
            dial_reserve: 100,
            max_record_dials: 4,
            max_degree: 20,
            max_pending_dials: 4,
            genesis: crate::core::genesis::Genesis::default().hash().0,
        }
    }
}
