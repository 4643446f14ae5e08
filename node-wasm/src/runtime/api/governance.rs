//! `window.synapse`, governance: proposals, votes, closing, ratifying.

use super::{SynapseNode, from_js, reject, to_js};
use crate::service::governance::{self, ProposalSpec, Step};
use crate::service::parse_id;
use wasm_bindgen::prelude::*;

impl SynapseNode {
    /// Step `step` on the proposal whose id is `proposal`.
    fn proposal_step(&self, proposal: &str, step: Step) -> js_sys::Promise {
        let node = self.ledger.node().clone();
        self.submit(|st| governance::step(st, node.identity(), parse_id("proposal", proposal)?, step))
    }
}

#[wasm_bindgen]
impl SynapseNode {
    /// Creates a proposal in `channel` from `{kind: "generic"|"config_change"|
    /// "command"|"network_operation"|"code_upgrade", title, description?,
    /// tags?, command?: {operation: "config_change", key, value: {type:
    /// "int", value: 5}} | {operation: "split_channel", ...} | ...}`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Hex64>")]
    pub fn propose(
        &self,
        channel: String,
        #[wasm_bindgen(unchecked_param_type = "ProposalSpec")] spec: JsValue,
    ) -> js_sys::Promise {
        match from_js::<ProposalSpec>(spec) {
            Ok(spec) => self.submit(|_| governance::propose(&channel, spec)),
            Err(e) => reject(&format!("bad proposal: {e}")),
        }
    }

    /// Votes (or re-votes) on a proposal: `yes` true or false.
    #[wasm_bindgen(unchecked_return_type = "Promise<Hex64>")]
    pub fn vote(&self, proposal: String, yes: bool) -> js_sys::Promise {
        self.proposal_step(&proposal, Step::Vote(yes))
    }

    /// Votes without naming this identity (rule `anonymous_vote`): the
    /// promise resolves with the carrier op's id once it is sent into the
    /// stem phase, or rejects with why it cannot be made.
    #[wasm_bindgen(js_name = voteAnonymously, unchecked_return_type = "Promise<Hex64>")]
    pub fn vote_anonymously(&self, proposal: String, yes: bool) -> js_sys::Promise {
        let r = parse_id("proposal", &proposal).and_then(|p| self.ledger.vote_anonymously(p, yes));
        match r {
            Ok(id) => js_sys::Promise::resolve(&JsValue::from_str(&id.to_text())),
            Err(e) => reject(&e),
        }
    }

    /// Closes a proposal (after its minimum voting period); an approved
    /// `config_change`/`command` executes now, a `network_operation` waits
    /// for ratification.
    #[wasm_bindgen(js_name = closeProposal, unchecked_return_type = "Promise<Hex64>")]
    pub fn close_proposal(&self, proposal: String) -> js_sys::Promise {
        self.proposal_step(&proposal, Step::Close)
    }

    /// A validator's ratification of an approved network operation.
    #[wasm_bindgen(unchecked_return_type = "Promise<Hex64>")]
    pub fn ratify(&self, proposal: String) -> js_sys::Promise {
        self.proposal_step(&proposal, Step::Ratify)
    }

    /// Deadline op: closes a proposal whose voting deadline has passed (the
    /// deadline keeper publishes it by itself; this is for tests and tools).
    #[wasm_bindgen(js_name = expireProposal, unchecked_return_type = "Promise<Hex64>")]
    pub fn expire_proposal(&self, proposal: String) -> js_sys::Promise {
        self.proposal_step(&proposal, Step::Expire)
    }

    /// Every proposal with its tally (the final one once closed, else the
    /// live one now): `[{proposal, tally}]`, open ones first, then newest.
    #[wasm_bindgen(unchecked_return_type = "ProposalRow[]")]
    pub fn proposals(&self) -> JsValue {
        let now = js_sys::Date::now() as u64;
        to_js(&self.ledger.with_state(|st| governance::proposals(st, now)))
    }
}
