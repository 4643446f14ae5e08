//! One command and query service for every front end (the JS API in
//! `runtime::api` and the Leptos views in `web-ui`).
//!
//! Sans-IO and native like `core`: a *command* reads the current
//! [`State`] (never changes it) and turns a user's typed input into an
//! [`Intent`] — the op body plus the channel the ledger must sign it in —
//! or refuses with a sentence saying why. A *read model* turns the state
//! into the JSON-ready rows a view or the API shows. Signing, storing and
//! publishing stay in the ledger, the way automerge keeps `ReadDoc`
//! (queries) apart from `Transactable` (changes) and both apart from its
//! bindings: so the API and the UI cannot drift apart, and every rule
//! here is unit-tested natively.
//!
//! - [`admission`]: the admission ticket (whether one is needed, publishing it, its status).
//! - [`channels`]: create, subscribe, unsubscribe; which channel an item lives in.
//! - [`tasks`]: tasks and auctions.
//! - [`teams`]: team tasks and skill profiles.
//! - [`governance`]: proposals, votes, closing, ratifying; tallies.
//! - [`economy`]: balances, treasuries and SP totals.
//! - [`tools`]: common tools (sealing the secret, the local use check).
//! - [`upgrades`]: policy modules and code-upgrade proposals.
//! - [`events`]: which domains an applied op changes (per-domain events).

pub mod admission;
pub mod channels;
pub mod economy;
pub mod events;
pub mod governance;
pub mod tasks;
pub mod teams;
pub mod tools;
pub mod upgrades;

#[cfg(test)]
mod dts_tests;
#[cfg(test)]
pub(crate) mod testkit;

pub use events::{Domain, DomainSet};

use crate::core::op::{OpBody, OpId};
use crate::core::state::State;

/// What a command asks the ledger to sign: `body` in `channel`. The
/// ledger still checks it against the state it signs on (a command run a
/// moment earlier may be stale), so an `Intent` is a request, not a promise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    pub channel: String,
    pub body: OpBody,
}

impl Intent {
    pub fn new(channel: impl Into<String>, body: OpBody) -> Intent {
        Intent { channel: channel.into(), body }
    }
}

/// A refusal: one sentence for the user, saying what to change.
pub type Refusal = String;

/// A command's outcome.
pub type Result<T> = std::result::Result<T, Refusal>;

/// Parses an op id typed or passed by a caller; `what` names it in the
/// refusal ("task id must be 64 hex characters").
pub fn parse_id(what: &str, text: &str) -> Result<OpId> {
    OpId::parse(text).ok_or_else(|| format!("{what} id must be 64 hex characters"))
}

/// Where the ledger signs: anything that can sign an [`Intent`] (the
/// runtime's `Ledger`; a bare `Replica` in tests). Kept as a trait so the
/// service never depends on the browser.
pub trait Signer {
    /// Runs `f` on the current state.
    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T;
    /// Signs, folds and publishes `intent`; the op id, or the rule it breaks.
    fn sign(&self, intent: Intent) -> Result<OpId>;
    /// The identity that signs (commands that need its other keys, such as
    /// a linked vote, read it).
    fn identity(&self) -> &crate::identity::Identity;

    /// Runs a command against the current state, then signs its intent.
    fn run(&self, command: impl FnOnce(&State) -> Result<Intent>) -> Result<OpId> {
        let intent = self.read(command)?;
        self.sign(intent)
    }
}
