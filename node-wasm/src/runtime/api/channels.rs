//! `window.synapse`, channels.

use super::{SynapseNode, to_js};
use crate::service::channels;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
impl SynapseNode {
    /// Creates channel `name` (the creator becomes its steward).
    #[wasm_bindgen(js_name = createChannel, unchecked_return_type = "Promise<Hex64>")]
    pub fn create_channel(&self, name: String, description: Option<String>) -> js_sys::Promise {
        self.submit(|_| channels::create(&name, description.as_deref().unwrap_or_default()))
    }

    /// Joins channel `name`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Hex64>")]
    pub fn subscribe(&self, name: String) -> js_sys::Promise {
        self.submit(|_| channels::subscribe(&name))
    }

    /// Leaves channel `name`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Hex64>")]
    pub fn unsubscribe(&self, name: String) -> js_sys::Promise {
        self.submit(|_| channels::unsubscribe(&name))
    }

    /// Every channel: `[{name, description, steward, members, treasury,
    /// joined, dissolved}]` (`joined`: whether this node is a member).
    #[wasm_bindgen(unchecked_return_type = "ChannelRow[]")]
    pub fn channels(&self) -> JsValue {
        let me = self.node.id();
        to_js(&self.ledger.with_state(|st| channels::list(st, &me)))
    }
}
