//! Browser adapters (wasm32 only). Each is thin: it moves bytes and events
//! between a browser API and the sans-IO core, and decides nothing itself.
//!
//! - [`store`]: the identity in IndexedDB.
//! - [`transport`]: RTCPeerConnections and their DataChannels (perfect
//!   negotiation, framing, the identity handshake, reconnect with backoff).
//! - [`rendezvous`]: the WebSocket signaling client.
//! - [`ledger`]: the replicated op log, carried by SynapseSub, kept in
//!   IndexedDB.
//! - [`webcrypto`]: batch Ed25519 verification with WebCrypto, with
//!   `verify_strict`'s exact rules.
//! - [`modules`]: publishing and dry-running policy modules.
//! - [`webhook`]: using a common tool (the webhook call).
//! - [`ticket`]: the admission ticket search (Web Workers, or the page
//!   thread in slices).
//! - [`admission`]: admits this node's identity when its network asks for
//!   a ticket (search, then publish the `admit` op).
//! - [`events`]: which domains changed since a listener last looked.
//! - [`api`]: `window.synapse`, the public JS API, a thin binding over
//!   [`crate::service`].

pub mod admission;
pub mod api;
pub mod events;
pub mod genesis;
pub mod ledger;
pub mod modules;
pub mod rendezvous;
pub mod store;
pub mod ticket;
pub mod transport;
pub mod util;
pub mod webcrypto;
pub mod webhook;

pub use api::{SynapseNode, start};
pub use transport::{Node, NodeConfig, PeerState};
