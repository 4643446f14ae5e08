//! Publishing and trying policy modules from this node (`docs/UPGRADES.md`).
//! Shared by the JS API (`publishModule`, `dryRunModule`) and the UI; which
//! pieces to sign is decided by `service::upgrades::publish`.

use crate::core::op::OpId;
use crate::core::upgrade::Policy;
use crate::core::upgrades::DryRun;
use crate::runtime::ledger::Ledger;
use crate::service::Signer;
use crate::service::upgrades::{self, Publication};

pub use crate::service::upgrades::parse_policy;

/// What [`publish_module`] did, and the last piece it signed (once that
/// one is committed, all are).
pub struct Published {
    pub report: Publication,
    pub last: Option<OpId>,
}

/// Signs and publishes the pieces of `bytes` the network lacks (see
/// [`upgrades::publish`]); stops at the first refused piece.
pub fn publish_module(ledger: &Ledger, bytes: &[u8]) -> Result<Published, String> {
    let mut report = ledger.with_state(|st| upgrades::publish(st, &ledger.node().id(), bytes))?;
    let count = report.pieces;
    let mut last = None;
    for intent in std::mem::take(&mut report.intents) {
        let index = match &intent.body {
            crate::core::op::OpBody::ModulePiece { index, .. } => *index,
            _ => 0,
        };
        last = Some(ledger.sign(intent).map_err(|e| format!("piece {index} of {count}: {e}"))?);
    }
    Ok(Published { report, last })
}

/// Runs `bytes` as `policy` against the current state without activating it.
pub fn dry_run(ledger: &Ledger, bytes: &[u8], policy: Policy) -> DryRun {
    let now = js_sys::Date::now() as u64;
    ledger.with_state(|s| s.dry_run(bytes, policy, now))
}
