//! `window.synapse`: the node's public JS API (see README, "JS API").
//!
//! Reads return plain JSON-compatible values (objects, arrays, strings,
//! numbers); actions that can fail return Promises that reject with an
//! `Error` whose message says why.

use crate::core::op::{
    AuctionTerms, Command, Funding, NewProposal, NewTask, NewTool, OpBody, OpId, ProposalKind, TaskSchema, ToolType,
};
use crate::identity::NodeId;
use crate::runtime::ledger::Ledger;
use crate::runtime::transport::{Node, NodeConfig};
use crate::runtime::util::{js_err, sleep_ms};
use crate::runtime::{rendezvous, store};
use crate::session::ProofMode;
use serde::Serialize;
use wasm_bindgen::JsCast;
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
    ledger: Ledger,
    profile: String,
}

/// `createTask`'s argument: a fixed-reward task, or an auction when
/// `auction` is given (then `reward` must be 0).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskSpec {
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    reward: u64,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    required_tools: Vec<String>,
    /// `"creator"` (default) or `"treasury"`.
    #[serde(default = "default_funding")]
    funding: Funding,
    #[serde(default)]
    auction: Option<AuctionTerms>,
}

/// `propose`'s argument.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProposalSpec {
    kind: ProposalKind,
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    command: Option<Command>,
}

/// `proposeTool`'s argument. `secret` never leaves this node in clear: it is
/// sealed here to `recipients` (default: every member of `channel` that has
/// published an X25519 key).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolSpec {
    tool_id: String,
    #[serde(default)]
    description: String,
    tool_type: ToolType,
    #[serde(default)]
    webhook_url: String,
    #[serde(default)]
    monthly_cost_sp: u64,
    secret: String,
    #[serde(default)]
    recipients: Option<Vec<NodeId>>,
    #[serde(default)]
    title: Option<String>,
}

fn default_funding() -> Funding {
    Funding::Creator
}

fn reject(msg: &str) -> js_sys::Promise {
    js_sys::Promise::reject(&js_sys::Error::new(msg))
}

fn settle(r: Result<OpId, String>) -> js_sys::Promise {
    match r {
        Ok(id) => js_sys::Promise::resolve(&JsValue::from_str(&id.to_text())),
        Err(e) => reject(&e),
    }
}

#[derive(Serialize)]
struct Status {
    id: NodeId,
    profile: String,
    rendezvous: crate::runtime::transport::RendezvousStatus,
    peers: Vec<NodeId>,
}

/// POSTs `body` to `url` with the credential as a bearer token.
async fn call_webhook(url: &str, secret: &str, body: &str) -> Result<u16, String> {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    let headers = web_sys::Headers::new().map_err(|e| js_err(&e))?;
    headers.set("Authorization", &format!("Bearer {secret}")).map_err(|e| js_err(&e))?;
    headers.set("Content-Type", "application/json").map_err(|e| js_err(&e))?;
    init.set_headers(&headers);
    let req = web_sys::Request::new_with_str_and_init(url, &init).map_err(|e| js_err(&e))?;
    let window = web_sys::window().ok_or("no window")?;
    let resp = wasm_bindgen_futures::JsFuture::from(window.fetch_with_request(&req))
        .await
        .map_err(|e| format!("webhook call failed: {}", js_err(&e)))?;
    let resp: web_sys::Response = resp.dyn_into().map_err(|_| "not a response".to_string())?;
    Ok(resp.status())
}

impl SynapseNode {
    /// An op on an existing proposal, in that proposal's channel.
    fn proposal_op(&self, proposal: &str, body: impl FnOnce(OpId) -> OpBody) -> js_sys::Promise {
        let Some(id) = OpId::parse(proposal) else { return reject("proposal id must be 64 hex characters") };
        let channel = self.ledger.with_state(|st| st.gov.proposals.get(&id).map(|p| p.channel.clone()));
        match channel {
            Some(ch) => settle(self.ledger.act(&ch, body(id))),
            None => reject(&format!("no proposal {proposal} is known here")),
        }
    }

    /// An op on an existing task, in that task's channel.
    fn task_op(&self, task: &str, body: impl FnOnce(OpId) -> OpBody) -> js_sys::Promise {
        let Some(id) = OpId::parse(task) else { return reject("task id must be 64 hex characters") };
        let channel = self.ledger.snapshot().state.tasks.get(&id).map(|t| t.channel.clone());
        match channel {
            Some(ch) => settle(self.ledger.act(&ch, body(id))),
            None => reject(&format!("no task {task} is known here")),
        }
    }
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

    /// The replicated state: `{state_hash, clock, state: {params, accounts,
    /// channels, tasks, teams, skills, minted, escrow, ...}, equivocators,
    /// rejected, counts}`.
    pub fn state(&self) -> JsValue {
        to_js(&self.ledger.snapshot())
    }

    /// Hex SHA-256 of the canonical state; equal on nodes holding the same ops.
    #[wasm_bindgen(js_name = stateHash)]
    pub fn state_hash(&self) -> String {
        self.ledger.state_hash()
    }

    /// Signs and publishes any op: `body` is an op body as JSON, e.g.
    /// `{type: "task_claim", task: ID}` (see docs/PROTOCOL.md, Operations).
    /// Resolves with the op id; rejects with the rule it would break.
    pub fn act(&self, channel: String, body: JsValue) -> js_sys::Promise {
        match serde_wasm_bindgen::from_value::<OpBody>(body) {
            Ok(b) => settle(self.ledger.act(&channel, b)),
            Err(e) => reject(&format!("not an op body: {e}")),
        }
    }

    /// Creates channel `name` (the creator becomes its steward).
    #[wasm_bindgen(js_name = createChannel)]
    pub fn create_channel(&self, name: String, description: Option<String>) -> js_sys::Promise {
        settle(self.ledger.act(&name, OpBody::ChannelCreate { description: description.unwrap_or_default() }))
    }

    /// Joins channel `name`.
    pub fn subscribe(&self, name: String) -> js_sys::Promise {
        settle(self.ledger.act(&name, OpBody::ChannelSubscribe))
    }

    /// Leaves channel `name`.
    pub fn unsubscribe(&self, name: String) -> js_sys::Promise {
        settle(self.ledger.act(&name, OpBody::ChannelUnsubscribe))
    }

    /// Creates a task in `channel` from `{title, reward?, description?,
    /// tags?, required_tools?, funding?: "creator"|"treasury", auction?:
    /// {max_reward, deadline_ms}}`; the reward is escrowed at once. Resolves
    /// with the task id.
    #[wasm_bindgen(js_name = createTask)]
    pub fn create_task(&self, channel: String, spec: JsValue) -> js_sys::Promise {
        let spec: TaskSpec = match serde_wasm_bindgen::from_value(spec) {
            Ok(s) => s,
            Err(e) => return reject(&format!("bad task: {e}")),
        };
        let schema = if spec.auction.is_some() { TaskSchema::TaskV2 } else { TaskSchema::TaskV1 };
        let task = NewTask {
            schema,
            title: spec.title,
            description: spec.description,
            reward: spec.reward,
            tags: spec.tags,
            required_tools: spec.required_tools,
            funding: spec.funding,
            auction: spec.auction,
        };
        settle(self.ledger.act(&channel, OpBody::TaskCreate(task)))
    }

    #[wasm_bindgen(js_name = claimTask)]
    pub fn claim_task(&self, task: String) -> js_sys::Promise {
        self.task_op(&task, |task| OpBody::TaskClaim { task })
    }

    /// The assignee starts work on a claimed task.
    #[wasm_bindgen(js_name = startTask)]
    pub fn start_task(&self, task: String) -> js_sys::Promise {
        self.task_op(&task, |task| OpBody::TaskStart { task })
    }

    /// The assignee completes a task: reward minus tax to the assignee, tax
    /// to the channel treasury.
    #[wasm_bindgen(js_name = completeTask)]
    pub fn complete_task(&self, task: String) -> js_sys::Promise {
        self.task_op(&task, |task| OpBody::TaskComplete { task })
    }

    /// The owner deletes an unfinished task; its escrow is refunded.
    #[wasm_bindgen(js_name = deleteTask)]
    pub fn delete_task(&self, task: String) -> js_sys::Promise {
        self.task_op(&task, |task| OpBody::TaskDelete { task })
    }

    /// Bids (or re-bids) on an auction task.
    pub fn bid(&self, task: String, amount: f64, estimated_days: u32) -> js_sys::Promise {
        if !(amount >= 0.0 && amount.fract() == 0.0 && amount <= 9.0e15) {
            return reject("amount must be a whole number of SP");
        }
        self.task_op(&task, |task| OpBody::Bid { task, amount: amount as u64, estimated_days })
    }

    /// Closes an auction (after its deadline, or early by its owner).
    #[wasm_bindgen(js_name = closeAuction)]
    pub fn close_auction(&self, task: String) -> js_sys::Promise {
        self.task_op(&task, |task| OpBody::AuctionClose { task })
    }

    /// Creates a proposal in `channel` from `{kind: "generic"|"config_change"|
    /// "command"|"network_operation"|"code_upgrade", title, description?,
    /// tags?, command?: {operation: "config_change", key, value: {type:
    /// "int", value: 5}} | {operation: "split_channel", ...} | ...}`.
    pub fn propose(&self, channel: String, spec: JsValue) -> js_sys::Promise {
        let spec: ProposalSpec = match serde_wasm_bindgen::from_value(spec) {
            Ok(s) => s,
            Err(e) => return reject(&format!("bad proposal: {e}")),
        };
        let p = NewProposal {
            kind: spec.kind,
            title: spec.title,
            description: spec.description,
            tags: spec.tags,
            command: spec.command,
        };
        settle(self.ledger.act(&channel, OpBody::ProposalCreate(p)))
    }

    /// Votes (or re-votes) on a proposal: `yes` true or false.
    pub fn vote(&self, proposal: String, yes: bool) -> js_sys::Promise {
        self.proposal_op(&proposal, |proposal| OpBody::Vote { proposal, yes })
    }

    /// Closes a proposal (after its minimum voting period); an approved
    /// `config_change`/`command` executes now, a `network_operation` waits
    /// for ratification.
    #[wasm_bindgen(js_name = closeProposal)]
    pub fn close_proposal(&self, proposal: String) -> js_sys::Promise {
        self.proposal_op(&proposal, |proposal| OpBody::ProposalClose { proposal })
    }

    /// A validator's ratification of an approved network operation.
    pub fn ratify(&self, proposal: String) -> js_sys::Promise {
        self.proposal_op(&proposal, |proposal| OpBody::Ratify { proposal })
    }

    /// Publishes this node's X25519 key so tool secrets can be sealed to it
    /// (done at start-up when missing).
    #[wasm_bindgen(js_name = publishKey)]
    pub fn publish_key(&self) -> js_sys::Promise {
        settle(self.ledger.act("global", OpBody::KeyPublish { x25519: self.node.identity().x25519_public() }))
    }

    /// Proposes acquiring a common tool for `channel` as a network
    /// operation. The secret is encrypted here and sealed to each recipient;
    /// no op carries it in clear. Resolves with the proposal id.
    #[wasm_bindgen(js_name = proposeTool)]
    pub fn propose_tool(&self, channel: String, spec: JsValue) -> js_sys::Promise {
        let spec: ToolSpec = match serde_wasm_bindgen::from_value(spec) {
            Ok(s) => s,
            Err(e) => return reject(&format!("bad tool: {e}")),
        };
        let recipients: Result<Vec<(NodeId, [u8; 32])>, String> = self.ledger.with_state(|st| {
            let ids: Vec<NodeId> = match &spec.recipients {
                Some(r) => r.clone(),
                None => st.channels.get(&channel).map(|c| c.members.iter().copied().collect()).unwrap_or_default(),
            };
            ids.into_iter()
                .map(|id| {
                    st.tools
                        .keys
                        .get(&id)
                        .map(|k| (id, *k))
                        .ok_or_else(|| format!("node {} has not published an X25519 key", id.short()))
                })
                .collect()
        });
        let recipients = match recipients {
            Ok(r) if !r.is_empty() => r,
            Ok(_) => return reject("no recipients: nobody could open the secret"),
            Err(e) => return reject(&e),
        };
        let mut rng = rand_core::OsRng;
        let Some(secret) =
            crate::core::tools::seal_tool_secret(&mut rng, &spec.tool_id, spec.secret.as_bytes(), &recipients)
        else {
            return reject("could not seal the secret");
        };
        let tool = NewTool {
            channel: channel.clone(),
            tool_id: spec.tool_id.clone(),
            description: spec.description,
            tool_type: spec.tool_type,
            webhook_url: spec.webhook_url,
            monthly_cost_sp: spec.monthly_cost_sp,
            secret,
        };
        let p = NewProposal {
            kind: ProposalKind::NetworkOperation,
            title: spec.title.unwrap_or_else(|| format!("Acquire common tool {}", spec.tool_id)),
            description: String::new(),
            tags: vec![],
            command: Some(Command::AcquireCommonTool(tool)),
        };
        settle(self.ledger.act(&channel, OpBody::ProposalCreate(p)))
    }

    /// Uses common tool `tool` for task `task`. Checked locally: the tool is
    /// active, this node is the assignee of the in-progress task, and the
    /// task lists the tool; only then is the secret decrypted, here. An
    /// `api_key` tool resolves with the key; a `webhook` tool POSTs
    /// `{tool, task, node}` to its URL with `Authorization: Bearer <secret>`
    /// and resolves with `{status}`.
    #[wasm_bindgen(js_name = useTool)]
    pub fn use_tool(&self, tool: String, task: String) -> js_sys::Promise {
        let Some(task_id) = OpId::parse(&task) else { return reject("task id must be 64 hex characters") };
        let opened = self.ledger.with_state(|st| {
            crate::core::tools::open_tool_secret(st, self.node.identity(), &tool, task_id)
                .map(|secret| (secret, st.tools.tools.get(&tool).map(|t| (t.tool_type, t.webhook_url.clone()))))
                .map_err(|e| e.to_string())
        });
        let (secret, meta) = match opened {
            Ok(x) => x,
            Err(e) => return reject(&e),
        };
        match meta {
            Some((ToolType::ApiKey, _)) => js_sys::Promise::resolve(&JsValue::from_str(&secret)),
            Some((ToolType::Webhook, url)) => {
                let body = serde_json::json!({"tool": tool, "task": task, "node": self.node.id()}).to_string();
                wasm_bindgen_futures::future_to_promise(async move {
                    let status = call_webhook(&url, &secret, &body).await.map_err(|e| js_sys::Error::new(&e))?;
                    Ok(to_js(&serde_json::json!({ "status": status })))
                })
            }
            None => reject("tool vanished"),
        }
    }

    /// When op `id` was first stored on this node (ms since navigation
    /// start), or null.
    #[wasm_bindgen(js_name = opSeenAt)]
    pub fn op_seen_at(&self, id: String) -> Option<f64> {
        OpId::parse(&id).and_then(|id| self.ledger.seen_at(&id))
    }

    /// `{router: {...counters}, mesh: {topic: [ids]}, ledger: {...}}`.
    #[wasm_bindgen(js_name = pubsubStats)]
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

    /// Calls `callback()` after every visible change of the node.
    #[wasm_bindgen(js_name = onChange)]
    pub fn on_change(&self, callback: js_sys::Function) {
        self.node.subscribe(std::rc::Rc::new(move || {
            let _ = callback.call0(&JsValue::NULL);
        }));
    }
}

/// Starts the page's node: loads (or creates) the profile's identity from
/// IndexedDB, folds the stored ops, connects to the rendezvous, publishes
/// `window.synapse`, and returns the node and its ledger for the UI.
pub async fn start() -> Result<(Node, Ledger), String> {
    let cfg = PageConfig::from_location()?;
    // Storage trouble does not stop the node: it runs in memory and says so
    // (`status().storage`, `Ledger::storage_error`).
    let (identity, problem) = store::open_identity(&cfg.profile).await;
    let node = Node::new(identity, cfg.node.clone());
    let ledger = Ledger::attach(&node, &cfg.profile);
    if let Some(store::IdentityProblem(why)) = problem {
        crate::console_log!("{why}");
        ledger.set_memory_only(&why);
    }
    if let Err(e) = ledger.load().await {
        crate::console_log!("could not read the stored op log: {e}");
    }
    // So that tool secrets can be sealed to this node (retried from `tick`).
    ledger.ensure_key_published();
    rendezvous::start(node.clone(), cfg.rendezvous_url.clone());
    let api = SynapseNode { node: node.clone(), ledger: ledger.clone(), profile: cfg.profile.clone() };
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
    crate::console_log!("node {} started (profile {})", node.id().short(), cfg.profile);
    Ok((node, ledger))
}
