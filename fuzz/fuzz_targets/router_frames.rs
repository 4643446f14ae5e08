//! Frames and timer ticks from three peers into a SynapseSub router holding a
//! linked chain (content probes, catch-up, equivocation). Must not panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    node_wasm::pubsub::fuzz::frames(data);
});
