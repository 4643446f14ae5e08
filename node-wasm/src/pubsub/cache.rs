//! The seen cache (dedup by id, with TTL) and the message cache (the ids of
//! the last few heartbeats, which I_HAVE advertises).

use super::message::MsgId;
use crate::identity::NodeId;
use std::collections::{BTreeMap, VecDeque};

/// Ids seen recently and who delivered each first. Checked before any
/// validation so that a message is verified at most once, however many
/// peers send it.
#[derive(Debug, Default)]
pub struct SeenCache {
    entries: BTreeMap<MsgId, Option<NodeId>>,
    expiry: VecDeque<(u64, MsgId)>,
}

impl SeenCache {
    pub fn contains(&self, id: &MsgId) -> bool {
        self.entries.contains_key(id)
    }

    /// Records `id` until `now + ttl`. Returns false if it was already seen.
    pub fn insert(&mut self, id: MsgId, from: Option<NodeId>, now: u64, ttl: u64) -> bool {
        if self.entries.contains_key(&id) {
            return false;
        }
        self.entries.insert(id, from);
        self.expiry.push_back((now.saturating_add(ttl), id));
        true
    }

    /// The peer that delivered `id` first (None for our own messages).
    pub fn first_from(&self, id: &MsgId) -> Option<NodeId> {
        self.entries.get(id).copied().flatten()
    }

    /// Forgets ids whose TTL has passed (insertion order is expiry order
    /// because the TTL is fixed).
    pub fn expire(&mut self, now: u64) {
        while let Some(&(at, id)) = self.expiry.front() {
            if at > now {
                break;
            }
            self.expiry.pop_front();
            self.entries.remove(&id);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// History windows of message ids, one per heartbeat, newest first.
#[derive(Debug)]
pub struct MessageCache {
    windows: VecDeque<Vec<(String, MsgId)>>,
    len: usize,
    gossip: usize,
}

impl MessageCache {
    pub fn new(len: usize, gossip: usize) -> MessageCache {
        let mut windows = VecDeque::with_capacity(len);
        windows.push_back(Vec::new());
        MessageCache { windows, len: len.max(1), gossip: gossip.max(1) }
    }

    pub fn put(&mut self, topic: &str, id: MsgId) {
        if let Some(w) = self.windows.front_mut() {
            w.push((topic.to_owned(), id));
        }
    }

    /// Ids of `topic` in the newest `gossip` windows, oldest first.
    pub fn gossip_ids(&self, topic: &str) -> Vec<MsgId> {
        let mut out = Vec::new();
        for w in self.windows.iter().take(self.gossip).rev() {
            out.extend(w.iter().filter(|(t, _)| t == topic).map(|(_, id)| *id));
        }
        out
    }

    /// Opens a new window; returns the ids that fell out of the oldest.
    pub fn shift(&mut self) -> Vec<MsgId> {
        self.windows.push_front(Vec::new());
        let mut dropped = Vec::new();
        while self.windows.len() > self.len {
            if let Some(w) = self.windows.pop_back() {
                dropped.extend(w.into_iter().map(|(_, id)| id));
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_cache_expires_in_order() {
        let mut s = SeenCache::default();
        assert!(s.insert(MsgId([1; 32]), None, 0, 100));
        assert!(!s.insert(MsgId([1; 32]), None, 50, 100));
        assert!(s.insert(MsgId([2; 32]), Some(NodeId([9; 32])), 50, 100));
        s.expire(99);
        assert_eq!(s.len(), 2);
        s.expire(100);
        assert!(!s.contains(&MsgId([1; 32])));
        assert_eq!(s.first_from(&MsgId([2; 32])), Some(NodeId([9; 32])));
        s.expire(150);
        assert!(s.is_empty());
    }

    #[test]
    fn message_cache_gossips_recent_windows_only() {
        let mut c = MessageCache::new(5, 3);
        for i in 0..6u8 {
            c.put("t", MsgId([i; 32]));
            c.put("u", MsgId([100 + i; 32]));
            c.shift();
        }
        // Windows now (newest first): [], 5, 4, 3, 2 -> gossip covers [], 5, 4.
        assert_eq!(c.gossip_ids("t"), vec![MsgId([4; 32]), MsgId([5; 32])]);
        assert_eq!(c.gossip_ids("v"), vec![]);
    }
}
