//! `window.synapse` methods for self-upgrade (README, "JS API" → upgrades).
//! A child module of `api` so it can reach the node's ledger.

use super::{SynapseNode, reject, to_js};
use crate::core::op::{Command, NewProposal, OpBody, ProposalKind};
use crate::core::upgrade::{ModuleHash, examples};
use crate::runtime::modules::{self, parse_policy};
use wasm_bindgen::prelude::*;

/// `proposeUpgrade`'s argument.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UpgradeSpec {
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    /// Hex SHA-256 of the module, or 64 zeros for the built-in policy.
    module: String,
    policy: String,
}

#[derive(serde::Serialize)]
struct Example {
    name: &'static str,
    policy: &'static str,
    sha256: String,
    size: usize,
}

#[wasm_bindgen]
impl SynapseNode {
    /// The example modules shipped with the node: `[{name, policy, sha256, size}]`.
    #[wasm_bindgen(js_name = exampleModules, unchecked_return_type = "ExampleModule[]")]
    pub fn example_modules(&self) -> JsValue {
        let all: Vec<Example> = examples::ALL
            .iter()
            .map(|(name, p, b)| Example {
                name,
                policy: p.name(),
                sha256: hex::encode(crate::core::upgrade::module_hash(b)),
                size: b.len(),
            })
            .collect();
        to_js(&all)
    }

    /// The bytes of an example module (`quadratic_vote`, `flat_tax`,
    /// `cheapest_bid`), or `undefined`.
    #[wasm_bindgen(js_name = exampleModule)]
    pub fn example_module(&self, name: String) -> Option<Vec<u8>> {
        examples::get(&name).map(|(_, b)| b.to_vec())
    }

    /// Publishes module bytes as `module_piece` ops; resolves to
    /// `{module, size, pieces, pieces_sent}` (nothing is sent if the network
    /// already has it).
    #[wasm_bindgen(js_name = publishModule, unchecked_return_type = "Promise<PublishedModule>")]
    pub fn publish_module(&self, bytes: Vec<u8>) -> js_sys::Promise {
        match modules::publish_module(&self.ledger, &bytes) {
            // Resolves once every piece is committed and published.
            Ok(p) => match p.last {
                Some(id) => {
                    let ack = self.ledger.acknowledged(id);
                    wasm_bindgen_futures::future_to_promise(async move {
                        wasm_bindgen_futures::JsFuture::from(ack).await?;
                        Ok(to_js(&p))
                    })
                }
                None => js_sys::Promise::resolve(&to_js(&p)),
            },
            Err(e) => reject(&e),
        }
    }

    /// Loads `bytes` as `policy` and runs it against the current state
    /// without activating it: `{module, policy, size, current, error,
    /// faults, changes: [{subject, title, status, before, after}], samples}`.
    /// Throws on an unknown policy name.
    #[wasm_bindgen(js_name = dryRunModule, unchecked_return_type = "DryRun")]
    pub fn dry_run_module(
        &self,
        bytes: Vec<u8>,
        #[wasm_bindgen(unchecked_param_type = "Policy")] policy: String,
    ) -> Result<JsValue, JsError> {
        let policy = parse_policy(&policy).map_err(|e| JsError::new(&e))?;
        Ok(to_js(&modules::dry_run(&self.ledger, &bytes, policy)))
    }

    /// Proposes a `code_upgrade` in `channel`: `{title, description?, tags?,
    /// module: hex SHA-256 (64 zeros = back to built-in), policy}`.
    #[wasm_bindgen(js_name = proposeUpgrade, unchecked_return_type = "Promise<Hex64>")]
    pub fn propose_upgrade(
        &self,
        channel: String,
        #[wasm_bindgen(unchecked_param_type = "UpgradeSpec")] spec: JsValue,
    ) -> js_sys::Promise {
        let spec: UpgradeSpec = match super::from_js(spec) {
            Ok(s) => s,
            Err(e) => return reject(&format!("bad upgrade proposal: {e}")),
        };
        let policy = match parse_policy(&spec.policy) {
            Ok(p) => p,
            Err(e) => return reject(&e),
        };
        let Some(module) = ModuleHash::parse(&spec.module) else {
            return reject("module must be the module's SHA-256 as 64 hex characters");
        };
        let p = NewProposal {
            kind: ProposalKind::CodeUpgrade,
            title: spec.title,
            description: spec.description,
            tags: spec.tags,
            command: Some(Command::CodeUpgrade { module_sha256: module.0, policy }),
        };
        super::settle(&self.ledger, self.ledger.act(&channel, OpBody::ProposalCreate(p)))
    }
}
