//! In-browser tests (`wasm-pack test --headless --chrome node-wasm`): the
//! real IndexedDB, real RTCPeerConnections and real DataChannels.
#![cfg(target_arch = "wasm32")]

use node_wasm::framing::{Reassembler, split};
use node_wasm::identity::Identity;
use node_wasm::runtime::util::{now_ms, sleep_ms};
use node_wasm::runtime::{Node, NodeConfig, store};
use node_wasm::session::ProofMode;
use std::rc::Rc;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Waits until `cond` holds, failing the test after `timeout_ms`.
async fn wait_for(what: &str, timeout_ms: f64, cond: impl Fn() -> bool) {
    let start = now_ms();
    while !cond() {
        assert!(now_ms() - start < timeout_ms, "timed out after {timeout_ms} ms waiting for {what}");
        sleep_ms(10).await;
    }
}

#[wasm_bindgen_test]
async fn identity_persists_in_indexeddb() {
    let a = store::load_or_create_identity("test-persist").await.unwrap();
    // A fresh open of the database (as after a reload) finds the same keys.
    let b = store::load_or_create_identity("test-persist").await.unwrap();
    assert_eq!(a.node_id(), b.node_id());
    assert_eq!(a.x25519_public(), b.x25519_public());
    let db = store::open_db().await.unwrap();
    let c = store::load_identity(&db, "test-persist").await.unwrap().unwrap();
    assert_eq!(c.node_id(), a.node_id());
    // Another profile is another node.
    let other = store::load_or_create_identity("test-persist-other").await.unwrap();
    assert_ne!(other.node_id(), a.node_id());
    assert!(store::load_identity(&db, "never-created").await.unwrap().is_none());
}

#[wasm_bindgen_test]
fn framing_round_trips_one_mib_in_wasm() {
    let msg: Vec<u8> = (0..1024 * 1024).map(|i| (i % 253) as u8).collect();
    let mut r = Reassembler::new(2 * 1024 * 1024);
    let mut out = None;
    for f in split(&msg) {
        if let Some(m) = r.push(&f).unwrap() {
            out = Some(m);
        }
    }
    assert_eq!(out.unwrap(), msg);
}

/// Two nodes in one page whose signals go straight to each other.
fn pair(seed_a: u8, seed_b: u8, mode_a: ProofMode) -> (Node, Node) {
    let a = Node::new(Identity::from_seed([seed_a; 32]), NodeConfig { proof_mode: mode_a, ..NodeConfig::default() });
    let b = Node::new(Identity::from_seed([seed_b; 32]), NodeConfig::default());
    let (a2, b2) = (a.clone(), b.clone());
    a.set_signal_sink(Rc::new(move |to, sig| {
        assert_eq!(to, b2.id());
        b2.handle_signal(a2.id(), serde_json::to_value(&sig).unwrap());
    }));
    let (a3, b3) = (a.clone(), b.clone());
    b.set_signal_sink(Rc::new(move |to, sig| {
        assert_eq!(to, a3.id());
        a3.handle_signal(b3.id(), serde_json::to_value(&sig).unwrap());
    }));
    a.set_rendezvous_status("connected", "loopback", None);
    b.set_rendezvous_status("connected", "loopback", None);
    (a, b)
}

/// `n` nodes whose "rendezvous" is an in-page switchboard.
fn mesh(seeds: &[u8]) -> Vec<Node> {
    let nodes: Vec<Node> =
        seeds.iter().map(|s| Node::new(Identity::from_seed([*s; 32]), NodeConfig::default())).collect();
    for n in &nodes {
        let all = nodes.clone();
        let me = n.id();
        n.set_signal_sink(Rc::new(move |to, sig| {
            if let Some(t) = all.iter().find(|x| x.id() == to) {
                t.handle_signal(me, serde_json::to_value(&sig).unwrap());
            }
        }));
        n.set_rendezvous_status("connected", "loopback", None);
    }
    nodes
}

#[wasm_bindgen_test]
async fn with_the_rendezvous_down_a_broken_link_is_remade_through_a_common_peer() {
    let nodes = mesh(&[21, 22, 23]);
    let ids: Vec<_> = nodes.iter().map(Node::id).collect();
    for n in &nodes {
        n.set_directory(ids.clone());
    }
    wait_for("full mesh", 15_000.0, || nodes.iter().all(|n| n.peers().len() == 2)).await;
    for n in &nodes {
        n.announce_record();
    }
    wait_for("peer records", 5_000.0, || nodes.iter().all(|n| n.stats().peer_records_in >= 2)).await;
    // The rendezvous goes away; then the link between node 0 and node 1 breaks.
    for n in &nodes {
        n.set_rendezvous_status("disconnected", "loopback", Some("test: rendezvous stopped".into()));
    }
    let created = nodes[0].stats().connections_created;
    assert!(nodes[0].close_peer(ids[1]));
    wait_for("the link to drop", 5_000.0, || !nodes[0].peers().contains(&ids[1])).await;
    wait_for("0 and 1 reconnected through 2", 20_000.0, || {
        nodes[0].peers().contains(&ids[1])
            && nodes[1].peers().contains(&ids[0])
            && nodes[0].stats().connections_created > created
    })
    .await;
    assert!(nodes[2].stats().relays_forwarded >= 2, "the signals went through node 2");
    assert!(nodes[0].stats().relays_received + nodes[1].stats().relays_received >= 2);
    // And the re-made link carries traffic.
    nodes[0].send_hello("after the heal").unwrap();
    wait_for("hello over the healed link", 5_000.0, || {
        nodes[1].hellos().iter().any(|h| h.from == ids[0] && h.text == "after the heal")
    })
    .await;
    for n in &nodes {
        n.shutdown();
    }
}

#[wasm_bindgen_test]
async fn two_peer_connections_prove_identity_and_move_one_mib() {
    let (a, b) = pair(1, 2, ProofMode::Honest);
    a.set_directory(vec![b.id()]);
    wait_for("both sides proven", 15_000.0, || a.peers() == vec![b.id()] && b.peers() == vec![a.id()]).await;

    let start = now_ms();
    assert!(a.send_to(b.id(), &node_wasm::wire::WireMsg::Blob(vec![7; 1024 * 1024])));
    wait_for("1 MiB delivered", 15_000.0, || b.stats().blob_bytes_in == 1024 * 1024).await;
    let ms = now_ms() - start;
    wasm_bindgen_test::console_log!(
        "1 MiB chunked over a DataChannel in {ms:.1} ms ({:.1} MB/s)",
        1.048576 / (ms / 1000.0)
    );
    assert!(b.stats().frames_in >= 65, "1 MiB must arrive as >= 65 frames of <= 16 KiB");

    assert_eq!(a.send_hello("hello from a").unwrap(), 1);
    wait_for("hello", 5_000.0, || b.hellos().iter().any(|h| h.from == a.id() && h.text == "hello from a")).await;
    a.shutdown();
    b.shutdown();
}

#[wasm_bindgen_test]
async fn simultaneous_offers_resolve_by_perfect_negotiation() {
    let (a, b) = pair(3, 4, ProofMode::Honest);
    // Both sides offer at once: glare.
    a.set_directory(vec![b.id()]);
    b.set_directory(vec![a.id()]);
    wait_for("both proven despite glare", 15_000.0, || a.peers() == vec![b.id()] && b.peers() == vec![a.id()]).await;
    // The polite side may answer with a fresh connection; nothing more.
    assert!(a.stats().connections_created + b.stats().connections_created <= 3);
    a.shutdown();
    b.shutdown();
}

#[wasm_bindgen_test]
async fn a_forged_identity_proof_is_dropped() {
    let (mallory, honest) = pair(5, 6, ProofMode::ForgeProof);
    mallory.set_directory(vec![honest.id()]);
    wait_for("proof rejected", 15_000.0, || honest.stats().proofs_rejected >= 1).await;
    assert!(honest.peers().is_empty());
    mallory.shutdown();
    honest.shutdown();
}

#[wasm_bindgen_test]
async fn a_closed_channel_reconnects() {
    let (a, b) = pair(7, 8, ProofMode::Honest);
    a.set_directory(vec![b.id()]);
    b.set_directory(vec![a.id()]);
    wait_for("proven", 15_000.0, || a.peers().len() == 1 && b.peers().len() == 1).await;
    assert!(a.close_peer(b.id()));
    wait_for("reconnected", 20_000.0, || {
        a.peers().len() == 1 && b.peers().len() == 1 && a.stats().connections_created >= 2
    })
    .await;
    a.shutdown();
    b.shutdown();
}

#[wasm_bindgen_test]
async fn synapsesub_delivers_over_datachannels_and_a_late_joiner_catches_up() {
    use node_wasm::pubsub::GLOBAL_TOPIC;
    use std::cell::RefCell;
    let nodes = mesh(&[31, 32, 33, 34]);
    let got: Vec<Rc<RefCell<Vec<u64>>>> = nodes.iter().map(|_| Rc::new(RefCell::new(vec![]))).collect();
    for (n, g) in nodes.iter().zip(&got) {
        let g = g.clone();
        n.set_deliver_hook(Box::new(move |_, d| g.borrow_mut().push(d.msg.seq)));
    }
    let first: Vec<_> = nodes[..3].iter().map(Node::id).collect();
    for n in &nodes[..3] {
        n.set_directory(first.clone());
    }
    wait_for("mesh of 3", 15_000.0, || nodes[..3].iter().all(|n| n.peers().len() == 2)).await;
    for seq in 1..=20u64 {
        nodes[0].publish(GLOBAL_TOPIC, seq, format!("payload {seq}").into_bytes());
    }
    wait_for("20 messages on both peers", 10_000.0, || got[1].borrow().len() == 20 && got[2].borrow().len() == 20)
        .await;
    // A fourth node joins after the fact and fetches what it lacks.
    let all: Vec<_> = nodes.iter().map(Node::id).collect();
    nodes[3].set_directory(all);
    wait_for("late joiner caught up", 15_000.0, || got[3].borrow().len() == 20).await;
    let mut seqs = got[3].borrow().clone();
    seqs.sort();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>(), "exactly once each");
    assert!(nodes[3].pubsub_stats().pieces_requested > 0, "catch-up used WANT_PIECE");
    for n in &nodes {
        n.shutdown();
    }
}

/// The deterministic core gives the same state hash in the browser as
/// natively (the constant is checked by the native unit tests too).
#[wasm_bindgen_test]
fn core_state_hash_matches_native() {
    assert_eq!(node_wasm::core::vectors::golden_state_hash_hex(), node_wasm::core::vectors::GOLDEN_STATE_HASH);
}

/// `state()` goes through the JSON-compatible `serde_wasm_bindgen`
/// serializer, which refuses integer map keys and integers above 2^53: a
/// state with a tool, its custodians' grants and the genesis rules must
/// serialize (it came back `null` once, for each of those).
#[wasm_bindgen_test]
fn a_state_with_tool_grants_and_genesis_rules_reaches_js() {
    use node_wasm::core::hlc::Hlc;
    use node_wasm::core::op::{OpId, SealedKey, SealedSecret, ToolType};
    use node_wasm::core::state::State;
    use node_wasm::core::tools::{CommonTool, ToolStatus};
    use serde::Serialize;
    let key = SealedKey {
        recipient: Identity::from_seed([1; 32]).node_id(),
        ephemeral: [2; 32],
        nonce: [3; 12],
        sealed_key: vec![4; 48],
    };
    for mut st in [State::open(), State::genesis()] {
        let tool = CommonTool {
            tool_id: "hook".into(),
            channel: "dev".into(),
            description: String::new(),
            tool_type: ToolType::Webhook,
            webhook_url: "https://example.test".into(),
            monthly_cost_sp: 1,
            status: ToolStatus::Active,
            acquired: Hlc::ZERO,
            paid_until_ms: 1,
            secret: SealedSecret { nonce: [0; 12], ciphertext: vec![1], recipients: vec![key.clone()] },
            changed: Hlc::ZERO,
            grants: [(OpId([9; 32]), [(0u8, key.clone())].into_iter().collect())].into_iter().collect(),
        };
        st.tools.tools.insert("hook".into(), tool);
        let v = st.serialize(&serde_wasm_bindgen::Serializer::json_compatible());
        assert!(v.is_ok(), "{v:?}");
    }
}

#[wasm_bindgen_test]
async fn ops_persist_in_indexeddb_per_profile() {
    let db = store::open_db().await.unwrap();
    store::save_ops(&db, "ops-a", &[("01".into(), vec![1, 2, 3]), ("02".into(), vec![4])]).await.unwrap();
    store::save_ops(&db, "ops-b", &[("03".into(), vec![9])]).await.unwrap();
    let mut a = store::load_ops(&db, "ops-a").await.unwrap();
    a.sort();
    assert_eq!(a, vec![vec![1, 2, 3], vec![4]]);
    assert_eq!(store::load_ops(&db, "ops-b").await.unwrap(), vec![vec![9]]);
    assert!(store::load_ops(&db, "ops-none").await.unwrap().is_empty());
}

/// Policy modules run in wasmi inside the browser node with the same
/// results as natively (`core::upgrade_tests`), and malicious modules are
/// contained: an infinite loop (fuel), a `memory.grow` bomb (memory cap),
/// an unknown import, a wrong hash and a missing export (refused at load).
#[wasm_bindgen_test]
fn policy_modules_run_in_wasmi_in_the_browser() {
    use node_wasm::core::upgrade::{CallFault, Policy, PolicyModule, engine, examples, module_hash};
    let load = |bytes: &[u8], policy| PolicyModule::load(&engine(), bytes, &module_hash(bytes), policy);
    let wat = |t: &str| wat::parse_str(t).unwrap();
    // The examples as built by build.rs, and from their WAT source here: the same bytes.
    assert_eq!(examples::QUADRATIC_VOTE, wat(include_str!("../modules/quadratic_vote.wat")).as_slice());
    let q = load(examples::QUADRATIC_VOTE, Policy::VoteWeight).unwrap();
    assert_eq!(q.vote_weight(4_000, 0, true), Ok(3000));
    assert_eq!(q.vote_weight(2_000, 0, false), Ok(1000 + 1414));
    let t = load(examples::FLAT_TAX, Policy::Tax).unwrap();
    assert_eq!(t.tax(1000, 200), Ok(50));
    let c = load(examples::CHEAPEST_BID, Policy::AuctionScore).unwrap();
    assert_eq!(c.auction_score(400_000, 1_000_000, 1_000_000), Ok(400_000));

    let bomb = load(
        &wat(r#"(module (func (export "tax") (param i64 i64) (result i64) (loop $l (br $l)) (i64.const 0)))"#),
        Policy::Tax,
    )
    .unwrap();
    assert!(matches!(bomb.tax(1000, 500), Err(CallFault::Trap(_))));
    let grow = load(
        &wat(r#"(module (memory 1)
          (func (export "tax") (param i64 i64) (result i64)
            (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
            (i64.const 0)))"#),
        Policy::Tax,
    )
    .unwrap();
    assert!(matches!(grow.tax(1000, 500), Err(CallFault::Trap(_))));
    let import = wat(r#"(module (import "env" "now" (func $now (result i64)))
          (func (export "tax") (param i64 i64) (result i64) (call $now)))"#);
    assert_eq!(load(&import, Policy::Tax).unwrap_err().code(), "module_import");
    let wrong_hash = PolicyModule::load(&engine(), examples::FLAT_TAX, &[7; 32], Policy::Tax);
    assert_eq!(wrong_hash.unwrap_err().code(), "module_hash_mismatch");
    assert_eq!(load(examples::FLAT_TAX, Policy::VoteWeight).unwrap_err().code(), "module_missing_export");
}

/// Benchmark (figures in docs/BENCHMARKS.md): a policy call in wasmi against
/// the built-in Rust policy, and module load (validate + compile + trial
/// instantiation). Run in release for the figures:
/// `wasm-pack test --release --headless --chrome --mode no-install node-wasm --test browser -- --nocapture policy_call_cost`.
#[wasm_bindgen_test]
fn policy_call_cost() {
    use node_wasm::core::governance::vote_weight_milli;
    use node_wasm::core::reputation::Reputation;
    use node_wasm::core::upgrade::{Policy, PolicyModule, engine, examples, module_hash};
    let perf = web_sys::window().unwrap().performance().unwrap();
    let e = engine();
    let h = module_hash(examples::QUADRATIC_VOTE);
    let loads = 50;
    let t0 = perf.now();
    for _ in 0..loads {
        PolicyModule::load(&e, examples::QUADRATIC_VOTE, &h, Policy::VoteWeight).unwrap();
    }
    let load_us = (perf.now() - t0) * 1000.0 / f64::from(loads);
    let q = PolicyModule::load(&e, examples::QUADRATIC_VOTE, &h, Policy::VoteWeight).unwrap();
    let calls = 2000u32;
    let t0 = perf.now();
    let mut acc = 0u64;
    for i in 0..calls {
        acc = acc.wrapping_add(q.vote_weight(u64::from(i) * 1000, 0, false).unwrap());
    }
    let wasmi_us = (perf.now() - t0) * 1000.0 / f64::from(calls);
    let t0 = perf.now();
    for i in 0..calls {
        let rep = Reputation { total: u64::from(i) * 1000, ..Default::default() };
        acc = acc.wrapping_add(vote_weight_milli(&rep, &[]).0);
    }
    let builtin_us = (perf.now() - t0) * 1000.0 / f64::from(calls);
    let t = PolicyModule::load(&e, examples::FLAT_TAX, &module_hash(examples::FLAT_TAX), Policy::Tax).unwrap();
    let t0 = perf.now();
    for i in 0..calls {
        acc = acc.wrapping_add(t.tax(u64::from(i), 200).unwrap());
    }
    let tax_us = (perf.now() - t0) * 1000.0 / f64::from(calls);
    let t0 = perf.now();
    for i in 0..calls {
        acc = acc.wrapping_add(node_wasm::core::economy::tax(u64::from(i), 200));
    }
    let tax_builtin_us = (perf.now() - t0) * 1000.0 / f64::from(calls);
    console_log!(
        "policy bench: module load {load_us:.1} µs; vote_weight wasmi {wasmi_us:.2} µs/call vs built-in {builtin_us:.3} µs; \
         tax wasmi {tax_us:.2} µs/call vs built-in {tax_builtin_us:.3} µs (checksum {acc})"
    );
    assert!(acc > 0);
}
