//! The deterministic core: signed ops, hybrid logical clocks and the fold
//! that turns a set of ops into the shared state (channels, tasks, auctions,
//! the SP economy, reputation, governance and common tools).
//!
//! Sans-IO and platform-independent: time is an argument, there is no
//! randomness, all state maps are `BTreeMap`s and all numbers are integers,
//! so the same ops give the same state byte for byte natively and in wasm.
//! The rules are documented by name in `docs/PROTOCOL.md` ("Operations" and
//! "Fold rules").

pub mod auction;
pub mod ballot;
pub mod channels;
pub mod commands;
pub mod common;
pub mod config_range;
pub mod dry_run;
pub mod economy;
pub mod finality;
pub mod finalizer;
pub mod fold;
pub mod fuzz;
pub mod genesis;
pub mod governance;
pub mod hlc;
pub mod immune;
pub mod ledger;
pub mod log;
pub mod op;
pub mod reject;
pub mod replica;
pub mod reputation;
pub mod ring;
pub mod rules;
pub mod schema;
pub mod shamir;
pub mod snapshot;
pub mod split_merge;
pub mod state;
pub mod strict;
pub mod tasks;
pub mod teams;
pub mod tools;
pub mod upgrade;
pub mod upgrades;
pub mod vectors;

#[cfg(test)]
mod ballot_tests;
#[cfg(test)]
mod conservation_tests;
#[cfg(test)]
mod finality_tests;
#[cfg(test)]
mod gov_tests;
#[cfg(test)]
mod immune_tests;
#[cfg(test)]
mod layers_tests;
#[cfg(test)]
mod strangers_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod upgrade_fold_tests;
#[cfg(test)]
mod upgrade_tests;

pub use hlc::{Clock, Hlc};
pub use op::{OpBody, OpId, SignedOp, TaskId, VerifiedOp};
pub use reject::Reject;
pub use replica::{ActionError, OpOutcome, Received, Replica, Snapshot};
pub use state::State;
