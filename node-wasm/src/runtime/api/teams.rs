//! `window.synapse`, team tasks and skill profiles.

use super::{SynapseNode, from_js, reject, to_js};
use crate::identity::NodeId;
use crate::service::teams::{self, TeamTaskSpec};
use crate::service::{Intent, parse_id};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
impl SynapseNode {
    /// Replaces this node's skill profile (matched against team sub-tasks'
    /// required skills; stored lowercased).
    #[wasm_bindgen(js_name = setSkills, unchecked_return_type = "Promise<Hex64>")]
    pub fn set_skills(&self, skills: Vec<String>) -> js_sys::Promise {
        self.submit(|_| Ok::<Intent, String>(teams::set_skills(skills)))
    }

    /// Creates a team task in `channel`; the sub-task rewards plus the
    /// coordinator bonus are escrowed from this node at once. Resolves with
    /// the team task id.
    #[wasm_bindgen(js_name = createTeamTask, unchecked_return_type = "Promise<Hex64>")]
    pub fn create_team_task(
        &self,
        channel: String,
        #[wasm_bindgen(unchecked_param_type = "TeamTaskSpec")] spec: JsValue,
    ) -> js_sys::Promise {
        match from_js::<TeamTaskSpec>(spec) {
            Ok(spec) => self.submit(|_| teams::create(&channel, spec)),
            Err(e) => reject(&format!("bad team task: {e}")),
        }
    }

    /// Becomes the coordinator of an open team task (it starts forming).
    #[wasm_bindgen(js_name = claimTeam, unchecked_return_type = "Promise<Hex64>")]
    pub fn claim_team(&self, task: String) -> js_sys::Promise {
        self.submit(|st| teams::claim(st, parse_id("team task", &task)?))
    }

    /// Applies to join a forming team (needs a skill profile, see `setSkills`).
    #[wasm_bindgen(js_name = applyTeam, unchecked_return_type = "Promise<Hex64>")]
    pub fn apply_team(&self, task: String) -> js_sys::Promise {
        self.submit(|st| teams::apply(st, parse_id("team task", &task)?))
    }

    /// The coordinator accepts applicant `applicant` (a node id); once every
    /// sub-task can be assigned the team starts and gets its workspace channel.
    #[wasm_bindgen(js_name = acceptMember, unchecked_return_type = "Promise<Hex64>")]
    pub fn accept_member(&self, task: String, applicant: String) -> js_sys::Promise {
        let applicant = match NodeId::parse(&applicant) {
            Ok(a) => a,
            Err(e) => return reject(&format!("applicant: {e}")),
        };
        self.submit(|st| teams::accept(st, parse_id("team task", &task)?, applicant))
    }

    /// For a team still forming: the first sub-task that no accepted member
    /// qualifies for, as `{index, title, required_skills, sentence}`; null
    /// once the team started (or for an unknown id).
    #[wasm_bindgen(js_name = teamWaitingFor, unchecked_return_type = "TeamWaitingFor | null")]
    pub fn team_waiting_for(&self, task: String) -> JsValue {
        let Ok(id) = parse_id("team task", &task) else { return JsValue::NULL };
        match self.ledger.with_state(|st| teams::waiting_for(st, id)) {
            Some(w) => to_js(&w),
            None => JsValue::NULL,
        }
    }

    /// The assignee reports sub-task `index` (0-based) done; the last one
    /// pays everyone out of the escrow.
    #[wasm_bindgen(js_name = completeSubTask, unchecked_return_type = "Promise<Hex64>")]
    pub fn complete_subtask(&self, task: String, index: u32) -> js_sys::Promise {
        self.submit(|st| teams::complete_subtask(st, parse_id("team task", &task)?, index))
    }
}
