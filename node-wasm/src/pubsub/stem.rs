//! The stem phase (Dandelion++): a message whose origin must stay hidden
//! travels first along a short random path, one peer at a time, and only
//! then spreads by gossip ("fluff"). The first node to gossip it is then
//! usually not its origin, so a peer that sees it first learns little
//! about who made it.
//!
//! Rules, by name (`docs/PROTOCOL.md`, "Anonymous votes"):
//!
//! - **stem_before_fluff**: the origin sends the message to its stem relay
//!   only; it does not deliver, store or gossip it until it comes back.
//! - **stem_relay_per_epoch**: each node stems through one relay drawn
//!   among its peers for [`EPOCH_MS`] (not per message), so repeated
//!   messages do not reveal the origin by the intersection of paths.
//! - **fluff_coin**: a relay fluffs with probability [`FLUFF_PERCENT`] %,
//!   else stems on (never back to the peer it came from).
//! - **stem_embargo**: every node on the path keeps the message until
//!   [`EMBARGO_MS`] plus a random part (the origin twice as long, so that
//!   a relay's embargo runs out first); if it has not arrived by gossip by
//!   then (a relay dropped it), that node fluffs it itself.
//! - **stem_loop**: a path that comes back to a relay ends there (it
//!   fluffs); one that comes back to the origin is dropped there, and the
//!   relay that sent it fluffs when its embargo runs out.
//!
//! A sub-state of the router: it keeps the relay and the embargoes and
//! decides; the router sends, validates and fluffs.

use super::message::{Message, MsgId};
use super::rng::SplitMix64;
use crate::identity::NodeId;
use std::collections::BTreeMap;

/// How long a stem relay is kept (Dandelion++ epochs are minutes long).
pub const EPOCH_MS: u64 = 10 * 60 * 1000;
/// Chance that a relay fluffs rather than stems on: an expected path of
/// four relays before gossip starts.
pub const FLUFF_PERCENT: u64 = 25;
/// The shortest embargo; each node adds up to half again at random, so
/// the nodes of one path do not all fluff at once.
pub const EMBARGO_MS: u64 = 8_000;
/// Messages held in the stem phase at once: beyond this a relay fluffs at
/// once (bounded memory; a flood of stems only makes them public sooner).
pub const MAX_PENDING: usize = 256;

/// What to do with a stem message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send it on to this peer (and hold it under embargo).
    Relay(NodeId),
    /// Gossip it now.
    Fluff,
}

/// The stem sub-state.
#[derive(Debug, Default)]
pub struct Stem {
    relay: Option<(NodeId, u64)>,
    /// id → (embargo deadline, whether this node is the origin, message).
    pending: BTreeMap<MsgId, (u64, bool, Message)>,
}

impl Stem {
    /// Rules `stem_relay_per_epoch` and `fluff_coin` for a message that
    /// came from `from` (`None`: this node is its origin, which never
    /// fluffs at once). `peers`: peers on the message's topic.
    pub fn route(&mut self, from: Option<NodeId>, peers: &[NodeId], now: u64, rng: &mut SplitMix64) -> Step {
        if from.is_some() && rng.below(100) < FLUFF_PERCENT {
            return Step::Fluff;
        }
        let keep = self.relay.filter(|(p, until)| *until > now && peers.contains(p)).map(|(p, _)| p);
        let relay = match keep {
            Some(p) => p,
            None if peers.is_empty() => return Step::Fluff,
            None => {
                let p = peers[rng.below(peers.len() as u64) as usize];
                self.relay = Some((p, now.saturating_add(EPOCH_MS)));
                p
            }
        };
        if Some(relay) == from {
            // Never back along the path: the sender would learn the path
            // loops, and the message would cycle.
            return Step::Fluff;
        }
        Step::Relay(relay)
    }

    /// Rule `stem_embargo`: holds `msg` until `now` + the embargo. `false`
    /// when full (the caller fluffs instead).
    pub fn hold(&mut self, id: MsgId, msg: Message, own: bool, now: u64, rng: &mut SplitMix64) -> bool {
        if self.pending.len() >= MAX_PENDING {
            return false;
        }
        let base = if own { 2 * EMBARGO_MS } else { EMBARGO_MS };
        let deadline = now.saturating_add(base + rng.below(EMBARGO_MS / 2 + 1));
        self.pending.insert(id, (deadline, own, msg));
        true
    }

    /// `Some(own)` when `id` is held here in the stem phase.
    pub fn held(&self, id: &MsgId) -> Option<bool> {
        self.pending.get(id).map(|(_, own, _)| *own)
    }

    /// The message arrived by gossip: its embargo is over.
    pub fn arrived(&mut self, id: &MsgId) {
        self.pending.remove(id);
    }

    /// Messages whose embargo ran out: the caller fluffs them.
    pub fn due(&mut self, now: u64) -> Vec<Message> {
        let ids: Vec<MsgId> = self.pending.iter().filter(|(_, (d, _, _))| *d <= now).map(|(id, _)| *id).collect();
        ids.into_iter().filter_map(|id| self.pending.remove(&id).map(|(_, _, m)| m)).collect()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}
