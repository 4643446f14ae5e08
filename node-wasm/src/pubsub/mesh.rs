//! Heartbeat work: cache expiry, promise checks, score decay, mesh
//! maintenance (GRAFT/PRUNE to keep D_lo..D_hi), lazy I_HAVE gossip and the
//! periodic version-vector digest that drives catch-up.

use super::config::Mode;
use super::message::{MAX_RANGE_LEN, MAX_RANGES, Packet, SeqRange};
use super::router::{HeartbeatCounters, Router};
use crate::identity::NodeId;
use std::collections::BTreeMap;

impl Router {
    pub(super) fn heartbeat(&mut self) {
        self.heartbeats += 1;
        let now = self.now;
        self.seen.expire(now);
        self.check_promises();
        self.stem_timers();
        let params = self.cfg.score.clone();
        for s in self.scores.values_mut() {
            s.decay(&params);
        }
        let peers = &self.peers;
        self.scores.retain(|p, s| peers.contains_key(p) || !s.is_neutral());
        self.backoff.retain(|_, (_, end)| *end > now);
        let peers: Vec<NodeId> = self.peers.keys().copied().collect();
        for p in peers {
            self.check_graylist(p);
        }
        let topics: Vec<String> = self.subs.iter().cloned().collect();
        if self.cfg.mode == Mode::SynapseSub {
            for t in &topics {
                self.maintain_mesh(t);
                self.gossip(t);
            }
            if self.heartbeats.is_multiple_of(self.cfg.sync_every.max(1)) {
                for t in &topics {
                    self.send_digest(t, self.cfg.sync_peers);
                }
            }
        }
        self.mcache.shift();
        let (hb, window) = (self.heartbeats, self.cfg.mcache_len as u64);
        self.retransmits.retain(|_, (_, first)| *first + window > hb);
        for st in self.peers.values_mut() {
            st.hb = HeartbeatCounters::default();
        }
    }

    /// Rule `broken_promise`: a piece asked for (after an I_HAVE or a
    /// version vector) that has not arrived from anyone by the deadline
    /// counts against the peer that advertised it.
    fn check_promises(&mut self) {
        let now = self.now;
        let mut broken: Vec<NodeId> = Vec::new();
        self.want_ids.retain(|_, (peer, deadline)| {
            if *deadline > now {
                return true;
            }
            broken.push(*peer);
            false
        });
        let store = &self.store;
        let mut retry: Vec<(String, NodeId, u64, NodeId)> = Vec::new();
        self.want_seqs.retain(|(topic, origin, seq), (peer, deadline)| {
            if *deadline > now {
                return true;
            }
            if !store.has_seq(topic, origin, *seq) {
                broken.push(*peer);
                retry.push((topic.clone(), *origin, *seq, *peer));
            }
            false
        });
        self.retry_seqs(retry);
        // One penalty per peer per heartbeat: a peer that lied about many
        // pieces at once is still caught, without one lost packet of an
        // honest peer costing it dozens of points.
        broken.sort();
        broken.dedup();
        for p in broken {
            self.stats.broken_promises += 1;
            self.misbehaved(p);
        }
    }

    /// Asks again, at once, for seqs whose promise broke: each from a
    /// random other peer whose last version vector claimed it. Without
    /// this, one withholding peer that answers a version vector first would
    /// stall catch-up until the next digest round.
    fn retry_seqs(&mut self, retry: Vec<(String, NodeId, u64, NodeId)>) {
        let deadline = self.now + self.cfg.want_followup_ms;
        let cap = self.cfg.max_requests_per_heartbeat;
        let mut asks: BTreeMap<NodeId, Vec<SeqRange>> = BTreeMap::new();
        for (topic, origin, seq, broken) in retry {
            let key = (topic.clone(), origin);
            let candidates: Vec<NodeId> = self
                .peers
                .iter()
                .filter(|(p, st)| {
                    **p != broken
                        && st.hb.requested < cap
                        && st.known.get(&key).is_some_and(|&c| c >= seq)
                        && self.score(p) >= self.cfg.score.gossip_threshold
                })
                .map(|(p, _)| *p)
                .collect();
            let Some(&p) = candidates.get(self.rng.below(candidates.len() as u64) as usize) else { continue };
            if let Some(st) = self.peers.get_mut(&p) {
                st.hb.requested += 1;
            }
            self.want_seqs.insert((topic.clone(), origin, seq), (p, deadline));
            let ranges = asks.entry(p).or_default();
            match ranges.last_mut() {
                Some(r)
                    if r.topic == topic
                        && r.origin == origin
                        && r.to + 1 == seq
                        && r.to - r.from + 1 < MAX_RANGE_LEN =>
                {
                    r.to = seq
                }
                _ => ranges.push(SeqRange { topic, origin, from: seq, to: seq }),
            }
        }
        for (p, ranges) in asks {
            for chunk in ranges.chunks(MAX_RANGES) {
                self.stats.pieces_requested += chunk.iter().map(|r| r.to - r.from + 1).sum::<u64>();
                self.send(p, &Packet::Want { ids: vec![], ranges: chunk.to_vec() });
            }
        }
    }

    /// Keeps the topic's mesh within D_lo..=D_hi and free of peers with a
    /// negative score.
    pub(super) fn maintain_mesh(&mut self, topic: &str) {
        let backoff = self.cfg.prune_backoff_ms.min(u32::MAX as u64) as u32;
        let mesh: Vec<NodeId> = self.mesh_peers(topic);
        // Prune negative scores.
        let mut kept = Vec::with_capacity(mesh.len());
        for p in mesh {
            if self.score(&p) < 0.0 {
                self.prune(topic, p, backoff);
            } else {
                kept.push(p);
            }
        }
        if kept.len() < self.cfg.d_lo {
            let mut candidates: Vec<NodeId> = self
                .peers
                .iter()
                .filter(|(p, st)| {
                    st.topics.contains(topic) && !kept.contains(p) && !self.in_backoff(topic, p) && self.score(p) >= 0.0
                })
                .map(|(p, _)| *p)
                .collect();
            self.rng.shuffle(&mut candidates);
            candidates.truncate(self.cfg.d.saturating_sub(kept.len()));
            let now = self.now;
            for p in candidates {
                self.mesh.entry(topic.to_owned()).or_default().insert(p);
                self.score_mut(p).joined_mesh(topic, now);
                self.send(p, &Packet::Graft(topic.to_owned()));
            }
        } else if kept.len() > self.cfg.d_hi {
            // Keep the D_score best, then fill up to D at random.
            let mut by_score: Vec<(NodeId, f64)> = kept.iter().map(|p| (*p, self.score(p))).collect();
            by_score.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let (best, rest) = by_score.split_at(self.cfg.d_score.min(by_score.len()));
            let mut rest: Vec<NodeId> = rest.iter().map(|(p, _)| *p).collect();
            self.rng.shuffle(&mut rest);
            let keep_random = self.cfg.d.saturating_sub(best.len());
            for p in rest.into_iter().skip(keep_random) {
                self.prune(topic, p, backoff);
            }
        }
    }

    fn prune(&mut self, topic: &str, p: NodeId, backoff_ms: u32) {
        if let Some(m) = self.mesh.get_mut(topic) {
            m.remove(&p);
        }
        self.score_mut(p).left_mesh(topic);
        self.backoff.insert((topic.to_owned(), p), (self.now, self.now + self.cfg.prune_backoff_ms));
        self.send(p, &Packet::Prune { topic: topic.to_owned(), backoff_ms });
    }

    /// Lazy gossip: I_HAVE of the recent ids to max(D_lazy, factor·eligible)
    /// random non-mesh topic peers above the gossip threshold.
    fn gossip(&mut self, topic: &str) {
        let ids = self.mcache.gossip_ids(topic);
        if ids.is_empty() {
            return;
        }
        let mesh = self.mesh.get(topic).cloned().unwrap_or_default();
        let eligible: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(p, st)| {
                st.topics.contains(topic) && !mesh.contains(p) && self.score(p) >= self.cfg.score.gossip_threshold
            })
            .map(|(p, _)| *p)
            .collect();
        let n = self.cfg.d_lazy.max((eligible.len() as f64 * self.cfg.gossip_factor) as usize);
        for p in self.rng.choose(&eligible, n) {
            self.send_ihave(p, topic, &ids);
        }
    }

    /// Periodic catch-up: our version-vector digest to `n` random topic
    /// peers above the gossip threshold.
    pub(super) fn send_digest(&mut self, topic: &str, n: usize) {
        let eligible: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(p, st)| st.topics.contains(topic) && self.score(p) >= self.cfg.score.gossip_threshold)
            .map(|(p, _)| *p)
            .collect();
        for p in self.rng.choose(&eligible, n) {
            self.send_digest_to(p, topic);
        }
    }
}
