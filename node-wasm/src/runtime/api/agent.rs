//! `window.synapse`, the optional agent: configuring it, its suggestions,
//! approving or dismissing them, and drafting policy modules.

use super::{SynapseNode, from_js, reject, settle, to_js};
use crate::agent::AgentConfig;
use crate::runtime::modules::parse_policy;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
impl SynapseNode {
    /// Configures the agent: `{enabled?, endpoint?, model?, api_key?,
    /// allowed?: Kind[], auto?: Kind[], reserve_sp?, max_bid_percent?,
    /// cycle_seconds?}` (fields left out take their defaults; the agent is
    /// off by default). Throws on a setting looser than the guardrails.
    #[wasm_bindgen(js_name = agentConfigure)]
    pub fn agent_configure(
        &self,
        #[wasm_bindgen(unchecked_param_type = "AgentConfig")] cfg: JsValue,
    ) -> Result<(), JsError> {
        let cfg = from_js::<AgentConfig>(cfg).map_err(|e| JsError::new(&format!("bad agent configuration: {e}")))?;
        self.ledger.agent_configure(cfg).map_err(|e| JsError::new(&e))
    }

    /// The agent's configuration (never its key), where its last
    /// suggestions came from, why the model was not used, and every
    /// suggestion with its reason and status, newest first.
    #[wasm_bindgen(unchecked_return_type = "AgentStatus")]
    pub fn agent(&self) -> JsValue {
        to_js(&self.ledger.agent_status())
    }

    /// Runs a cycle now; resolves with the status once it ends. Rejects
    /// while the agent is off or a cycle runs.
    #[wasm_bindgen(js_name = agentRun, unchecked_return_type = "Promise<AgentStatus>")]
    pub fn agent_run(&self) -> js_sys::Promise {
        let ledger = self.ledger.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            ledger.agent_run_now().await.map_err(|e| JsValue::from(js_sys::Error::new(&e)))?;
            Ok(to_js(&ledger.agent_status()))
        })
    }

    /// Approves pending suggestion `id`: checked against the guardrails
    /// again, then signed. Resolves with the op id.
    #[wasm_bindgen(js_name = agentApprove, unchecked_return_type = "Promise<Hex64>")]
    pub fn agent_approve(&self, id: u32) -> js_sys::Promise {
        settle(&self.ledger, self.ledger.agent_approve(u64::from(id)))
    }

    /// Dismisses pending suggestion `id`.
    #[wasm_bindgen(js_name = agentDismiss)]
    pub fn agent_dismiss(&self, id: u32) -> Result<(), JsError> {
        self.ledger.agent_dismiss(u64::from(id)).map_err(|e| JsError::new(&e))
    }

    /// Asks the agent's endpoint for a `policy` module doing what
    /// `description` says; resolves with `{wat, size, bytes, dry_run,
    /// proposal}`. Nothing is published: pass `bytes` to `publishModule`
    /// and `proposal` to `proposeUpgrade` to go on.
    #[wasm_bindgen(js_name = agentDraftModule, unchecked_return_type = "Promise<AgentDraft>")]
    pub fn agent_draft_module(
        &self,
        description: String,
        #[wasm_bindgen(unchecked_param_type = "Policy")] policy: String,
    ) -> js_sys::Promise {
        let policy = match parse_policy(&policy) {
            Ok(p) => p,
            Err(e) => return reject(&e),
        };
        let ledger = self.ledger.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let d =
                ledger.agent_draft(&description, policy).await.map_err(|e| JsValue::from(js_sys::Error::new(&e)))?;
            let out = to_js(&d);
            js_sys::Reflect::set(&out, &JsValue::from_str("bytes"), &js_sys::Uint8Array::from(d.bytes.as_slice()))?;
            Ok(out)
        })
    }
}
