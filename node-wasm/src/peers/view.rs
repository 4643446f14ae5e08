//! What the peer manager shows to the UI, the JS API and the benchmarks.
//! Plain data, serialised as-is to JavaScript.

use crate::identity::NodeId;
use serde::Serialize;

/// A peer connection's life stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerState {
    /// Negotiating the RTCPeerConnection.
    Connecting,
    /// The DataChannel is open; the identity proof is pending.
    Handshaking,
    /// Identity proven; application messages flow.
    Proven,
}

/// The RTCPeerConnection's `connectionState`, as the driver reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConnState {
    #[default]
    New,
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

impl ConnState {
    /// The browser's spelling (`"connected"`, …), shown in [`PeerInfo`].
    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::New => "new",
            ConnState::Connecting => "connecting",
            ConnState::Connected => "connected",
            ConnState::Disconnected => "disconnected",
            ConnState::Failed => "failed",
            ConnState::Closed => "closed",
        }
    }
}

/// A peer as shown to the UI and the JS API.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    pub id: NodeId,
    pub state: PeerState,
    /// The RTCPeerConnection's `connectionState`.
    pub connection: String,
    pub polite: bool,
    pub rtt_ms: Option<f64>,
    /// The candidate type of the pair in use on this side (`host`,
    /// `srflx` through a NAT, `prflx`, `relay` through TURN) and on the
    /// peer's, once the browser reports it (filled by the driver).
    pub candidate: Option<&'static str>,
    pub remote_candidate: Option<&'static str>,
}

/// A verified hello received from a peer.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedHello {
    /// The verified author.
    pub from: NodeId,
    pub text: String,
    /// The peer that delivered it.
    pub via: NodeId,
    pub at_ms: f64,
}

/// Counters, for the UI, the JS API and the benchmarks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub connections_created: u32,
    pub connections_refused_budget: u32,
    /// Offers refused before any connection was made: unparseable SDP, or
    /// too many strangers' connections pending.
    pub offers_refused: u32,
    /// Connections dropped because they were not proven in time after
    /// creation.
    pub pending_timeouts: u32,
    /// Proven peers swapped for others (`rotate_one_peer`).
    pub rotations: u32,
    /// Directory samples asked for while below the target degree
    /// (`ask_directory_when_starved`).
    #[serde(default)]
    pub directory_asks: u32,
    /// Inbound peers evicted to make room for a starved one
    /// (`make_room_for_the_starved`).
    #[serde(default)]
    pub evictions_for_starved: u32,
    pub channels_opened: u32,
    pub peers_proven: u32,
    pub proofs_rejected: u32,
    pub protocol_violations: u32,
    pub handshake_timeouts: u32,
    pub signals_in: u64,
    pub signals_out: u64,
    pub signals_rejected: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub hellos_received: u64,
    pub blob_bytes_in: u64,
    pub reconnects_scheduled: u32,
    pub peer_records_in: u64,
    /// Signals this node sent through a peer (rendezvous unreachable).
    pub relays_sent: u64,
    /// Signals this node passed on between two of its peers.
    pub relays_forwarded: u64,
    /// Relayed signals addressed to this node.
    pub relays_received: u64,
    /// Relayed signals this node could not deliver.
    pub relays_dropped: u64,
    /// Peers refused because they are on another network (`same_genesis`).
    #[serde(default)]
    pub genesis_mismatches: u64,
}

/// Milestones since navigation start, for the page-load benchmark.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub node_started_ms: f64,
    pub first_channel_open_ms: Option<f64>,
    pub first_peer_proven_ms: Option<f64>,
}

/// The rendezvous connections as the UI shows them: the best state of
/// any, the first connected one's URL, the latest error, the union of
/// their directories, and each server.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RendezvousStatus {
    /// `connecting`, `connected` or `disconnected`.
    pub state: String,
    pub url: String,
    pub last_error: Option<String>,
    /// Ids the rendezvous servers list as live.
    pub directory: Vec<NodeId>,
    pub servers: Vec<RendezvousServer>,
}

/// One rendezvous server this node logs in to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RendezvousServer {
    /// `connecting`, `connected` or `disconnected`.
    pub state: String,
    pub url: String,
    pub last_error: Option<String>,
    /// Ids this server lists as live (a sample of its directory).
    pub directory: Vec<NodeId>,
}
