//! `window.synapse`, the SP economy (read models: SP moves through other
//! domains' ops).

use super::{SynapseNode, to_js};
use crate::service::economy;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
impl SynapseNode {
    /// Every account, richest first, with its reputation decayed to now:
    /// `[{id, balance, reputation, tags: [[tag, milli]]}]`.
    #[wasm_bindgen(unchecked_return_type = "AccountRow[]")]
    pub fn accounts(&self) -> JsValue {
        let now = js_sys::Date::now() as u64;
        to_js(&self.ledger.with_state(|st| economy::accounts(st, now)))
    }

    /// Network-wide SP totals: `{minted, escrow, tools_spent, tax_bps, conserved}`.
    #[wasm_bindgen(unchecked_return_type = "EconomyTotals")]
    pub fn economy(&self) -> JsValue {
        to_js(&self.ledger.with_state(economy::totals))
    }
}
