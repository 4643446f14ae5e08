//! SynapseSub: topic pubsub for browser nodes, modelled on GossipSub v1.1,
//! with version-vector catch-up. See `docs/SYNAPSESUB.md`.
//!
//! The payload is opaque: a message is identified by SHA-256 of its payload
//! and carries its `origin` and per-topic `seq`, so the same router carries
//! signed ops (whose validator checks the signature and that author and seq
//! match) or anything else.
//!
//! - `message`: wire format.
//! - `router` + `mesh`: the sans-IO state machine and its heartbeat.
//! - `cache`, `store`, `score`, `rng`, `config`: its parts.
//! - `sim`: a deterministic network simulator for many routers.
//! - `fuzz`: the router's fuzzing entry point (`router_frames`).

pub mod cache;
pub mod config;
pub mod fuzz;
mod mesh;
pub mod message;
pub mod rng;
pub mod router;
pub mod score;
pub mod sim;
pub mod stem;
pub mod store;

pub use config::{Config, Mode, ScoreParams};
pub use message::{GLOBAL_TOPIC, Message, MsgId, Packet, channel_topic};
pub use router::{Delivery, Event, Input, Output, Router, Stats, Validation, Validator};

#[cfg(test)]
mod stem_tests;
#[cfg(test)]
mod tests;
