//! Using a common tool from this browser: the service decides (the local
//! three-layer check, the secret, the request body); this module does the
//! one piece of I/O, the webhook `fetch`. Shared by `synapse.useTool` and
//! the Tools view, so both call a tool the same way.

use crate::core::op::OpId;
use crate::runtime::ledger::Ledger;
use crate::runtime::util::js_err;
use crate::service::tools::{self, ToolUse};
use wasm_bindgen::{JsCast, JsValue};

/// What using a tool gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Used {
    /// An `api_key` tool's key.
    Key(String),
    /// A `webhook` tool answered with this HTTP status.
    Status(u16),
}

/// Uses tool `tool_id` for task `task` as this node: opens the secret
/// (refusing unless this node is the assignee of the in-progress task that
/// lists the active tool), then hands over the key or calls the webhook.
pub async fn use_tool(ledger: &Ledger, tool_id: &str, task: OpId) -> Result<Used, String> {
    let me = ledger.node().identity();
    match ledger.with_state(|st| tools::open(st, me, tool_id, task))? {
        ToolUse::Key(k) => Ok(Used::Key(k)),
        ToolUse::Webhook { url, secret, body } => call_webhook(&url, &secret, &body).await.map(Used::Status),
    }
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
