//! The genesis record: a network's founding parameters, whose hash names the
//! network, and the admission ticket that binds an identity to it.
//!
//! Two nodes exchange ops only if their genesis hashes are equal (the
//! session hello carries it): a network's rules cannot be changed by
//! joining it with a client that folds under other rules. The rendezvous
//! serves the genesis it was started with (`--genesis FILE`); a page keeps
//! the one its stored state was folded under.
//!
//! Rule `admission_ticket`: an identity's ticket is a nonce such that
//! `SHA-256("synapse-ng/admission/v1" ‖ genesis hash ‖ node id ‖ nonce LE)`
//! starts with `rules.admission_bits` zero bits. It costs about
//! `2^admission_bits` hashes to find and one to check, and is bound to one
//! identity on one network (it cannot be reused or carried over).

use crate::codec::Writer;
use crate::core::config_range;
use crate::core::economy::Params;
use crate::core::rules::Rules;
use crate::identity::NodeId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Founders a genesis may list, at most.
pub const MAX_FOUNDERS: usize = 64;
/// Characters of a network name, at most.
pub const MAX_NAME_CHARS: usize = 64;
/// A genesis file's size, at most (it is read from disk or the network).
pub const MAX_GENESIS_BYTES: usize = 16 * 1024;

/// A network's founding record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// A human name; part of the hash, so two networks with the same
    /// parameters and different names are different networks.
    pub name: String,
    /// Identities that are members and validator-eligible from the start
    /// (a new network has no reputation yet, so without founders nothing
    /// can pass until members have earned it).
    #[serde(default)]
    pub founders: Vec<NodeId>,
    /// The initial value of every config key (changeable by governance
    /// within the ranges and floors).
    pub config: GenesisConfig,
    /// The rules fixed for the network's life.
    pub rules: Rules,
}

/// The initial config values, by key (as `config_change` names them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisConfig {
    pub initial_sp: u64,
    pub tax_bps: u64,
    pub task_reputation_milli: u64,
    pub vote_reputation_milli: u64,
    pub proposal_min_voting_seconds: u64,
    pub proposal_auto_close_after_seconds: u64,
    pub validator_set_size: u64,
}

impl GenesisConfig {
    /// The safe defaults (`core/economy.rs`): a six-hour minimum voting
    /// period, one day to vote.
    pub fn safe() -> GenesisConfig {
        use crate::core::economy as e;
        GenesisConfig {
            initial_sp: e::INITIAL_SP,
            tax_bps: e::TAX_BPS,
            task_reputation_milli: e::TASK_REPUTATION_MILLI,
            vote_reputation_milli: e::VOTE_REPUTATION_MILLI,
            proposal_min_voting_seconds: e::PROPOSAL_MIN_VOTING_SECONDS,
            proposal_auto_close_after_seconds: e::PROPOSAL_AUTO_CLOSE_AFTER_SECONDS,
            validator_set_size: e::VALIDATOR_SET_SIZE,
        }
    }

    fn values(&self) -> [(&'static str, u64); 7] {
        [
            ("initial_sp", self.initial_sp),
            ("tax_bps", self.tax_bps),
            ("task_reputation_milli", self.task_reputation_milli),
            ("vote_reputation_milli", self.vote_reputation_milli),
            ("proposal_min_voting_seconds", self.proposal_min_voting_seconds),
            ("proposal_auto_close_after_seconds", self.proposal_auto_close_after_seconds),
            ("validator_set_size", self.validator_set_size),
        ]
    }
}

impl Default for Genesis {
    /// The network a node joins when nobody says otherwise: every safeguard
    /// on, no founders.
    fn default() -> Genesis {
        Genesis {
            name: "synapse-ng".to_owned(),
            founders: Vec::new(),
            config: GenesisConfig::safe(),
            rules: Rules::default(),
        }
    }
}

impl Genesis {
    /// A network with every safeguard off (`Rules::open`) and no minimum
    /// voting period: tests of other features name it explicitly.
    pub fn open(name: &str) -> Genesis {
        Genesis {
            name: name.to_owned(),
            founders: Vec::new(),
            config: GenesisConfig { proposal_min_voting_seconds: 0, ..GenesisConfig::safe() },
            rules: Rules::open(),
        }
    }

    /// Parses and validates a genesis file (JSON).
    pub fn from_json(text: &str) -> Result<Genesis, String> {
        if text.len() > MAX_GENESIS_BYTES {
            return Err(format!("a genesis is at most {MAX_GENESIS_BYTES} bytes, this one is {}", text.len()));
        }
        let g: Genesis = serde_json::from_str(text).map_err(|e| format!("not a genesis record: {e}"))?;
        g.validate()?;
        Ok(g)
    }

    /// Every field within its range, the config within the config ranges
    /// and above the rules' floors.
    pub fn validate(&self) -> Result<(), String> {
        let chars = self.name.chars().count();
        if chars == 0 || chars > MAX_NAME_CHARS || self.name.trim().is_empty() {
            return Err(format!("the network name must have 1 to {MAX_NAME_CHARS} characters"));
        }
        if self.founders.len() > MAX_FOUNDERS {
            return Err(format!("at most {MAX_FOUNDERS} founders, not {}", self.founders.len()));
        }
        let mut sorted = self.founders.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != self.founders.len() {
            return Err("a founder is listed twice".to_owned());
        }
        self.rules.validate()?;
        for (key, v) in self.config.values() {
            config_range::check(key, v, &self.rules)?;
        }
        Ok(())
    }

    /// The parameters the fold starts from.
    pub fn params(&self) -> Params {
        let c = &self.config;
        Params {
            initial_sp: c.initial_sp,
            tax_bps: c.tax_bps,
            task_reputation_milli: c.task_reputation_milli,
            vote_reputation_milli: c.vote_reputation_milli,
            proposal_min_voting_seconds: c.proposal_min_voting_seconds,
            proposal_auto_close_after_seconds: c.proposal_auto_close_after_seconds,
            validator_set_size: c.validator_set_size,
            net_target_degree: crate::core::economy::NET_TARGET_DEGREE,
            rules: self.rules,
        }
    }

    /// SHA-256 over the canonical encoding: the network id.
    pub fn hash(&self) -> GenesisHash {
        let mut w = Writer::with_capacity(256);
        w.str(&self.name).u64(self.founders.len() as u64);
        for f in &self.founders {
            w.raw(&f.0);
        }
        for (key, v) in self.config.values() {
            w.str(key).u64(v);
        }
        self.rules.encode(&mut w);
        GenesisHash(Sha256::new().chain_update(b"synapse-ng/genesis/v1").chain_update(w.finish()).finalize().into())
    }
}

/// A genesis hash: the id of a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GenesisHash(pub [u8; 32]);

impl GenesisHash {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex characters, for status lines.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    pub fn parse(text: &str) -> Option<GenesisHash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(GenesisHash(out))
    }
}

/// The hash an admission ticket is judged by.
pub fn ticket_hash(genesis: &GenesisHash, node: &NodeId, nonce: u64) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"synapse-ng/admission/v1")
        .chain_update(genesis.0)
        .chain_update(node.0)
        .chain_update(nonce.to_le_bytes())
        .finalize()
        .into()
}

/// Leading zero bits of a hash.
pub fn leading_zero_bits(h: &[u8; 32]) -> u32 {
    let mut n = 0;
    for b in h {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

/// Rule `admission_ticket`: whether `nonce` admits `node` to the network.
pub fn ticket_valid(genesis: &GenesisHash, node: &NodeId, nonce: u64, bits: u8) -> bool {
    bits == 0 || leading_zero_bits(&ticket_hash(genesis, node, nonce)) >= u32::from(bits)
}

/// Searches `count` nonces from `start` for a ticket (native tools and
/// tests; the page searches in a Web Worker).
pub fn find_ticket(genesis: &GenesisHash, node: &NodeId, bits: u8, start: u64, count: u64) -> Option<u64> {
    (start..start.saturating_add(count)).find(|n| ticket_valid(genesis, node, *n, bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_genesis_is_valid_and_its_hash_names_it() {
        let g = Genesis::default();
        g.validate().unwrap();
        assert_eq!(g.hash(), Genesis::default().hash());
        let other = Genesis { name: "other".into(), ..Genesis::default() };
        assert_ne!(g.hash(), other.hash(), "the name is part of the id");
        let looser = Genesis { rules: Rules { quorum_bps: 0, ..Rules::default() }, ..Genesis::default() };
        assert_ne!(g.hash(), looser.hash(), "every rule is part of the id");
        assert_ne!(g.hash(), Genesis::open("synapse-ng").hash());
    }

    #[test]
    fn a_genesis_file_is_checked_field_by_field() {
        let g = Genesis::default();
        let text = serde_json::to_string(&g).unwrap();
        assert_eq!(Genesis::from_json(&text).unwrap(), g);
        let bad = text.replace("\"validator_floor\":4", "\"validator_floor\":0");
        assert!(Genesis::from_json(&bad).unwrap_err().contains("validator_floor"));
        let below = text.replace("\"proposal_min_voting_seconds\":21600", "\"proposal_min_voting_seconds\":10");
        let e = Genesis::from_json(&below).unwrap_err();
        assert!(e.contains("proposal_min_voting_seconds") && e.contains("at least 3600"), "{e}");
        let unknown = text.replace("\"name\"", "\"nmae\"");
        assert!(Genesis::from_json(&unknown).is_err());
        assert!(Genesis::from_json(&"x".repeat(MAX_GENESIS_BYTES + 1)).unwrap_err().contains("at most"));
    }

    #[test]
    fn an_admission_ticket_is_bound_to_its_identity_and_network() {
        let g = Genesis::default().hash();
        let a = NodeId([1; 32]);
        let b = NodeId([2; 32]);
        let nonce = find_ticket(&g, &a, 12, 0, 1 << 20).expect("a 12-bit ticket within 2^20 tries");
        assert!(ticket_valid(&g, &a, nonce, 12));
        assert!(leading_zero_bits(&ticket_hash(&g, &a, nonce)) >= 12);
        // The same nonce almost surely fails for another identity or network.
        let other = Genesis::open("x").hash();
        assert!(!(ticket_valid(&g, &b, nonce, 12) && ticket_valid(&other, &a, nonce, 12)));
        assert!(ticket_valid(&g, &b, 0, 0), "0 bits: no ticket needed");
    }
}

#[cfg(test)]
mod js_tests {
    use super::*;
    use crate::core::state::State;

    /// Pages read the state through `serde_wasm_bindgen`'s JSON-compatible
    /// serializer, which refuses integers above 2^53 (the whole `state()`
    /// then came back `null` when the open rules' daily cap was `u64::MAX`).
    #[test]
    fn every_number_of_a_genesis_state_is_exact_as_a_js_number() {
        fn walk(v: &serde_json::Value, path: &str) {
            match v {
                serde_json::Value::Number(n) => {
                    assert!(n.as_u64().is_none_or(|x| x < (1 << 53)), "{path} = {n} is not exact in JS");
                }
                serde_json::Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| walk(x, &format!("{path}[{i}]"))),
                serde_json::Value::Object(m) => m.iter().for_each(|(k, x)| walk(x, &format!("{path}.{k}"))),
                _ => {}
            }
        }
        for g in [Genesis::default(), Genesis::open("x")] {
            walk(&serde_json::to_value(State::from_genesis(&g)).unwrap(), "state");
            walk(&serde_json::to_value(&g).unwrap(), "genesis");
        }
    }
}
