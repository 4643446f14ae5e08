//! `window.synapse`: the node's public JS API (see README, "JS API").
//!
//! A thin binding: each method converts its JavaScript arguments, runs the
//! matching command or read model of [`crate::service`] (the same code the
//! UI calls) and converts the result back. Reads return plain
//! JSON-compatible values (objects, arrays, strings, numbers); actions that
//! can fail return Promises that reject with an `Error` whose message says
//! why. Methods are grouped by domain, one file each; the TypeScript types
//! of every argument and result are in `node-wasm/synapse.d.ts`.

mod agent;
mod channels;
mod economy;
mod events;
mod governance;
mod identity;
mod network;
mod ops;
mod tasks;
mod teams;
mod tools;
mod upgrades;

use crate::core::op::OpId;
use crate::core::state::State;
use crate::runtime::ledger::Ledger;
use crate::runtime::transport::{Node, NodeConfig};
use crate::runtime::util::{js_err, sleep_ms};
use crate::runtime::{rendezvous, store};
use crate::service::{Intent, Signer};
use crate::session::ProofMode;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

/// Page configuration, read from the URL query.
#[derive(Debug, Clone)]
pub struct PageConfig {
    /// `?profile=NAME`: which stored identity to use (default `default`).
    pub profile: String,
    /// `?rendezvous=URL[,URL…]`: the signaling WebSockets, at most 4
    /// (default: `/ws` on this host).
    pub rendezvous_urls: Vec<String>,
    pub node: NodeConfig,
    /// `?debug_unchecked=1` (tests only): act as a modified client that
    /// signs ops its own rules refuse.
    pub debug_unchecked: bool,
    /// `?history=archive`: keep every op instead of dropping those a final
    /// checkpoint covers.
    pub archive: bool,
    /// `?join=full`: replay the whole history instead of starting from a
    /// peer's final checkpoint.
    pub join_full: bool,
}

/// Profile names: 1-64 of `[A-Za-z0-9_-]`.
pub fn valid_profile(p: &str) -> bool {
    !p.is_empty() && p.len() <= 64 && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl PageConfig {
    /// Reads `profile`, `rendezvous`, `ice` (comma-separated URLs), `relay`
    /// (`1`: TURN relays only) and
    /// `debug_forge_proof` (tests only) from `location.search`.
    pub fn from_location() -> Result<PageConfig, String> {
        let loc = web_sys::window().ok_or("no window")?.location();
        let search = loc.search().map_err(|e| js_err(&e))?;
        let params = web_sys::UrlSearchParams::new_with_str(&search).map_err(|e| js_err(&e))?;
        let profile = params.get("profile").unwrap_or_else(|| "default".into());
        if !valid_profile(&profile) {
            return Err(format!("invalid profile name {profile:?}: use 1-64 letters, digits, '-' or '_'"));
        }
        let rendezvous_urls = match params.get("rendezvous") {
            Some(list) => crate::signaling::rendezvous_list(&list, crate::peers::rendezvous_set::MAX_RENDEZVOUS)?,
            None => {
                let proto = if loc.protocol().map_err(|e| js_err(&e))? == "https:" { "wss" } else { "ws" };
                vec![format!("{proto}://{}/ws", loc.host().map_err(|e| js_err(&e))?)]
            }
        };
        let mut node = NodeConfig::default();
        if let Some(ice) = params.get("ice") {
            node.ice_servers = ice.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        }
        node.relay_only = params.get("relay").as_deref() == Some("1");
        if params.get("debug_forge_proof").as_deref() == Some("1") {
            node.proof_mode = ProofMode::ForgeProof;
        }
        let debug_unchecked = params.get("debug_unchecked").as_deref() == Some("1");
        let archive = match params.get("history").as_deref() {
            None | Some("prune") => false,
            Some("archive") => true,
            Some(other) => return Err(format!("history={other:?}: use prune or archive")),
        };
        let join_full = match params.get("join").as_deref() {
            None | Some("snapshot") => false,
            Some("full") => true,
            Some(other) => return Err(format!("join={other:?}: use snapshot or full")),
        };
        Ok(PageConfig { profile, rendezvous_urls, node, debug_unchecked, archive, join_full })
    }
}

/// The TypeScript types of every argument and result, emitted into the
/// generated `.d.ts` next to the `SynapseNode` class. One hand-written
/// file, so the types users read and the generated bindings cannot differ;
/// a native test (`service::dts`) checks it names every state field.
#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = include_str!("../../../synapse.d.ts");

/// The node as seen from JavaScript.
#[wasm_bindgen]
pub struct SynapseNode {
    node: Node,
    ledger: Ledger,
    profile: String,
    /// `on(event, cb)` listeners (removable, unlike `onChange`'s).
    listeners: events::Listeners,
}

impl SynapseNode {
    /// The API object over a started node and its ledger ([`start`] makes
    /// the page's; tests make their own).
    pub fn new(node: Node, ledger: Ledger, profile: String) -> SynapseNode {
        let listeners = events::Listeners::attach(&node, &ledger);
        SynapseNode { node, ledger, profile, listeners }
    }

    /// Runs a service command and signs its intent: the promise of an action.
    fn submit(&self, command: impl FnOnce(&State) -> crate::service::Result<Intent>) -> js_sys::Promise {
        settle(&self.ledger, self.ledger.run(command))
    }
}

fn to_js<T: Serialize>(v: &T) -> JsValue {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap_or(JsValue::NULL)
}

/// Reads a JSON argument. Goes through `serde_json::Value` because
/// `serde_wasm_bindgen` reads a struct's fields by name and never sees the
/// others, which would make `deny_unknown_fields` silently ineffective (a
/// misspelt `rewrad: 5` would be ignored instead of refused). Members that
/// are `null` or `undefined` count as absent, as JavaScript callers expect.
fn from_js<T: serde::de::DeserializeOwned>(v: JsValue) -> Result<T, String> {
    fn drop_nulls(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|_, x| !x.is_null());
                m.values_mut().for_each(drop_nulls);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(drop_nulls),
            _ => {}
        }
    }
    let mut json: serde_json::Value = serde_wasm_bindgen::from_value(v).map_err(|e| e.to_string())?;
    drop_nulls(&mut json);
    serde_json::from_value(json).map_err(|e| e.to_string())
}

fn reject(msg: &str) -> js_sys::Promise {
    js_sys::Promise::reject(&js_sys::Error::new(msg))
}

fn resolve_str(s: &str) -> js_sys::Promise {
    js_sys::Promise::resolve(&JsValue::from_str(s))
}

/// The promise of an action: resolves with the op id once the op is
/// committed to IndexedDB and published (`Ledger::acknowledged`).
fn settle(ledger: &Ledger, r: Result<OpId, String>) -> js_sys::Promise {
    match r {
        Ok(id) => ledger.acknowledged(id),
        Err(e) => reject(&e),
    }
}

/// Starts the page's node: loads (or creates) the profile's identity from
/// IndexedDB, folds the stored ops, connects to the rendezvous, publishes
/// `window.synapse`, and returns the node and its ledger for the UI.
pub async fn start() -> Result<(Node, Ledger), String> {
    crate::runtime::util::mark(crate::runtime::util::Stage::WasmStarted);
    let mut cfg = PageConfig::from_location()?;
    // The network first: the fold starts from it and the handshake names it.
    // Storage trouble does not stop the node: it runs in memory and says so
    // (`status().storage`, `Ledger::storage_error`). The identity is read
    // while the genesis is fetched.
    let (genesis, (identity, problem)) = futures_util::future::join(
        crate::runtime::genesis::fetch(&cfg.rendezvous_urls),
        store::open_identity(&cfg.profile),
    )
    .await;
    crate::runtime::util::mark(crate::runtime::util::Stage::GenesisAndIdentity);
    cfg.node.genesis = genesis.genesis.hash().0;
    let node = Node::new(identity, cfg.node.clone());
    let ledger = Ledger::attach(&node, &cfg.profile, &genesis.genesis);
    ledger.set_genesis_source(genesis.source, genesis.problem);
    if cfg.debug_unchecked {
        crate::console_log!("debug_unchecked: this page signs ops its rules refuse (a modified client)");
        ledger.sign_refused_ops_for_tests();
    }
    ledger.set_history(cfg.archive, cfg.join_full);
    if let Some(store::IdentityProblem(why)) = problem {
        crate::console_log!("{why}");
        ledger.set_memory_only(&why);
    }
    if let Err(e) = ledger.load().await {
        crate::console_log!("could not read the stored op log: {e}");
    }
    // So that tool secrets can be sealed to this node (retried from `tick`).
    ledger.ensure_key_published();
    // Rule `admission_ticket`: search and publish this identity's ticket
    // when the network asks for one.
    crate::runtime::admission::start(&ledger);
    // The agent's saved settings (off unless the user turned it on here).
    ledger.agent_restore();
    rendezvous::start(node.clone(), cfg.rendezvous_urls.clone());
    let api = SynapseNode::new(node.clone(), ledger.clone(), cfg.profile.clone());
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
    let l = ledger.clone();
    spawn_local(async move {
        loop {
            sleep_ms(1000).await;
            l.tick();
        }
    });
    crate::runtime::util::mark(crate::runtime::util::Stage::NodeStarted);
    crate::console_log!("node {} started (profile {})", node.id().short(), cfg.profile);
    Ok((node, ledger))
}
