//! Drafting a policy module from a description: the chat request asks for
//! WebAssembly text (WAT) exporting the policy's one function, the page
//! compiles it to wasm (compiling Rust in a page is out of reach), dry-runs
//! it against the live state and prepares the `code_upgrade` proposal. The
//! user reads all of it and decides; the agent never publishes a module
//! nor proposes it by itself.

use crate::core::upgrade::{ModuleHash, Policy, PolicyModule, engine, module_hash};
use serde::Serialize;
use serde_json::{Value, json};

/// The longest description sent, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// The largest WAT text compiled, in bytes.
pub const MAX_WAT_BYTES: usize = 64 * 1024;
/// The tag on every proposal the agent prepares.
pub const DRAFT_TAG: &str = "agent_draft";

/// The export a policy module must have, as the model is told.
pub fn abi(policy: Policy) -> &'static str {
    match policy {
        Policy::VoteWeight => {
            "(func (export \"vote_weight\") (param $total_milli i64) (param $spec_milli i64) (param $tagged i32) (result i64)): \
             the voter's reputation total and its score on the proposal's tags in milli-points, 1 if the proposal has tags; \
             returns the vote weight in milli-units, 0 to 1000000000"
        }
        Policy::AuctionScore => {
            "(func (export \"auction_score\") (param $cost i64) (param $rep i64) (param $time i64) (result i64)): \
             a bid's cost, reputation and time terms, each 0 to 1000000 (higher is better); returns the score, 0 to 1000000000000, highest wins"
        }
        Policy::Tax => {
            "(func (export \"tax\") (param $reward i64) (param $tax_bps i64) (result i64)): \
             a task's reward in SP and the configured tax in basis points; returns the tax in SP, 0 to reward"
        }
    }
}

/// The chat request for a module doing what `description` says.
pub fn request(description: &str, policy: Policy, model: &str) -> Result<Value, String> {
    let d = description.trim();
    if d.is_empty() {
        return Err("describe what the module should do".into());
    }
    if d.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(format!("the description is longer than {MAX_DESCRIPTION_CHARS} characters"));
    }
    let system = format!(
        "You write WebAssembly text (WAT) policy modules. A module has no imports, no memory, no floats, \
         and exports exactly this function: {}. Answer with the module only, in one ```wat block.",
        abi(policy)
    );
    Ok(json!({
        "model": model,
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": d},
        ],
    }))
}

/// The WAT in a message: the first fenced block, or the text from
/// `(module` on.
pub fn wat_in(text: &str) -> Result<String, String> {
    let t = text.trim();
    let found = if t.contains("```") {
        super::first_fenced_block(t).map(str::to_string)
    } else {
        t.find("(module").map(|i| t[i..].to_string())
    };
    let wat = found.filter(|w| !w.is_empty()).ok_or("the answer holds no WAT module")?;
    if wat.len() > MAX_WAT_BYTES {
        return Err(format!("the WAT is {} bytes, more than {MAX_WAT_BYTES}", wat.len()));
    }
    Ok(wat)
}

/// Loads compiled `bytes` as `policy` the way every node would (size,
/// validity, no imports, the export's signature), so a draft that could
/// never be activated is refused here.
pub fn check(bytes: &[u8], policy: Policy) -> Result<(), String> {
    PolicyModule::load(&engine(), bytes, &module_hash(bytes), policy)
        .map(|_| ())
        .map_err(|e| format!("the module would not load ({}): {e}", e.code()))
}

/// Compiles WAT to wasm bytes, then [`check`]s them. Native only: the page
/// compiles in its `wat_worker` (loaded on the first draft, so the WAT
/// compiler is not part of every page load) and then runs [`check`].
#[cfg(not(target_arch = "wasm32"))]
pub fn compile(wat: &str, policy: Policy) -> Result<Vec<u8>, String> {
    if wat.len() > MAX_WAT_BYTES {
        return Err(format!("the WAT is {} bytes, more than {MAX_WAT_BYTES}", wat.len()));
    }
    let bytes = wat::parse_str(wat).map_err(|e| compile_error(&e.to_string()))?;
    check(&bytes, policy)?;
    Ok(bytes)
}

/// The sentence for a WAT compiler's error (its first line).
pub fn compile_error(e: &str) -> String {
    format!("the WAT does not compile: {}", first_line(e))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(300).collect()
}

/// The proposal a draft prepares (the argument of `proposeUpgrade`, after
/// the module is published).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PreparedProposal {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub module: String,
    pub policy: String,
}

/// The proposal for `bytes` as `policy`, described by `description`.
pub fn prepare(description: &str, policy: Policy, bytes: &[u8]) -> PreparedProposal {
    let module = ModuleHash(module_hash(bytes));
    let short: String = description.trim().chars().take(80).collect();
    PreparedProposal {
        title: format!("Use module {}… for {} ({short})", module.short(), policy.name()),
        description: format!("Drafted by an agent from: {}", description.trim()),
        tags: vec![DRAFT_TAG.to_string(), policy.name().to_string()],
        module: module.to_text(),
        policy: policy.name().to_string(),
    }
}
