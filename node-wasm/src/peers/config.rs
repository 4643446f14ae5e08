//! The peer manager's configuration.

use crate::session::ProofMode;

/// Transport configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// ICE server URLs (`stun:`/`turn:`); none are needed on one machine.
    pub ice_servers: Vec<String>,
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
    /// this many are proven.
    pub target_degree: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            ice_servers: vec![],
            proof_mode: ProofMode::Honest,
            max_connections: 64,
            connection_budget: 400,
            handshake_timeout_ms: 10_000,
            target_degree: 8,
        }
    }
}
