//! `window.synapse`, common tools.

use super::{SynapseNode, from_js, reject, to_js};
use crate::runtime::webhook::{self, Used};
use crate::service::tools::{self, ToolSpec};
use crate::service::{Intent, parse_id};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
impl SynapseNode {
    /// Publishes this node's X25519 key so tool secrets can be sealed to it
    /// (done at start-up when missing).
    #[wasm_bindgen(js_name = publishKey, unchecked_return_type = "Promise<Hex64>")]
    pub fn publish_key(&self) -> js_sys::Promise {
        self.submit(|_| Ok::<Intent, String>(tools::publish_key(self.node.identity())))
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
        match from_js::<ToolSpec>(spec) {
            Ok(spec) => self.submit(|st| {
                Ok(tools::propose(st, &mut rand_core::OsRng, js_sys::Date::now() as u64, &channel, spec)?.intent)
            }),
            Err(e) => reject(&format!("bad tool: {e}")),
        }
    }

    /// Uses common tool `tool` for task `task`. Checked locally: the tool is
    /// active, this node is the assignee of the in-progress task, and the
    /// task lists the tool; only then is the secret decrypted, here. An
    /// `api_key` tool resolves with the key; a `webhook` tool POSTs
    /// `{tool, task, node}` to its URL with `Authorization: Bearer <secret>`
    /// and resolves with `{status}`.
    #[wasm_bindgen(js_name = useTool, unchecked_return_type = "Promise<string | { status: number }>")]
    pub fn use_tool(&self, tool: String, task: String) -> js_sys::Promise {
        let task = match parse_id("task", &task) {
            Ok(t) => t,
            Err(e) => return reject(&e),
        };
        let ledger = self.ledger.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            match webhook::use_tool(&ledger, &tool, task).await.map_err(|e| js_sys::Error::new(&e))? {
                Used::Key(k) => Ok(JsValue::from_str(&k)),
                Used::Status(status) => Ok(to_js(&serde_json::json!({ "status": status }))),
            }
        })
    }

    /// Deadline op: charges a common tool's monthly upkeep once due (also
    /// published by the deadline keeper).
    #[wasm_bindgen(js_name = toolUpkeep, unchecked_return_type = "Promise<Hex64>")]
    pub fn tool_upkeep(&self, tool_id: String) -> js_sys::Promise {
        self.submit(|st| tools::upkeep(st, &tool_id))
    }

    /// Every common tool, with the in-progress tasks of this node that may
    /// use it: `[{tool_id, channel, tool_type, status, monthly_cost_sp,
    /// paid_until_ms, description, my_tasks: [[task, title]]}]`.
    #[wasm_bindgen(unchecked_return_type = "ToolRow[]")]
    pub fn tools(&self) -> JsValue {
        let me = self.node.id();
        to_js(&self.ledger.with_state(|st| tools::list(st, &me)))
    }
}
