//! Using a common tool from this browser: the service decides (the local
//! three-layer check, the secret, the request body); this module does the
//! one piece of I/O, the webhook `fetch`. Shared by `synapse.useTool` and
//! the Tools view, so both call a tool the same way.

use crate::core::op::OpId;
use crate::runtime::ledger::Ledger;
use crate::service::tools::{self, ToolUse};

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

/// How long a webhook may take to answer.
const WEBHOOK_TIMEOUT_MS: u32 = 30_000;

/// POSTs `body` to `url` with the credential as a bearer token; its HTTP
/// status. Aborted after [`WEBHOOK_TIMEOUT_MS`] (a webhook that never
/// answers would otherwise leave the call pending for good).
async fn call_webhook(url: &str, secret: &str, body: &str) -> Result<u16, String> {
    let posted = crate::runtime::util::post_json(url, Some(secret), body, WEBHOOK_TIMEOUT_MS)
        .await
        .map_err(|e| format!("webhook call failed: {e}"))?;
    Ok(posted.response.status())
}
