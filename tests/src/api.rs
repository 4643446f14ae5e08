//! Typed views of what `window.synapse` returns. Unknown fields are ignored
//! and missing counters read as zero, so the harness survives additions.

use serde::Deserialize;

/// One verified hello (`synapse.hellos()`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Hello {
    /// The verified author.
    pub from: String,
    pub text: String,
    /// The peer that delivered it.
    pub via: String,
    pub at_ms: f64,
}

/// Transport counters (`synapse.stats()`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub connections_created: u64,
    pub connections_refused_budget: u64,
    pub offers_refused: u64,
    pub pending_timeouts: u64,
    pub channels_opened: u64,
    pub peers_proven: u64,
    pub proofs_rejected: u64,
    pub protocol_violations: u64,
    pub handshake_timeouts: u64,
    pub signals_in: u64,
    pub signals_out: u64,
    pub signals_rejected: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub hellos_received: u64,
    pub blob_bytes_in: u64,
    pub reconnects_scheduled: u64,
    pub peer_records_in: u64,
    pub relays_sent: u64,
    pub relays_forwarded: u64,
    pub relays_received: u64,
    pub relays_dropped: u64,
}

/// Milestones in ms since navigation start (`synapse.timings()`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Timings {
    pub node_started_ms: Option<f64>,
    pub first_channel_open_ms: Option<f64>,
    pub first_peer_proven_ms: Option<f64>,
}

/// The rendezvous connection as the node sees it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RendezvousStatus {
    /// `connecting`, `connected` or `disconnected`.
    pub state: String,
    pub url: String,
    pub last_error: Option<String>,
    /// Ids the rendezvous servers list as live (their union).
    pub directory: Vec<String>,
    /// Each server the page logs in to.
    #[serde(default)]
    pub servers: Vec<RendezvousServer>,
}

/// One server in `status().rendezvous.servers`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RendezvousServer {
    pub state: String,
    pub url: String,
    pub last_error: Option<String>,
    pub directory: Vec<String>,
}

/// One `icecandidateerror` the node recorded (folded by url and code).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct IceError {
    pub url: String,
    pub code: u16,
    pub text: String,
    pub count: u32,
}

/// `status().ice`: the ICE servers in use and why they cannot work, if so.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct IceStatus {
    /// `page`, `rendezvous` or `none`.
    pub source: String,
    /// `all` or `relay`.
    pub policy: String,
    /// URLs only (never credentials).
    pub servers: Vec<String>,
    pub errors: Vec<IceError>,
    pub sentence: Option<String>,
}

/// `synapse.status()`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Status {
    pub id: String,
    pub profile: String,
    pub rendezvous: RendezvousStatus,
    pub peers: Vec<String>,
    pub ice: IceStatus,
}

/// One connection of `synapse.peerStates()`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PeerState {
    pub id: String,
    /// `connecting`, `handshaking` or `proven`.
    pub state: String,
    /// The RTCPeerConnection's state.
    pub connection: String,
    /// Candidate type of the pair in use on this side: `host`, `srflx`,
    /// `prflx` or `relay`; `None` until known.
    pub candidate: Option<String>,
    /// The same for the peer's end of the pair.
    pub remote_candidate: Option<String>,
}
