//! `window.synapse`, identity backup: exporting and importing the identity file.

use super::{SynapseNode, from_js, reject, resolve_str};
use crate::runtime::store;
use wasm_bindgen::prelude::*;

/// `importIdentity`'s options.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ImportOptions {
    #[serde(default)]
    replace: bool,
}

#[wasm_bindgen]
impl SynapseNode {
    /// The identity file of the identity this tab runs as: versioned JSON
    /// with the **secret keys** and the node's own chain head. Save it as a
    /// file (see README); anyone holding it can act as this node.
    #[wasm_bindgen(js_name = exportIdentity, unchecked_return_type = "Promise<string>")]
    pub fn export_identity(&self) -> js_sys::Promise {
        resolve_str(&self.ledger.identity_file(&self.profile))
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
