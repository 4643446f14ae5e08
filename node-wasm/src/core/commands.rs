//! Where an executed proposal reaches the other layers. Governance decides
//! *that* a command runs (at an approving close, or at the ratification
//! quorum) and records *what it did*; running it needs the layers the
//! command changes, which only `State` holds, so the dispatch is here. Each
//! command checks everything before it changes anything; `Err` is the
//! sentence that goes to the execution log.

use crate::core::common::Ctx;
use crate::core::op::{Command, OpId};
use crate::core::state::State;
use crate::core::upgrades::CompiledModules;

impl State {
    /// Runs one governance command at the op `cx` for `proposal`.
    pub(crate) fn run_command(
        &mut self,
        cx: Ctx<'_>,
        proposal: OpId,
        c: &Command,
        modules: &CompiledModules,
    ) -> Result<String, String> {
        match c {
            Command::ConfigChange { key, value } => self.gov.config_change(&mut self.params, key, value),
            Command::SplitChannel { target, logic, parts } => {
                self.ledger.split_channel(cx, &mut self.tasks, target, *logic, parts)
            }
            Command::MergeChannels { sources, target } => {
                self.ledger.merge_channels(cx, &mut self.tasks, &mut self.gov, sources, target)
            }
            Command::UpdateSchema { name, definition } => self.gov.update_schema(cx, name, definition),
            Command::AcquireCommonTool(t) => {
                self.tools.acquire_common_tool(cx, t, &mut self.ledger, &self.params.rules)
            }
            Command::DeprecateCommonTool { channel, tool_id } => self.tools.deprecate_common_tool(cx, channel, tool_id),
            Command::ReactivateCommonTool { channel, tool_id } => {
                self.tools.reactivate_common_tool(cx, channel, tool_id, &mut self.ledger)
            }
            Command::CodeUpgrade { module_sha256, policy } => {
                // The activation records the index its log entry will get.
                let execution = self.gov.execution_log.len() as u64;
                self.upgrades.code_upgrade(cx, proposal, *module_sha256, *policy, execution, modules)
            }
        }
    }
}
