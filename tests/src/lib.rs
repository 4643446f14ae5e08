//! End-to-end harness: the real `rendezvous` process and real headless
//! Chromium nodes driven over WebDriver (one chromedriver per harness, one
//! WebDriver session = one isolated Chromium per node).
//!
//! - [`Rendezvous::start`] spawns the built binary on a free port and kills it
//!   on drop.
//! - [`Browser::start`] spawns chromedriver; [`Browser::open_node`] opens a
//!   fresh Chromium (own temporary `--user-data-dir`) on the UI and returns a
//!   [`NodePage`] with typed helpers over `window.synapse`.
//! - [`wait_until`] polls a condition every 50 ms and fails with what was
//!   awaited and the last observed value: tests never sleep and hope.
//! - `NodePage::show`, `type_into`, `click_on`, `wait_text`, `screenshot`
//!   drive and read the page's UI like a user (`ui.rs`).
//! - [`TurnServer::start`] runs a real coturn `turnserver` checking TURN REST
//!   credentials; [`NatLab::build`] puts clients behind real Linux NATs in
//!   network namespaces, and [`Browser::open_node_in`] runs a node there.
//!
//! Paths come from the environment, with defaults for a normal checkout:
//! `SYNAPSE_RENDEZVOUS_BIN` (default `<workspace>/target/debug/rendezvous`),
//! `SYNAPSE_DIST` (default `<workspace>/dist`), `SYNAPSE_CHROMEDRIVER`
//! (default `/usr/bin/chromedriver`) and `SYNAPSE_CHROMIUM` (default
//! `/usr/bin/chromium`).

mod api;
pub mod bench;
mod browser;
pub mod netns;
mod paths;
mod process;
mod rendezvous;
mod scenario;
pub mod turn;
mod ui;
mod wait;

pub use api::{Hello, IceError, IceStatus, PeerState, RendezvousServer, RendezvousStatus, Stats, Status, Timings};
pub use browser::{Browser, NodePage, READY_TIMEOUT, Snapshot};
pub use netns::{Nat, NatLab, Netns};
pub use paths::{chromedriver_bin, chromium_bin, dist_dir, rendezvous_bin, workspace_dir};
pub use process::ProcessGuard;
pub use rendezvous::{Rendezvous, write_genesis};
pub use scenario::{SCENARIO_TIMEOUT, knows_proposal, mesh_of_three, sign_bulk, wait_all, wait_full_mesh};
pub use turn::{TurnServer, Usage};
pub use ui::{PixelStats, UI_TIMEOUT, pixel_stats, screenshot_dir};
pub use wait::{POLL_INTERVAL, wait_until};

/// First 8 hex characters of a node id, for readable messages.
pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Serialises browser tests within one test binary: every test starts several
/// Chromium processes, and running them side by side on a small machine turns
/// generous timeouts into flakes. Hold the guard for the whole test.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}
