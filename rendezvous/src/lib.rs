//! Synapse-NG rendezvous server.
//!
//! Nodes find each other here: each browser node opens one WebSocket, proves
//! it owns its node id by signing a random challenge, appears in a live
//! directory, and exchanges WebRTC signaling with other nodes through the
//! server. Once two nodes have a direct connection they no longer need the
//! rendezvous, so it only has to be small, strict and robust: every limit a
//! hostile client could probe is enforced in [`session`] and counted in
//! [`metrics`]. The same server also serves the built UI.
//!
//! The wire protocol lives in [`node_wasm::signaling`], shared with the node.
//!
//! Modules:
//! - [`config`]: command line / environment configuration;
//! - [`server`]: HTTP routes, UI serving, graceful shutdown;
//! - [`tls`]: `https://` and `wss://` on the same port (`--tls-cert`);
//! - [`session`]: one WebSocket connection's state machine;
//! - [`directory`]: the live id -> connections map;
//! - [`limits`]: the per-connection token bucket;
//! - [`metrics`]: Prometheus counters;
//! - [`turn`]: STUN/TURN servers for pages, with TURN REST credentials.

pub mod config;
pub mod directory;
pub mod limits;
pub mod metrics;
pub mod server;
pub mod session;
pub mod tls;
pub mod turn;

pub use config::{Config, LogFormat};
pub use server::{Server, UI_NOT_BUILT, is_hashed_asset, serve};
