//! Policy modules: the examples give the expected results and malicious
//! modules are contained (`docs/UPGRADES.md`).

use std::collections::BTreeMap;

use super::economy;
use super::upgrade::*;
use super::upgrades::{CompiledModules, PolicyResult, StoredModule, Upgrades};

fn wasm(wat_text: &str) -> Vec<u8> {
    wat::parse_str(wat_text).expect("test WAT parses")
}

/// An upgrade state holding `bytes` as an assembled module (not active).
fn with_module(bytes: &[u8]) -> (Upgrades, ModuleHash) {
    let hash = ModuleHash(module_hash(bytes));
    let mut u = Upgrades::default();
    u.modules.insert(
        hash,
        StoredModule {
            bytes: std::sync::Arc::new(bytes.to_vec()),
            size: bytes.len() as u64,
            assembled_by: crate::identity::NodeId([0; 32]),
            assembled_at: crate::core::hlc::Hlc::ZERO,
        },
    );
    (u, hash)
}

fn load(bytes: &[u8], policy: Policy) -> Result<PolicyModule, LoadError> {
    PolicyModule::load(&engine(), bytes, &module_hash(bytes), policy)
}

const QUADRATIC: &str = include_str!("../../modules/quadratic_vote.wat");
const FLAT_TAX: &str = include_str!("../../modules/flat_tax.wat");

#[test]
fn quadratic_vote_module_gives_one_plus_sqrt_points() {
    let m = load(&wasm(QUADRATIC), Policy::VoteWeight).unwrap();
    assert_eq!(m.vote_weight(0, 0, false), Ok(1000));
    assert_eq!(m.vote_weight(1_000, 0, false), Ok(2000)); // 1 point
    assert_eq!(m.vote_weight(4_000, 0, true), Ok(3000)); // 4 points
    assert_eq!(m.vote_weight(100_000, 5, true), Ok(11_000)); // 100 points
    assert_eq!(m.vote_weight(2_000, 0, false), Ok(1000 + 1414)); // floor(sqrt(2e6))
    // A wrapping product gives an out-of-range weight: the call faults.
    assert!(matches!(m.vote_weight(u64::MAX, 0, false), Err(CallFault::OutOfRange(_))));
}

#[test]
fn flat_tax_module_takes_five_percent() {
    let m = load(&wasm(FLAT_TAX), Policy::Tax).unwrap();
    assert_eq!(m.tax(1000, 200), Ok(50));
    assert_eq!(m.tax(19, 9999), Ok(0));
    assert_eq!(m.tax(0, 500), Ok(0));
}

#[test]
fn infinite_loop_runs_out_of_fuel_and_falls_back() {
    let bytes = wasm(r#"(module (func (export "tax") (param i64 i64) (result i64) (loop $l (br $l)) (i64.const 0)))"#);
    let m = load(&bytes, Policy::Tax).unwrap();
    assert!(matches!(m.tax(1000, 500), Err(CallFault::Trap(_))));
    let (mut u, hash) = with_module(&bytes);
    u.policies.activate(Policy::Tax, hash.0);
    let modules = CompiledModules::default();
    for _ in 0..2 {
        let r = u.view(&modules).tax(1000, 500);
        assert_eq!(r, PolicyResult { value: economy::tax(1000, 500), fault: Some(hash) });
        u.policies.record_fallback(hash);
    }
    assert_eq!(u.policies.fallbacks.get(&hash), Some(&2));
}

#[test]
fn memory_grow_bomb_hits_the_cap_and_falls_back() {
    // Grows one page at a time until growth fails, then traps on failure.
    let bytes = wasm(
        r#"(module (memory 1)
          (func (export "tax") (param i64 i64) (result i64)
            (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
            (i64.const 0)))"#,
    );
    let m = load(&bytes, Policy::Tax).unwrap();
    assert!(matches!(m.tax(1000, 500), Err(CallFault::Trap(_))));
    // A module declaring more initial memory than the cap is refused at load.
    let big = wasm(r#"(module (memory 17) (func (export "tax") (param i64 i64) (result i64) (i64.const 0)))"#);
    assert_eq!(load(&big, Policy::Tax).unwrap_err().code(), "module_instantiate");
}

#[test]
fn unknown_import_is_refused_at_load() {
    let bytes = wasm(
        r#"(module (import "env" "now" (func $now (result i64)))
          (func (export "tax") (param i64 i64) (result i64) (call $now)))"#,
    );
    let e = load(&bytes, Policy::Tax).unwrap_err();
    assert_eq!(e, LoadError::Import { module: "env".into(), name: "now".into() });
    assert_eq!(e.to_string(), "module imports env.now; no imports are allowed");
}

#[test]
fn wrong_hash_missing_export_wrong_signature_and_garbage_are_refused() {
    let bytes = wasm(FLAT_TAX);
    let e = PolicyModule::load(&engine(), &bytes, &[7; 32], Policy::Tax).unwrap_err();
    assert_eq!(e.code(), "module_hash_mismatch");
    assert_eq!(load(&bytes, Policy::VoteWeight).unwrap_err(), LoadError::MissingExport("vote_weight"));
    let sig = wasm(r#"(module (func (export "tax") (param i32) (result i64) (i64.const 0)))"#);
    assert_eq!(load(&sig, Policy::Tax).unwrap_err(), LoadError::WrongSignature("tax"));
    assert_eq!(load(b"not wasm", Policy::Tax).unwrap_err().code(), "module_invalid");
    let huge = vec![0u8; MAX_MODULE_BYTES + 1];
    assert_eq!(load(&huge, Policy::Tax).unwrap_err().code(), "module_too_large");
}

#[test]
fn out_of_range_results_fall_back() {
    let bytes =
        wasm(r#"(module (func (export "tax") (param i64 i64) (result i64) (i64.add (local.get 0) (i64.const 1))))"#);
    let m = load(&bytes, Policy::Tax).unwrap();
    assert_eq!(m.tax(10, 0), Err(CallFault::OutOfRange(11)));
    let neg = wasm(r#"(module (func (export "vote_weight") (param i64 i64 i32) (result i64) (i64.const -1)))"#);
    assert_eq!(load(&neg, Policy::VoteWeight).unwrap().vote_weight(5, 5, true), Err(CallFault::OutOfRange(-1)));
}

#[test]
fn trap_in_start_is_refused_and_divide_by_zero_falls_back() {
    let start = wasm(
        r#"(module (func $s unreachable) (start $s) (func (export "tax") (param i64 i64) (result i64) (i64.const 0)))"#,
    );
    assert_eq!(load(&start, Policy::Tax).unwrap_err().code(), "module_instantiate");
    let div =
        wasm(r#"(module (func (export "tax") (param i64 i64) (result i64) (i64.div_u (local.get 0) (local.get 1))))"#);
    assert!(matches!(load(&div, Policy::Tax).unwrap().tax(10, 0), Err(CallFault::Trap(_))));
}

#[test]
fn activation_and_rollback_switch_the_policy() {
    let (mut u, hash) = with_module(&wasm(QUADRATIC));
    let modules = CompiledModules::default();
    assert_eq!(u.view(&modules).vote_weight(4_000, 0, false, 2321).value, 2321);
    u.policies.activate(Policy::VoteWeight, hash.0);
    assert_eq!(u.view(&modules).vote_weight(4_000, 0, false, 2321), PolicyResult { value: 3000, fault: None });
    u.policies.activate(Policy::VoteWeight, BUILTIN);
    assert_eq!(u.view(&modules).vote_weight(4_000, 0, false, 2321).value, 2321);
    assert!(u.policies.active.is_empty() && u.policies.fallbacks.is_empty());
    // An active module that is absent on this node falls back.
    u.policies.activate(Policy::VoteWeight, [9; 32]);
    assert_eq!(
        u.view(&modules).vote_weight(1, 1, true, 77),
        PolicyResult { value: 77, fault: Some(ModuleHash([9; 32])) }
    );
}

#[test]
fn cold_and_warm_caches_agree() {
    let bytes = wasm(QUADRATIC);
    let (mut warm, hash) = with_module(&bytes);
    warm.policies.activate(Policy::VoteWeight, hash.0);
    let warm_cache = CompiledModules::default();
    for total in [0u64, 1, 999, 1000, 12_345, 1 << 40] {
        let (mut cold, _) = with_module(&bytes);
        cold.policies.activate(Policy::VoteWeight, hash.0);
        let cold_cache = CompiledModules::default();
        assert_eq!(
            warm.view(&warm_cache).vote_weight(total, 0, false, 1),
            cold.view(&cold_cache).vote_weight(total, 0, false, 1)
        );
    }
}

#[test]
fn pieces_reassemble_in_any_order_and_a_bad_hash_is_corrupt() {
    let mut bytes = wasm(QUADRATIC);
    bytes.resize(70_000, 0); // not a valid module any more, but pieces do not care
    let hash = module_hash(&bytes);
    let pieces = split(&bytes);
    assert_eq!(pieces.len(), 3);
    assert!(pieces.iter().all(|p| p.len() <= MAX_PIECE_BYTES));
    let count = pieces.len() as u16;
    // Deterministic shuffles (xorshift).
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..8 {
        let mut order: Vec<u16> = (0..count).collect();
        for i in (1..order.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut got = BTreeMap::new();
        for (n, i) in order.iter().enumerate() {
            let done = assemble(&hash, count, &got);
            assert!(done.is_none(), "complete after {n} pieces");
            got.insert(*i, pieces[*i as usize].clone());
        }
        assert_eq!(assemble(&hash, count, &got), Some(Ok(bytes.clone())));
    }
    let mut got: BTreeMap<u16, Vec<u8>> = pieces.iter().cloned().enumerate().map(|(i, p)| (i as u16, p)).collect();
    got.get_mut(&1).unwrap()[0] ^= 1;
    assert_eq!(assemble(&hash, count, &got), Some(Err(LoadError::HashMismatch)));
}

#[test]
fn policies_encoding_is_canonical() {
    let mut p = Policies::default();
    let mut empty = Vec::new();
    p.encode(&mut empty);
    assert_eq!(empty, [0, 0, 0, 0, 0, 0, 0, 0]);
    p.activate(Policy::Tax, [2; 32]);
    p.activate(Policy::VoteWeight, [1; 32]);
    let mut out = Vec::new();
    p.encode(&mut out);
    assert_eq!(out.len(), 4 + 2 * 33 + 4);
    assert_eq!(out[4], Policy::VoteWeight.tag());
    assert_eq!(out[4 + 33], Policy::Tax.tag());
    assert_eq!(Policy::from_tag(2), Some(Policy::Tax));
    assert_eq!(Policy::from_tag(3), None);
}
