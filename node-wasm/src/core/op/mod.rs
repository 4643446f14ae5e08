//! Signed operations: the only thing replicas exchange about shared state.
//!
//! Wire format (big-endian, every length capped, no trailing bytes; see
//! `docs/PROTOCOL.md` for the full table):
//!
//! ```text
//! signed_op = payload signature:[64]
//! payload   = version:u8 (=1) author:[32] seq:u64 prev:[32]
//!             hlc_ms:u64 hlc_logical:u32 channel:str body
//! body      = tag:u8 fields...
//! ```
//!
//! The signature is Ed25519 over `"synapse-ng/op/v1" || 0x00 || payload`
//! (the identity module's domain separation), checked with `verify_strict`.
//! The op id is SHA-256 of the whole signed op (payload and signature), so
//! the id commits to exactly the bytes peers exchange.
//!
//! Decoding is strict and canonical: one value has exactly one encoding
//! (booleans and option tags must be 0 or 1, list counts are exact, text is
//! UTF-8 within its byte limit). Structural limits (sizes, channel-name
//! syntax, `seq >= 1`, a zero `prev` for `seq == 1`) are enforced here;
//! semantic rules (is this claim allowed now?) are the fold's job, so a
//! well-formed op is always kept as evidence even when it has no effect.
//!
//! Layout: `ids` (op, task and channel names), `bodies` (what an op says),
//! `signed` (the signed envelope), `codec` (the binary form) and `limits`
//! (every bound, with why). Everything is re-exported here, so
//! `crate::core::op::OpBody` and friends keep their paths.
//!
//! The topic ops travel on is `pubsub::message::GLOBAL_TOPIC`: every node
//! receives every op, because an author's ops form one chain across channels
//! (see PROTOCOL.md, "Sharding").

mod bodies;
mod codec;
mod ids;
pub mod limits;
mod signed;
#[cfg(test)]
mod tests;

pub use bodies::*;
pub use codec::{OP_DOMAIN, OP_VERSION};
pub(crate) use codec::{encode_command, encode_sealed_key};
pub use ids::{GLOBAL_CHANNEL, OpId, TaskId, valid_channel_name};
pub use limits::*;
pub use signed::{Op, OpError, SignedOp, VerifiedOp, op_id};
