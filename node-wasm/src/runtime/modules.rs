//! Publishing and trying policy modules from this node (`docs/UPGRADES.md`).
//! Shared by the JS API (`publishModule`, `dryRunModule`) and the UI.

use crate::core::op::{GLOBAL_CHANNEL, OpBody};
use crate::core::upgrade::{MAX_MODULE_BYTES, ModuleHash, Policy, module_hash, split};
use crate::core::upgrades::DryRun;
use crate::runtime::ledger::Ledger;

/// What [`publish_module`] did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Published {
    pub module: ModuleHash,
    pub size: usize,
    /// Pieces signed and sent now (0 when the network already has the module).
    pub pieces_sent: usize,
    pub pieces: usize,
    /// The last piece signed now: once it is committed, all are.
    #[serde(skip)]
    pub last: Option<crate::core::op::OpId>,
}

/// Splits `bytes` into `module_piece` ops on `global` and publishes them,
/// unless the module is already assembled. Pieces this node already sent
/// are not re-signed (an author never replaces a piece). Refuses modules
/// over the size limit before signing anything.
pub fn publish_module(ledger: &Ledger, bytes: &[u8]) -> Result<Published, String> {
    if bytes.is_empty() {
        return Err("the module is empty".to_owned());
    }
    if bytes.len() > MAX_MODULE_BYTES {
        return Err(format!("the module is {} bytes, more than the {MAX_MODULE_BYTES}-byte limit", bytes.len()));
    }
    let hash = module_hash(bytes);
    let me = ledger.node().identity().node_id();
    let pieces = split(bytes);
    let count = pieces.len() as u16;
    let (present, mine): (bool, Vec<u16>) = ledger.with_state(|s| {
        let u = &s.upgrades;
        let mine = u.pending.get(&ModuleHash(hash)).and_then(|by| by.get(&me)).map(|p| p.received.clone());
        (u.modules.contains_key(&ModuleHash(hash)), mine.unwrap_or_default())
    });
    let mut sent = 0;
    let mut last = None;
    if !present {
        for (i, p) in pieces.iter().enumerate() {
            let index = i as u16;
            if mine.contains(&index) {
                continue;
            }
            let body = OpBody::ModulePiece { module: hash, index, count, bytes: p.clone() };
            last = Some(ledger.act(GLOBAL_CHANNEL, body).map_err(|e| format!("piece {index} of {count}: {e}"))?);
            sent += 1;
        }
    }
    Ok(Published { module: ModuleHash(hash), size: bytes.len(), pieces_sent: sent, pieces: pieces.len(), last })
}

/// Runs `bytes` as `policy` against the current state without activating it.
pub fn dry_run(ledger: &Ledger, bytes: &[u8], policy: Policy) -> DryRun {
    let now = js_sys::Date::now() as u64;
    ledger.with_state(|s| s.dry_run(bytes, policy, now))
}

/// Parses a policy name (`vote_weight`, `auction_score`, `tax`).
pub fn parse_policy(name: &str) -> Result<Policy, String> {
    Policy::ALL
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| format!("unknown policy {name:?}: use vote_weight, auction_score or tax"))
}
