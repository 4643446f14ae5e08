//! Governance-approved policy modules (`docs/UPGRADES.md`).
//!
//! A policy module is a WebAssembly binary that replaces one built-in policy
//! (vote weighting, auction scoring or the tax rule). It runs in `wasmi`
//! with fuel metering and a memory cap, with no imports at all. Every call
//! that traps, runs out of fuel, hits the memory cap or returns a value out
//! of range falls back to the built-in policy, deterministically: the same
//! module and inputs give the same outcome on every node.
//!
//! Sans-IO like the rest of the core: integers only, `BTreeMap` only. The
//! compiled-module cache ([`ModuleCache`]) is an optimisation outside any
//! hashed state; a cold cache gives the same results as a warm one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmi::{Config, Engine, ExternType, Linker, Module, StoreLimits, StoreLimitsBuilder, ValType};

/// Largest accepted module, in bytes.
pub const MAX_MODULE_BYTES: usize = 256 * 1024;
/// Largest accepted piece of a module, in bytes.
pub const MAX_PIECE_BYTES: usize = 32 * 1024;
/// Fuel granted to each policy call (and to instantiation).
pub const CALL_FUEL: u64 = 1_000_000;
/// Linear memory a module may have, in bytes (1 MiB = 16 pages).
pub const MEMORY_CAP: usize = 1024 * 1024;
/// Largest vote weight a module may return, in milli-units.
pub const MAX_VOTE_WEIGHT_MILLI: i64 = 1_000_000_000;
/// Largest auction score a module may return.
pub const MAX_AUCTION_SCORE: i64 = 1_000_000_000_000;
/// The all-zero module hash names the built-in policy (used to roll back).
pub const BUILTIN: [u8; 32] = [0; 32];

/// A replaceable policy. The wire name is the snake-case variant name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    VoteWeight,
    AuctionScore,
    Tax,
}

impl Policy {
    pub const ALL: [Policy; 3] = [Policy::VoteWeight, Policy::AuctionScore, Policy::Tax];

    /// The export the module must provide for this policy.
    pub fn export(self) -> &'static str {
        match self {
            Policy::VoteWeight => "vote_weight",
            Policy::AuctionScore => "auction_score",
            Policy::Tax => "tax",
        }
    }

    /// Canonical one-byte tag (never reused).
    pub fn tag(self) -> u8 {
        match self {
            Policy::VoteWeight => 0,
            Policy::AuctionScore => 1,
            Policy::Tax => 2,
        }
    }

    pub fn from_tag(tag: u8) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.tag() == tag)
    }

    fn signature(self) -> (&'static [ValType], &'static [ValType]) {
        match self {
            Policy::VoteWeight => (&[ValType::I64, ValType::I64, ValType::I32], &[ValType::I64]),
            Policy::AuctionScore => (&[ValType::I64, ValType::I64, ValType::I64], &[ValType::I64]),
            Policy::Tax => (&[ValType::I64, ValType::I64], &[ValType::I64]),
        }
    }
}

/// Why a module was refused at load. `code` is stable; the sentence is for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The module's bytes are not (yet) in the module store.
    NotPresent,
    TooLarge(usize),
    HashMismatch,
    Invalid(String),
    Import {
        module: String,
        name: String,
    },
    MissingExport(&'static str),
    WrongSignature(&'static str),
    Instantiate(String),
}

impl LoadError {
    pub fn code(&self) -> &'static str {
        match self {
            LoadError::NotPresent => "module_not_present",
            LoadError::TooLarge(_) => "module_too_large",
            LoadError::HashMismatch => "module_hash_mismatch",
            LoadError::Invalid(_) => "module_invalid",
            LoadError::Import { .. } => "module_import",
            LoadError::MissingExport(_) => "module_missing_export",
            LoadError::WrongSignature(_) => "module_wrong_signature",
            LoadError::Instantiate(_) => "module_instantiate",
        }
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::NotPresent => write!(f, "module is not present on this node"),
            LoadError::TooLarge(n) => write!(f, "module is {n} bytes, more than the {MAX_MODULE_BYTES}-byte limit"),
            LoadError::HashMismatch => write!(f, "module bytes do not hash to the named SHA-256"),
            LoadError::Invalid(e) => write!(f, "module is not valid WebAssembly: {e}"),
            LoadError::Import { module, name } => write!(f, "module imports {module}.{name}; no imports are allowed"),
            LoadError::MissingExport(e) => write!(f, "module does not export the function {e}"),
            LoadError::WrongSignature(e) => write!(f, "module export {e} does not have the ABI signature"),
            LoadError::Instantiate(e) => write!(f, "module failed to instantiate: {e}"),
        }
    }
}

/// Why one call fell back to the built-in policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallFault {
    /// Trap, out of fuel, or memory cap exceeded (wasmi reports all as errors).
    Trap(String),
    OutOfRange(i64),
}

/// The engine every node uses: fuel metering on, eager compilation so a
/// module is fully validated and translated at load.
pub fn engine() -> Engine {
    let mut config = Config::default();
    config.consume_fuel(true);
    config.compilation_mode(wasmi::CompilationMode::Eager);
    Engine::new(&config)
}

fn limits() -> StoreLimits {
    StoreLimitsBuilder::new()
        .memory_size(MEMORY_CAP)
        .instances(1)
        .memories(1)
        .tables(1)
        .trap_on_grow_failure(true)
        .build()
}

/// SHA-256 of module bytes.
pub fn module_hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A module that passed load checks for one policy.
#[derive(Clone, Debug)]
pub struct PolicyModule {
    pub hash: [u8; 32],
    pub policy: Policy,
    engine: Engine,
    module: Module,
}

impl PolicyModule {
    /// Checks size, hash, validity, imports (none allowed), the required
    /// export and its signature, and that it instantiates within the limits.
    pub fn load(engine: &Engine, bytes: &[u8], expected: &[u8; 32], policy: Policy) -> Result<PolicyModule, LoadError> {
        if bytes.len() > MAX_MODULE_BYTES {
            return Err(LoadError::TooLarge(bytes.len()));
        }
        if module_hash(bytes) != *expected {
            return Err(LoadError::HashMismatch);
        }
        let module = Module::new(engine, bytes).map_err(|e| LoadError::Invalid(e.to_string()))?;
        if let Some(i) = module.imports().next() {
            return Err(LoadError::Import { module: i.module().to_string(), name: i.name().to_string() });
        }
        let name = policy.export();
        let ty = module.exports().find(|e| e.name() == name).map(|e| e.ty().clone());
        match ty {
            Some(ExternType::Func(f)) => {
                let (params, results) = policy.signature();
                if f.params() != params || f.results() != results {
                    return Err(LoadError::WrongSignature(name));
                }
            }
            _ => return Err(LoadError::MissingExport(name)),
        }
        let pm = PolicyModule { hash: *expected, policy, engine: engine.clone(), module };
        // A trial instantiation: memory above the cap or a trapping start function is refused here.
        pm.instantiate().map_err(LoadError::Instantiate)?;
        Ok(pm)
    }

    fn instantiate(&self) -> Result<(wasmi::Store<StoreLimits>, wasmi::Instance), String> {
        let mut store = wasmi::Store::new(&self.engine, limits());
        store.limiter(|l| l);
        store.set_fuel(CALL_FUEL).map_err(|e| e.to_string())?;
        let linker = Linker::<StoreLimits>::new(&self.engine);
        let instance = linker.instantiate_and_start(&mut store, &self.module).map_err(|e| e.to_string())?;
        Ok((store, instance))
    }

    /// Each call runs in a fresh instance with fresh fuel: no state carries
    /// over between calls, so the result depends only on the inputs.
    fn call<P: wasmi::WasmParams, R: wasmi::WasmResults>(&self, params: P) -> Result<R, CallFault> {
        let (mut store, instance) = self.instantiate().map_err(CallFault::Trap)?;
        let f = instance
            .get_typed_func::<P, R>(&store, self.policy.export())
            .map_err(|e| CallFault::Trap(e.to_string()))?;
        store.set_fuel(CALL_FUEL).map_err(|e| CallFault::Trap(e.to_string()))?;
        f.call(&mut store, params).map_err(|e| CallFault::Trap(e.to_string()))
    }

    /// `vote_weight(total_milli, spec_milli, tagged) -> milli-units`, `0..=1e9`.
    pub fn vote_weight(&self, total_milli: u64, spec_milli: u64, tagged: bool) -> Result<u64, CallFault> {
        let r: i64 = self.call((clamp_i64(total_milli), clamp_i64(spec_milli), i32::from(tagged)))?;
        if (0..=MAX_VOTE_WEIGHT_MILLI).contains(&r) { Ok(r as u64) } else { Err(CallFault::OutOfRange(r)) }
    }

    /// `auction_score(cost_bp, rep_bp, time_bp) -> score`, `0..=1e12`.
    pub fn auction_score(&self, cost_bp: u64, rep_bp: u64, time_bp: u64) -> Result<u64, CallFault> {
        let r: i64 = self.call((clamp_i64(cost_bp), clamp_i64(rep_bp), clamp_i64(time_bp)))?;
        if (0..=MAX_AUCTION_SCORE).contains(&r) { Ok(r as u64) } else { Err(CallFault::OutOfRange(r)) }
    }

    /// `tax(reward, tax_bps) -> tax`, `0..=reward`.
    pub fn tax(&self, reward: u64, tax_bps: u64) -> Result<u64, CallFault> {
        let r: i64 = self.call((clamp_i64(reward), clamp_i64(tax_bps)))?;
        if r >= 0 && (r as u64) <= reward { Ok(r as u64) } else { Err(CallFault::OutOfRange(r)) }
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A module's SHA-256, written as 64 hex characters in JSON (and usable as
/// a JSON map key).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleHash(pub [u8; 32]);

impl ModuleHash {
    /// The built-in policy (rollback target).
    pub const BUILTIN: ModuleHash = ModuleHash(BUILTIN);

    pub fn to_text(&self) -> String {
        hex::encode(self.0)
    }

    /// First 8 hex characters, for messages.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    pub fn parse(text: &str) -> Option<ModuleHash> {
        let mut out = [0u8; 32];
        (text.len() == 64 && hex::decode_to_slice(text.as_bytes(), &mut out).is_ok()).then_some(ModuleHash(out))
    }
}

impl std::fmt::Display for ModuleHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl Serialize for ModuleHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_text())
    }
}

impl<'de> Deserialize<'de> for ModuleHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ModuleHash::parse(&text).ok_or_else(|| serde::de::Error::custom("module hash must be 64 hex chars"))
    }
}

impl Policy {
    /// Wire / display name.
    pub fn name(self) -> &'static str {
        self.export()
    }
}

/// The network's policy versions: the active module per policy (absent =
/// built-in) and the number of calls that fell back per module. Part of the
/// state (and so of the snapshot); see `encode` for the canonical bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policies {
    pub active: BTreeMap<Policy, ModuleHash>,
    pub fallbacks: BTreeMap<ModuleHash, u64>,
}

impl Policies {
    /// Canonical encoding: count (u32 BE), then `tag | hash` per active
    /// policy in tag order; count, then `hash | u64 BE` per fallback counter.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.active.len() as u32).to_be_bytes());
        for (p, h) in &self.active {
            out.push(p.tag());
            out.extend_from_slice(&h.0);
        }
        out.extend_from_slice(&(self.fallbacks.len() as u32).to_be_bytes());
        for (h, n) in &self.fallbacks {
            out.extend_from_slice(&h.0);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }

    /// Activates `hash` for `policy`; the all-zero hash restores the built-in.
    pub fn activate(&mut self, policy: Policy, hash: [u8; 32]) {
        if hash == BUILTIN {
            self.active.remove(&policy);
        } else {
            self.active.insert(policy, ModuleHash(hash));
        }
    }

    /// Counts one call of `hash` that fell back to the built-in policy.
    pub fn record_fallback(&mut self, hash: ModuleHash) {
        let n = self.fallbacks.entry(hash).or_insert(0);
        *n = n.saturating_add(1);
    }
}

/// Compiled modules by `(hash, policy)`, kept outside the hashed state: a
/// load result is a pure function of the bytes, so a cold cache gives the
/// same answers as a warm one. A module not (yet) present is not cached.
#[derive(Default)]
pub struct ModuleCache {
    engine: Option<Engine>,
    loaded: BTreeMap<(ModuleHash, Policy), Result<PolicyModule, LoadError>>,
}

impl ModuleCache {
    pub fn get(&mut self, bytes: Option<&[u8]>, hash: ModuleHash, policy: Policy) -> Result<PolicyModule, LoadError> {
        let Some(bytes) = bytes else { return Err(LoadError::NotPresent) };
        let engine = self.engine.get_or_insert_with(engine).clone();
        self.loaded.entry((hash, policy)).or_insert_with(|| PolicyModule::load(&engine, bytes, &hash.0, policy)).clone()
    }
}

/// Reassembles a module from its pieces (`index → bytes`, `count` pieces):
/// `None` while pieces are missing, `Some(Err)` if the whole does not hash
/// to `hash` or is too large (the module is then `corrupt`).
pub fn assemble(hash: &[u8; 32], count: u16, pieces: &BTreeMap<u16, Vec<u8>>) -> Option<Result<Vec<u8>, LoadError>> {
    if count == 0 || (0..count).any(|i| !pieces.contains_key(&i)) {
        return None;
    }
    let mut bytes = Vec::new();
    for i in 0..count {
        bytes.extend_from_slice(pieces.get(&i)?);
        if bytes.len() > MAX_MODULE_BYTES {
            return Some(Err(LoadError::TooLarge(bytes.len())));
        }
    }
    if module_hash(&bytes) != *hash {
        return Some(Err(LoadError::HashMismatch));
    }
    Some(Ok(bytes))
}

/// Splits module bytes into pieces of at most [`MAX_PIECE_BYTES`].
pub fn split(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.chunks(MAX_PIECE_BYTES).map(<[u8]>::to_vec).collect()
}

/// The example policy modules shipped with the node, compiled from
/// `node-wasm/modules/*.wat` by the build script (`build.rs`).
pub mod examples {
    use super::Policy;

    /// `1 + √points` vote weight (`quadratic_vote.wat`).
    pub const QUADRATIC_VOTE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/quadratic_vote.wasm"));
    /// 5 % tax whatever the configured rate (`flat_tax.wat`).
    pub const FLAT_TAX: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/flat_tax.wasm"));
    /// The cheapest bid wins auctions (`cheapest_bid.wat`).
    pub const CHEAPEST_BID: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cheapest_bid.wasm"));

    /// `(name, policy, bytes)` of every example.
    pub const ALL: [(&str, Policy, &[u8]); 3] = [
        ("quadratic_vote", Policy::VoteWeight, QUADRATIC_VOTE),
        ("flat_tax", Policy::Tax, FLAT_TAX),
        ("cheapest_bid", Policy::AuctionScore, CHEAPEST_BID),
    ];

    /// The example called `name`.
    pub fn get(name: &str) -> Option<(Policy, &'static [u8])> {
        ALL.iter().find(|(n, _, _)| *n == name).map(|(_, p, b)| (*p, *b))
    }
}
