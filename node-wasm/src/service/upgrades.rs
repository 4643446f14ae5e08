//! Self-upgrade: publishing a policy module as `module_piece` ops,
//! proposing a `code_upgrade` (or a rollback to the built-in policy), and
//! the example modules shipped with the node.

use super::{Intent, Result};
use crate::core::op::{Command, GLOBAL_CHANNEL, NewProposal, OpBody, ProposalKind};
use crate::core::state::State;
use crate::core::upgrade::{MAX_MODULE_BYTES, ModuleHash, Policy, examples, module_hash, split};
use crate::identity::NodeId;

/// `proposeUpgrade`'s argument.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradeSpec {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Hex SHA-256 of the module, or 64 zeros for the built-in policy.
    pub module: String,
    pub policy: String,
}

/// Parses a policy name (`vote_weight`, `auction_score`, `tax`).
pub fn parse_policy(name: &str) -> Result<Policy> {
    Policy::ALL
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| format!("unknown policy {name:?}: use vote_weight, auction_score or tax"))
}

/// Proposes a `code_upgrade` in `channel`.
pub fn propose(channel: &str, spec: UpgradeSpec) -> Result<Intent> {
    let policy = parse_policy(&spec.policy)?;
    let module = ModuleHash::parse(&spec.module)
        .ok_or_else(|| "module must be the module's SHA-256 as 64 hex characters".to_string())?;
    let p = NewProposal {
        kind: ProposalKind::CodeUpgrade,
        title: spec.title,
        description: spec.description,
        tags: spec.tags,
        command: Some(Command::CodeUpgrade { module_sha256: module.0, policy }),
    };
    Ok(Intent::new(channel, OpBody::ProposalCreate(p)))
}

/// The default title of a proposal to run `module` as `policy` (the
/// built-in hash: a rollback).
pub fn default_title(module: ModuleHash, policy: Policy) -> String {
    if module == ModuleHash::BUILTIN {
        format!("Back to the built-in {} policy", policy.name())
    } else {
        format!("Use module {}… for {}", module.short(), policy.name())
    }
}

/// The pieces to sign to publish a module, and what it amounts to.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Publication {
    pub module: ModuleHash,
    pub size: usize,
    /// Pieces to sign now (0 when the network already has the module).
    pub pieces_sent: usize,
    pub pieces: usize,
    #[serde(skip)]
    pub intents: Vec<Intent>,
}

/// Splits `bytes` into `module_piece` ops on `global`, unless the module
/// is already assembled. Pieces `me` already sent are not signed again (an
/// author never replaces a piece). Refuses modules over the size limit
/// before anything is signed.
pub fn publish(st: &State, me: &NodeId, bytes: &[u8]) -> Result<Publication> {
    if bytes.is_empty() {
        return Err("the module is empty".to_owned());
    }
    if bytes.len() > MAX_MODULE_BYTES {
        return Err(format!("the module is {} bytes, more than the {MAX_MODULE_BYTES}-byte limit", bytes.len()));
    }
    let hash = module_hash(bytes);
    let u = &st.upgrades;
    let mine: &[u16] =
        u.pending.get(&ModuleHash(hash)).and_then(|by| by.get(me)).map_or(&[], |p| p.received.as_slice());
    let pieces = split(bytes);
    let count = u16::try_from(pieces.len()).map_err(|_| "the module has too many pieces".to_string())?;
    let mut intents = vec![];
    if !u.modules.contains_key(&ModuleHash(hash)) {
        for (index, p) in (0u16..).zip(pieces.iter()) {
            if !mine.contains(&index) {
                let body = OpBody::ModulePiece { module: hash, index, count, bytes: p.clone() };
                intents.push(Intent::new(GLOBAL_CHANNEL, body));
            }
        }
    }
    Ok(Publication {
        module: ModuleHash(hash),
        size: bytes.len(),
        pieces_sent: intents.len(),
        pieces: pieces.len(),
        intents,
    })
}

/// One example module shipped with the node.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Example {
    pub name: &'static str,
    pub policy: &'static str,
    pub sha256: String,
    pub size: usize,
}

/// The example modules: `quadratic_vote`, `flat_tax`, `cheapest_bid`.
pub fn examples() -> Vec<Example> {
    examples::ALL
        .iter()
        .map(|(name, p, b)| Example { name, policy: p.name(), sha256: hex::encode(module_hash(b)), size: b.len() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Signer;
    use crate::service::testkit::World;

    fn spec(module: &str, policy: &str) -> UpgradeSpec {
        UpgradeSpec {
            title: "t".into(),
            description: String::new(),
            tags: vec![],
            module: module.into(),
            policy: policy.into(),
        }
    }

    #[test]
    fn refusals() {
        let zeros = "0".repeat(64);
        assert_eq!(
            propose("global", spec(&zeros, "speed")).unwrap_err(),
            "unknown policy \"speed\": use vote_weight, auction_score or tax"
        );
        assert_eq!(
            propose("global", spec("abc", "tax")).unwrap_err(),
            "module must be the module's SHA-256 as 64 hex characters"
        );
        let st = State::genesis();
        let me = crate::identity::Identity::from_seed([1; 32]).node_id();
        assert_eq!(publish(&st, &me, &[]).unwrap_err(), "the module is empty");
        let big = vec![0u8; MAX_MODULE_BYTES + 1];
        assert!(publish(&st, &me, &big).unwrap_err().contains("-byte limit"));
    }

    #[test]
    fn a_module_is_published_once_and_proposed() {
        let w = World::dev();
        let bytes = examples::FLAT_TAX;
        let me = w.id(0);
        let plan = w.read(|st| publish(st, &me, bytes)).expect("plan");
        assert_eq!(plan.pieces_sent, plan.pieces);
        for i in plan.intents {
            w.as_(0).run(|_| Ok(i.clone())).expect("piece");
        }
        let again = w.read(|st| publish(st, &me, bytes)).expect("plan");
        assert_eq!(again.pieces_sent, 0, "the network has it now");
        let hash = again.module.to_text();
        w.as_(0).run(|_| propose("global", spec(&hash, "tax"))).expect("proposed");
        assert_eq!(examples().len(), 3);
        assert!(default_title(ModuleHash::BUILTIN, Policy::Tax).starts_with("Back to the built-in"));
    }
}
