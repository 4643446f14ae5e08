//! `window.synapse`, tasks and auctions.

use super::{SynapseNode, from_js, reject, to_js};
use crate::service::parse_id;
use crate::service::tasks::{self, Step, TaskSpec};
use wasm_bindgen::prelude::*;

impl SynapseNode {
    /// Step `step` on the task whose id is `task` (text from JavaScript).
    fn task_step(&self, task: &str, step: Step) -> js_sys::Promise {
        self.submit(|st| tasks::step(st, parse_id("task", task)?, step))
    }
}

#[wasm_bindgen]
impl SynapseNode {
    /// Creates a task in `channel` from `{title, reward?, description?,
    /// tags?, required_tools?, funding?: "creator"|"treasury", auction?:
    /// {max_reward, deadline_ms}}`; the reward is escrowed at once. Resolves
    /// with the task id.
    #[wasm_bindgen(js_name = createTask, unchecked_return_type = "Promise<Hex64>")]
    pub fn create_task(
        &self,
        channel: String,
        #[wasm_bindgen(unchecked_param_type = "TaskSpec")] spec: JsValue,
    ) -> js_sys::Promise {
        match from_js::<TaskSpec>(spec) {
            Ok(spec) => self.submit(|_| tasks::create(&channel, spec)),
            Err(e) => reject(&format!("bad task: {e}")),
        }
    }

    /// Claims an open task (this node becomes its assignee).
    #[wasm_bindgen(js_name = claimTask, unchecked_return_type = "Promise<Hex64>")]
    pub fn claim_task(&self, task: String) -> js_sys::Promise {
        self.task_step(&task, Step::Claim)
    }

    /// The assignee starts work on a claimed task.
    #[wasm_bindgen(js_name = startTask, unchecked_return_type = "Promise<Hex64>")]
    pub fn start_task(&self, task: String) -> js_sys::Promise {
        self.task_step(&task, Step::Start)
    }

    /// The assignee completes a task: reward minus tax to the assignee, tax
    /// to the channel treasury.
    #[wasm_bindgen(js_name = completeTask, unchecked_return_type = "Promise<Hex64>")]
    pub fn complete_task(&self, task: String) -> js_sys::Promise {
        self.task_step(&task, Step::Complete)
    }

    /// The owner deletes an unfinished task (or team task); its escrow is refunded.
    #[wasm_bindgen(js_name = deleteTask, unchecked_return_type = "Promise<Hex64>")]
    pub fn delete_task(&self, task: String) -> js_sys::Promise {
        self.task_step(&task, Step::Delete)
    }

    /// Bids (or re-bids) on an auction task.
    #[wasm_bindgen(unchecked_return_type = "Promise<Hex64>")]
    pub fn bid(&self, task: String, amount: f64, estimated_days: u32) -> js_sys::Promise {
        self.submit(|st| tasks::bid(st, parse_id("task", &task)?, tasks::whole_sp(amount)?, estimated_days))
    }

    /// Closes an auction (after its deadline, or early by its owner).
    #[wasm_bindgen(js_name = closeAuction, unchecked_return_type = "Promise<Hex64>")]
    pub fn close_auction(&self, task: String) -> js_sys::Promise {
        self.task_step(&task, Step::CloseAuction)
    }

    /// Every task not deleted, newest first (the same objects as in
    /// `state().state.tasks`).
    #[wasm_bindgen(unchecked_return_type = "Task[]")]
    pub fn tasks(&self) -> JsValue {
        to_js(&self.ledger.with_state(tasks::live))
    }
}
