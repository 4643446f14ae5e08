//! The rendezvous servers this node is logged in to, at once.
//!
//! One rendezvous is a single point of failure for joining: if it dies, new
//! pages cannot find anyone ("the public signaling server is down" is the
//! second most common complaint about browser P2P libraries). A page may
//! therefore name several (`?rendezvous=a,b`), and a rendezvous may
//! advertise its siblings; the node logs in to each, merges their
//! directories, and signals through whichever one lists the peer. Each
//! server is an index given by the driver; the set never imports the
//! manager.
//!
//! Rules:
//! - `merge_directories`: a peer is wanted while any server lists it; it
//!   leaves only when the last one that listed it says so.
//! - `signal_route` (the servers' part; the manager decides between this,
//!   relays through neighbours that list the peer, and any connected
//!   server): a connected server that lists the peer, else the one the
//!   peer's last signal came through.
//! - `bounded_rendezvous_set`: at most [`MAX_RENDEZVOUS`] servers and
//!   [`MAX_DIRECTORY`] ids per server, whatever a server sends.

use super::view::{RendezvousServer, RendezvousStatus};
use crate::identity::NodeId;

/// Servers one node logs in to, at most.
pub const MAX_RENDEZVOUS: usize = 4;
/// Ids remembered per server (a directory is a sample; more is noise or
/// an attack on our memory).
pub const MAX_DIRECTORY: usize = 1024;

#[derive(Debug, Clone, Default)]
pub struct RendezvousSet {
    servers: Vec<RendezvousServer>,
}

impl RendezvousSet {
    /// The server at `rdv`, created (disconnected) if new; `None` past the
    /// bound.
    fn server(&mut self, rdv: usize) -> Option<&mut RendezvousServer> {
        if rdv >= MAX_RENDEZVOUS {
            return None;
        }
        while self.servers.len() <= rdv {
            self.servers.push(RendezvousServer { state: "disconnected".into(), ..Default::default() });
        }
        self.servers.get_mut(rdv)
    }

    /// A server's connection changed. A disconnected server's directory is
    /// kept (its peers may still be reachable through the others) until it
    /// sends a new one.
    pub fn set_state(&mut self, rdv: usize, state: String, url: String, error: Option<String>) {
        if let Some(s) = self.server(rdv) {
            s.state = state;
            s.url = url;
            if error.is_some() {
                s.last_error = error;
            }
        }
    }

    /// A server's whole list (welcome or refresh), minus `me`, bounded.
    /// Returns the ids kept.
    pub fn set_directory(&mut self, rdv: usize, me: NodeId, ids: Vec<NodeId>) -> Vec<NodeId> {
        let mut kept: Vec<NodeId> = Vec::new();
        for id in ids {
            if id != me && !kept.contains(&id) && kept.len() < MAX_DIRECTORY {
                kept.push(id);
            }
        }
        match self.server(rdv) {
            Some(s) => {
                s.directory = kept.clone();
                kept
            }
            None => vec![],
        }
    }

    /// Another random sample from server `rdv` (an answer to `list`):
    /// merged into what it listed before, bounded. Returns the ids kept,
    /// old and new.
    pub fn add_directory(&mut self, rdv: usize, me: NodeId, ids: Vec<NodeId>) -> Vec<NodeId> {
        let Some(s) = self.server(rdv) else { return vec![] };
        let mut kept = vec![];
        for id in ids {
            if id == me || kept.contains(&id) {
                continue;
            }
            if s.directory.contains(&id) {
                kept.push(id);
            } else if s.directory.len() < MAX_DIRECTORY {
                s.directory.push(id);
                kept.push(id);
            }
        }
        kept
    }

    /// The connected servers' indices.
    pub fn connected(&self) -> Vec<usize> {
        (0..self.servers.len()).filter(|i| self.is_up(*i)).collect()
    }

    /// `id` joined server `rdv`. Returns whether it is now listed there.
    pub fn joined(&mut self, rdv: usize, id: NodeId) -> bool {
        match self.server(rdv) {
            Some(s) if s.directory.contains(&id) => true,
            Some(s) if s.directory.len() < MAX_DIRECTORY => {
                s.directory.push(id);
                true
            }
            _ => false,
        }
    }

    /// Rule `merge_directories`: `id` left server `rdv`. Returns whether no
    /// server lists it any more.
    pub fn left(&mut self, rdv: usize, id: NodeId) -> bool {
        if let Some(s) = self.server(rdv) {
            s.directory.retain(|d| *d != id);
        }
        !self.servers.iter().any(|s| s.directory.contains(&id))
    }

    pub fn any_connected(&self) -> bool {
        self.servers.iter().any(|s| s.state == "connected")
    }

    /// Rule `signal_route` (servers): a connected server known to reach
    /// `to`: one that lists it, else the one its last signal came through
    /// (`heard_via`).
    pub fn route(&self, to: NodeId, heard_via: Option<usize>) -> Option<usize> {
        let listing =
            (0..self.servers.len()).filter(|i| self.is_up(*i)).find(|i| self.servers[*i].directory.contains(&to));
        listing.or(heard_via.filter(|i| self.is_up(*i)))
    }

    /// The first connected server: a directory is a sample, so a peer it
    /// does not list may still be there.
    pub fn first_connected(&self) -> Option<usize> {
        (0..self.servers.len()).find(|i| self.is_up(*i))
    }

    fn is_up(&self, i: usize) -> bool {
        self.servers.get(i).is_some_and(|s| s.state == "connected")
    }

    /// What the UI shows: connected if any server is, the first connected
    /// server's URL, the latest error, the union of the directories, and
    /// every server.
    pub fn status(&self) -> RendezvousStatus {
        let rank = |s: &RendezvousServer| match s.state.as_str() {
            "connected" => 0,
            "connecting" => 1,
            _ => 2,
        };
        let best = self.servers.iter().min_by_key(|s| rank(s));
        let mut directory: Vec<NodeId> = Vec::new();
        for s in &self.servers {
            for id in &s.directory {
                if !directory.contains(id) {
                    directory.push(*id);
                }
            }
        }
        RendezvousStatus {
            state: best.map_or_else(|| "connecting".into(), |s| s.state.clone()),
            url: best.map(|s| s.url.clone()).unwrap_or_default(),
            last_error: self.servers.iter().rev().find_map(|s| s.last_error.clone()),
            directory,
            servers: self.servers.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn id(n: u8) -> NodeId {
        Identity::from_seed([n; 32]).node_id()
    }

    #[test]
    fn merge_directories_keeps_a_peer_while_any_server_lists_it() {
        let mut set = RendezvousSet::default();
        set.set_directory(0, id(1), vec![id(2), id(3)]);
        set.set_directory(1, id(1), vec![id(3), id(1)]);
        assert_eq!(set.status().directory, vec![id(2), id(3)], "union, without me");
        assert!(!set.left(0, id(3)), "server 1 still lists it");
        assert!(set.left(1, id(3)), "gone everywhere");
    }

    #[test]
    fn signal_route_prefers_a_connected_server_that_lists_the_peer() {
        let mut set = RendezvousSet::default();
        set.set_state(0, "connected".into(), "ws://a".into(), None);
        set.set_state(1, "connected".into(), "ws://b".into(), None);
        set.set_directory(1, id(1), vec![id(5)]);
        assert_eq!(set.route(id(5), None), Some(1));
        assert_eq!(set.route(id(6), Some(1)), Some(1), "where its last signal came from");
        assert_eq!(set.route(id(6), None), None, "no server is known to reach it");
        assert_eq!(set.first_connected(), Some(0));
        set.set_state(1, "disconnected".into(), "ws://b".into(), Some("closed".into()));
        assert_eq!(set.route(id(5), Some(1)), None, "never through a server that is down");
        set.set_state(0, "disconnected".into(), "ws://a".into(), None);
        assert_eq!(set.route(id(5), None), None);
        let st = set.status();
        assert_eq!((st.state.as_str(), st.last_error.as_deref()), ("disconnected", Some("closed")));
    }

    #[test]
    fn bounded_rendezvous_set_ignores_excess_servers_and_ids() {
        let mut set = RendezvousSet::default();
        set.set_state(MAX_RENDEZVOUS, "connected".into(), "ws://x".into(), None);
        assert!(!set.any_connected());
        let many: Vec<NodeId> = (0..=255u8)
            .flat_map(|a| (0..6u8).map(move |b| [a, b]))
            .map(|[a, b]| {
                let mut seed = [0u8; 32];
                seed[0] = a;
                seed[1] = b;
                Identity::from_seed(seed).node_id()
            })
            .collect();
        assert_eq!(set.set_directory(0, id(1), many).len(), MAX_DIRECTORY);
        assert!(!set.joined(0, id(200)) || set.status().servers[0].directory.len() <= MAX_DIRECTORY);
        assert!(set.status().servers[0].directory.len() <= MAX_DIRECTORY);
    }
}
