//! Checkpoint records, state snapshots and snapshot parts from a peer:
//! strict decode and verification. Must not panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    node_wasm::core::fuzz::decode_checkpoint(data);
    node_wasm::snapshot_sync::fuzz_parts(data);
});
