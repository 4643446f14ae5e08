//! `window.synapse`, self-upgrade: example modules, publishing and
//! dry-running modules, code-upgrade proposals (docs/UPGRADES.md).

use super::{SynapseNode, from_js, reject, to_js};
use crate::runtime::modules::{self, parse_policy};
use crate::service::upgrades::{self, UpgradeSpec};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
impl SynapseNode {
    /// The example modules shipped with the node: `[{name, policy, sha256, size}]`.
    #[wasm_bindgen(js_name = exampleModules, unchecked_return_type = "ExampleModule[]")]
    pub fn example_modules(&self) -> JsValue {
        to_js(&upgrades::examples())
    }

    /// The bytes of an example module (`quadratic_vote`, `flat_tax`,
    /// `cheapest_bid`), or `undefined`.
    #[wasm_bindgen(js_name = exampleModule)]
    pub fn example_module(&self, name: String) -> Option<Vec<u8>> {
        crate::core::upgrade::examples::get(&name).map(|(_, b)| b.to_vec())
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
                        Ok(to_js(&p.report))
                    })
                }
                None => js_sys::Promise::resolve(&to_js(&p.report)),
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
        match from_js::<UpgradeSpec>(spec) {
            Ok(spec) => self.submit(|_| upgrades::propose(&channel, spec)),
            Err(e) => reject(&format!("bad upgrade proposal: {e}")),
        }
    }
}
