//! The optional agent in the browser (rules in `crate::agent`): runs its
//! cycles when they are due, does the one piece of I/O (the chat
//! endpoint's `fetch`, with a timeout), signs the suggestions the user
//! approves or lets run by themselves, and drafts policy modules. Off until
//! `agentConfigure({enabled: true})`.

use super::{Ledger, wall_ms};
use crate::agent::draft::{self, PreparedProposal};
use crate::agent::model::{MAX_ANSWER_BYTES, TIMEOUT_MS};
use crate::agent::session::Cycle;
use crate::agent::{Agent, AgentConfig, AgentStatus};
use crate::console_log;
use crate::core::op::OpId;
use crate::core::upgrade::Policy;
use crate::core::upgrades::DryRun;
use crate::runtime::util::js_err;
use crate::service::{Domain, DomainSet, Signer};
use serde::Serialize;
use std::cell::RefCell;
use wasm_bindgen::{JsCast, JsValue};

#[derive(Default)]
pub(super) struct AgentDuty {
    agent: RefCell<Agent>,
}

/// What `agentDraftModule` gives: the WAT, the compiled module, its dry
/// run against the live state, and the proposal it would make. Nothing is
/// published.
#[derive(Clone, Debug, Serialize)]
pub struct Draft {
    pub wat: String,
    #[serde(skip)]
    pub bytes: Vec<u8>,
    pub size: usize,
    pub dry_run: DryRun,
    pub proposal: PreparedProposal,
}

impl Ledger {
    /// Replaces the agent's configuration; a cycle follows at once when
    /// it is enabled.
    pub fn agent_configure(&self, cfg: AgentConfig) -> Result<(), String> {
        self.inner.agent.agent.borrow_mut().configure(cfg.clone())?;
        save_config(&self.inner.profile, &cfg);
        self.agent_changed();
        Ok(())
    }

    /// Restores the configuration saved by this profile's last
    /// `agent_configure` (the API key is never saved: it is asked again).
    pub fn agent_restore(&self) {
        let Some(cfg) = load_config(&self.inner.profile) else { return };
        if let Err(e) = self.inner.agent.agent.borrow_mut().configure(cfg) {
            console_log!("agent: the saved configuration is refused ({e}); the agent stays off");
        }
    }

    pub fn agent_status(&self) -> AgentStatus {
        self.inner.agent.agent.borrow().status()
    }

    fn agent_changed(&self) {
        self.bump(DomainSet::of(&[Domain::Agent]));
        self.inner.node.touch();
    }

    /// Called every second from `tick`.
    pub(super) fn agent_tick(&self) {
        let me = self.inner.node.id();
        let now = wall_ms();
        let cycle = {
            let replica = self.inner.replica.borrow();
            self.inner.agent.agent.borrow_mut().begin_cycle(replica.state(), &me, now)
        };
        if let Some(c) = cycle {
            let l = self.clone();
            wasm_bindgen_futures::spawn_local(async move { l.run_agent_cycle(c).await });
        }
    }

    /// Runs a cycle now (the user asked); resolves when it ends. Refused
    /// while the agent is off or a cycle runs.
    pub async fn agent_run_now(&self) -> Result<(), String> {
        let me = self.inner.node.id();
        let cycle = {
            let replica = self.inner.replica.borrow();
            self.inner.agent.agent.borrow_mut().force_cycle(replica.state(), &me, wall_ms())
        }?;
        self.run_agent_cycle(cycle).await;
        Ok(())
    }

    async fn run_agent_cycle(&self, cycle: Cycle) {
        self.agent_changed();
        let me = self.inner.node.id();
        let auto = match cycle {
            Cycle::Rules => {
                let replica = self.inner.replica.borrow();
                self.inner.agent.agent.borrow_mut().rules_cycle(replica.state(), &me, wall_ms())
            }
            Cycle::Model { url, api_key, body } => {
                let answer = post_json(&url, api_key.as_deref(), &body.to_string()).await;
                if let Err(e) = &answer {
                    console_log!("agent: the chat endpoint failed: {e}");
                }
                let replica = self.inner.replica.borrow();
                self.inner.agent.agent.borrow_mut().model_answered(replica.state(), &me, wall_ms(), answer)
            }
        };
        for id in auto {
            if let Err(e) = self.agent_approve(id) {
                console_log!("agent: automatic suggestion {id} not signed: {e}");
            }
        }
        self.agent_changed();
    }

    /// Signs pending suggestion `id` after checking it again.
    pub fn agent_approve(&self, id: u64) -> Result<OpId, String> {
        let intent = {
            let replica = self.inner.replica.borrow();
            let identity = self.inner.node.identity();
            self.inner.agent.agent.borrow_mut().approve(id, replica.state(), identity, wall_ms())
        };
        // A refusal by the session (not pending, or a guardrail that fails
        // now) is already recorded there; only signing's outcome is settled.
        let result = match intent {
            Ok(i) => {
                let signed = self.sign(i);
                self.inner.agent.agent.borrow_mut().settled(id, signed.clone());
                signed
            }
            Err(e) => Err(e),
        };
        self.agent_changed();
        result
    }

    pub fn agent_dismiss(&self, id: u64) -> Result<(), String> {
        self.inner.agent.agent.borrow_mut().dismiss(id)?;
        self.agent_changed();
        Ok(())
    }

    /// Asks the endpoint for a `policy` module doing what `description`
    /// says, compiles and dry-runs it, and prepares its proposal. Needs an
    /// endpoint; publishes nothing.
    pub async fn agent_draft(&self, description: &str, policy: Policy) -> Result<Draft, String> {
        let cfg = self.inner.agent.agent.borrow().config().clone();
        let endpoint = cfg.endpoint.as_deref().ok_or("name a chat endpoint first: drafting needs a model")?;
        let url = crate::agent::model::completions_url(endpoint)?;
        let body = draft::request(description, policy, &cfg.model)?;
        let answer = post_json(&url, cfg.api_key.as_deref(), &body.to_string()).await?;
        let text = crate::agent::model::content(&answer)?;
        let wat = draft::wat_in(&text)?;
        let bytes = compile_in_worker(&wat).await?;
        draft::check(&bytes, policy)?;
        let dry_run = self.with_state(|st| st.dry_run(&bytes, policy, wall_ms()));
        let proposal = draft::prepare(description, policy, &bytes);
        Ok(Draft { wat, size: bytes.len(), bytes, dry_run, proposal })
    }
}

/// POSTs `body` (JSON) to `url` and returns the answer's text: a refusal
/// for a non-2xx status, an answer over [`MAX_ANSWER_BYTES`], or no answer
/// within [`TIMEOUT_MS`].
async fn post_json(url: &str, api_key: Option<&str>, body: &str) -> Result<String, String> {
    let posted = crate::runtime::util::post_json(url, api_key, body, TIMEOUT_MS)
        .await
        .map_err(|e| format!("the endpoint did not answer: {e}"))?;
    let resp = &posted.response;
    if let Ok(Some(len)) = resp.headers().get("content-length")
        && len.parse::<usize>().is_ok_and(|n| n > MAX_ANSWER_BYTES)
    {
        return Err(format!("the answer is {len} bytes, more than {MAX_ANSWER_BYTES}"));
    }
    let text = wasm_bindgen_futures::JsFuture::from(resp.text().map_err(|e| js_err(&e))?)
        .await
        .map_err(|e| format!("the answer could not be read: {}", js_err(&e)))?;
    if !resp.ok() {
        return Err(format!("the endpoint answered HTTP {}", resp.status()));
    }
    text.as_string().ok_or_else(|| "the answer is not text".to_string())
}

/// Where a profile's agent settings are kept (`localStorage`, this origin).
fn config_key(profile: &str) -> String {
    format!("synapse-agent:{profile}")
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

/// Saves `cfg` without its key (serialization skips `api_key`).
fn save_config(profile: &str, cfg: &AgentConfig) {
    let saved = serde_json::to_string(cfg).ok().and_then(|json| storage()?.set_item(&config_key(profile), &json).ok());
    if saved.is_none() {
        console_log!("agent: the settings could not be saved; they last until the page closes");
    }
}

fn load_config(profile: &str) -> Option<AgentConfig> {
    let text = storage()?.get_item(&config_key(profile)).ok().flatten()?;
    match serde_json::from_str(&text) {
        Ok(cfg) => Some(cfg),
        Err(e) => {
            console_log!("agent: the saved settings are unreadable ({e}); the agent stays off");
            None
        }
    }
}

/// The WAT compiler's worker script, next to the page (trunk's loader for
/// the `wat_worker` binary, `web-ui/src/bin/wat_worker.rs`).
const WAT_WORKER: &str = "./wat_worker_loader.js";
/// How long a compile may take, loading the worker included.
const COMPILE_TIMEOUT_MS: u32 = 30_000;

/// Compiles WAT in a fresh `wat_worker` (fetched on the first draft only,
/// then from the HTTP cache), which is ended afterwards.
async fn compile_in_worker(wat: &str) -> Result<Vec<u8>, String> {
    use std::rc::Rc;
    use wasm_bindgen::closure::Closure;
    if wat.len() > draft::MAX_WAT_BYTES {
        return Err(format!("the WAT is {} bytes, more than {}", wat.len(), draft::MAX_WAT_BYTES));
    }
    let worker = Rc::new(
        web_sys::Worker::new(WAT_WORKER).map_err(|e| format!("the WAT compiler could not start: {}", js_err(&e)))?,
    );
    let text = JsValue::from_str(wat);
    // The handlers live in this frame until the promise settles.
    let mut handlers: Vec<Closure<dyn FnMut(web_sys::MessageEvent)>> = vec![];
    let mut on_error: Option<Closure<dyn FnMut(web_sys::Event)>> = None;
    let mut timer = None;
    let answer = js_sys::Promise::new(&mut |resolve: js_sys::Function, reject: js_sys::Function| {
        let w = worker.clone();
        let text = text.clone();
        let resolve2 = resolve.clone();
        let reject2 = reject.clone();
        handlers.push(Closure::new(move |ev: web_sys::MessageEvent| {
            let data = ev.data();
            if data.as_string().as_deref() == Some("ready") {
                if let Err(e) = w.post_message(&text) {
                    let _ = reject2.call1(&JsValue::NULL, &JsValue::from_str(&js_err(&e)));
                }
            } else {
                let _ = resolve2.call1(&JsValue::NULL, &data);
            }
        }));
        let reject3 = reject.clone();
        on_error = Some(Closure::new(move |_: web_sys::Event| {
            let _ = reject3.call1(&JsValue::NULL, &JsValue::from_str("the WAT compiler failed to load"));
        }));
        if let (Some(h), Some(e)) = (handlers.last(), on_error.as_ref()) {
            worker.set_onmessage(Some(h.as_ref().unchecked_ref()));
            worker.set_onerror(Some(e.as_ref().unchecked_ref()));
        }
        timer = Some(gloo_timers::callback::Timeout::new(COMPILE_TIMEOUT_MS, move || {
            let _ = reject.call1(&JsValue::NULL, &JsValue::from_str("the WAT compiler did not answer in 30 s"));
        }));
        let _ = resolve;
    });
    let result = wasm_bindgen_futures::JsFuture::from(answer).await;
    worker.terminate();
    drop((handlers, on_error, timer));
    let data = result.map_err(|e| e.as_string().unwrap_or_else(|| js_err(&e)))?;
    let get = |k: &str| js_sys::Reflect::get(&data, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED);
    if let Some(e) = get("error").as_string() {
        return Err(draft::compile_error(&e));
    }
    let ok = get("ok");
    if !ok.is_instance_of::<js_sys::Uint8Array>() {
        return Err("the WAT compiler gave no module".into());
    }
    Ok(js_sys::Uint8Array::from(ok).to_vec())
}
