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

#[path = "api_upgrades.rs"]
mod upgrades;

fn to_js<T: Serialize>(v: &T) -> JsValue {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap_or(JsValue::NULL)
}

/// The node as seen from JavaScript.
#[wasm_bindgen]
pub struct SynapseNode {
    node: Node,
    ledger: Ledger,
    profile: String,
    /// `on('change', cb)` listeners (removable, unlike `onChange`'s).
    listeners: Listeners,
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

fn default_funding() -> Funding {
    Funding::Creator
}

fn reject(msg: &str) -> js_sys::Promise {
    js_sys::Promise::reject(&js_sys::Error::new(msg))
}

/// The schemas installed by governance, as `core::schema` takes them.
fn installed_schemas(st: &crate::core::state::State) -> Vec<crate::core::schema::Installed<'_>> {
    st.gov.schemas.iter().map(|(n, c)| (n.as_str(), c.version, c.definition.as_str())).collect()
}

/// The promise of an action: resolves with the op id once the op is
/// committed to IndexedDB and published (`Ledger::acknowledged`).
fn settle(ledger: &Ledger, r: Result<OpId, String>) -> js_sys::Promise {
    match r {
        Ok(id) => ledger.acknowledged(id),
        Err(e) => reject(&e),
    }
}

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
            Some(ch) => settle(&self.ledger, self.ledger.act(&ch, body(id))),
            None => reject(&format!("no proposal {proposal} is known here")),
        }
    }

    /// An op on an existing task, in that task's channel.
    fn task_op(&self, task: &str, body: impl FnOnce(OpId) -> OpBody) -> js_sys::Promise {
        let Some(id) = OpId::parse(task) else { return reject("task id must be 64 hex characters") };
        // Tasks and team tasks share ids and ops (`task_delete` deletes either).
        let channel = self.ledger.with_state(|st| {
            st.tasks.get(&id).map(|t| t.channel.clone()).or_else(|| st.teams.get(&id).map(|t| t.channel.clone()))
        });
        match channel {
            Some(ch) => settle(&self.ledger, self.ledger.act(&ch, body(id))),
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

    /// `{id, profile, rendezvous: {state, url, last_error, directory}, peers}`.
    #[wasm_bindgen(unchecked_return_type = "NodeStatus")]
    pub fn status(&self) -> JsValue {
        to_js(&Status {
            id: self.node.id(),
            profile: self.profile.clone(),
            rendezvous: self.node.rendezvous_status(),
            peers: self.node.peers(),
            storage: self.ledger.storage_status(),
            chain: self.ledger.chain_status(),
        })
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

    /// The replicated state: `{state_hash, clock, state: {params, accounts,
    /// channels, tasks, teams, skills, minted, escrow, ...}, equivocators,
    /// rejected, counts}`.
    #[wasm_bindgen(unchecked_return_type = "Snapshot")]
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
    #[wasm_bindgen(unchecked_return_type = "Promise<Hex64>")]
    pub fn act(
        &self,
        channel: String,
        #[wasm_bindgen(unchecked_param_type = "OpBody")] body: JsValue,
    ) -> js_sys::Promise {
        match from_js::<OpBody>(body) {
            Ok(b) => settle(&self.ledger, self.ledger.act(&channel, b)),
            Err(e) => reject(&format!("not an op body: {e}")),
        }
    }

    /// Creates channel `name` (the creator becomes its steward).
    #[wasm_bindgen(js_name = createChannel, unchecked_return_type = "Promise<Hex64>")]
    pub fn create_channel(&self, name: String, description: Option<String>) -> js_sys::Promise {
        settle(
            &self.ledger,
            self.ledger.act(&name, OpBody::ChannelCreate { description: description.unwrap_or_default() }),
        )
    }

    /// Joins channel `name`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Hex64>")]
    pub fn subscribe(&self, name: String) -> js_sys::Promise {
        settle(&self.ledger, self.ledger.act(&name, OpBody::ChannelSubscribe))
    }

    /// Leaves channel `name`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Hex64>")]
    pub fn unsubscribe(&self, name: String) -> js_sys::Promise {
        settle(&self.ledger, self.ledger.act(&name, OpBody::ChannelUnsubscribe))
    }

    /// Creates a task in `channel` from `{title, reward?, description?,
    /// tags?, required_tools?, funding?: "creator"|"treasury", auction?:
    /// {max_reward, deadline_ms}}`; the reward is escrowed at once. Resolves
    /// with the task id.
    #[wasm_bindgen(js_name = createTask, unchecked_return_type = "Promise<Hex64>")]
    pub fn create_task(
        &self,
        channel: String,
        #[wasm_bindgen(unchecked_param_type = "TaskSpec")] spec: JsValue,
    ) -> js_sys::Promise {
        let spec: TaskSpec = match from_js(spec) {
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
        settle(&self.ledger, self.ledger.act(&channel, OpBody::TaskCreate(task)))
    }

    #[wasm_bindgen(js_name = claimTask, unchecked_return_type = "Promise<Hex64>")]
    pub fn claim_task(&self, task: String) -> js_sys::Promise {
        self.task_op(&task, |task| OpBody::TaskClaim { task })
    }

    /// The assignee starts work on a claimed task.
    #[wasm_bindgen(js_name = startTask, unchecked_return_type = "Promise<Hex64>")]
    pub fn start_task(&self, task: String) -> js_sys::Promise {
        self.task_op(&task, |task| OpBody::TaskStart { task })
    }

    /// The assignee completes a task: reward minus tax to the assignee, tax
    /// to the channel treasury.
    #[wasm_bindgen(js_name = completeTask, unchecked_return_type = "Promise<Hex64>")]
    pub fn complete_task(&self, task: String) -> js_sys::Promise {
        self.task_op(&task, |task| OpBody::TaskComplete { task })
    }

    /// The owner deletes an unfinished task; its escrow is refunded.
    #[wasm_bindgen(js_name = deleteTask, unchecked_return_type = "Promise<Hex64>")]
    pub fn delete_task(&self, task: String) -> js_sys::Promise {
        self.task_op(&task, |task| OpBody::TaskDelete { task })
    }

    /// Bids (or re-bids) on an auction task.
    #[wasm_bindgen(unchecked_return_type = "Promise<Hex64>")]
    pub fn bid(&self, task: String, amount: f64, estimated_days: u32) -> js_sys::Promise {
        if !(amount >= 0.0 && amount.fract() == 0.0 && amount <= 9.0e15) {
            return reject("amount must be a whole number of SP");
        }
        self.task_op(&task, |task| OpBody::Bid { task, amount: amount as u64, estimated_days })
    }

    /// Closes an auction (after its deadline, or early by its owner).
    #[wasm_bindgen(js_name = closeAuction, unchecked_return_type = "Promise<Hex64>")]
    pub fn close_auction(&self, task: String) -> js_sys::Promise {
        self.task_op(&task, |task| OpBody::AuctionClose { task })
    }

    /// Creates a proposal in `channel` from `{kind: "generic"|"config_change"|
    /// "command"|"network_operation"|"code_upgrade", title, description?,
    /// tags?, command?: {operation: "config_change", key, value: {type:
    /// "int", value: 5}} | {operation: "split_channel", ...} | ...}`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Hex64>")]
    pub fn propose(
        &self,
        channel: String,
        #[wasm_bindgen(unchecked_param_type = "ProposalSpec")] spec: JsValue,
    ) -> js_sys::Promise {
        let spec: ProposalSpec = match from_js(spec) {
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
        settle(&self.ledger, self.ledger.act(&channel, OpBody::ProposalCreate(p)))
    }

    /// Votes (or re-votes) on a proposal: `yes` true or false.
    #[wasm_bindgen(unchecked_return_type = "Promise<Hex64>")]
    pub fn vote(&self, proposal: String, yes: bool) -> js_sys::Promise {
        self.proposal_op(&proposal, |proposal| OpBody::Vote { proposal, yes })
    }

    /// Closes a proposal (after its minimum voting period); an approved
    /// `config_change`/`command` executes now, a `network_operation` waits
    /// for ratification.
    #[wasm_bindgen(js_name = closeProposal, unchecked_return_type = "Promise<Hex64>")]
    pub fn close_proposal(&self, proposal: String) -> js_sys::Promise {
        self.proposal_op(&proposal, |proposal| OpBody::ProposalClose { proposal })
    }

    /// A validator's ratification of an approved network operation.
    #[wasm_bindgen(unchecked_return_type = "Promise<Hex64>")]
    pub fn ratify(&self, proposal: String) -> js_sys::Promise {
        self.proposal_op(&proposal, |proposal| OpBody::Ratify { proposal })
    }

    /// Publishes this node's X25519 key so tool secrets can be sealed to it
    /// (done at start-up when missing).
    #[wasm_bindgen(js_name = publishKey, unchecked_return_type = "Promise<Hex64>")]
    pub fn publish_key(&self) -> js_sys::Promise {
        settle(
            &self.ledger,
            self.ledger.act("global", OpBody::KeyPublish { x25519: self.node.identity().x25519_public() }),
        )
    }

    /// Proposes acquiring a common tool for `channel` as a network
    /// operation. The secret is encrypted here and sealed to each recipient;
    /// no op carries it in clear. Resolves with the proposal id.
    #[wasm_bindgen(js_name = proposeTool, unchecked_return_type = "Promise<Hex64>")]
    pub fn propose_tool(
        &self,
        channel: String,
        #[wasm_bindgen(unchecked_param_type = "ToolSpec")] spec: JsValue,
    ) -> js_sys::Promise {
        let spec: ToolSpec = match from_js(spec) {
            Ok(s) => s,
            Err(e) => return reject(&format!("bad tool: {e}")),
        };
        let recipients: Result<Vec<(NodeId, [u8; 32])>, String> = self.ledger.with_state(|st| {
            let ids: Vec<NodeId> = match &spec.recipients {
                Some(r) => r.clone(),
                None => {
                    st.ledger.channels.get(&channel).map(|c| c.members.iter().copied().collect()).unwrap_or_default()
                }
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
        settle(&self.ledger, self.ledger.act(&channel, OpBody::ProposalCreate(p)))
    }

    /// Uses common tool `tool` for task `task`. Checked locally: the tool is
    /// active, this node is the assignee of the in-progress task, and the
    /// task lists the tool; only then is the secret decrypted, here. An
    /// `api_key` tool resolves with the key; a `webhook` tool POSTs
    /// `{tool, task, node}` to its URL with `Authorization: Bearer <secret>`
    /// and resolves with `{status}`.
    #[wasm_bindgen(js_name = useTool, unchecked_return_type = "Promise<string | { status: number }>")]
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

    /// Every schema a value can be checked against: the built-in `task_v1`,
    /// `task_v2`, `proposal_v1`, and those installed by governance
    /// (`update_schema`, newest version in force):
    /// `[{name, version, source, fields: [{name, type, required, default, min, max, values}], error}]`.
    #[wasm_bindgen(unchecked_return_type = "SchemaInfo[]")]
    pub fn schemas(&self) -> JsValue {
        to_js(&self.ledger.with_state(|st| crate::core::schema::catalogue(&installed_schemas(st))))
    }

    /// Dry-validates `value` against schema `name` without signing
    /// anything: `{ok, errors: [{field, message}], value}` where `value` has
    /// the defaults filled in (null when not ok). Throws for an unknown
    /// schema or one whose definition cannot be used.
    #[wasm_bindgen(unchecked_return_type = "SchemaCheck")]
    pub fn validate(&self, name: String, value: JsValue) -> Result<JsValue, JsError> {
        let value: serde_json::Value = from_js(value).map_err(|e| JsError::new(&format!("bad value: {e}")))?;
        let schema = self
            .ledger
            .with_state(|st| crate::core::schema::lookup(&name, &installed_schemas(st)))
            .map_err(|e| JsError::new(&e))?;
        let (ok, errors, value) = match crate::core::schema::validate(&schema, &value) {
            Ok(v) => (true, vec![], v),
            Err(errs) => (false, errs, serde_json::Value::Null),
        };
        let errors: Vec<serde_json::Value> =
            errors.iter().map(|e| serde_json::json!({"field": e.field, "message": e.message})).collect();
        Ok(to_js(&serde_json::json!({"ok": ok, "errors": errors, "value": value})))
    }

    /// Whether op `id` is stored on this node (whatever its outcome).
    #[wasm_bindgen(js_name = hasOp)]
    pub fn has_op(&self, id: String) -> bool {
        OpId::parse(&id).is_some_and(|id| self.ledger.has_op(&id))
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

    /// Calls `callback()` after every visible change of the node.
    #[wasm_bindgen(js_name = onChange)]
    pub fn on_change(&self, #[wasm_bindgen(unchecked_param_type = "() => void")] callback: js_sys::Function) {
        self.node.subscribe(std::rc::Rc::new(move || {
            let _ = callback.call0(&JsValue::NULL);
        }));
    }
}

// ---------------------------------------------------------------------------
// Issue 7: teams, deadline ops, events, identity backup. Grouped here so the
// blocks above stay as they were.
// ---------------------------------------------------------------------------

/// TypeScript types of the JSON arguments and results, emitted into the
/// generated `.d.ts` next to the `SynapseNode` class.
#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** A node id or op id: 64 lowercase hex characters. */
export type Hex64 = string;
/** A replaceable policy (docs/UPGRADES.md). */
export type Policy = "vote_weight" | "auction_score" | "tax";
/** `proposeUpgrade`'s argument: `module` 64 zeros = back to the built-in policy. */
export interface UpgradeSpec { title: string; description?: string; tags?: string[]; module: Hex64; policy: Policy; }
export interface ExampleModule { name: string; policy: Policy; sha256: Hex64; size: number; }
export interface PublishedModule { module: Hex64; size: number; pieces: number; pieces_sent: number; }
export interface DryRunChange { subject: Hex64; title: string; status: string; before: string; after: string; }
export interface DryRunSample { input: string; before: string; after: string; }
/** `dryRunModule`'s report: `error` set when the module fails a load check. */
export interface DryRun {
  module: Hex64; policy: Policy; size: number; current: Hex64;
  error: { code: string; message: string } | null; faults: number;
  changes: DryRunChange[]; samples: DryRunSample[];
}
export interface AuctionTerms { max_reward: number; deadline_ms: number; }
/** `createTask`'s argument (unknown fields are refused). */
export interface TaskSpec {
  title: string; description?: string; reward?: number; tags?: string[];
  required_tools?: string[]; funding?: "creator" | "treasury"; auction?: AuctionTerms;
}
export interface SubTaskSpec { title: string; description?: string; required_skills?: string[]; reward?: number; }
/** `createTeamTask`'s argument: the whole budget (rewards + bonus) is escrowed. */
export interface TeamTaskSpec {
  title: string; description?: string; subtasks: SubTaskSpec[];
  coordinator_bonus?: number; max_team_size: number;
}
export type ConfigValue = { type: "int"; value: number } | { type: "bool"; value: boolean } | { type: "text"; value: string };
export type Command =
  | { operation: "config_change"; key: string; value: ConfigValue }
  | { operation: "split_channel"; target: string; logic: "by_tag" | "by_title_prefix"; parts: { channel: string; keys: string[] }[] }
  | { operation: "merge_channels"; sources: string[]; target: string }
  | { operation: "update_schema"; name: string; definition: string }
  | { operation: "code_upgrade"; module_sha256: Hex64; policy: Policy }
  | { operation: "deprecate_common_tool"; channel: string; tool_id: string }
  | { operation: "reactivate_common_tool"; channel: string; tool_id: string };
/** `propose`'s argument. */
export interface ProposalSpec {
  kind: "generic" | "config_change" | "command" | "network_operation" | "code_upgrade";
  title: string; description?: string; tags?: string[]; command?: Command;
}
/** `proposeTool`'s argument; `secret` is sealed here, never sent in clear. */
export interface ToolSpec {
  tool_id: string; tool_type: "api_key" | "webhook"; secret: string; webhook_url?: string;
  monthly_cost_sp?: number; description?: string; recipients?: Hex64[]; title?: string;
}
/** Any op body, e.g. `{type: "task_claim", task}` (docs/PROTOCOL.md, Operations). */
export type OpBody = { type: string; [field: string]: unknown };
export interface ImportOptions { replace?: boolean; }
/** `schemas()`: one schema with its fields (`error` when a governance definition is unusable). */
export interface SchemaInfo {
  name: string; version: number; source: "built_in" | "governance"; error: string | null;
  fields: { name: string; type: "string" | "integer" | "list[string]" | "object" | "enum"; required: boolean;
            default?: unknown; min: number | null; max: number | null; values: string[] | null }[];
}
/** `validate(schema, value)`: every problem at once, and the value with defaults when ok. */
export interface SchemaCheck { ok: boolean; errors: { field: string; message: string }[]; value: Record<string, unknown> | null; }
/** `teamWaitingFor`: the sub-task a forming team still lacks a qualified member for. */
export interface TeamWaitingFor { index: number; title: string; required_skills: string[]; sentence: string; }
export interface StorageStatus {
  ok: boolean; problem: "unavailable" | "full" | "write_failed" | "read_failed" | null;
  error: string | null; memory_only: boolean; unsaved: number; uncommitted: number;
}
/** Whether this node may sign now (`state: "ready"`), and if not, why. */
export type ChainStatus = { sentence: string | null; head: number } & (
  | { state: "ready" }
  | { state: "waiting"; need: { for: "ops" | "peer_ops"; seq: number } | { for: "peer_view" }; deadline_ms: number | null }
  | { state: "conflict"; seq: number }
  | { state: "forked"; seq: number });
export interface RendezvousStatus { state: string; url: string; last_error: string | null; directory: Hex64[]; }
export interface NodeStatus { id: Hex64; profile: string; rendezvous: RendezvousStatus; peers: Hex64[]; storage: StorageStatus; chain: ChainStatus; }
export interface LedgerStats {
  ops_created: number; ops_received: number; ops_invalid: number; ops_loaded: number; ops_load_skipped: number;
  ops_fetched: number; ops_refetched: number; ops_committed: number; ops_conflicted: number;
  store_errors: number; last_store_error: string | null;
  storage_error: string | null;
}
export interface PubsubStats { router: Record<string, number>; mesh: Record<string, Hex64[]>; ledger: LedgerStats; }
export interface Snapshot {
  state_hash: string; clock: { ms: number; logical: number };
  state: { [part: string]: any }; equivocators: any[]; rejected: any[]; counts: Record<string, number>;
}
export type SynapseEvent = "change";
export interface PeerState { id: Hex64; state: "connecting" | "handshaking" | "proven"; connection: string; polite: boolean; rtt_ms: number | null; }
export interface Hello { from: Hex64; text: string; via: Hex64; at_ms: number; }
export interface Timings { node_started_ms: number; first_channel_open_ms: number | null; first_peer_proven_ms: number | null; }
"#;

/// `createTeamTask`'s sub-tasks.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SubTaskSpec {
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    required_skills: Vec<String>,
    #[serde(default)]
    reward: u64,
}

/// `createTeamTask`'s argument.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamTaskSpec {
    title: String,
    #[serde(default)]
    description: String,
    subtasks: Vec<SubTaskSpec>,
    #[serde(default)]
    coordinator_bonus: u64,
    max_team_size: u8,
}

/// `importIdentity`'s options.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ImportOptions {
    #[serde(default)]
    replace: bool,
}

/// Listeners of `on('change')`, shared with the node's change hook.
type Listeners = std::rc::Rc<std::cell::RefCell<Vec<js_sys::Function>>>;

/// Events `on`/`off` accept (checked, so a typo is an error, not silence).
fn check_event(event: &str) -> Result<(), JsValue> {
    match event {
        "change" => Ok(()),
        other => Err(js_sys::Error::new(&format!("unknown event {other:?}: the only event is \"change\"")).into()),
    }
}

fn resolve_str(s: &str) -> js_sys::Promise {
    js_sys::Promise::resolve(&JsValue::from_str(s))
}

impl SynapseNode {
    /// The API object over a started node and its ledger ([`start`] makes
    /// the page's; tests make their own). One change hook on the node
    /// dispatches to every `on('change')` listener (a copy of the list, so a
    /// listener may call `off` or `on` while it runs).
    pub fn new(node: Node, ledger: Ledger, profile: String) -> SynapseNode {
        let listeners: Listeners = Default::default();
        let l = listeners.clone();
        node.subscribe(std::rc::Rc::new(move || {
            let now: Vec<js_sys::Function> = l.borrow().clone();
            for f in now {
                let _ = f.call0(&JsValue::NULL);
            }
        }));
        SynapseNode { node, ledger, profile, listeners }
    }

    /// An op on an existing team task, in that task's channel.
    fn team_op(&self, task: &str, body: impl FnOnce(OpId) -> OpBody) -> js_sys::Promise {
        let Some(id) = OpId::parse(task) else { return reject("team task id must be 64 hex characters") };
        match self.ledger.with_state(|st| st.teams.get(&id).map(|t| t.channel.clone())) {
            Some(ch) => settle(&self.ledger, self.ledger.act(&ch, body(id))),
            None => reject(&format!("no team task {task} is known here")),
        }
    }
}

#[wasm_bindgen]
impl SynapseNode {
    /// Replaces this node's skill profile (matched against team sub-tasks'
    /// required skills; stored lowercased).
    #[wasm_bindgen(js_name = setSkills, unchecked_return_type = "Promise<Hex64>")]
    pub fn set_skills(&self, skills: Vec<String>) -> js_sys::Promise {
        settle(&self.ledger, self.ledger.act(crate::core::op::GLOBAL_CHANNEL, OpBody::SkillsSet { skills }))
    }

    /// Creates a team task in `channel`; the sub-task rewards plus the
    /// coordinator bonus are escrowed from this node at once. Resolves with
    /// the team task id.
    #[wasm_bindgen(js_name = createTeamTask, unchecked_return_type = "Promise<Hex64>")]
    pub fn create_team_task(
        &self,
        channel: String,
        #[wasm_bindgen(unchecked_param_type = "TeamTaskSpec")] spec: JsValue,
    ) -> js_sys::Promise {
        let spec: TeamTaskSpec = match from_js(spec) {
            Ok(s) => s,
            Err(e) => return reject(&format!("bad team task: {e}")),
        };
        if spec.subtasks.len() > crate::core::op::MAX_SUBTASKS {
            return reject(&format!("a team task has at most {} sub-tasks", crate::core::op::MAX_SUBTASKS));
        }
        let t = crate::core::op::NewTeamTask {
            title: spec.title,
            description: spec.description,
            subtasks: spec
                .subtasks
                .into_iter()
                .map(|s| crate::core::op::NewSubTask {
                    title: s.title,
                    description: s.description,
                    required_skills: s.required_skills,
                    reward: s.reward,
                })
                .collect(),
            coordinator_bonus: spec.coordinator_bonus,
            max_team_size: spec.max_team_size,
        };
        settle(&self.ledger, self.ledger.act(&channel, OpBody::TeamTaskCreate(t)))
    }

    /// Becomes the coordinator of an open team task (it starts forming).
    #[wasm_bindgen(js_name = claimTeam, unchecked_return_type = "Promise<Hex64>")]
    pub fn claim_team(&self, task: String) -> js_sys::Promise {
        self.team_op(&task, |task| OpBody::TeamClaim { task })
    }

    /// Applies to join a forming team (needs a skill profile, see `setSkills`).
    #[wasm_bindgen(js_name = applyTeam, unchecked_return_type = "Promise<Hex64>")]
    pub fn apply_team(&self, task: String) -> js_sys::Promise {
        self.team_op(&task, |task| OpBody::TeamApply { task })
    }

    /// The coordinator accepts applicant `applicant` (a node id); once every
    /// sub-task can be assigned the team starts and gets its workspace channel.
    #[wasm_bindgen(js_name = acceptMember, unchecked_return_type = "Promise<Hex64>")]
    pub fn accept_member(&self, task: String, applicant: String) -> js_sys::Promise {
        let applicant = match NodeId::parse(&applicant) {
            Ok(a) => a,
            Err(e) => return reject(&format!("applicant: {e}")),
        };
        self.team_op(&task, |task| OpBody::TeamAccept { task, applicant })
    }

    /// For a team still forming: the first sub-task that no accepted member
    /// qualifies for, as `{index, title, required_skills, sentence}`; null
    /// once the team started (or for an unknown id).
    #[wasm_bindgen(js_name = teamWaitingFor, unchecked_return_type = "TeamWaitingFor | null")]
    pub fn team_waiting_for(&self, task: String) -> JsValue {
        let Some(id) = OpId::parse(&task) else { return JsValue::NULL };
        match self.ledger.with_state(|st| st.teams.get(&id).and_then(|t| t.waiting_for(&st.skills))) {
            Some(w) => to_js(&w),
            None => JsValue::NULL,
        }
    }

    /// The assignee reports sub-task `index` (0-based) done; the last one
    /// pays everyone out of the escrow.
    #[wasm_bindgen(js_name = completeSubTask, unchecked_return_type = "Promise<Hex64>")]
    pub fn complete_subtask(&self, task: String, index: u32) -> js_sys::Promise {
        let Ok(index) = u8::try_from(index) else { return reject("sub-task index must be 0 to 255") };
        self.team_op(&task, |task| OpBody::SubTaskComplete { task, index })
    }

    /// Deadline op: closes a proposal whose voting deadline has passed (the
    /// deadline keeper publishes it by itself; this is for tests and tools).
    #[wasm_bindgen(js_name = expireProposal, unchecked_return_type = "Promise<Hex64>")]
    pub fn expire_proposal(&self, proposal: String) -> js_sys::Promise {
        self.proposal_op(&proposal, |proposal| OpBody::ProposalExpire { proposal })
    }

    /// Deadline op: charges a common tool's monthly upkeep once due (also
    /// published by the deadline keeper).
    #[wasm_bindgen(js_name = toolUpkeep, unchecked_return_type = "Promise<Hex64>")]
    pub fn tool_upkeep(&self, tool_id: String) -> js_sys::Promise {
        match self.ledger.with_state(|st| st.tools.tools.get(&tool_id).map(|t| t.channel.clone())) {
            Some(ch) => settle(&self.ledger, self.ledger.act(&ch, OpBody::ToolUpkeep { tool_id })),
            None => reject(&format!("no common tool {tool_id:?} is known here")),
        }
    }

    /// Calls `callback()` after every visible change, like `onChange`, and
    /// returns a function that removes it. Throws on an unknown event name.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn on(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SynapseEvent")] event: String,
        #[wasm_bindgen(unchecked_param_type = "() => void")] callback: js_sys::Function,
    ) -> Result<js_sys::Function, JsValue> {
        check_event(&event)?;
        self.listeners.borrow_mut().push(callback.clone());
        let l = self.listeners.clone();
        let off = Closure::<dyn FnMut()>::new(move || {
            let mut v = l.borrow_mut();
            if let Some(i) = v.iter().position(|f| JsValue::from(f) == JsValue::from(&callback)) {
                v.remove(i);
            }
        });
        Ok(off.into_js_value().unchecked_into())
    }

    /// Removes a listener added with `on(event, callback)` (the same function
    /// object). Returns whether it was registered.
    pub fn off(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SynapseEvent")] event: String,
        #[wasm_bindgen(unchecked_param_type = "() => void")] callback: js_sys::Function,
    ) -> Result<bool, JsValue> {
        check_event(&event)?;
        let mut v = self.listeners.borrow_mut();
        match v.iter().position(|f| JsValue::from(f) == JsValue::from(&callback)) {
            Some(i) => {
                v.remove(i);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The identity file of the identity this tab runs as: versioned JSON
    /// with the **secret keys** and the node's own chain head. Save it as a
    /// file (see README); anyone holding it can act as this node.
    #[wasm_bindgen(js_name = exportIdentity, unchecked_return_type = "Promise<string>")]
    pub fn export_identity(&self) -> js_sys::Promise {
        let floor = self.ledger.chain_floor();
        let head = match self.ledger.own_head() {
            Some((seq, op)) if seq >= floor => Some(crate::persistence::ChainHead { seq, op }),
            // Imported here and not caught up yet: the floor is the head.
            _ if floor > 0 => Some(crate::persistence::ChainHead { seq: floor, op: OpId::ZERO }),
            _ => None,
        };
        resolve_str(&crate::persistence::encode_identity_file(
            self.node.identity(),
            &self.profile,
            js_sys::Date::now() as u64,
            head,
        ))
    }

    /// Validates an identity file and stores it as this profile's identity,
    /// used from the next reload. Refuses to replace a different stored
    /// identity unless `{replace: true}`. Resolves with the imported node id;
    /// rejects with why the file was refused.
    #[wasm_bindgen(js_name = importIdentity, unchecked_return_type = "Promise<Hex64>")]
    pub fn import_identity(
        &self,
        text: String,
        #[wasm_bindgen(unchecked_param_type = "ImportOptions")] options: Option<JsValue>,
    ) -> js_sys::Promise {
        let opts: ImportOptions = match options.filter(|o| !o.is_undefined() && !o.is_null()) {
            None => ImportOptions::default(),
            Some(o) => match from_js(o) {
                Ok(o) => o,
                Err(e) => return reject(&format!("bad import options: {e}")),
            },
        };
        let profile = self.profile.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let id = store::import_identity(&profile, &text, opts.replace).await.map_err(|e| js_sys::Error::new(&e))?;
            Ok(JsValue::from_str(&id.to_text()))
        })
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
    crate::console_log!("node {} started (profile {})", node.id().short(), cfg.profile);
    Ok((node, ledger))
}
