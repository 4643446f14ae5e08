//! Any bytes as a chat endpoint's answer to the agent. Must not panic, and
//! nothing the guardrails refuse may be pending or run by itself.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = node_wasm::agent::fuzz::answer(data);
});
