//! A sequence of length-prefixed ops folded without signature checks, so the
//! fuzzer reaches every fold rule. Must not panic and must conserve SP.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    node_wasm::core::fuzz::apply_unverified(data);
});
