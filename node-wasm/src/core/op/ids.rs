//! Names: op ids (a task or proposal is named by the id of the op that
//! created it) and channel names. Kept apart from the bodies so every layer
//! can name things without pulling in the wire format.

use serde::{Deserialize, Serialize};
use std::fmt;

use super::limits::MAX_CHANNEL_BYTES;

/// The network-wide channel that always exists.
pub const GLOBAL_CHANNEL: &str = "global";

/// A 32-byte content hash naming an op (and the task an op created).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct OpId(pub [u8; 32]);

/// Tasks are named by the id of the op that created them.
pub type TaskId = OpId;

impl OpId {
    pub const ZERO: OpId = OpId([0; 32]);

    pub fn to_text(&self) -> String {
        hex::encode(self.0)
    }

    /// First 8 hex characters, for messages and logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    pub fn parse(text: &str) -> Option<OpId> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(OpId(out))
    }
}

impl fmt::Debug for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpId({})", self.short())
    }
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl Serialize for OpId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_text())
    }
}

impl<'de> Deserialize<'de> for OpId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        OpId::parse(&text).ok_or_else(|| serde::de::Error::custom("op id must be 64 hex chars"))
    }
}

/// Channel-name syntax: 1..=64 bytes of lowercase ASCII letters, digits, `.`,
/// `_` and `-`. Keeps names URL/topic-safe and gives each name one spelling.
pub fn valid_channel_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CHANNEL_BYTES
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}
