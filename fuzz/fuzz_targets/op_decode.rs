//! Any bytes from a peer: strict decode, `verify_strict`, fold. Must not panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    node_wasm::core::fuzz::decode_verify_apply(data);
});
