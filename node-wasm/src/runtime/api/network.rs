//! `window.synapse`, network: this node, its peers and the transport.

use super::{SynapseNode, to_js};
use crate::identity::NodeId;
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[derive(Serialize)]
struct Status {
    id: NodeId,
    profile: String,
    rendezvous: crate::runtime::transport::RendezvousStatus,
    peers: Vec<NodeId>,
    /// Whether IndexedDB works; a sentence for the user when it does not.
    storage: crate::runtime::ledger::StorageStatus,
    /// Whether this node may sign now; what it waits for when it may not.
    chain: crate::runtime::ledger::ChainStatus,
    /// The ICE servers in use, the browser's ICE errors and, when they
    /// cannot work (a TURN server refusing the credentials), why.
    ice: crate::ice_status::IceStatus,
    /// Which network (genesis) this node is on.
    network: crate::runtime::ledger::NetworkStatus,
    /// Whether this identity is admitted to the network yet (`admission()`).
    admission: crate::service::admission::AdmissionStatus,
    /// Epochs, the last final checkpoint, storage and snapshot sync.
    finality: crate::runtime::ledger::FinalityStatus,
}

#[wasm_bindgen]
impl SynapseNode {
    /// This node's id (64 hex characters).
    pub fn id(&self) -> String {
        self.node.id().to_text()
    }

    /// Ids of peers whose DataChannel is open and whose identity is proven.
    pub fn peers(&self) -> Vec<String> {
        self.node.peers().iter().map(NodeId::to_text).collect()
    }

    /// Every connection: `[{id, state, connection, polite, rtt_ms}]`.
    #[wasm_bindgen(js_name = peerStates, unchecked_return_type = "PeerState[]")]
    pub fn peer_states(&self) -> JsValue {
        to_js(&self.node.peer_infos())
    }

    /// Signs `text` and sends it to every proven peer. Resolves with the
    /// number of peers it went to; rejects on empty or over-long text.
    #[wasm_bindgen(js_name = sendHello, unchecked_return_type = "Promise<number>")]
    pub fn send_hello(&self, text: String) -> js_sys::Promise {
        match self.node.send_hello(&text) {
            Ok(n) => js_sys::Promise::resolve(&JsValue::from(n as u32)),
            Err(e) => js_sys::Promise::reject(&js_sys::Error::new(&e)),
        }
    }

    /// Verified hellos received: `[{from, text, via, at_ms}]`.
    #[wasm_bindgen(unchecked_return_type = "Hello[]")]
    pub fn hellos(&self) -> JsValue {
        to_js(&self.node.hellos())
    }

    /// The immune system's view from this node: `{targets, vitals:
    /// [{problem, current, target, ok, streak}], open_remedies: [[id,
    /// title]], pending, net_target_degree}`.
    #[wasm_bindgen(unchecked_return_type = "HealthReport")]
    pub fn health(&self) -> JsValue {
        to_js(&self.ledger.health())
    }

    /// Replaces this node's health targets: `{min_peers, max_latency_ms,
    /// max_loss_bps, max_ops_per_min}`.
    #[wasm_bindgen(js_name = setHealthTargets)]
    pub fn set_health_targets(
        &self,
        #[wasm_bindgen(unchecked_param_type = "HealthTargets")] targets: JsValue,
    ) -> Result<(), JsError> {
        let t: crate::health::HealthTargets =
            super::from_js(targets).map_err(|e| JsError::new(&format!("bad health targets: {e}")))?;
        self.ledger.set_health_targets(t);
        Ok(())
    }

    /// `{id, profile, rendezvous: {state, url, last_error, directory}, peers,
    /// storage, chain, ice, admission, finality}`.
    #[wasm_bindgen(unchecked_return_type = "NodeStatus")]
    pub fn status(&self) -> JsValue {
        to_js(&Status {
            id: self.node.id(),
            profile: self.profile.clone(),
            rendezvous: self.node.rendezvous_status(),
            peers: self.node.peers(),
            storage: self.ledger.storage_status(),
            chain: self.ledger.chain_status(),
            ice: self.node.ice_status(),
            network: self.ledger.network_status(),
            admission: crate::runtime::admission::status(&self.ledger),
            finality: self.ledger.finality_status(),
        })
    }

    /// `{state, bits, tried, expected, percent, rate, seconds_left}`: this
    /// identity's admission ticket (rule `admission_ticket`). `state` is
    /// `not_needed`, `computing`, `publishing` or `admitted`; `expected` is
    /// `2^bits` tries; `percent` is `min(99, tried·100/expected)` while
    /// computing and 100 after. Progress fires `change` and `network`.
    #[wasm_bindgen(unchecked_return_type = "AdmissionStatus")]
    pub fn admission(&self) -> JsValue {
        to_js(&crate::runtime::admission::status(&self.ledger))
    }

    /// Uses these STUN/TURN servers (`[{urls, username?, credential?}]`)
    /// for connections made from now on, instead of the rendezvous' (an
    /// empty list gives the choice back to the rendezvous). Rejects, with
    /// the reason, more than 8 servers, unknown URL schemes, a TURN URL
    /// without credentials or fields over 512 bytes.
    #[wasm_bindgen(js_name = setIceServers, unchecked_return_type = "Promise<boolean>")]
    pub fn set_ice_servers(
        &self,
        #[wasm_bindgen(unchecked_param_type = "IceServerInit[]")] servers: JsValue,
    ) -> js_sys::Promise {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Init {
            urls: Urls,
            username: Option<String>,
            credential: Option<String>,
        }
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Urls {
            One(String),
            Many(Vec<String>),
        }
        let inits: Vec<Init> = match super::from_js(servers) {
            Ok(v) => v,
            Err(e) => return super::reject(&format!("setIceServers: {e}")),
        };
        let servers: Vec<crate::signaling::IceServer> = inits
            .into_iter()
            .map(|i| crate::signaling::IceServer {
                urls: match i.urls {
                    Urls::One(u) => vec![u],
                    Urls::Many(v) => v,
                },
                username: i.username,
                credential: i.credential,
            })
            .collect();
        if let Err(e) = crate::ice_status::check_page_servers(&servers) {
            return super::reject(&format!("setIceServers: {e}"));
        }
        self.node.set_page_ice(servers);
        js_sys::Promise::resolve(&JsValue::TRUE)
    }

    /// Transport counters (connections, frames, bytes, rejections).
    #[wasm_bindgen(unchecked_return_type = "Record<string, number>")]
    pub fn stats(&self) -> JsValue {
        to_js(&self.node.stats())
    }

    /// Milestones in ms since navigation start.
    #[wasm_bindgen(unchecked_return_type = "Timings")]
    pub fn timings(&self) -> JsValue {
        to_js(&self.node.timings())
    }

    /// Closes the DataChannel to `id` as a network fault would; the node
    /// reconnects by itself. Resolves with whether a channel was open.
    #[wasm_bindgen(js_name = closePeer, unchecked_return_type = "Promise<boolean>")]
    pub fn close_peer(&self, id: String) -> js_sys::Promise {
        match NodeId::parse(&id) {
            Ok(id) => js_sys::Promise::resolve(&JsValue::from(self.node.close_peer(id))),
            Err(e) => js_sys::Promise::reject(&js_sys::Error::new(&e.to_string())),
        }
    }

    /// Sends `len` bytes (at most 4 MiB) to a proven peer, for throughput
    /// measurements. Resolves with false if the peer is not proven.
    #[wasm_bindgen(js_name = sendBlob, unchecked_return_type = "Promise<boolean>")]
    pub fn send_blob(&self, id: String, len: u32) -> js_sys::Promise {
        let id = match NodeId::parse(&id) {
            Ok(id) => id,
            Err(e) => return js_sys::Promise::reject(&js_sys::Error::new(&e.to_string())),
        };
        if len as usize > crate::wire::MAX_BLOB {
            return js_sys::Promise::reject(&js_sys::Error::new("blob larger than 4 MiB"));
        }
        let ok = self.node.send_to(id, &crate::wire::WireMsg::Blob(vec![0x5a; len as usize]));
        js_sys::Promise::resolve(&JsValue::from(ok))
    }

    /// `{router: {...counters}, mesh: {topic: [ids]}, ledger: {...}}`.
    #[wasm_bindgen(js_name = pubsubStats, unchecked_return_type = "PubsubStats")]
    pub fn pubsub_stats(&self) -> JsValue {
        #[derive(Serialize)]
        struct P {
            router: crate::pubsub::Stats,
            mesh: std::collections::BTreeMap<String, Vec<NodeId>>,
            ledger: crate::runtime::ledger::LedgerStats,
        }
        let topic = crate::pubsub::GLOBAL_TOPIC.to_string();
        let mesh = [(topic.clone(), self.node.mesh_peers(&topic))].into_iter().collect();
        to_js(&P { router: self.node.pubsub_stats(), mesh, ledger: self.ledger.stats() })
    }
}
