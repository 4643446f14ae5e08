//! Snapshot join, sans-IO: a node fetches a peer's last final checkpoint
//! (record and state snapshot) in parts instead of every op since the
//! network began, and serves its own to others.
//!
//! - Part 0 is the *head*: the checkpoint record and a manifest (SHA-256 of
//!   each chunk, and the snapshot's length). Parts `1..=count` are chunks of
//!   at most [`CHUNK_BYTES`]. Rule `chunk_checked`: each chunk must hash to
//!   its manifest entry when it arrives; the assembled snapshot is then
//!   checked against the quorum-signed state hash
//!   ([`crate::core::snapshot::verify`], done by the caller). A peer whose
//!   part is wrong, late ([`PART_TIMEOUT_MS`]) or whose whole snapshot fails
//!   verification is not asked again; the fetch moves to the next peer.
//! - Rule `serve_budget`: a node serves at most [`PARTS_PER_SECOND`] parts
//!   a second to one peer and [`PARTS_PER_SECOND_TOTAL`] to all; asks
//!   beyond are refused and counted (the asker times out and tries
//!   another peer).
//! - At most [`WINDOW`] parts are asked for at once.

use crate::core::snapshot::MAX_SNAPSHOT_BYTES;
use crate::identity::NodeId;
use crate::wire::{MAX_BLOB, SnapPart, WireMsg};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Snapshot bytes per part.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Most chunks a snapshot can have.
pub const MAX_CHUNKS: usize = MAX_SNAPSHOT_BYTES / CHUNK_BYTES + 1;
/// A part not received this long after it was asked for: next peer.
pub const PART_TIMEOUT_MS: u64 = 10_000;
/// Parts served to one peer per second at most (16 MiB/s).
pub const PARTS_PER_SECOND: u32 = 64;
/// Parts served to all peers together per second at most (32 MiB/s).
pub const PARTS_PER_SECOND_TOTAL: u32 = 128;
/// Parts asked for at once.
pub const WINDOW: u32 = 8;

/// Signed checkpoints this many epochs ahead of a node's last final one
/// make it fetch the newest (rule `catch_up_from_checkpoint`).
pub const CATCH_UP_LAG: u64 = 3;

/// When a node starts fetching a checkpoint (rule
/// `catch_up_from_checkpoint`): it is not fetching one, and its validators'
/// signed checkpoints run [`CATCH_UP_LAG`] epochs ahead (`lag`, from
/// [`crate::core::replica::Replica::finality_lag`]).
///
/// Rule `join_full_trusts_no_snapshot`: a node started with `?join=full`
/// fetches none until its own replay has caught up with the validators
/// once: a checkpoint final here less than [`CATCH_UP_LAG`] epochs before
/// the epoch due now (not merely before the newest votes it has seen, which
/// during a replay are old ones). Before that, the first check of a fetched checkpoint is against
/// the validators its own state names, the trust `?join=full` exists to
/// refuse; and a replay long enough to fall a few epochs behind the live
/// votes would otherwise end in a snapshot (`bench_finality --archive 1`:
/// a 100,000-op full replay adopted the origin's snapshot after a few
/// seconds). Afterwards it catches up as any node, anchored in its own
/// final checkpoint (rule `catch_up_anchored`).
#[derive(Clone, Copy, Debug, Default)]
pub struct CatchUp {
    join_full: bool,
    replayed: bool,
}

impl CatchUp {
    pub fn new(join_full: bool) -> CatchUp {
        CatchUp { join_full, replayed: false }
    }

    /// Whether to start a fetch now; call once per tick with the last
    /// final epoch here and the epoch due now.
    pub fn due(&mut self, fetching: bool, lag: u64, final_epoch: Option<u64>, due_epoch: Option<u64>) -> bool {
        if let (Some(f), Some(d)) = (final_epoch, due_epoch)
            && d.saturating_sub(f) < CATCH_UP_LAG
        {
            self.replayed = true;
        }
        !fetching && lag >= CATCH_UP_LAG && (self.replayed || !self.join_full)
    }
}

/// A checkpoint cut into parts, ready to serve.
#[derive(Clone, Debug)]
pub struct Served {
    epoch: u64,
    record: Vec<u8>,
    /// Part 0 (record and chunk manifest), made at the first ask: hashing
    /// every chunk costs ~90 ms per 15 MB in a page that just started, and
    /// a reload must not pay it before the app is interactive.
    head: std::cell::OnceCell<Vec<u8>>,
    /// The snapshot, shared with the replica (not copied per node).
    snapshot: Arc<Vec<u8>>,
    count: usize,
}

impl Served {
    /// `None` when the head would not fit one part (a record of millions of
    /// authors): the node then serves nothing and peers use full sync.
    pub fn new(epoch: u64, record: &[u8], snapshot: Arc<Vec<u8>>) -> Option<Served> {
        let count = snapshot.len().div_ceil(CHUNK_BYTES);
        let head_len = 4 + record.len() + 4 + count * 32 + 8;
        (head_len <= MAX_BLOB && count <= MAX_CHUNKS).then(|| Served {
            epoch,
            record: record.to_vec(),
            head: std::cell::OnceCell::new(),
            snapshot,
            count,
        })
    }

    /// Part 0: the record, then the SHA-256 of each chunk, then the length.
    fn head(&self) -> &[u8] {
        self.head.get_or_init(|| {
            let mut head = Vec::with_capacity(self.record.len() + self.count * 32 + 16);
            head.extend_from_slice(&(self.record.len() as u32).to_be_bytes());
            head.extend_from_slice(&self.record);
            head.extend_from_slice(&(self.count as u32).to_be_bytes());
            for c in self.snapshot.chunks(CHUNK_BYTES) {
                head.extend_from_slice(&Sha256::digest(c));
            }
            head.extend_from_slice(&(self.snapshot.len() as u64).to_be_bytes());
            head
        })
    }

    /// Chunk `i` (from 0) of the snapshot.
    fn chunk(&self, i: usize) -> Option<Vec<u8>> {
        self.snapshot.chunks(CHUNK_BYTES).nth(i).map(<[u8]>::to_vec)
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// Counters for `status()` and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncStats {
    pub parts_served: u64,
    /// Asks refused by rule `serve_budget`.
    pub asks_refused: u64,
    pub parts_received: u64,
    /// Parts or snapshots that failed a check (the peer is not asked again).
    pub bad_parts: u64,
    pub timeouts: u64,
}

/// Serves this node's last final checkpoint.
#[derive(Default)]
pub struct SnapshotServer {
    served: Option<Served>,
    /// The checkpoint served before `served` (rule
    /// `serve_previous_during_transfer`).
    previous: Option<Served>,
    budget: BTreeMap<NodeId, (u64, u32)>,
    total: (u64, u32),
    pub stats: SyncStats,
}

impl SnapshotServer {
    /// Serves `served` from now on. Rule `serve_previous_during_transfer`:
    /// the one it replaces is kept for parts of transfers already under
    /// way. A new checkpoint becomes final every epoch, and a transfer of
    /// several MB can outlast one; without it such a transfer failed at
    /// its next part and started again from the next peer.
    pub fn set(&mut self, served: Option<Served>) {
        if served.as_ref().map(Served::epoch) != self.epoch() {
            self.previous = std::mem::replace(&mut self.served, served);
        } else {
            self.served = served;
        }
    }

    pub fn epoch(&self) -> Option<u64> {
        self.served.as_ref().map(|s| s.epoch)
    }

    /// The reply to an ask, or `None` when `from` is over its budget.
    pub fn on_ask(&mut self, from: NodeId, epoch_min: u64, index: u32, now_ms: u64) -> Option<WireMsg> {
        let second = now_ms / 1000;
        if self.budget.len() > 1024 {
            self.budget.retain(|_, (s, _)| *s == second);
        }
        let b = self.budget.entry(from).or_insert((second, 0));
        if b.0 != second {
            *b = (second, 0);
        }
        if self.total.0 != second {
            self.total = (second, 0);
        }
        if b.1 >= PARTS_PER_SECOND || self.total.1 >= PARTS_PER_SECOND_TOTAL {
            self.stats.asks_refused += 1;
            return None;
        }
        b.1 += 1;
        self.total.1 += 1;
        self.stats.parts_served += 1;
        let none = SnapPart { epoch: 0, index, count: 0, bytes: vec![] };
        // A part after the head is asked for with its transfer's epoch.
        let from_transfer =
            (index > 0).then(|| [&self.served, &self.previous].into_iter().flatten().find(|s| s.epoch == epoch_min));
        let part = match from_transfer.flatten().or(self.served.as_ref()) {
            Some(s) if s.epoch >= epoch_min => {
                let bytes = match index {
                    0 => Some(s.head().to_vec()),
                    i => s.chunk(i as usize - 1),
                };
                match bytes {
                    Some(bytes) => SnapPart { epoch: s.epoch, index, count: s.count as u32, bytes },
                    None => none,
                }
            }
            _ => none,
        };
        Some(WireMsg::SnapPart(part))
    }
}

/// What the fetch asks of its node.
#[derive(Debug, PartialEq, Eq)]
pub enum FetchOut {
    /// Send this to that peer.
    Ask(NodeId, WireMsg),
    /// Every part arrived and checked: verify and use it (then
    /// [`SnapshotFetch::reject`] the peer if verification fails).
    Done { from: NodeId, record: Vec<u8>, snapshot: Vec<u8> },
    /// No peer left to ask: every one was tried, or has none this recent.
    Exhausted,
}

struct Transfer {
    epoch: u64,
    count: u32,
    record: Vec<u8>,
    manifest: Vec<[u8; 32]>,
    total: u64,
    chunks: Vec<Option<Vec<u8>>>,
    received_bytes: u64,
    /// Asked and not yet received: index → when.
    asked: BTreeMap<u32, u64>,
    next: u32,
}

/// One node's fetch of a checkpoint at least as recent as `epoch_min`.
pub struct SnapshotFetch {
    epoch_min: u64,
    peer: Option<(NodeId, u64)>,
    transfer: Option<Transfer>,
    tried: BTreeSet<NodeId>,
    /// Peers that had no checkpoint recent enough.
    none: BTreeSet<NodeId>,
    pub stats: SyncStats,
}

impl SnapshotFetch {
    pub fn new(epoch_min: u64) -> SnapshotFetch {
        SnapshotFetch {
            epoch_min,
            peer: None,
            transfer: None,
            tried: BTreeSet::new(),
            none: BTreeSet::new(),
            stats: SyncStats::default(),
        }
    }

    /// `(received, total)` snapshot bytes, once the head arrived.
    pub fn progress(&self) -> Option<(u64, u64)> {
        self.transfer.as_ref().map(|t| (t.received_bytes, t.total))
    }

    /// The peer being asked, if any.
    pub fn peer(&self) -> Option<NodeId> {
        self.peer.map(|p| p.0)
    }

    /// Peers that said they have no recent enough checkpoint.
    pub fn peers_without(&self) -> usize {
        self.none.len()
    }

    /// Asks the next untried peer of `peers` for the head; with no peer
    /// yet, waits.
    fn next_peer(&mut self, peers: &[NodeId], now_ms: u64) -> Vec<FetchOut> {
        self.transfer = None;
        self.peer = None;
        match peers.iter().find(|p| !self.tried.contains(p) && !self.none.contains(p)) {
            Some(p) => {
                self.peer = Some((*p, now_ms));
                vec![FetchOut::Ask(*p, WireMsg::SnapAsk { epoch_min: self.epoch_min, index: 0 })]
            }
            None if peers.is_empty() => vec![],
            None => vec![FetchOut::Exhausted],
        }
    }

    /// Starts (or keeps going): asks a peer if none is being asked.
    pub fn on_tick(&mut self, peers: &[NodeId], now_ms: u64) -> Vec<FetchOut> {
        let Some((p, asked)) = self.peer else { return self.next_peer(peers, now_ms) };
        let late = match &self.transfer {
            None => now_ms.saturating_sub(asked) > PART_TIMEOUT_MS,
            Some(t) => t.asked.values().any(|at| now_ms.saturating_sub(*at) > PART_TIMEOUT_MS),
        };
        if late || !peers.contains(&p) {
            self.stats.timeouts += u64::from(late);
            self.tried.insert(p);
            return self.next_peer(peers, now_ms);
        }
        vec![]
    }

    /// The assembled snapshot from `peer` failed verification.
    pub fn reject(&mut self, peer: NodeId, peers: &[NodeId], now_ms: u64) -> Vec<FetchOut> {
        self.stats.bad_parts += 1;
        self.tried.insert(peer);
        self.next_peer(peers, now_ms)
    }

    fn bad(&mut self, peer: NodeId, peers: &[NodeId], now_ms: u64) -> Vec<FetchOut> {
        self.stats.bad_parts += 1;
        self.tried.insert(peer);
        self.next_peer(peers, now_ms)
    }

    /// A part arrived from `from`. `accept_record` sees the checkpoint
    /// record as soon as the head arrives, before any chunk is asked for:
    /// a record the node would refuse anyway (not newer than its own, or
    /// not signed by the validators it trusts: rule `catch_up_anchored`)
    /// costs one part, not the whole snapshot.
    pub fn on_part(
        &mut self,
        from: NodeId,
        part: SnapPart,
        peers: &[NodeId],
        now_ms: u64,
        accept_record: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Vec<FetchOut> {
        if self.peer.map(|p| p.0) != Some(from) {
            return vec![]; // not asked: ignored
        }
        self.stats.parts_received += 1;
        if part.count == 0 {
            self.none.insert(from);
            return self.next_peer(peers, now_ms);
        }
        if part.epoch < self.epoch_min || part.count as usize > MAX_CHUNKS {
            return self.bad(from, peers, now_ms);
        }
        if part.index == 0 {
            if self.transfer.is_some() {
                return self.bad(from, peers, now_ms);
            }
            let Some(t) = parse_head(&part) else { return self.bad(from, peers, now_ms) };
            if !accept_record(&t.record) {
                return self.bad(from, peers, now_ms);
            }
            self.transfer = Some(t);
        } else {
            let Some(t) = self.transfer.as_mut() else { return self.bad(from, peers, now_ms) };
            let i = part.index as usize - 1;
            let fits = part.epoch == t.epoch
                && part.count == t.count
                && t.asked.remove(&part.index).is_some()
                && part.bytes.len() <= CHUNK_BYTES
                && t.manifest.get(i).is_some_and(|h| *h == <[u8; 32]>::from(Sha256::digest(&part.bytes)));
            if !fits {
                return self.bad(from, peers, now_ms);
            }
            t.received_bytes += part.bytes.len() as u64;
            t.chunks[i] = Some(part.bytes);
        }
        let Some(t) = self.transfer.as_mut() else { return vec![] };
        let mut out = vec![];
        while t.next <= t.count && (t.asked.len() as u32) < WINDOW {
            t.asked.insert(t.next, now_ms);
            out.push(FetchOut::Ask(from, WireMsg::SnapAsk { epoch_min: t.epoch, index: t.next }));
            t.next += 1;
        }
        if t.asked.is_empty() && t.chunks.iter().all(Option::is_some) {
            let snapshot: Vec<u8> = t.chunks.iter_mut().flat_map(|c| c.take().unwrap_or_default()).collect();
            if snapshot.len() as u64 != t.total {
                return self.bad(from, peers, now_ms);
            }
            let record = std::mem::take(&mut t.record);
            self.transfer = None;
            self.peer = None;
            out.push(FetchOut::Done { from, record, snapshot });
        }
        out
    }
}

fn parse_head(part: &SnapPart) -> Option<Transfer> {
    let b = &part.bytes;
    let take = |at: usize, n: usize| b.get(at..at.checked_add(n)?);
    let rlen = u32::from_be_bytes(take(0, 4)?.try_into().ok()?) as usize;
    let record = take(4, rlen)?.to_vec();
    let mut at = 4 + rlen;
    let n = u32::from_be_bytes(take(at, 4)?.try_into().ok()?);
    at += 4;
    if n != part.count {
        return None;
    }
    let mut manifest = Vec::with_capacity(n as usize);
    for _ in 0..n {
        manifest.push(<[u8; 32]>::try_from(take(at, 32)?).ok()?);
        at += 32;
    }
    let total = u64::from_be_bytes(take(at, 8)?.try_into().ok()?);
    if at + 8 != b.len() || total as usize > MAX_SNAPSHOT_BYTES || total > u64::from(n) * CHUNK_BYTES as u64 {
        return None;
    }
    Some(Transfer {
        epoch: part.epoch,
        count: n,
        record,
        manifest,
        total,
        chunks: vec![None; n as usize],
        received_bytes: 0,
        asked: BTreeMap::new(),
        next: 1,
    })
}

/// Fuzzing entry (`fuzz/` target `checkpoint_decode`): `data` as a stream
/// of `SnapPart` messages from one asked peer. Must not panic.
pub fn fuzz_parts(data: &[u8]) {
    let peer = NodeId([1; 32]);
    let mut f = SnapshotFetch::new(0);
    let _ = f.on_tick(&[peer], 0);
    let mut rest = data;
    let mut now = 0;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (msg, tail) = rest[2..].split_at(len);
        rest = tail;
        now += 1;
        if let Ok(WireMsg::SnapPart(p)) = WireMsg::decode(msg) {
            let _ = f.on_part(peer, p, &[peer], now, &mut |r| r.first().is_none_or(|b| b % 2 == 0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> NodeId {
        NodeId([b; 32])
    }

    /// Runs a fetch against servers until it is done or exhausted.
    fn run(fetch: &mut SnapshotFetch, servers: &mut BTreeMap<NodeId, (SnapshotServer, bool)>) -> Option<FetchOut> {
        run_checked(fetch, servers, &mut |_| true)
    }

    /// As [`run`], with the node's check of each head's record.
    fn run_checked(
        fetch: &mut SnapshotFetch,
        servers: &mut BTreeMap<NodeId, (SnapshotServer, bool)>,
        accept: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Option<FetchOut> {
        let peers: Vec<NodeId> = servers.keys().copied().collect();
        let mut queue: Vec<FetchOut> = fetch.on_tick(&peers, 0);
        let mut now = 0;
        while let Some(o) = queue.pop() {
            now += 1;
            match o {
                FetchOut::Ask(p, WireMsg::SnapAsk { epoch_min, index }) => {
                    let (srv, corrupt) = servers.get_mut(&p).unwrap();
                    if let Some(WireMsg::SnapPart(mut part)) = srv.on_ask(id(99), epoch_min, index, now * 100) {
                        if *corrupt && index == 2 {
                            part.bytes[0] ^= 1;
                        }
                        queue.extend(fetch.on_part(p, part, &peers, now, accept));
                    }
                }
                other => return Some(other),
            }
        }
        None
    }

    fn server(epoch: u64, snapshot: &[u8]) -> SnapshotServer {
        let mut s = SnapshotServer::default();
        s.set(Served::new(epoch, b"record", Arc::new(snapshot.to_vec())));
        s
    }

    #[test]
    fn join_full_trusts_no_snapshot_until_its_replay_caught_up() {
        let mut full = CatchUp::new(true);
        // Far behind the live votes, with nothing final or with a final
        // checkpoint of the history it is replaying: it keeps replaying.
        assert!(!full.due(false, 40, None, Some(100)));
        assert!(!full.due(false, 40, Some(60), Some(100)));
        // Its finality reached the epoch due now: later lags are caught up
        // from a checkpoint.
        assert!(!full.due(false, 0, Some(99), Some(100)));
        assert!(full.due(false, CATCH_UP_LAG, Some(99), Some(110)));
        // A snapshot joiner fetches at once; never while a fetch runs, nor
        // below the lag.
        let mut snap = CatchUp::new(false);
        assert!(snap.due(false, CATCH_UP_LAG, None, Some(100)));
        assert!(!snap.due(true, 40, Some(60), Some(100)));
        assert!(!snap.due(false, CATCH_UP_LAG - 1, Some(60), Some(100)));
    }

    #[test]
    fn chunk_checked_a_corrupt_chunk_moves_the_fetch_to_the_next_peer() {
        let snapshot: Vec<u8> = (0..(CHUNK_BYTES * 3 + 10)).map(|i| i as u8).collect();
        let mut servers = BTreeMap::new();
        servers.insert(id(1), (server(7, &snapshot), true));
        servers.insert(id(2), (SnapshotServer::default(), false));
        servers.insert(id(3), (server(7, &snapshot), false));
        let mut f = SnapshotFetch::new(5);
        match run(&mut f, &mut servers) {
            Some(FetchOut::Done { from, record, snapshot: got }) => {
                assert_eq!(from, id(3));
                assert_eq!(record, b"record");
                assert_eq!(got, snapshot);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(f.stats.bad_parts, 1, "peer 1's corrupt chunk");
        assert_eq!(f.peers_without(), 1, "peer 2 has no checkpoint");
    }

    /// A head whose record the node refuses (rule `catch_up_anchored`: not
    /// signed by the validators it trusts) ends that peer's transfer at
    /// the head: no chunk of its snapshot is asked for. Before, the whole
    /// snapshot was fetched and only then refused.
    #[test]
    fn catch_up_anchored_a_refused_record_costs_one_part_not_the_snapshot() {
        let snapshot: Vec<u8> = (0..(CHUNK_BYTES * 3 + 10)).map(|i| i as u8).collect();
        let mut forged = SnapshotServer::default();
        forged.set(Served::new(9, b"forged", Arc::new(snapshot.clone())));
        let mut servers = BTreeMap::new();
        servers.insert(id(1), (forged, false));
        servers.insert(id(2), (server(7, &snapshot), false));
        let mut f = SnapshotFetch::new(5);
        let mut seen = vec![];
        let got = run_checked(&mut f, &mut servers, &mut |r| {
            seen.push(r.to_vec());
            r == b"record"
        });
        let from = match got {
            Some(FetchOut::Done { from, .. }) => Some(from),
            _ => None,
        };
        assert_eq!(from, Some(id(2)), "the checkpoint came from the honest peer");
        assert_eq!(seen, vec![b"forged".to_vec(), b"record".to_vec()]);
        assert_eq!(f.stats.bad_parts, 1);
        assert_eq!(servers[&id(1)].0.stats.parts_served, 1, "the forged peer served its head only");
    }

    #[test]
    fn snapshot_fetch_wants_a_recent_enough_checkpoint_or_says_none_is_left() {
        let mut servers = BTreeMap::new();
        servers.insert(id(1), (server(3, b"old"), false));
        let mut f = SnapshotFetch::new(5);
        assert_eq!(run(&mut f, &mut servers), Some(FetchOut::Exhausted));
    }

    #[test]
    fn serve_budget_refuses_a_flood_of_asks() {
        let mut s = server(7, &[1; 100]);
        let served = (0..100).filter(|_| s.on_ask(id(5), 0, 0, 1_000).is_some()).count();
        assert_eq!(served, PARTS_PER_SECOND as usize);
        assert_eq!(s.stats.asks_refused, 100 - u64::from(PARTS_PER_SECOND));
        assert!(s.on_ask(id(5), 0, 0, 2_000).is_some(), "the next second");
        assert!(s.on_ask(id(6), 0, 0, 2_000).is_some(), "another peer");
        for p in 10..20u8 {
            for _ in 0..PARTS_PER_SECOND {
                s.on_ask(id(p), 0, 0, 3_000);
            }
        }
        assert_eq!(
            s.stats.parts_served,
            u64::from(PARTS_PER_SECOND) + 2 + u64::from(PARTS_PER_SECOND_TOTAL),
            "all peers together"
        );
    }

    #[test]
    fn serve_previous_during_transfer_a_new_final_checkpoint_does_not_break_a_transfer() {
        let old: Vec<u8> = (0..(CHUNK_BYTES * 3 + 10)).map(|i| i as u8).collect();
        let new: Vec<u8> = (0..(CHUNK_BYTES * 3 + 10)).map(|i| (i / 3) as u8).collect();
        let mut srv = server(7, &old);
        let peers = [id(1)];
        let mut f = SnapshotFetch::new(0);
        let mut queue = f.on_tick(&peers, 0);
        let mut done = None;
        let mut now = 0;
        while let Some(o) = queue.pop() {
            now += 1;
            if now == 3 {
                // Epoch 8 becomes final at the server mid-transfer.
                srv.set(Served::new(8, b"record 8", Arc::new(new.clone())));
            }
            match o {
                FetchOut::Ask(p, WireMsg::SnapAsk { epoch_min, index }) => {
                    if let Some(WireMsg::SnapPart(part)) = srv.on_ask(id(99), epoch_min, index, now * 100) {
                        queue.extend(f.on_part(p, part, &peers, now, &mut |_| true));
                    }
                }
                other => done = Some(other),
            }
        }
        match done {
            Some(FetchOut::Done { record, snapshot, .. }) => {
                assert_eq!(record, b"record");
                assert_eq!(snapshot, old, "the transfer finishes the checkpoint it started");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(f.stats.bad_parts, 0);
        // A new transfer gets the new checkpoint.
        let head = srv.on_ask(id(98), 0, 0, 10_000);
        assert!(matches!(head, Some(WireMsg::SnapPart(p)) if p.epoch == 8));
    }

    #[test]
    fn a_silent_peer_times_out() {
        let mut f = SnapshotFetch::new(0);
        let peers = [id(1), id(2)];
        assert!(f.on_tick(&[], 0).is_empty(), "no peer yet: wait");
        assert!(matches!(f.on_tick(&peers, 0).as_slice(), [FetchOut::Ask(p, _)] if *p == id(1)));
        assert!(f.on_tick(&peers, PART_TIMEOUT_MS).is_empty());
        assert!(matches!(f.on_tick(&peers, PART_TIMEOUT_MS + 1).as_slice(), [FetchOut::Ask(p, _)] if *p == id(2)));
        assert_eq!(f.stats.timeouts, 1);
        // Unasked parts are ignored.
        let part = SnapPart { epoch: 1, index: 0, count: 1, bytes: vec![] };
        assert!(f.on_part(id(1), part, &peers, 1, &mut |_| true).is_empty());
    }
}
