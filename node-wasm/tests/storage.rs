//! Storage failures are shown, not swallowed (`wasm-pack test --headless
//! --chrome --mode no-install node-wasm --test storage`). The failure is
//! real, not a mock: another connection upgrades the node's IndexedDB
//! database to a higher version, so the node's own open fails with the
//! browser's `VersionError` (what a newer version of the page in another
//! tab would cause). Quota exhaustion cannot be provoked honestly in a test
//! browser; its sentence is covered by the native tests of
//! `persistence::classify_storage_error`. Own file, so its own page: it
//! deletes the database at the end.
#![cfg(target_arch = "wasm32")]

use node_wasm::identity::Identity;
use node_wasm::runtime::ledger::Ledger;
use node_wasm::runtime::util::{js_err, sleep_ms};
use node_wasm::runtime::{Node, NodeConfig, SynapseNode, store};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Resolves with a request's result once it succeeds (or is blocked/fails).
async fn settle(req: &web_sys::IdbRequest) -> Result<JsValue, String> {
    let r = req.clone();
    let p = js_sys::Promise::new(&mut |resolve, reject| {
        let r2 = r.clone();
        let ok = Closure::once_into_js(move |_e: JsValue| {
            let _ = resolve.call1(&JsValue::NULL, &r2.result().unwrap_or(JsValue::UNDEFINED));
        });
        let fail = Closure::once_into_js(move |_e: JsValue| {
            let _ = reject.call1(&JsValue::NULL, &JsValue::from_str("request failed"));
        });
        r.set_onsuccess(Some(ok.unchecked_ref()));
        r.set_onerror(Some(fail.unchecked_ref()));
    });
    JsFuture::from(p).await.map_err(|e| js_err(&e))
}

fn factory() -> web_sys::IdbFactory {
    web_sys::window().unwrap().indexed_db().unwrap().unwrap()
}

#[wasm_bindgen_test]
async fn a_database_that_cannot_be_opened_is_reported_and_the_node_runs_in_memory() {
    // Whatever the page did before, start from a database at version 2.
    store::open_db().await.unwrap().close();
    // Another connection takes the database to version 99.
    let open = factory().open_with_u32("synapse-ng", 99).unwrap();
    let newer: web_sys::IdbDatabase = settle(&open).await.unwrap().dyn_into().unwrap();
    let raw = store::open_db().await.unwrap_err();
    assert!(raw.contains("VersionError"), "the browser's real error: {raw}");

    // Start-up path: a temporary identity, and a sentence saying so.
    let (_identity, problem) = store::open_identity("st").await;
    let why = problem.expect("the problem is reported").0;
    assert!(why.starts_with("Browser storage (IndexedDB) cannot be opened"), "{why}");
    assert!(why.ends_with("This node runs on a temporary identity that is lost when the tab closes."), "{why}");

    // A ledger whose load fails: the node runs, the error is visible.
    let node = Node::new(Identity::from_seed([51; 32]), NodeConfig::default());
    let ledger = Ledger::attach(&node, "st", &node_wasm::core::genesis::Genesis::open("test"));
    let api = SynapseNode::new(node.clone(), ledger.clone(), "st".into());
    assert!(ledger.load().await.is_err());
    let sentence = ledger.storage_error().expect("storage_error() is set");
    assert!(sentence.starts_with("Browser storage (IndexedDB) cannot be opened"), "{sentence}");
    assert!(sentence.contains("new operations are kept in memory only and will be lost when the tab closes"));
    let status: serde_json::Value = serde_wasm_bindgen::from_value(api.status()).unwrap();
    assert_eq!(status["storage"]["ok"], false);
    assert_eq!(status["storage"]["problem"], "unavailable");
    assert_eq!(status["storage"]["error"], sentence.as_str());
    let errors = ledger.stats().store_errors;
    assert!(errors >= 1);

    // Acting still works (in memory); the failed save is counted and kept.
    ledger.act("st", node_wasm::core::op::OpBody::ChannelCreate { description: String::new() }).unwrap();
    for _ in 0..200 {
        if ledger.stats().store_errors > errors {
            break;
        }
        sleep_ms(10).await;
    }
    assert!(ledger.stats().store_errors > errors, "the failed save is counted");
    assert_eq!(ledger.storage_status().uncommitted, 1, "and kept for the next attempt");
    assert_eq!(node.pubsub_stats().published, 0, "an own op that is not stored is not published");
    let e = store::import_identity("st", "{}", false).await.unwrap_err();
    assert!(e.starts_with("\"format\"") || e.starts_with("not a Synapse-NG identity file"), "{e}");
    let file = node_wasm::persistence::encode_identity_file(&Identity::from_seed([52; 32]), "x", 0, None);
    let e = store::import_identity("st", &file, false).await.unwrap_err();
    assert!(e.starts_with("cannot import: Browser storage (IndexedDB) cannot be opened"), "{e}");

    // The other connection goes away and the database is deleted: the next
    // save succeeds, carries the op that failed, and the error clears.
    newer.close();
    settle(&factory().delete_database("synapse-ng").unwrap()).await.unwrap();
    ledger.act("st", node_wasm::core::op::OpBody::ChannelSubscribe).unwrap_err(); // creator is already a member
    ledger.act("global", node_wasm::core::op::OpBody::SkillsSet { skills: vec!["x".into()] }).unwrap();
    // Own ops are retried every 5 s.
    for _ in 0..800 {
        if ledger.storage_status().ok {
            break;
        }
        sleep_ms(10).await;
    }
    assert!(ledger.storage_status().ok, "recovered: {:?}", ledger.storage_status());
    assert!(ledger.storage_error().is_none());
    let db = store::open_db().await.unwrap();
    assert_eq!(store::load_ops(&db, "st").await.unwrap().len(), 2, "the op whose save failed was saved later");
    assert_eq!(node.pubsub_stats().published, 2, "and published once stored, in order");
    assert_eq!(ledger.storage_status().uncommitted, 0);
    db.close();
    node.shutdown();
}
