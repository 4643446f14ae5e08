//! The messages a router holds, indexed by id and by (topic, origin, seq),
//! and the per-origin version vectors that catch-up compares.
//!
//! The (topic, origin, seq) index is kept even when a body is evicted, so
//! version vectors never go backwards (a node does not re-fetch what it
//! already delivered); evicted bodies simply cannot be served any more.
//!
//! **Content, not only seqs.** Each index entry also keeps the message's
//! predecessor (its `prev`, as the app's linker reads it from the payload).
//! Per origin the store tracks the *linked prefix*: the longest run
//! `1..=linked` with one message per seq, each naming the one before it. Its
//! head id commits to the whole prefix, so two stores with equal
//! `(seq, linked, head)` for an origin hold the same messages up to `seq`'s
//! linked part; a fork (two messages at one seq) or a broken link (a
//! message whose predecessor we do not hold) stops the prefix and shows in
//! the version vector, which is what lets catch-up surface hidden forks
//! (rules `hidden_fork_probe`, `fork_evidence_probe`, `broken_link_probe`).
//!
//! At most [`MAX_PER_SEQ`] messages are kept per (topic, origin, seq): two
//! prove an equivocation, more add nothing and would let one author fill
//! memory. Bodies are bounded in count and in bytes (rule
//! `store_bounded_in_bytes`), and an origin's seqs up to a *floor* (rule
//! `final_floor`: what a final checkpoint covers) leave the index too: they
//! count as held (so catch-up never fetches them) and cannot be served.

use super::message::{DIGEST_LEN, Message, MsgId, VvEntry};
use crate::identity::NodeId;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};

/// Messages kept per (topic, origin, seq): two are the evidence of an
/// equivocation; a third is refused.
pub const MAX_PER_SEQ: usize = 2;

/// One held message in the index: its id and the predecessor it names
/// (`None`: unknown, no linker or not readable).
type Slot = Vec<(MsgId, Option<MsgId>)>;

#[derive(Debug, Default)]
struct OriginLog {
    /// Highest seq such that 1..=contiguous are all present.
    contiguous: u64,
    /// Highest seq such that 1..=linked hold one message each, each naming
    /// the previous one (see the module docs).
    linked: u64,
    /// Every seq seen above the floor, with its ids (more than one means
    /// equivocation).
    seqs: BTreeMap<u64, Slot>,
    /// Seqs `1..=floor` are final: held in effect, not in the index.
    floor: u64,
    /// The message at `floor`.
    floor_head: Option<MsgId>,
}

impl OriginLog {
    fn single(&self, seq: u64) -> Option<MsgId> {
        if seq > 0 && seq == self.floor {
            return self.floor_head;
        }
        match self.seqs.get(&seq).map(Vec::as_slice) {
            Some([(id, _)]) => Some(*id),
            _ => None,
        }
    }

    fn holds(&self, seq: u64) -> bool {
        seq <= self.floor || self.seqs.contains_key(&seq)
    }

    /// Lowers `linked` below a fork at `seq`, then extends it as far as the
    /// held messages allow.
    fn relink(&mut self, seq: u64) {
        if seq <= self.linked {
            self.linked = seq.saturating_sub(1);
        }
        loop {
            let Some(next) = self.linked.checked_add(1) else { return };
            let Some(slot) = self.seqs.get(&next) else { return };
            let [(_, prev)] = slot.as_slice() else { return };
            if self.linked > 0
                && let Some(p) = prev
                && Some(*p) != self.single(self.linked)
            {
                return;
            }
            self.linked = next;
        }
    }

    /// True when some message at `linked + 1` names a predecessor other
    /// than the one we hold at `linked`: someone holds that other one.
    fn broken_link(&self) -> bool {
        let Some(head) = self.single(self.linked) else { return false };
        let Some(next) = self.linked.checked_add(1) else { return false };
        self.seqs.get(&next).is_some_and(|slot| slot.iter().any(|(_, p)| p.is_some_and(|p| p != head)))
    }
}

/// What inserting a message found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    New,
    AlreadyHad,
    /// A different payload already holds this (topic, origin, seq): the
    /// ids of all of them, the new one last.
    Equivocation(Vec<MsgId>),
    /// [`MAX_PER_SEQ`] different payloads already hold this seq: not kept.
    Surplus,
}

/// Bounded message store.
#[derive(Debug)]
pub struct Store {
    msgs: BTreeMap<MsgId, Message>,
    index: BTreeMap<String, BTreeMap<NodeId, OriginLog>>,
    order: VecDeque<MsgId>,
    max: usize,
    /// Payload bytes held, and the bound on them.
    bytes: usize,
    max_bytes: usize,
}

impl Store {
    pub fn new(max: usize, max_bytes: usize) -> Store {
        Store {
            msgs: BTreeMap::new(),
            index: BTreeMap::new(),
            order: VecDeque::new(),
            max: max.max(1),
            bytes: 0,
            max_bytes: max_bytes.max(1),
        }
    }

    /// Payload bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The message bodies held on `topic` (those not evicted).
    pub fn bodies<'a>(&'a self, topic: &'a str) -> impl Iterator<Item = &'a Message> + 'a {
        self.msgs.values().filter(move |m| m.topic == topic)
    }

    /// Index entries held (seqs above the floors), for tests and stats.
    pub fn index_len(&self) -> usize {
        self.index.values().flat_map(|o| o.values()).map(|l| l.seqs.len()).sum()
    }

    /// Rule `final_floor`: see [`super::Input::Floor`].
    pub fn set_floor(&mut self, topic: &str, origin: NodeId, seq: u64, head: MsgId) {
        let log = self.index.entry(topic.to_owned()).or_default().entry(origin).or_default();
        if seq <= log.floor {
            return;
        }
        let above = log.seqs.split_off(&(seq + 1));
        let below = std::mem::replace(&mut log.seqs, above);
        log.floor = seq;
        log.floor_head = Some(head);
        log.contiguous = log.contiguous.max(seq);
        while let Some(next) = log.contiguous.checked_add(1)
            && log.seqs.contains_key(&next)
        {
            log.contiguous = next;
        }
        log.linked = log.linked.max(seq);
        let linked = log.linked;
        log.relink(linked.saturating_add(1));
        for (_, slot) in below {
            for (id, _) in slot {
                if let Some(m) = self.msgs.remove(&id) {
                    self.bytes = self.bytes.saturating_sub(m.payload.len());
                }
            }
        }
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

    /// Inserts `msg` (id `id`), which names `prev` as its predecessor
    /// (`None`: unknown).
    pub fn insert(&mut self, id: MsgId, msg: Message, prev: Option<MsgId>) -> Inserted {
        let log = self.index.entry(msg.topic.clone()).or_default().entry(msg.origin).or_default();
        if msg.seq <= log.floor {
            return Inserted::AlreadyHad;
        }
        let ids = log.seqs.entry(msg.seq).or_default();
        if ids.iter().any(|(x, _)| *x == id) {
            return Inserted::AlreadyHad;
        }
        if ids.len() >= MAX_PER_SEQ {
            return Inserted::Surplus;
        }
        ids.push((id, prev));
        let result =
            if ids.len() > 1 { Inserted::Equivocation(ids.iter().map(|(x, _)| *x).collect()) } else { Inserted::New };
        while let Some(next) = log.contiguous.checked_add(1)
            && log.seqs.contains_key(&next)
        {
            log.contiguous = next;
        }
        log.relink(msg.seq);
        self.bytes += msg.payload.len();
        self.msgs.insert(id, msg);
        self.order.push_back(id);
        while self.msgs.len() > self.max || self.bytes > self.max_bytes {
            match self.order.pop_front() {
                Some(old) => {
                    if let Some(m) = self.msgs.remove(&old) {
                        self.bytes = self.bytes.saturating_sub(m.payload.len());
                    }
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
        self.index.get(&msg.topic).and_then(|o| o.get(&msg.origin)).is_some_and(|l| {
            msg.seq <= l.floor || l.seqs.get(&msg.seq).is_some_and(|ids| ids.iter().any(|(x, _)| x == id))
        })
    }

    /// Whether any message holds (topic, origin, seq).
    pub fn has_seq(&self, topic: &str, origin: &NodeId, seq: u64) -> bool {
        self.index.get(topic).and_then(|o| o.get(origin)).is_some_and(|l| l.holds(seq))
    }

    /// Highest contiguous seq of `origin` on `topic` (0 if none).
    pub fn contiguous(&self, topic: &str, origin: &NodeId) -> u64 {
        self.index.get(topic).and_then(|o| o.get(origin)).map_or(0, |l| l.contiguous)
    }

    /// The ids held at (topic, origin, seq) (two for an equivocation).
    pub fn ids_at(&self, topic: &str, origin: &NodeId, seq: u64) -> Vec<MsgId> {
        let slot = self.index.get(topic).and_then(|o| o.get(origin)).and_then(|l| l.seqs.get(&seq));
        slot.map(|s| s.iter().map(|(id, _)| *id).collect()).unwrap_or_default()
    }

    /// The entry of `origin` in the version vector (see [`VvEntry`]).
    pub fn entry(&self, topic: &str, origin: &NodeId) -> VvEntry {
        let log = self.index.get(topic).and_then(|o| o.get(origin));
        let (seq, linked) = log.map_or((0, 0), |l| (l.contiguous, l.linked));
        let head = log.and_then(|l| l.single(l.linked)).filter(|_| linked > 0).unwrap_or(MsgId([0; 32]));
        VvEntry { origin: *origin, seq, linked, head }
    }

    /// The seq at which a message we hold names a predecessor we lack
    /// (`broken_link_probe`): the seq to ask peers for, if any.
    pub fn broken_link(&self, topic: &str, origin: &NodeId) -> Option<u64> {
        let log = self.index.get(topic).and_then(|o| o.get(origin))?;
        log.broken_link().then_some(log.linked)
    }

    /// Every origin with at least seq 1, in origin order (see [`VvEntry`]).
    pub fn version_vector(&self, topic: &str) -> Vec<VvEntry> {
        let Some(origins) = self.index.get(topic) else { return Vec::new() };
        origins.iter().filter(|(_, l)| l.contiguous > 0).map(|(o, _)| self.entry(topic, o)).collect()
    }

    /// First 16 bytes of SHA-256 over the topic's version vector, content
    /// commitments included: equal digests mean the same messages up to
    /// each origin's contiguous seq, with forks and broken links in the same
    /// places (up to non-contiguous tails). 16 bytes so that nobody can grind
    /// two different holdings to one digest.
    pub fn digest(&self, topic: &str) -> [u8; DIGEST_LEN] {
        let mut h = Sha256::new();
        for e in self.version_vector(topic) {
            h.update(e.origin.0);
            h.update(e.seq.to_be_bytes());
            h.update(e.linked.to_be_bytes());
            h.update(e.head.0);
        }
        let d = h.finalize();
        let mut out = [0u8; DIGEST_LEN];
        out.copy_from_slice(&d[..DIGEST_LEN]);
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
            if !log.is_some_and(|l| l.holds(seq)) {
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
        log.seqs.range(from..=to).flat_map(|(_, ids)| ids.iter().filter_map(|(id, _)| self.msgs.get(id))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmsg(origin: NodeId, seq: u64, body: &[u8]) -> (MsgId, Message) {
        let m = Message { topic: "t".into(), origin, seq, hops: 0, payload: body.to_vec() };
        (m.id(), m)
    }

    #[test]
    fn store_bounded_in_bytes_evicts_oldest_bodies_not_the_index() {
        let o = NodeId([1; 32]);
        let mut s = Store::new(1_000, 10_000);
        for seq in 1..=20u64 {
            let (id, m) = fmsg(o, seq, &[seq as u8; 1_000]);
            s.insert(id, m, None);
        }
        assert!(s.bytes() <= 10_000 && s.len() == 10, "{} bytes in {} bodies", s.bytes(), s.len());
        assert_eq!(s.contiguous("t", &o), 20, "the index still says what was delivered");
    }

    #[test]
    fn final_floor_drops_bodies_and_index_and_counts_them_held() {
        let o = NodeId([1; 32]);
        let (mut full, mut floored) = (Store::new(1_000, usize::MAX), Store::new(1_000, usize::MAX));
        let mut ids = vec![];
        for seq in 1..=10u64 {
            let (id, m) = fmsg(o, seq, &[seq as u8; 100]);
            let prev = ids.last().copied();
            ids.push(id);
            full.insert(id, m.clone(), prev);
            if seq > 6 {
                floored.insert(id, m, prev);
            }
        }
        floored.set_floor("t", o, 6, ids[5]);
        assert_eq!(floored.index_len(), 4);
        assert_eq!(floored.bytes(), 400);
        // The same content commitment as a store holding everything.
        assert_eq!(floored.digest("t"), full.digest("t"));
        full.set_floor("t", o, 6, ids[5]);
        assert_eq!((full.index_len(), full.bytes(), full.len()), (4, 400, 4));
        assert_eq!(full.digest("t"), floored.digest("t"));
        // Below the floor: known, never missing, never stored again.
        let (id3, m3) = fmsg(o, 3, &[3; 100]);
        assert!(full.knows(&id3, &m3) && full.missing("t", &o, 10, 100).is_empty());
        assert_eq!(full.insert(id3, m3, None), Inserted::AlreadyHad);
    }

    fn msg(origin: u8, seq: u64, body: u8) -> (MsgId, Message) {
        let payload = vec![origin, seq as u8, body];
        (MsgId::of(&payload), Message { topic: "t".into(), origin: NodeId([origin; 32]), seq, hops: 0, payload })
    }

    #[test]
    fn version_vector_counts_contiguous_seqs() {
        let mut s = Store::new(100, usize::MAX);
        for seq in [1, 2, 4] {
            let (id, m) = msg(1, seq, 0);
            assert_eq!(s.insert(id, m, None), Inserted::New);
        }
        let o = NodeId([1; 32]);
        assert_eq!(s.version_vector("t").iter().map(|e| (e.origin, e.seq)).collect::<Vec<_>>(), vec![(o, 2)]);
        assert_eq!(s.missing("t", &o, 6, 100), vec![(3, 3), (5, 6)]);
        assert_eq!(s.missing("t", &o, 6, 2), vec![(3, 3), (5, 5)]);
        let (id, m) = msg(1, 3, 0);
        s.insert(id, m, None);
        assert_eq!(s.contiguous("t", &o), 4);
        assert_eq!(s.range("t", &o, 2, 3).len(), 2);
    }

    #[test]
    fn equivocation_is_detected_and_both_kept() {
        let mut s = Store::new(100, usize::MAX);
        let (a, ma) = msg(1, 1, 0);
        let (b, mb) = msg(1, 1, 1);
        assert_eq!(s.insert(a, ma.clone(), None), Inserted::New);
        assert_eq!(s.insert(a, ma, None), Inserted::AlreadyHad);
        assert_eq!(s.insert(b, mb, None), Inserted::Equivocation(vec![a, b]));
        assert_eq!(s.range("t", &NodeId([1; 32]), 1, 1).len(), 2);
        let (c, mc) = msg(1, 1, 2);
        assert_eq!(s.insert(c, mc, None), Inserted::Surplus, "a third payload at one seq is not kept");
    }

    /// A chain `1..=n` of origin 1 whose messages name their predecessor;
    /// `fork` changes the body from that seq on (another branch).
    fn chain(s: &mut Store, n: u64, fork: Option<u64>) -> Vec<MsgId> {
        let mut prev = MsgId([0; 32]);
        let mut ids = vec![];
        for seq in 1..=n {
            let body = if fork.is_some_and(|f| seq >= f) { 9 } else { 0 };
            let (id, m) = msg(1, seq, body);
            s.insert(id, m, Some(prev));
            ids.push(id);
            prev = id;
        }
        ids
    }

    #[test]
    fn linked_prefix_and_head_commit_to_content() {
        let o = NodeId([1; 32]);
        let (mut a, mut b) = (Store::new(100, usize::MAX), Store::new(100, usize::MAX));
        let ia = chain(&mut a, 5, None);
        chain(&mut b, 5, Some(4));
        let (ea, eb) = (a.entry("t", &o), b.entry("t", &o));
        assert_eq!((ea.seq, ea.linked, ea.head), (5, 5, ia[4]));
        assert_eq!((eb.seq, eb.linked), (5, 5));
        assert_ne!(ea.head, eb.head, "same seqs, different content: different heads");
        assert_ne!(a.digest("t"), b.digest("t"), "and different digests");
        // b receives a's op at seq 4: a fork; the linked prefix stops below it.
        let (id4, m4) = (ia[3], msg(1, 4, 0).1);
        assert!(matches!(b.insert(id4, m4, Some(ia[2])), Inserted::Equivocation(_)));
        let eb = b.entry("t", &o);
        assert_eq!((eb.seq, eb.linked, eb.head), (5, 3, ia[2]));
    }

    #[test]
    fn a_message_naming_a_predecessor_we_lack_is_a_broken_link() {
        let o = NodeId([1; 32]);
        let mut a = Store::new(100, usize::MAX);
        let ia = chain(&mut a, 3, None);
        // seq 4 of another branch, whose seq 3 we do not hold.
        let (id, m) = msg(1, 4, 7);
        a.insert(id, m, Some(MsgId([42; 32])));
        let e = a.entry("t", &o);
        assert_eq!((e.seq, e.linked, e.head), (4, 3, ia[2]));
        assert_eq!(a.broken_link("t", &o), Some(3), "ask for the other message at seq 3");
    }

    #[test]
    fn eviction_keeps_the_index() {
        let mut s = Store::new(2, usize::MAX);
        for seq in 1..=3 {
            let (id, m) = msg(1, seq, 0);
            s.insert(id, m, None);
        }
        assert_eq!(s.len(), 2);
        assert_eq!(s.contiguous("t", &NodeId([1; 32])), 3);
        assert_eq!(s.range("t", &NodeId([1; 32]), 1, 3).len(), 2);
    }
}
