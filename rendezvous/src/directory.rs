//! The live peer directory: which node ids are authenticated right now and
//! how to reach each of their connections.
//!
//! A node may be connected more than once (a reloaded tab overlapping with
//! the old one), so each id maps to a list of connections, oldest first.
//! Signals go to the most recent one: it is the tab the user is looking at.
//! `peer_joined`/`peer_left` describe ids, not connections, so they are only
//! broadcast when an id gains its first or loses its last connection.
//!
//! The directory lives behind a plain mutex and every method is synchronous
//! (deliveries use `try_send`), so the lock is never held across an await.

use axum::extract::ws::Utf8Bytes;
use node_wasm::NodeId;
use std::collections::HashMap;
use tokio::sync::mpsc;

/// How another task reaches one connection: a bounded queue of
/// already-encoded text frames.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    /// Server-unique connection number (logs, removal).
    pub conn: u64,
    tx: mpsc::Sender<Utf8Bytes>,
}

/// What happened to a frame handed to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Queued for the connection's writer.
    Delivered,
    /// The connection's queue is full (it reads slower than others send to
    /// it): the frame is dropped and counted. The recipient stays
    /// connected, so flooding a node with signals cannot disconnect it; the
    /// bounded queue bounds memory.
    Full,
    /// The connection is already going away.
    Gone,
}

impl ConnHandle {
    /// A handle for connection `conn`.
    pub fn new(conn: u64, tx: mpsc::Sender<Utf8Bytes>) -> Self {
        ConnHandle { conn, tx }
    }

    /// Queues `text` without waiting.
    pub fn deliver(&self, text: Utf8Bytes) -> Delivery {
        match self.tx.try_send(text) {
            Ok(()) => Delivery::Delivered,
            Err(mpsc::error::TrySendError::Full(_)) => Delivery::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Gone,
        }
    }
}

/// Why an id could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyForId {
    /// Connections the id already has.
    pub existing: usize,
}

/// id -> live authenticated connections, oldest first.
#[derive(Debug, Default)]
pub struct Directory {
    by_id: HashMap<NodeId, Vec<ConnHandle>>,
}

impl Directory {
    /// Registers `handle` as a connection of `id` unless the id already has
    /// `max_per_id`. On success returns the other live ids (sorted, for
    /// stable output) and whether this is the id's first connection. When it
    /// is, `joined` (the encoded `peer_joined`) goes to every other
    /// connection; doing that under the same lock as the insertion means two
    /// nodes authenticating at once each learn of the other exactly once,
    /// either from their welcome or from a `peer_joined`.
    pub fn register(
        &mut self,
        id: NodeId,
        handle: ConnHandle,
        max_per_id: usize,
        joined: impl FnOnce() -> Utf8Bytes,
    ) -> Result<(Vec<NodeId>, bool), TooManyForId> {
        let existing = self.by_id.get(&id).map_or(0, Vec::len);
        if existing >= max_per_id {
            return Err(TooManyForId { existing });
        }
        let first = existing == 0;
        if first {
            self.broadcast_except(&id, joined());
        }
        self.by_id.entry(id).or_default().push(handle);
        Ok((self.peers_except(&id), first))
    }

    /// Removes connection `conn` of `id`. Returns true when it was the id's
    /// last connection; then `left` (the encoded `peer_left`) is broadcast
    /// unless it is `None` (the server is shutting down and everyone is
    /// leaving anyway).
    pub fn unregister(&mut self, id: &NodeId, conn: u64, left: Option<Utf8Bytes>) -> bool {
        let Some(conns) = self.by_id.get_mut(id) else {
            return false;
        };
        let before = conns.len();
        conns.retain(|h| h.conn != conn);
        if conns.len() == before || !conns.is_empty() {
            return false;
        }
        self.by_id.remove(id);
        if let Some(text) = left {
            self.broadcast_except(id, text);
        }
        true
    }

    /// Delivers `text` to the most recent connection of `to` that accepts
    /// it, falling back to older ones if the newest is already closing.
    pub fn deliver_to(&self, to: &NodeId, text: Utf8Bytes) -> Delivery {
        let mut outcome = Delivery::Gone;
        for handle in self.by_id.get(to).into_iter().flatten().rev() {
            outcome = handle.deliver(text.clone());
            if outcome == Delivery::Delivered {
                break;
            }
        }
        outcome
    }

    /// Live ids other than `id`, sorted.
    pub fn peers_except(&self, id: &NodeId) -> Vec<NodeId> {
        let mut peers: Vec<NodeId> = self.by_id.keys().filter(|p| *p != id).copied().collect();
        peers.sort_unstable();
        peers
    }

    /// At most `k` of `ids`, chosen uniformly at random (`random(n)` gives a
    /// number below `n`), sorted.
    pub fn sample(mut ids: Vec<NodeId>, k: usize, mut random: impl FnMut(usize) -> usize) -> Vec<NodeId> {
        if ids.len() > k {
            // Partial Fisher-Yates: the first k slots end up a uniform sample.
            for i in 0..k {
                let j = i + random(ids.len() - i);
                ids.swap(i, j);
            }
            ids.truncate(k);
            ids.sort_unstable();
        }
        ids
    }

    /// Number of distinct authenticated ids.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when nobody is authenticated.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Sends `text` to every connection of every id but `id`.
    fn broadcast_except(&self, id: &NodeId, text: Utf8Bytes) {
        for handle in self.by_id.iter().filter(|(p, _)| *p != id).flat_map(|(_, hs)| hs) {
            handle.deliver(text.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_wasm::Identity;

    fn id(n: u8) -> NodeId {
        Identity::from_seed([n; 32]).node_id()
    }

    fn conn(n: u64, cap: usize) -> (ConnHandle, mpsc::Receiver<Utf8Bytes>) {
        let (tx, rx) = mpsc::channel(cap);
        (ConnHandle::new(n, tx), rx)
    }

    fn text(s: &'static str) -> impl FnOnce() -> Utf8Bytes {
        move || Utf8Bytes::from_static(s)
    }

    #[test]
    fn join_and_leave_are_announced_once_per_id() {
        let mut d = Directory::default();
        let (a1, mut ra1) = conn(1, 8);
        let (b1, _rb1) = conn(2, 8);
        let (b2, _rb2) = conn(3, 8);
        assert_eq!(d.register(id(1), a1, 2, text("a")), Ok((vec![], true)));
        assert_eq!(d.register(id(2), b1, 2, text("b")), Ok((vec![id(1)], true)));
        assert_eq!(d.register(id(2), b2, 2, text("b-again")), Ok((vec![id(1)], false)));
        assert_eq!(ra1.try_recv().unwrap().as_str(), "b");
        assert!(ra1.try_recv().is_err(), "second connection of an id is not a new peer");

        assert!(!d.unregister(&id(2), 2, Some(Utf8Bytes::from_static("left"))));
        assert!(ra1.try_recv().is_err());
        assert!(d.unregister(&id(2), 3, Some(Utf8Bytes::from_static("left"))));
        assert_eq!(ra1.try_recv().unwrap().as_str(), "left");
        assert_eq!(d.len(), 1);
        assert!(!d.unregister(&id(2), 3, None), "double removal is a no-op");
    }

    #[test]
    fn per_id_cap() {
        let mut d = Directory::default();
        for n in 0..2 {
            assert!(d.register(id(1), conn(n, 1).0, 2, text("x")).is_ok());
        }
        assert_eq!(d.register(id(1), conn(9, 1).0, 2, text("x")), Err(TooManyForId { existing: 2 }));
    }

    #[test]
    fn signals_go_to_the_newest_live_connection() {
        let mut d = Directory::default();
        let (old, mut r_old) = conn(1, 8);
        let (new, r_new) = conn(2, 8);
        d.register(id(1), old, 2, text("x")).unwrap();
        d.register(id(1), new, 2, text("x")).unwrap();
        assert_eq!(d.deliver_to(&id(1), Utf8Bytes::from_static("s1")), Delivery::Delivered);
        drop(r_new);
        assert_eq!(d.deliver_to(&id(1), Utf8Bytes::from_static("s2")), Delivery::Delivered);
        assert_eq!(r_old.try_recv().unwrap().as_str(), "s2");
        assert_eq!(d.deliver_to(&id(7), Utf8Bytes::from_static("s3")), Delivery::Gone);
    }

    #[test]
    fn a_sample_of_the_directory_is_bounded_and_uniform_enough() {
        let ids: Vec<NodeId> = (0..100).map(id).collect();
        let mut x = 7usize;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let s = Directory::sample(ids.clone(), 10, |n| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (x >> 33) % n
            });
            assert_eq!(s.len(), 10);
            assert!(s.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
            seen.extend(s);
        }
        assert!(seen.len() > 80, "many different ids over 50 samples: {}", seen.len());
        assert_eq!(Directory::sample(ids[..5].to_vec(), 10, |_| 0).len(), 5, "short lists whole");
    }

    #[test]
    fn a_full_queue_drops_the_frame_and_keeps_the_connection() {
        let mut d = Directory::default();
        let (h, mut rx) = conn(1, 1);
        d.register(id(1), h, 2, text("x")).unwrap();
        assert_eq!(d.deliver_to(&id(1), Utf8Bytes::from_static("a")), Delivery::Delivered);
        assert_eq!(d.deliver_to(&id(1), Utf8Bytes::from_static("b")), Delivery::Full);
        // Once the connection reads, it gets frames again.
        assert_eq!(rx.try_recv().ok().as_deref(), Some("a"));
        assert_eq!(d.deliver_to(&id(1), Utf8Bytes::from_static("c")), Delivery::Delivered);
    }
}
