//! Router parameters.
//!
//! Defaults follow GossipSub v1.1 (D=6, D_lo=4, D_hi=12, D_lazy=6, 3 of 5
//! history windows gossiped, 2 min seen cache, 60 s PRUNE backoff, IWANT
//! follow-up 3 s, 10 IHAVEs per peer per heartbeat, 3 retransmissions), with
//! Ethereum's 700 ms heartbeat. The score weights are ours (see `score.rs`):
//! browsers share TURN/relay addresses, so there is no IP-colocation term.

/// How the router spreads messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Mesh push + lazy I_HAVE gossip + version-vector catch-up.
    SynapseSub,
    /// Baseline for the simulator: forward every new message to every
    /// subscribed peer; no mesh, no gossip, no catch-up.
    Flood,
}

/// Peer-score weights and thresholds, in points (see `score.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreParams {
    /// P2: points per first delivery of a valid message.
    pub first_delivery_weight: f64,
    /// P2 cap (deliveries).
    pub first_delivery_cap: f64,
    /// P3: a mesh peer must deliver at least this fraction of the topic's
    /// messages (first or duplicate) once activated.
    pub mesh_delivery_ratio: f64,
    /// P3: no deficit is counted before the peer has been in the mesh this long.
    pub mesh_activation_ms: u64,
    /// P3: nor before this many messages were expected from it.
    pub mesh_min_expected: f64,
    /// P3 weight (points per deficit²).
    pub mesh_deficit_weight: f64,
    /// P4 weight (points per invalid²).
    pub invalid_weight: f64,
    /// P7 weight (points per misbehaviour²).
    pub behaviour_weight: f64,
    /// Per-heartbeat decay factors.
    pub first_delivery_decay: f64,
    pub mesh_decay: f64,
    pub invalid_decay: f64,
    pub behaviour_decay: f64,
    /// Below this: no I_HAVE to or from the peer, no catch-up served or asked.
    pub gossip_threshold: f64,
    /// Below this: own messages are not flood-published to the peer.
    pub publish_threshold: f64,
    /// Below this: every frame from the peer is dropped unread.
    pub graylist_threshold: f64,
}

impl Default for ScoreParams {
    fn default() -> Self {
        ScoreParams {
            first_delivery_weight: 0.5,
            first_delivery_cap: 20.0,
            mesh_delivery_ratio: 0.05,
            mesh_activation_ms: 5_000,
            mesh_min_expected: 20.0,
            mesh_deficit_weight: 4.0,
            invalid_weight: 20.0,
            behaviour_weight: 5.0,
            first_delivery_decay: 0.99,
            mesh_decay: 0.99,
            invalid_decay: 0.995,
            behaviour_decay: 0.98,
            gossip_threshold: -10.0,
            publish_threshold: -50.0,
            graylist_threshold: -80.0,
        }
    }
}

/// Everything the router needs to know, fixed at construction.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub mode: Mode,
    /// Target mesh degree D.
    pub d: usize,
    /// Graft below this.
    pub d_lo: usize,
    /// Prune above this.
    pub d_hi: usize,
    /// On oversubscription keep this many best-scoring peers, the rest random.
    pub d_score: usize,
    /// Minimum number of non-mesh peers sent I_HAVE per topic per heartbeat.
    pub d_lazy: usize,
    /// Fraction of eligible non-mesh peers sent I_HAVE, if above `d_lazy`.
    pub gossip_factor: f64,
    /// Call `Input::Tick` this often.
    pub heartbeat_ms: u64,
    /// Message-cache history windows (one per heartbeat) ...
    pub mcache_len: usize,
    /// ... of which the newest this many are advertised in I_HAVE.
    pub mcache_gossip: usize,
    /// How long a message id stays in the seen cache.
    pub seen_ttl_ms: u64,
    /// Backoff after a PRUNE, both ways.
    pub prune_backoff_ms: u64,
    /// A GRAFT this soon after a backoff started crossed the PRUNE in
    /// flight: ignored, not penalised.
    pub graft_slack_ms: u64,
    /// Longest backoff accepted from a peer.
    pub max_backoff_ms: u64,
    /// A piece asked for must arrive within this, or the promise is broken.
    pub want_followup_ms: u64,
    /// Each id is served to one peer at most this many times.
    pub max_retransmit: u8,
    /// I_HAVE messages accepted per peer per heartbeat.
    pub max_ihave_per_heartbeat: u32,
    /// Control messages (all but MESSAGE) accepted per peer per heartbeat.
    pub max_control_per_heartbeat: u32,
    /// Full version vectors sent to one peer per heartbeat (in reply to a
    /// digest or a REPLY flag).
    pub max_vv_per_heartbeat: u32,
    /// Pieces asked of one peer per heartbeat.
    pub max_requests_per_heartbeat: u32,
    /// Pieces served to one peer per heartbeat ...
    pub max_served_per_heartbeat: u32,
    /// ... and bytes.
    pub max_served_bytes_per_heartbeat: usize,
    /// A catch-up reply holds at most this many messages ...
    pub batch_max_messages: usize,
    /// ... and about this many bytes (a single larger message goes alone).
    pub batch_max_bytes: usize,
    /// Send a version-vector digest to this many random topic peers ...
    pub sync_peers: usize,
    /// ... every this many heartbeats.
    pub sync_every: u64,
    /// Messages kept in the store (oldest bodies dropped first) ...
    pub store_max_messages: usize,
    /// ... and payload bytes (rule `store_bounded_in_bytes`: 100,000
    /// messages of 64 KiB would not fit a wasm32 memory).
    pub store_max_bytes: usize,
    /// Topics a peer may announce.
    pub max_peer_topics: usize,
    pub score: ScoreParams,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::SynapseSub,
            d: 6,
            d_lo: 4,
            d_hi: 12,
            d_score: 4,
            d_lazy: 6,
            gossip_factor: 0.25,
            heartbeat_ms: 700,
            mcache_len: 5,
            mcache_gossip: 3,
            seen_ttl_ms: 120_000,
            prune_backoff_ms: 60_000,
            max_backoff_ms: 3_600_000,
            graft_slack_ms: 1_000,
            want_followup_ms: 3_000,
            max_retransmit: 3,
            max_ihave_per_heartbeat: 10,
            max_control_per_heartbeat: 64,
            max_vv_per_heartbeat: 2,
            max_requests_per_heartbeat: 128,
            max_served_per_heartbeat: 256,
            max_served_bytes_per_heartbeat: 256 * 1024,
            batch_max_messages: 64,
            batch_max_bytes: 12 * 1024,
            sync_peers: 1,
            sync_every: 3,
            store_max_messages: 100_000,
            store_max_bytes: 64 * 1024 * 1024,
            max_peer_topics: 64,
            score: ScoreParams::default(),
        }
    }
}

impl Config {
    /// The plain-flooding baseline.
    pub fn flood() -> Config {
        Config { mode: Mode::Flood, ..Config::default() }
    }
}
