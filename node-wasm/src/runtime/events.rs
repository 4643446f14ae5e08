//! What changed since a listener last looked, by domain: the ledger's
//! per-domain counters for ops, and a fingerprint of the node's status for
//! `network` (peers, rendezvous, storage and chain status are not ops).
//! The JS API's `on(domain, cb)` and the UI's per-domain triggers each keep
//! a [`ChangeFeed`] and ask it after every change notification.

use crate::runtime::ledger::Ledger;
use crate::service::events::Generations;
use crate::service::{Domain, DomainSet};

pub struct ChangeFeed {
    ledger: Ledger,
    seen: Generations,
    network: String,
}

impl ChangeFeed {
    /// A feed that reports changes from now on.
    pub fn new(ledger: &Ledger) -> ChangeFeed {
        let mut f = ChangeFeed { ledger: ledger.clone(), seen: ledger.generations(), network: String::new() };
        f.network = f.network_fingerprint();
        f
    }

    /// The domains that changed since the last call (or since [`ChangeFeed::new`]).
    pub fn changed(&mut self) -> DomainSet {
        let now = self.ledger.generations();
        let mut set = now.since(&self.seen);
        self.seen = now;
        let net = self.network_fingerprint();
        if net != self.network {
            self.network = net;
            set.insert(Domain::Network);
        }
        set
    }

    /// What `status()`, `peerStates()`, `hellos()` and the mesh show (with
    /// the admission's phase and percentage), as one string (not the
    /// traffic counters, which change with every frame).
    /// Serializing a handful of peers costs microseconds, and comparing the
    /// result needs no knowledge of which transport event happened.
    fn network_fingerprint(&self) -> String {
        let n = self.ledger.node();
        let mesh = n.mesh_peers(crate::pubsub::GLOBAL_TOPIC);
        let admission = crate::runtime::admission::status(&self.ledger);
        let parts = (
            (n.peer_infos(), n.rendezvous_status(), mesh, n.hellos().len()),
            (self.ledger.storage_status(), self.ledger.chain_status()),
            (admission.state, admission.percent),
        );
        serde_json::to_string(&parts).unwrap_or_default()
    }
}
