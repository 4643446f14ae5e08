//! Synapse-NG node.
//!
//! The crate has two halves:
//! - a deterministic, sans-IO core (every module but `runtime`) that compiles
//!   natively and to wasm32, takes time and randomness as inputs and never
//!   touches the network, a clock or storage itself; `core` holds the
//!   replicated state machine (signed op log, HLC, the deterministic fold of
//!   channels, tasks, auctions, teams, the SP economy and reputation);
//! - `runtime` (wasm32 only): thin browser adapters (WebSocket signaling,
//!   WebRTC DataChannels, IndexedDB, timers) and the `window.synapse` JS API.

/// When this node may sign: the rules that keep it from reusing a sequence number.
pub mod agent;
pub mod chain_guard;
/// Which ops passed deadlines call for, and when this node publishes them.
pub mod deadlines;
pub mod health;
pub mod ice_status;
pub mod identity;
/// Identity file and storage-error sentences (pure; IndexedDB is in `runtime::store`).
pub mod persistence;
/// When received ops are written to storage (batching, retry, bound).
pub mod save_queue;
pub mod signaling;
pub mod snapshot_sync;

pub use identity::{Identity, NodeId};
pub mod codec;
pub mod core;
pub mod framing;
/// The whole-node simulator (native; the CLI needs the `sim` feature).
#[cfg(any(test, feature = "sim"))]
pub mod nodesim;
pub mod peers;
pub mod pubsub;
/// Typed commands and read models shared by the JS API and the UI.
pub mod service;
pub mod session;
pub mod wire;

#[cfg(target_arch = "wasm32")]
pub mod runtime;
