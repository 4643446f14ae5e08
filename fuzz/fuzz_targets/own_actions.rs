//! Ops read as local actions of three identities: a refused action must
//! change nothing, and the fold must equal a replay of the accepted ones.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    node_wasm::core::fuzz::own_actions(data);
});
