//! `window.synapse` in the browser (`wasm-pack test --headless --chrome
//! --mode no-install node-wasm --test api`): every wrapper added for issue 7
//! driven through the same `SynapseNode` methods JavaScript calls, between
//! real nodes over real DataChannels, with assertions on the replicated
//! state and on the core's own refusal sentences; identity export/import
//! through IndexedDB; and what a reload loads versus fetches.
#![cfg(target_arch = "wasm32")]

use js_sys::Promise;
use node_wasm::core::op::OpId;
use node_wasm::core::reject::Reject;
use node_wasm::identity::{Identity, NodeId};
use node_wasm::runtime::ledger::Ledger;
use node_wasm::runtime::util::{now_ms, sleep_ms};
use node_wasm::runtime::{Node, NodeConfig, SynapseNode, store};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn wait_for(what: &str, timeout_ms: f64, cond: impl Fn() -> bool) {
    let start = now_ms();
    while !cond() {
        assert!(now_ms() - start < timeout_ms, "timed out after {timeout_ms} ms waiting for {what}");
        sleep_ms(10).await;
    }
}

/// The value a Promise resolves with; fails the test with the rejection.
async fn ok(p: Promise) -> JsValue {
    match JsFuture::from(p).await {
        Ok(v) => v,
        Err(e) => panic!("rejected: {}", node_wasm::runtime::util::js_err(&e)),
    }
}

async fn ok_id(p: Promise) -> OpId {
    let v = ok(p).await.as_string().expect("an id string");
    OpId::parse(&v).expect("64 hex")
}

/// The message of the Error a Promise rejects with; fails if it resolves.
async fn err(p: Promise) -> String {
    match JsFuture::from(p).await {
        Ok(v) => panic!("resolved with {v:?}, expected a rejection"),
        Err(e) => node_wasm::runtime::util::js_err(&e),
    }
}

/// A JSON value as JavaScript builds it (plain objects, not `Map`s).
fn js(v: &serde_json::Value) -> Result<JsValue, serde_wasm_bindgen::Error> {
    use serde::Serialize;
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
}

/// A profile name not used by earlier runs in the same browser profile.
fn fresh(prefix: &str) -> String {
    format!("{prefix}-{}", (js_sys::Math::random() * 1e9) as u64)
}

struct Peer {
    node: Node,
    ledger: Ledger,
    api: SynapseNode,
}

impl Peer {
    fn id(&self) -> NodeId {
        self.node.id()
    }
}

/// Nodes with ledgers and API objects whose "rendezvous" is an in-page
/// switchboard, connected to each other.
fn peers(identities: Vec<(Identity, String)>) -> Vec<Peer> {
    let out: Vec<Peer> = identities
        .into_iter()
        .map(|(identity, profile)| {
            let node = Node::new(identity, NodeConfig::default());
            let ledger = Ledger::attach(&node, &profile, &node_wasm::core::genesis::Genesis::open("test"));
            let api = SynapseNode::new(node.clone(), ledger.clone(), profile);
            Peer { node, ledger, api }
        })
        .collect();
    let nodes: Vec<Node> = out.iter().map(|p| p.node.clone()).collect();
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
    let ids: Vec<NodeId> = nodes.iter().map(Node::id).collect();
    for n in &nodes {
        n.set_directory(ids.clone());
    }
    out
}

/// Wires a late node straight to `w` (an in-page switchboard of two) and
/// lets it dial `w`.
fn meet(node: &Node, w: &Node) {
    let (n2, w2) = (node.clone(), w.clone());
    node.set_signal_sink(Rc::new(move |_, sig| w2.handle_signal(n2.id(), serde_json::to_value(&sig).unwrap())));
    let (n3, w3) = (node.clone(), w.clone());
    w.set_signal_sink(Rc::new(move |_, sig| n3.handle_signal(w3.id(), serde_json::to_value(&sig).unwrap())));
    node.set_rendezvous_status("connected", "loopback", None);
    node.set_directory(vec![w.id()]);
}

async fn connected(ps: &[Peer]) {
    let n = ps.len() - 1;
    wait_for("full mesh", 20_000.0, || ps.iter().all(|p| p.node.peers().len() == n)).await;
}

fn balance(p: &Peer, who: NodeId) -> u64 {
    p.ledger.with_state(|st| st.ledger.accounts.get(&who).map_or(0, |a| a.balance))
}

#[wasm_bindgen_test]
async fn team_ops_events_and_deadline_ops_through_the_api() {
    let ps =
        peers(vec![(Identity::from_seed([61; 32]), fresh("api-a")), (Identity::from_seed([62; 32]), fresh("api-b"))]);
    connected(&ps).await;
    let (a, b) = (&ps[0], &ps[1]);
    let (ia, ib) = (a.id(), b.id());

    // on('change') fires, its returned function and off() remove it.
    let fired = Rc::new(Cell::new(0u32));
    let f2 = fired.clone();
    let cb = Closure::<dyn FnMut()>::new(move || f2.set(f2.get() + 1)).into_js_value();
    let cb: js_sys::Function = cb.into();
    let unsubscribe = a.api.on("change".into(), cb.clone()).unwrap();
    assert!(a.api.on("chnage".into(), cb.clone()).unwrap_err().as_string().is_none(), "an Error, not a string");

    ok(a.api.create_channel("dev".into(), Some("dev".into()))).await;
    assert!(fired.get() > 0, "on('change') listener called");
    unsubscribe.call0(&JsValue::NULL).unwrap();
    assert!(!a.api.off("change".into(), cb.clone()).unwrap(), "already removed by the returned function");
    let before = fired.get();
    ok(a.api.set_skills(vec!["Coordination".into()])).await;
    assert_eq!(fired.get(), before, "no call after unsubscribing");
    assert!(a.ledger.with_state(|st| st.skills[&ia].contains("coordination")));

    // A team task: one sub-task needing `writing`, reward 20, bonus 5.
    let spec = serde_json::json!({
        "title": "Write the manual",
        "subtasks": [{"title": "chapter 1", "required_skills": ["writing"], "reward": 20}],
        "coordinator_bonus": 5,
        "max_team_size": 2,
    });
    let spec = js(&spec).unwrap();
    let team = ok_id(a.api.create_team_task("dev".into(), spec)).await;
    assert_eq!(a.ledger.with_state(|st| st.teams[&team].escrow), 25);
    assert_eq!(balance(a, ia), 975);
    // Unknown fields are refused before anything is signed.
    let bad = serde_wasm_bindgen::to_value(
        &serde_json::json!({"title": "x", "subtasks": [], "max_team_size": 2, "bonus": 1}),
    )
    .unwrap();
    let e = err(a.api.create_team_task("dev".into(), bad)).await;
    assert!(e.starts_with("bad team task: unknown field `bonus`"), "{e}");

    wait_for("b sees the team task", 15_000.0, || b.ledger.with_state(|st| st.teams.contains_key(&team))).await;
    // Before anyone coordinates it, applying is refused with the core's sentence.
    assert_eq!(
        err(b.api.apply_team(team.to_text())).await,
        Reject::TeamNotForming { task: team, status: "open" }.to_string()
    );
    ok(a.api.claim_team(team.to_text())).await;
    // Forming, nobody accepted yet: the API says what the team waits for.
    let waiting: serde_json::Value = serde_wasm_bindgen::from_value(a.api.team_waiting_for(team.to_text())).unwrap();
    assert_eq!(
        waiting["sentence"],
        "waiting for a member with writing for sub-task 1 \"chapter 1\" (0 accepted member(s), each assigned to one \
         sub-task)"
    );
    wait_for("b sees the coordinator", 15_000.0, || b.ledger.with_state(|st| st.teams[&team].coordinator == Some(ia)))
        .await;
    assert_eq!(err(b.api.apply_team(team.to_text())).await, Reject::NoSkills.to_string());
    ok(b.api.set_skills(vec!["Writing".into()])).await;
    ok(b.api.apply_team(team.to_text())).await;
    wait_for("a sees the applicant", 15_000.0, || b_applied(a, team, ib)).await;
    let e = err(a.api.accept_member(team.to_text(), "nope".into())).await;
    assert_eq!(e, "applicant: node id must be 64 hex characters");
    ok(a.api.accept_member(team.to_text(), ib.to_text())).await;
    let ws = a.ledger.with_state(|st| {
        let t = &st.teams[&team];
        assert_eq!(t.status.name(), "in_progress");
        assert_eq!(t.subtasks[0].assignee, Some(ib));
        t.workspace.clone().unwrap()
    });
    assert!(a.ledger.with_state(|st| st.ledger.channels.contains_key(&ws)), "workspace channel created");
    assert!(a.api.team_waiting_for(team.to_text()).is_null(), "a team that started waits for nothing");
    wait_for("b sees the team start", 15_000.0, || {
        b.ledger.with_state(|st| st.teams[&team].status.name() == "in_progress")
    })
    .await;
    assert_eq!(
        err(a.api.complete_subtask(team.to_text(), 0)).await,
        Reject::SubTaskNotYours { task: team, index: 0 }.to_string()
    );
    assert_eq!(err(b.api.complete_subtask(team.to_text(), 300)).await, "sub-task index must be 0 to 255");
    ok(b.api.complete_subtask(team.to_text(), 0)).await;
    let tax = |x: u64| node_wasm::core::economy::tax(x, b.ledger.with_state(|st| st.params.tax_bps));
    assert_eq!(b.ledger.with_state(|st| st.teams[&team].status.name()), "completed");
    assert_eq!(balance(b, ib), 1000 + 20 - tax(20));
    wait_for("a is paid its bonus", 15_000.0, || balance(a, ia) == 975 + 5 - tax(5)).await;

    // deleteTask works on team tasks too, refunding the escrow.
    let spec2 = js(&serde_json::json!({
        "title": "Second", "subtasks": [{"title": "s", "reward": 10}], "max_team_size": 2,
    }))
    .unwrap();
    let before = balance(a, ia);
    let team2 = ok_id(a.api.create_team_task("dev".into(), spec2)).await;
    assert_eq!(balance(a, ia), before - 10);
    ok(a.api.delete_task(team2.to_text())).await;
    assert_eq!(a.ledger.with_state(|st| st.teams[&team2].status.name()), "deleted");
    assert_eq!(balance(a, ia), before);

    // Deadline ops: refused with the core's sentence before they are due.
    let p = js(&serde_json::json!({"kind": "generic", "title": "Lunch?"})).unwrap();
    let proposal = ok_id(a.api.propose("dev".into(), p)).await;
    let deadline_ms = a.ledger.with_state(|st| st.gov.proposals[&proposal].deadline_ms);
    assert_eq!(
        err(a.api.expire_proposal(proposal.to_text())).await,
        Reject::NotExpired { proposal, deadline_ms }.to_string()
    );
    assert_eq!(err(a.api.tool_upkeep("nope".into())).await, "no common tool \"nope\" is known here");

    for p in &ps {
        p.node.shutdown();
    }
}

fn b_applied(a: &Peer, team: OpId, ib: NodeId) -> bool {
    a.ledger.with_state(|st| st.teams[&team].applicants.contains_key(&ib))
}

#[wasm_bindgen_test]
async fn identity_export_import_round_trip_and_refusals() {
    let source = Identity::from_seed([71; 32]);
    let profile = fresh("exp");
    let ps = peers(vec![(Identity::from_seed([71; 32]), profile.clone())]);
    let a = &ps[0];
    ok(a.api.create_channel("exp".into(), None)).await;
    let text = ok(a.api.export_identity()).await.as_string().unwrap();
    assert!(text.contains("\"chain_head\"") && text.contains("\"seq\": 1"), "{text}");

    // Into a fresh profile: the same node id, stored and readable.
    let fresh_profile = fresh("imp");
    let id = store::import_identity(&fresh_profile, &text, false).await.unwrap();
    assert_eq!(id, source.node_id());
    let db = store::open_db().await.unwrap();
    let stored = store::load_identity(&db, &fresh_profile).await.unwrap().unwrap();
    assert_eq!(stored.node_id(), source.node_id());
    assert_eq!(stored.x25519_public(), source.x25519_public());
    assert_eq!(store::load_chain_floor(&db, &fresh_profile, source.node_id()).await.unwrap(), Some(1));
    // Importing the same identity again is a harmless no-op.
    assert_eq!(store::import_identity(&fresh_profile, &text, false).await.unwrap(), source.node_id());
    // export_identity (the UI's Rust entry point) gives it back.
    let again = store::export_identity(&fresh_profile).await.unwrap();
    let back = node_wasm::persistence::parse_identity_file(&again).unwrap();
    assert_eq!(back.identity.node_id(), source.node_id());
    assert_eq!(back.chain_head.map(|h| h.seq), Some(1));

    // A different identity is not silently put over it...
    let other = Identity::from_seed([72; 32]);
    let other_text = node_wasm::persistence::encode_identity_file(&other, "x", 0, None);
    let e = store::import_identity(&fresh_profile, &other_text, false).await.unwrap_err();
    assert_eq!(
        e,
        format!(
            "profile {fresh_profile:?} already holds node {}…; importing would replace it with node {}… and the \
             current secret key would be lost unless exported. Export it first, then import with {{replace: true}}",
            source.node_id().short(),
            other.node_id().short()
        )
    );
    assert_eq!(store::load_identity(&db, &fresh_profile).await.unwrap().unwrap().node_id(), source.node_id());
    // ...unless asked; then the old identity's floor no longer applies.
    assert_eq!(store::import_identity(&fresh_profile, &other_text, true).await.unwrap(), other.node_id());
    assert_eq!(store::load_identity(&db, &fresh_profile).await.unwrap().unwrap().node_id(), other.node_id());
    assert_eq!(store::load_chain_floor(&db, &fresh_profile, other.node_id()).await.unwrap(), None);

    // Through the JS API: corrupted and mismatched files are refused with a
    // sentence, and nothing is stored.
    let mut j: serde_json::Value = serde_json::from_str(&text).unwrap();
    j["node_id"] = serde_json::json!(other.node_id().to_text());
    let mismatched = j.to_string();
    let e = err(a.api.import_identity(mismatched, None)).await;
    assert_eq!(
        e,
        format!(
            "identity file: node_id {}… does not match its Ed25519 secret key (which gives node {}…); the file is \
             corrupted or was edited",
            other.node_id().short(),
            source.node_id().short()
        )
    );
    let truncated = text[..text.len() / 2].to_string();
    let e = err(a.api.import_identity(truncated, None)).await;
    assert!(e.starts_with("not a Synapse-NG identity file: it is not valid JSON"), "{e}");
    let opts = js(&serde_json::json!({"force": true})).unwrap();
    let e = err(a.api.import_identity(text.clone(), Some(opts))).await;
    assert!(e.starts_with("bad import options: unknown field `force`"), "{e}");
    // A misspelt field of a task is refused too, not ignored.
    let t = js(&serde_json::json!({"title": "x", "rewrad": 5})).unwrap();
    let e = err(a.api.create_task("exp".into(), t)).await;
    assert!(e.starts_with("bad task: unknown field `rewrad`"), "{e}");
    // null / undefined members count as absent.
    let t = js(&serde_json::json!({"title": "x", "description": null, "reward": 0})).unwrap();
    ok(a.api.create_task("exp".into(), t)).await;
    // The running profile's own identity re-imported: resolves with its id.
    let same = ok(a.api.import_identity(text.clone(), None)).await.as_string().unwrap();
    assert_eq!(same, source.node_id().to_text());
    db.close();
    for p in &ps {
        p.node.shutdown();
    }
}

/// An identity imported into a new profile must not sign before its own
/// earlier ops have arrived (that would reuse a seq: equivocation); once a
/// peer has sent them, it continues the chain.
#[wasm_bindgen_test]
async fn an_imported_identity_waits_for_its_own_ops_then_continues_its_chain() {
    let seed = [81; 32];
    let old_profile = fresh("chain-old");
    let ps = peers(vec![(Identity::from_seed(seed), old_profile), (Identity::from_seed([82; 32]), fresh("chain-w"))]);
    connected(&ps).await;
    let (old, witness) = (&ps[0], &ps[1]);
    ok(old.api.create_channel("chain".into(), None)).await;
    ok(old.api.set_skills(vec!["rust".into()])).await;
    let me = old.id();
    wait_for("the witness holds both ops", 15_000.0, || {
        witness.ledger.with_state(|st| st.skills.contains_key(&me) && st.ledger.channels.contains_key("chain"))
    })
    .await;
    let text = ok(old.api.export_identity()).await.as_string().unwrap();
    old.node.shutdown();

    // The file goes to a new profile; the "reloaded" node starts there.
    let new_profile = fresh("chain-new");
    store::import_identity(&new_profile, &text, false).await.unwrap();
    let node = Node::new(Identity::from_seed(seed), NodeConfig::default());
    let ledger = Ledger::attach(&node, &new_profile, &node_wasm::core::genesis::Genesis::open("test"));
    let api = SynapseNode::new(node.clone(), ledger.clone(), new_profile);
    ledger.load().await.unwrap();
    assert_eq!(ledger.chain_floor(), 2);
    let refused = err(api.create_channel("too-early".into(), None)).await;
    assert_eq!(
        refused,
        "waiting for this node's own ops up to #2 to arrive from peers before signing (they exist elsewhere; signing \
         now would reuse a sequence number, which the network treats as equivocation)"
    );
    // Meet the witness, which holds the old ops.
    meet(&node, &witness.node);
    wait_for("own ops fetched back", 20_000.0, || ledger.own_head().map(|h| h.0) == Some(2)).await;
    ok(api.create_channel("later".into(), None)).await;
    assert_eq!(ledger.own_head().map(|h| h.0), Some(3), "the chain continues at seq 3");
    wait_for("the witness accepts seq 3", 15_000.0, || {
        witness.ledger.with_state(|st| st.ledger.channels.contains_key("later"))
    })
    .await;
    assert!(witness.ledger.snapshot().equivocators.is_empty(), "no equivocation");
    node.shutdown();
    witness.node.shutdown();
}

/// A "reloaded" node folds what IndexedDB holds and counts separately what
/// peers then send: new ops (`ops_fetched`) versus ops it already had
/// (`ops_refetched`).
#[wasm_bindgen_test]
async fn a_reload_loads_from_indexeddb_and_counts_what_peers_send() {
    let seed_b = [92; 32];
    let profile_b = fresh("reload-b");
    let ps = peers(vec![
        (Identity::from_seed([91; 32]), fresh("reload-a")),
        (Identity::from_seed(seed_b), profile_b.clone()),
    ]);
    connected(&ps).await;
    let (a, b) = (&ps[0], &ps[1]);
    ok(a.api.create_channel("r".into(), None)).await;
    for i in 0..3 {
        let t = js(&serde_json::json!({"title": format!("t{i}"), "reward": 1})).unwrap();
        ok(a.api.create_task("r".into(), t)).await;
    }
    wait_for("b holds a's 4 ops", 15_000.0, || b.ledger.with_state(|st| st.tasks.len() == 3)).await;
    sleep_ms(300).await; // the 50 ms save batch has been written
    assert!(b.ledger.storage_error().is_none());
    b.node.shutdown();
    // One more op while b is away.
    let t = js(&serde_json::json!({"title": "while away", "reward": 1})).unwrap();
    ok(a.api.create_task("r".into(), t)).await;

    let node = Node::new(Identity::from_seed(seed_b), NodeConfig::default());
    let ledger = Ledger::attach(&node, &profile_b, &node_wasm::core::genesis::Genesis::open("test"));
    let loaded = ledger.load().await.unwrap();
    assert_eq!(loaded, 4, "a's 4 ops from IndexedDB");
    assert_eq!(ledger.with_state(|st| st.tasks.len()), 3, "state restored before any peer is met");
    let an = a.node.clone();
    let (n2, a2) = (node.clone(), an.clone());
    node.set_signal_sink(Rc::new(move |_, sig| a2.handle_signal(n2.id(), serde_json::to_value(&sig).unwrap())));
    let (n3, a3) = (node.clone(), an.clone());
    an.set_signal_sink(Rc::new(move |_, sig| n3.handle_signal(a3.id(), serde_json::to_value(&sig).unwrap())));
    node.set_rendezvous_status("connected", "loopback", None);
    node.set_directory(vec![an.id()]);
    wait_for("the missing op arrives", 20_000.0, || ledger.with_state(|st| st.tasks.len() == 4)).await;
    sleep_ms(2_000).await; // let catch-up settle
    let s = ledger.stats();
    wasm_bindgen_test::console_log!(
        "after reload: loaded {}, fetched {}, refetched {}",
        s.ops_loaded,
        s.ops_fetched,
        s.ops_refetched
    );
    assert_eq!(s.ops_loaded, 4);
    assert_eq!(s.ops_fetched, 1, "only the op made while away is new");
    assert_eq!(s.ops_refetched, 0, "ops restored from IndexedDB are not fetched again");
    node.shutdown();
    a.node.shutdown();
}

/// Rule `durable_before_visible`: when an action's promise resolves, its op
/// is already in IndexedDB (with the own-chain mark), so a tab closed the
/// next moment keeps it.
#[wasm_bindgen_test]
async fn an_acknowledged_op_is_already_in_indexeddb() {
    let profile = fresh("durable");
    let ps = peers(vec![(Identity::from_seed([91; 32]), profile.clone())]);
    let a = &ps[0];
    let id = ok_id(a.api.create_channel("durable".into(), None)).await;
    let db = store::open_db().await.unwrap();
    let stored = store::load_ops(&db, &profile).await.unwrap();
    let ids: Vec<OpId> =
        stored.iter().filter_map(|b| node_wasm::core::op::SignedOp::decode(b).ok()).map(|op| op.id()).collect();
    assert!(ids.contains(&id), "the op is stored when its promise resolves");
    let mark = store::load_mark(&db, &profile, a.id()).await.unwrap().expect("a mark");
    assert_eq!(mark.op, id, "the mark names the last own op committed");
    assert_eq!(a.ledger.storage_status().uncommitted, 0);
    db.close();
    a.node.shutdown();
}

/// Rule `one_writer_per_profile`: two tabs of one profile (same identity,
/// same stored ops) both try to sign the next seq; the second is refused
/// before anything is written or published, and stops signing.
#[wasm_bindgen_test]
async fn a_second_tab_of_the_profile_cannot_reuse_a_seq() {
    let profile = fresh("two-tabs");
    let seed = [92; 32];
    let tab = || {
        let node = Node::new(Identity::from_seed(seed), NodeConfig::default());
        let ledger = Ledger::attach(&node, &profile, &node_wasm::core::genesis::Genesis::open("test"));
        let api = SynapseNode::new(node.clone(), ledger.clone(), profile.clone());
        (node, ledger, api)
    };
    let (n1, l1, api1) = tab();
    l1.load().await.unwrap();
    ok(api1.create_channel("first".into(), None)).await;
    // The second tab loads now: it holds seq 1 and would sign seq 2.
    let (n2, l2, api2) = tab();
    l2.load().await.unwrap();
    ok(api1.create_channel("tab-one".into(), None)).await;
    let refused = err(api2.create_channel("tab-two".into(), None)).await;
    assert!(refused.contains("open in another tab, which signed op #2 first"), "{refused}");
    assert_eq!(l2.stats().ops_conflicted, 1);
    assert_eq!(n2.pubsub_stats().published, 1, "only seq 1 (re-published at load) went out");
    let later = err(api2.create_channel("again".into(), None)).await;
    assert!(later.contains("another tab"), "{later}");
    n1.shutdown();
    n2.shutdown();
}

/// Rule `self_fork`: the same identity run in two places (here: a second
/// profile that never saw the first one's ops) signs a second op at seq 1.
/// A peer holding the first hands it the evidence; the node says it forked
/// itself, and refuses to sign again.
#[wasm_bindgen_test]
async fn a_node_that_forked_itself_says_so_and_stops_signing() {
    let seed = [93; 32];
    let ps =
        peers(vec![(Identity::from_seed(seed), fresh("fork-a")), (Identity::from_seed([94; 32]), fresh("fork-w"))]);
    connected(&ps).await;
    let (first, witness) = (&ps[0], &ps[1]);
    ok(first.api.create_channel("one".into(), None)).await;
    let me = first.id();
    wait_for("the witness holds the first op", 15_000.0, || {
        witness.ledger.with_state(|st| st.ledger.channels.contains_key("one"))
    })
    .await;
    first.node.shutdown();

    // The same identity elsewhere, alone: it knows nothing of seq 1 and signs it.
    let node = Node::new(Identity::from_seed(seed), NodeConfig::default());
    let profile = fresh("fork-b");
    let ledger = Ledger::attach(&node, &profile, &node_wasm::core::genesis::Genesis::open("test"));
    let api = SynapseNode::new(node.clone(), ledger.clone(), profile);
    ledger.load().await.unwrap();
    ok(api.create_channel("two".into(), None)).await;
    assert_eq!(ledger.chain_status().sentence, None);
    // It meets the witness, which holds the other op at seq 1.
    meet(&node, &witness.node);
    wait_for("the fork to surface on the node itself", 20_000.0, || {
        matches!(ledger.chain_status().guard, node_wasm::chain_guard::GuardState::Forked { seq: 1 })
    })
    .await;
    let sentence = ledger.chain_status().sentence.unwrap_or_default();
    assert!(sentence.contains("two different ops at #1"), "{sentence}");
    let refused = err(api.create_channel("three".into(), None)).await;
    assert_eq!(refused, sentence);
    wait_for("the witness lists the equivocator", 15_000.0, || {
        witness.ledger.snapshot().equivocators.iter().any(|e| e.author == me && e.seq == 1)
    })
    .await;
    node.shutdown();
    witness.node.shutdown();
}

/// `schemas()` and `validate(schema, value)`: the built-in schemas with
/// their fields, defaults filled in, every problem reported at once, and a
/// clear error for an unknown schema.
#[wasm_bindgen_test]
async fn schemas_are_listed_and_values_dry_validated() {
    let ps = peers(vec![(Identity::from_seed([95; 32]), fresh("schemas"))]);
    let a = &ps[0];
    let list: serde_json::Value = serde_wasm_bindgen::from_value(a.api.schemas()).unwrap();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["proposal_v1", "task_v1", "task_v2"]);
    let title = &list[1]["fields"].as_array().unwrap().iter().find(|f| f["name"] == "title").unwrap().clone();
    assert_eq!(
        (title["type"].as_str(), title["required"].as_bool(), title["max"].as_i64()),
        (Some("string"), Some(true), Some(200))
    );
    let check = |v: serde_json::Value| -> serde_json::Value {
        let r = a.api.validate("task_v1".into(), js(&v).unwrap()).unwrap_or_else(|_| panic!("validate threw"));
        serde_wasm_bindgen::from_value(r).unwrap()
    };
    let good = check(serde_json::json!({"title": "Fix"}));
    assert_eq!(good["ok"], true);
    assert_eq!(good["value"]["status"], "open", "defaults filled in");
    let bad = check(serde_json::json!({"reward": true, "status": "done"}));
    assert_eq!(bad["ok"], false);
    let fields: Vec<&str> = bad["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["title", "reward", "status"]);
    assert!(a.api.validate("nope".into(), js(&serde_json::json!({})).unwrap()).is_err(), "unknown schema");
    a.node.shutdown();
}

/// A counting listener for `on(event, cb)`.
fn counter(api: &SynapseNode, event: &str) -> Rc<Cell<u32>> {
    let n = Rc::new(Cell::new(0u32));
    let n2 = n.clone();
    let cb: js_sys::Function = Closure::<dyn FnMut()>::new(move || n2.set(n2.get() + 1)).into_js_value().into();
    api.on(event.into(), cb).unwrap();
    n
}

#[wasm_bindgen_test]
async fn domain_events_fire_for_their_domain_only_and_read_models_match_the_state() {
    let ps = peers(vec![(Identity::from_seed([71; 32]), fresh("api-ev"))]);
    let a = &ps[0];
    let [tasks, gov, channels, economy, change] =
        ["tasks", "governance", "channels", "economy", "change"].map(|e| counter(&a.api, e));
    let bad = a.api.on("task".into(), js_sys::Function::new_no_args("")).unwrap_err();
    assert!(node_wasm::runtime::util::js_err(&bad).contains("\"tasks\""), "the error lists the events");

    ok(a.api.create_channel("dev".into(), None)).await;
    assert!(channels.get() > 0 && economy.get() > 0, "a channel (and the first op's mint)");
    assert_eq!((tasks.get(), gov.get()), (0, 0), "no task or governance event for a channel");

    let (t0, g0) = (tasks.get(), gov.get());
    let t = ok_id(a.api.create_task("dev".into(), js(&serde_json::json!({"title": "t", "reward": 5})).unwrap())).await;
    assert!(tasks.get() > t0, "on('tasks') fired");
    assert_eq!(gov.get(), g0, "on('governance') did not");

    let t1 = tasks.get();
    let spec = serde_json::json!({"kind": "generic", "title": "p"});
    ok(a.api.propose("dev".into(), js(&spec).unwrap())).await;
    assert!(gov.get() > g0, "on('governance') fired");
    assert_eq!(tasks.get(), t1, "on('tasks') did not");
    assert!(change.get() >= 3, "on('change') fires for everything");

    // The read models are the state's, shaped for JavaScript.
    let listed: serde_json::Value = serde_wasm_bindgen::from_value(a.api.tasks()).unwrap();
    assert_eq!(listed[0]["id"], serde_json::json!(t.to_text()));
    let rows: serde_json::Value = serde_wasm_bindgen::from_value(a.api.proposals()).unwrap();
    assert_eq!(rows[0]["proposal"]["title"], "p");
    assert_eq!(rows[0]["tally"]["outcome"], "pending");
    let chans: serde_json::Value = serde_wasm_bindgen::from_value(a.api.channels()).unwrap();
    assert!(chans.as_array().unwrap().iter().any(|c| c["name"] == "dev" && c["joined"] == true));
    let accounts: serde_json::Value = serde_wasm_bindgen::from_value(a.api.accounts()).unwrap();
    assert_eq!(accounts[0]["balance"], serde_json::json!(balance(a, a.id())));
}

/// ICE servers handed out by the rendezvous (a STUN URL and a TURN URL with
/// REST credentials, both unreachable here) are accepted by the browser's
/// RTCPeerConnection, and nodes still connect over host candidates; the
/// page's `?ice=` URLs win over the rendezvous's.
#[wasm_bindgen_test]
async fn rendezvous_ice_servers_are_accepted_and_page_ice_wins() {
    use node_wasm::signaling::IceServer;
    let a = Node::new(Identity::from_seed([91; 32]), NodeConfig::default());
    let b = Node::new(Identity::from_seed([92; 32]), NodeConfig::default());
    let handed = vec![
        IceServer { urls: vec!["stun:127.0.0.1:9".into()], username: None, credential: None },
        IceServer {
            urls: vec!["turn:127.0.0.1:9?transport=udp".into()],
            username: Some(format!("4102444800:{}", a.id())),
            credential: Some("bm90LWEtcmVhbC1jcmVkZW50aWFs".into()),
        },
    ];
    a.set_rendezvous_ice(handed.clone());
    b.set_rendezvous_ice(handed.clone());
    assert_eq!(a.ice_servers(), handed);
    b.set_rendezvous_status("connected", "loopback", None);
    meet(&a, &b);
    wait_for("a connection with the handed-out servers", 20_000.0, || a.peers() == vec![b.id()]).await;
    // On one machine the pair in use is host to host, read from getStats().
    wait_for("a's candidate types for b", 10_000.0, || a.candidate_types(b.id()) == (Some("host"), Some("host"))).await;
    let info = a.peer_infos().into_iter().find(|p| p.id == b.id()).expect("b in a's peer list");
    assert_eq!((info.candidate, info.remote_candidate), (Some("host"), Some("host")));
    assert_eq!(a.ice_status().source, node_wasm::ice_status::IceSource::Rendezvous);
    assert_eq!(a.ice_status().servers.len(), 2);

    let page = NodeConfig { ice_servers: vec!["stun:127.0.0.1:7".into()], ..NodeConfig::default() };
    let c = Node::new(Identity::from_seed([93; 32]), page);
    c.set_rendezvous_ice(handed);
    assert_eq!(c.ice_servers().len(), 1);
    assert_eq!(c.ice_servers()[0].urls, vec!["stun:127.0.0.1:7".to_string()]);
    // setIceServers also wins, and an empty list hands the choice back.
    let own = vec![IceServer { urls: vec!["stun:127.0.0.1:8".into()], username: None, credential: None }];
    a.set_page_ice(own.clone());
    a.set_rendezvous_ice(vec![]);
    assert_eq!((a.ice_servers(), a.ice_status().source), (own, node_wasm::ice_status::IceSource::Page));
    a.set_page_ice(vec![]);
    assert_eq!(a.ice_status().source, node_wasm::ice_status::IceSource::None);
    for n in [a, b, c] {
        n.shutdown();
    }
}

/// `setIceServers` refuses, with the reason, what `RTCPeerConnection`
/// would refuse later (or silently never use): unknown schemes, a TURN URL
/// without credentials, too many servers, unknown fields; what it accepts
/// shows in `status().ice`.
#[wasm_bindgen_test]
async fn set_ice_servers_checks_its_input_and_shows_in_status() {
    let ps = peers(vec![(Identity::from_seed([94; 32]), fresh("api-ice"))]);
    let a = &ps[0];
    let set = |v: serde_json::Value| a.api.set_ice_servers(js(&v).unwrap());
    assert!(err(set(serde_json::json!([{"urls": "turn:127.0.0.1:3478"}]))).await.contains("username"));
    assert!(err(set(serde_json::json!([{"urls": "http://x"}]))).await.contains("stun:"));
    assert!(err(set(serde_json::json!([{"urls": "stun:h:1", "pasword": "x"}]))).await.contains("unknown field"));
    let many: Vec<_> = (0..9).map(|i| serde_json::json!({"urls": format!("stun:h{i}:1")})).collect();
    assert!(err(set(serde_json::Value::Array(many))).await.contains("at most 8"));
    let good =
        serde_json::json!([{"urls": ["turn:127.0.0.1:3478?transport=udp"], "username": "1:a", "credential": "c"}]);
    assert_eq!(ok(set(good)).await.as_bool(), Some(true));
    let status: serde_json::Value = serde_wasm_bindgen::from_value(a.api.status()).unwrap();
    assert_eq!(status["ice"]["source"], "page");
    assert_eq!(status["ice"]["servers"], serde_json::json!(["turn:127.0.0.1:3478?transport=udp"]));
    assert!(status["ice"].get("credential").is_none() && !status.to_string().contains("\"c\""), "no credential shown");
}
