//! Signals, frames, signed relays and peer records, browser events and time
//! into a peer manager whose peers are proven. Must not panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    node_wasm::peers::fuzz::script(data);
});
