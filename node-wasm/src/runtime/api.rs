//! `window.synapse`: the node's public JS API (see README, "JS API").
//!
//! Reads return plain JSON-compatible values (objects, arrays, strings,
//! numbers); actions that can fail return Promises that reject with an
//! `Error` whose message says why.

use crate::identity::NodeId;
use crate::runtime::transport::{Node, NodeConfig};
use crate::runtime::util::{js_err, sleep_ms};
use crate::runtime::{rendezvous, store};
use crate::session::ProofMode;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

/// Page configuration, read from the URL query.
#[derive(Debug, Clone)]
pub struct PageConfig {
    /// `?profile=NAME`: which stored identity to use (default `default`).
    pub profile: String,
    /// `?rendezvous=URL`: the signaling WebSocket (default: `/ws` on this host).
    pub rendezvous_url: String,
    pub node: NodeConfig,
}

/// Profile names: 1-64 of `[A-Za-z0-9_-]`.
pub fn valid_profile(p: &str) -> bool {
    !p.is_empty() && p.len() <= 64 && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl PageConfig {
    /// Reads `profile`, `rendezvous`, `ice` (comma-separated URLs) and
    /// `debug_forge_proof` (tests only) from `location.search`.
    pub fn from_location() -> Result<PageConfig, String> {
        let loc = web_sys::window().ok_or("no window")?.location();
        let search = loc.search().map_err(|e| js_err(&e))?;
        let params = web_sys::UrlSearchParams::new_with_str(&search).map_err(|e| js_err(&e))?;
        let profile = params.get("profile").unwrap_or_else(|| "default".into());
        if !valid_profile(&profile) {
            return Err(format!("invalid profile name {profile:?}: use 1-64 letters, digits, '-' or '_'"));
        }
        let rendezvous_url = match params.get("rendezvous") {
            Some(u) if u.starts_with("ws://") || u.starts_with("wss://") => u,
            Some(u) => {
                return Err(format!("rendezvous must be a ws:// or wss:// URL, got {u:?}"));
            }
            None => {
                let proto = if loc.protocol().map_err(|e| js_err(&e))? == "https:" { "wss" } else { "ws" };
                format!("{proto}://{}/ws", loc.host().map_err(|e| js_err(&e))?)
            }
        };
        let mut node = NodeConfig::default();
        if let Some(ice) = params.get("ice") {
            node.ice_servers = ice.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        }
        if params.get("debug_forge_proof").as_deref() == Some("1") {
            node.proof_mode = ProofMode::ForgeProof;
        }
        Ok(PageConfig { profile, rendezvous_url, node })
    }
}

fn to_js<T: Serialize>(v: &T) -> JsValue {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap_or(JsValue::NULL)
}

/// The node as seen from JavaScript.
#[wasm_bindgen]
pub struct SynapseNode {
    node: Node,
    profile: String,
}

#[derive(Serialize)]
struct Status {
    id: NodeId,
    profile: String,
    rendezvous: crate::runtime::transport::RendezvousStatus,
    peers: Vec<NodeId>,
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
    #[wasm_bindgen(js_name = peerStates)]
    pub fn peer_states(&self) -> JsValue {
        to_js(&self.node.peer_infos())
    }

    /// Signs `text` and sends it to every proven peer. Resolves with the
    /// number of peers it went to; rejects on empty or over-long text.
    #[wasm_bindgen(js_name = sendHello)]
    pub fn send_hello(&self, text: String) -> js_sys::Promise {
        match self.node.send_hello(&text) {
            Ok(n) => js_sys::Promise::resolve(&JsValue::from(n as u32)),
            Err(e) => js_sys::Promise::reject(&js_sys::Error::new(&e)),
        }
    }

    /// Verified hellos received: `[{from, text, via, at_ms}]`.
    pub fn hellos(&self) -> JsValue {
        to_js(&self.node.hellos())
    }

    /// `{id, profile, rendezvous: {state, url, last_error, directory}, peers}`.
    pub fn status(&self) -> JsValue {
        to_js(&Status {
            id: self.node.id(),
            profile: self.profile.clone(),
            rendezvous: self.node.rendezvous_status(),
            peers: self.node.peers(),
        })
    }

    /// Transport counters (connections, frames, bytes, rejections).
    pub fn stats(&self) -> JsValue {
        to_js(&self.node.stats())
    }

    /// Milestones in ms since navigation start.
    pub fn timings(&self) -> JsValue {
        to_js(&self.node.timings())
    }

    /// Closes the DataChannel to `id` as a network fault would; the node
    /// reconnects by itself. Resolves with whether a channel was open.
    #[wasm_bindgen(js_name = closePeer)]
    pub fn close_peer(&self, id: String) -> js_sys::Promise {
        match NodeId::parse(&id) {
            Ok(id) => js_sys::Promise::resolve(&JsValue::from(self.node.close_peer(id))),
            Err(e) => js_sys::Promise::reject(&js_sys::Error::new(&e.to_string())),
        }
    }

    /// Sends `len` bytes (at most 4 MiB) to a proven peer, for throughput
    /// measurements. Resolves with false if the peer is not proven.
    #[wasm_bindgen(js_name = sendBlob)]
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

    /// Calls `callback()` after every visible change of the node.
    #[wasm_bindgen(js_name = onChange)]
    pub fn on_change(&self, callback: js_sys::Function) {
        self.node.subscribe(std::rc::Rc::new(move || {
            let _ = callback.call0(&JsValue::NULL);
        }));
    }
}

/// Starts the page's node: loads (or creates) the profile's identity from
/// IndexedDB, connects to the rendezvous, publishes `window.synapse`, and
/// returns the node for the UI.
pub async fn start() -> Result<Node, String> {
    let cfg = PageConfig::from_location()?;
    let identity = store::load_or_create_identity(&cfg.profile).await?;
    let node = Node::new(identity, cfg.node.clone());
    rendezvous::start(node.clone(), cfg.rendezvous_url.clone());
    let api = SynapseNode { node: node.clone(), profile: cfg.profile.clone() };
    let window = web_sys::window().ok_or("no window")?;
    js_sys::Reflect::set(&window, &JsValue::from_str("synapse"), &JsValue::from(api)).map_err(|e| js_err(&e))?;
    // RTT measurements for the UI.
    let n = node.clone();
    spawn_local(async move {
        loop {
            sleep_ms(5000).await;
            n.ping_all();
            n.announce_record();
        }
    });
    crate::console_log!("node {} started (profile {})", node.id().short(), cfg.profile);
    Ok(node)
}
