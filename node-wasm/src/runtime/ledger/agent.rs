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
        self.inner.agent.agent.borrow_mut().configure(cfg)?;
        self.agent_changed();
        Ok(())
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

    /// Runs a cycle now (the user asked); resolves when it ends. `false`
    /// when one was already running.
    pub async fn agent_run_now(&self) -> bool {
        let me = self.inner.node.id();
        let cycle = {
            let replica = self.inner.replica.borrow();
            self.inner.agent.agent.borrow_mut().force_cycle(replica.state(), &me, wall_ms())
        };
        match cycle {
            Some(c) => {
                self.run_agent_cycle(c).await;
                true
            }
            None => false,
        }
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
        let bytes = draft::compile(&wat, policy)?;
        let dry_run = self.with_state(|st| st.dry_run(&bytes, policy, wall_ms()));
        let proposal = draft::prepare(description, policy, &bytes);
        Ok(Draft { wat, size: bytes.len(), bytes, dry_run, proposal })
    }
}

/// POSTs `body` (JSON) to `url` and returns the answer's text: a refusal
/// for a non-2xx status, an answer over [`MAX_ANSWER_BYTES`], or no answer
/// within [`TIMEOUT_MS`].
async fn post_json(url: &str, api_key: Option<&str>, body: &str) -> Result<String, String> {
    let window = web_sys::window().ok_or("no window")?;
    let abort = web_sys::AbortController::new().map_err(|e| js_err(&e))?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    init.set_signal(Some(&abort.signal()));
    let headers = web_sys::Headers::new().map_err(|e| js_err(&e))?;
    headers.set("Content-Type", "application/json").map_err(|e| js_err(&e))?;
    if let Some(k) = api_key {
        headers.set("Authorization", &format!("Bearer {k}")).map_err(|e| js_err(&e))?;
    }
    init.set_headers(&headers);
    let req = web_sys::Request::new_with_str_and_init(url, &init).map_err(|e| js_err(&e))?;
    let timer = gloo_timers::callback::Timeout::new(TIMEOUT_MS, move || abort.abort());
    let resp = wasm_bindgen_futures::JsFuture::from(window.fetch_with_request(&req))
        .await
        .map_err(|e| format!("the endpoint did not answer: {}", js_err(&e)))?;
    let resp: web_sys::Response = resp.dyn_into().map_err(|_| "not a response".to_string())?;
    if let Ok(Some(len)) = resp.headers().get("content-length")
        && len.parse::<usize>().is_ok_and(|n| n > MAX_ANSWER_BYTES)
    {
        return Err(format!("the answer is {len} bytes, more than {MAX_ANSWER_BYTES}"));
    }
    let text = wasm_bindgen_futures::JsFuture::from(resp.text().map_err(|e| js_err(&e))?)
        .await
        .map_err(|e| format!("the answer could not be read: {}", js_err(&e)))?;
    drop(timer);
    if !resp.ok() {
        return Err(format!("the endpoint answered HTTP {}", resp.status()));
    }
    text.as_string().ok_or_else(|| "the answer is not text".to_string())
}
