//! `window.synapse`, the op log: the replicated state, raw ops, and the
//! schemas values are checked against.

use super::{SynapseNode, from_js, reject, settle, to_js};
use crate::core::op::{OpBody, OpId};
use wasm_bindgen::prelude::*;

/// The schemas installed by governance, as `core::schema` takes them.
fn installed_schemas(st: &crate::core::state::State) -> Vec<crate::core::schema::Installed<'_>> {
    st.gov.schemas.iter().map(|(n, c)| (n.as_str(), c.version, c.definition.as_str())).collect()
}

#[wasm_bindgen]
impl SynapseNode {
    /// The replicated state: `{state_hash, clock, state: {params, accounts,
    /// channels, tasks, teams, skills, gov, tools, upgrades, minted, escrow,
    /// applied, rejected}, equivocators, rejected, counts}`.
    #[wasm_bindgen(unchecked_return_type = "Snapshot")]
    pub fn state(&self) -> JsValue {
        to_js(&self.ledger.snapshot())
    }

    /// Hex SHA-256 of the canonical state; equal on nodes holding the same ops.
    #[wasm_bindgen(js_name = stateHash)]
    pub fn state_hash(&self) -> String {
        self.ledger.state_hash()
    }

    /// Tests only (`?debug_unchecked=1` pages): signs a second, different op
    /// at this node's head seq, as an equivocating client would; returns
    /// its id. Refused on any other page.
    #[wasm_bindgen(js_name = debugEquivocate)]
    pub fn debug_equivocate(&self) -> Result<String, JsError> {
        self.ledger.equivocate_for_tests().map(|id| id.to_text()).map_err(|e| JsError::new(&e))
    }

    /// Signs and publishes any op: `body` is an op body as JSON, e.g.
    /// `{type: "task_claim", task: ID}` (see docs/PROTOCOL.md, Operations).
    /// Resolves with the op id; rejects with the rule it would break.
    #[wasm_bindgen(unchecked_return_type = "Promise<Hex64>")]
    pub fn act(
        &self,
        channel: String,
        #[wasm_bindgen(unchecked_param_type = "OpBody")] body: JsValue,
    ) -> js_sys::Promise {
        match from_js::<OpBody>(body) {
            Ok(b) => settle(&self.ledger, self.ledger.act(&channel, b)),
            Err(e) => reject(&format!("not an op body: {e}")),
        }
    }

    /// When op `id` was first stored on this node (ms since navigation
    /// start), or null.
    #[wasm_bindgen(js_name = opSeenAt)]
    pub fn op_seen_at(&self, id: String) -> Option<f64> {
        OpId::parse(&id).and_then(|id| self.ledger.seen_at(&id))
    }

    /// Whether op `id` is stored on this node (whatever its outcome).
    #[wasm_bindgen(js_name = hasOp)]
    pub fn has_op(&self, id: String) -> bool {
        OpId::parse(&id).is_some_and(|id| self.ledger.has_op(&id))
    }

    /// Every schema a value can be checked against: the built-in `task_v1`,
    /// `task_v2`, `proposal_v1`, and those installed by governance
    /// (`update_schema`, newest version in force):
    /// `[{name, version, source, fields: [{name, type, required, default, min, max, values}], error}]`.
    #[wasm_bindgen(unchecked_return_type = "SchemaInfo[]")]
    pub fn schemas(&self) -> JsValue {
        to_js(&self.ledger.with_state(|st| crate::core::schema::catalogue(&installed_schemas(st))))
    }

    /// Dry-validates `value` against schema `name` without signing
    /// anything: `{ok, errors: [{field, message}], value}` where `value` has
    /// the defaults filled in (null when not ok). Throws for an unknown
    /// schema or one whose definition cannot be used.
    #[wasm_bindgen(unchecked_return_type = "SchemaCheck")]
    pub fn validate(&self, name: String, value: JsValue) -> Result<JsValue, JsError> {
        let value: serde_json::Value = from_js(value).map_err(|e| JsError::new(&format!("bad value: {e}")))?;
        let schema = self
            .ledger
            .with_state(|st| crate::core::schema::lookup(&name, &installed_schemas(st)))
            .map_err(|e| JsError::new(&e))?;
        let (ok, errors, value) = match crate::core::schema::validate(&schema, &value) {
            Ok(v) => (true, vec![], v),
            Err(errs) => (false, errs, serde_json::Value::Null),
        };
        let errors: Vec<serde_json::Value> =
            errors.iter().map(|e| serde_json::json!({"field": e.field, "message": e.message})).collect();
        Ok(to_js(&serde_json::json!({"ok": ok, "errors": errors, "value": value})))
    }
}
