//! The messages a router holds, indexed by id and by (topic, origin, seq),
//! and the per-origin version vectors that catch-up compares.
//!
//! The (topic, origin, seq) index is kept even when a body is evicted, so
//! version vectors never go backwards (a node does not re-fetch what it
//! already delivered); evicted bodies simply cannot be served any more.

use super::message::{Message, MsgId};
use crate::identity::NodeId;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};

#[derive(Debug, Default)]
struct OriginLog {
    /// Highest seq such that 1..=contiguous are all present.
    contiguous: u64,
    /// Every seq seen, with its ids (more than one means equivocation).
    seqs: BTreeMap<u64, Vec<MsgId>>,
}

/// What inserting a message found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    New,
    AlreadyHad,
    /// A different payload already holds this (topic, origin, seq): the
    /// ids of all of them, the new one last.
    Equivocation(Vec<MsgId>),
}

/// Bounded message store.
#[derive(Debug)]
pub struct Store {
    msgs: BTreeMap<MsgId, Message>,
    index: BTreeMap<String, BTreeMap<NodeId, OriginLog>>,
    order: VecDeque<MsgId>,
    max: usize,
}

impl Store {
    pub fn new(max: usize) -> Store {
        Store { msgs: BTreeMap::new(), index: BTreeMap::new(), order: VecDeque::new(), max: max.max(1) }
    }

    pub fn get(&self, id: &MsgId) -> Option<&Message> {
        self.msgs.get(id)
    }

    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// All ids held, in id order (for tests and the simulator).
    pub fn ids(&self) -> impl Iterator<Item = &MsgId> {
        self.msgs.keys()
    }

    pub fn insert(&mut self, id: MsgId, msg: Message) -> Inserted {
        let log = self.index.entry(msg.topic.clone()).or_default().entry(msg.origin).or_default();
        let ids = log.seqs.entry(msg.seq).or_default();
        if ids.contains(&id) {
            return Inserted::AlreadyHad;
        }
        ids.push(id);
        let result = if ids.len() > 1 { Inserted::Equivocation(ids.clone()) } else { Inserted::New };
        while let Some(next) = log.contiguous.checked_add(1)
            && log.seqs.contains_key(&next)
        {
            log.contiguous = next;
        }
        self.msgs.insert(id, msg);
        self.order.push_back(id);
        while self.msgs.len() > self.max {
            match self.order.pop_front() {
                Some(old) => {
                    self.msgs.remove(&old);
                }
                None => break,
            }
        }
        result
    }

    /// Whether this exact message was ever stored (even if its body has
    /// since been evicted): such a message is never delivered twice, even
    /// after its id left the seen cache.
    pub fn knows(&self, id: &MsgId, msg: &Message) -> bool {
        self.index
            .get(&msg.topic)
            .and_then(|o| o.get(&msg.origin))
            .and_then(|l| l.seqs.get(&msg.seq))
            .is_some_and(|ids| ids.contains(id))
    }

    /// Whether any message holds (topic, origin, seq).
    pub fn has_seq(&self, topic: &str, origin: &NodeId, seq: u64) -> bool {
        self.index.get(topic).and_then(|o| o.get(origin)).is_some_and(|l| l.seqs.contains_key(&seq))
    }

    /// Highest contiguous seq of `origin` on `topic` (0 if none).
    pub fn contiguous(&self, topic: &str, origin: &NodeId) -> u64 {
        self.index.get(topic).and_then(|o| o.get(origin)).map_or(0, |l| l.contiguous)
    }

    /// `origin → highest contiguous seq` for every origin with at least seq 1.
    pub fn version_vector(&self, topic: &str) -> Vec<(NodeId, u64)> {
        self.index
            .get(topic)
            .map(|o| o.iter().filter(|(_, l)| l.contiguous > 0).map(|(k, l)| (*k, l.contiguous)).collect())
            .unwrap_or_default()
    }

    /// First 8 bytes of SHA-256 over the topic's version vector: equal
    /// digests mean there is nothing to catch up (up to non-contiguous tails).
    pub fn digest(&self, topic: &str) -> [u8; 8] {
        let mut h = Sha256::new();
        for (origin, seq) in self.version_vector(topic) {
            h.update(origin.0);
            h.update(seq.to_be_bytes());
        }
        let d = h.finalize();
        let mut out = [0u8; 8];
        out.copy_from_slice(&d[..8]);
        out
    }

    /// Seqs of `origin` in `after+1 ..= upto` that this store lacks, as
    /// inclusive ranges, at most `budget` seqs in all.
    pub fn missing(&self, topic: &str, origin: &NodeId, upto: u64, budget: u64) -> Vec<(u64, u64)> {
        let log = self.index.get(topic).and_then(|o| o.get(origin));
        let start = log.map_or(0, |l| l.contiguous) + 1;
        let mut out: Vec<(u64, u64)> = Vec::new();
        let mut left = budget;
        let mut seq = start;
        while seq <= upto && left > 0 {
            if !log.is_some_and(|l| l.seqs.contains_key(&seq)) {
                match out.last_mut() {
                    Some((_, to)) if *to + 1 == seq => *to = seq,
                    _ => out.push((seq, seq)),
                }
                left -= 1;
            }
            seq += 1;
        }
        out
    }

    /// Messages held for `origin`'s seqs `from..=to` on `topic`.
    pub fn range(&self, topic: &str, origin: &NodeId, from: u64, to: u64) -> Vec<&Message> {
        let Some(log) = self.index.get(topic).and_then(|o| o.get(origin)) else {
            return Vec::new();
        };
        log.seqs.range(from..=to).flat_map(|(_, ids)| ids.iter().filter_map(|id| self.msgs.get(id))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(origin: u8, seq: u64, body: u8) -> (MsgId, Message) {
        let payload = vec![origin, seq as u8, body];
        (MsgId::of(&payload), Message { topic: "t".into(), origin: NodeId([origin; 32]), seq, hops: 0, payload })
    }

    #[test]
    fn version_vector_counts_contiguous_seqs() {
        let mut s = Store::new(100);
        for seq in [1, 2, 4] {
            let (id, m) = msg(1, seq, 0);
            assert_eq!(s.insert(id, m), Inserted::New);
        }
        let o = NodeId([1; 32]);
        assert_eq!(s.version_vector("t"), vec![(o, 2)]);
        assert_eq!(s.missing("t", &o, 6, 100), vec![(3, 3), (5, 6)]);
        assert_eq!(s.missing("t", &o, 6, 2), vec![(3, 3), (5, 5)]);
        let (id, m) = msg(1, 3, 0);
        s.insert(id, m);
        assert_eq!(s.contiguous("t", &o), 4);
        assert_eq!(s.range("t", &o, 2, 3).len(), 2);
    }

    #[test]
    fn equivocation_is_detected_and_both_kept() {
        let mut s = Store::new(100);
        let (a, ma) = msg(1, 1, 0);
        let (b, mb) = msg(1, 1, 1);
        assert_eq!(s.insert(a, ma.clone()), Inserted::New);
        assert_eq!(s.insert(a, ma), Inserted::AlreadyHad);
        assert_eq!(s.insert(b, mb), Inserted::Equivocation(vec![a, b]));
        assert_eq!(s.range("t", &NodeId([1; 32]), 1, 1).len(), 2);
    }

    #[test]
    fn eviction_keeps_the_index() {
        let mut s = Store::new(2);
        for seq in 1..=3 {
            let (id, m) = msg(1, seq, 0);
            s.insert(id, m);
        }
        assert_eq!(s.len(), 2);
        assert_eq!(s.contiguous("t", &NodeId([1; 32])), 3);
        assert_eq!(s.range("t", &NodeId([1; 32]), 1, 3).len(), 2);
    }
}
