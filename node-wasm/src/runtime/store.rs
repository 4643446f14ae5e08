//! The node's identity in IndexedDB.
//!
//! Database `synapse-ng`, object store `identity`, one record per profile
//! name: the 64 secret bytes (Ed25519 seed, X25519 secret) as a Uint8Array.
//! `?profile=NAME` selects the record, so one browser can host several nodes.
//! Next to it, key `"{profile}#chain"` may hold `"{node id hex}:{seq}"`: the
//! chain head an imported identity had reached elsewhere (see
//! [`import_identity`]); profile names cannot contain `#`.
//!
//! Key `"{profile}#mark"` holds the node's [`OwnMark`]: the last own op
//! committed, written in the same transaction as that op (rule
//! `durable_before_visible`, see `chain_guard`).
//!
//! Every write awaits its *transaction's* completion, not just the request's
//! success: a quota error or an abort is reported at commit time, and a write
//! that only looked successful would lose data silently.

use crate::chain_guard::{self, OwnMark};
use crate::identity::{Identity, NodeId};
use crate::persistence::{self, ChainHead};
use crate::runtime::util::js_err;
use js_sys::{Promise, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbRequest, IdbTransaction, IdbTransactionMode};

const DB_NAME: &str = "synapse-ng";
const DB_VERSION: u32 = 3;
const IDENTITY_STORE: &str = "identity";
/// Op log: key `"{profile}/{op id hex}"`, value the signed op bytes.
const OPS_STORE: &str = "ops";
/// The last final checkpoint: key `"{profile}/record"` (its record and
/// certificate) and `"{profile}/snapshot"` (its state snapshot bytes).
const CHECKPOINTS_STORE: &str = "checkpoints";

/// Resolves with the request's result or rejects with its error.
fn request_promise(req: &IdbRequest) -> Promise {
    let req = req.clone();
    Promise::new(&mut move |resolve, reject| {
        let r2 = req.clone();
        let ok = Closure::once_into_js(move |_e: JsValue| {
            let _ = resolve.call1(&JsValue::NULL, &r2.result().unwrap_or(JsValue::UNDEFINED));
        });
        let r3 = req.clone();
        let err = Closure::once_into_js(move |_e: JsValue| {
            let e = r3.error().ok().flatten().map(JsValue::from).unwrap_or(JsValue::from_str("IndexedDB error"));
            let _ = reject.call1(&JsValue::NULL, &e);
        });
        req.set_onsuccess(Some(ok.unchecked_ref()));
        req.set_onerror(Some(err.unchecked_ref()));
    })
}

/// A DOMException as `"Name: message"`: the name (`QuotaExceededError`,
/// `VersionError`, `AbortError`...) is what classifies a storage problem.
fn dom_err(e: &JsValue) -> String {
    let msg = js_err(e);
    match js_sys::Reflect::get(e, &JsValue::from_str("name")).ok().and_then(|n| n.as_string()) {
        Some(name) if !name.is_empty() && !msg.starts_with(&name) => format!("{name}: {msg}"),
        _ => msg,
    }
}

/// Awaits `tx`'s commit; rejects with its error when it aborts or fails
/// (quota exceeded is reported here, at commit time). `what` names the
/// operation in the error.
async fn commit(tx: &IdbTransaction, what: &str) -> Result<(), String> {
    type Handler = Closure<dyn FnMut(JsValue)>;
    let mut handlers: Option<(Handler, Handler)> = None;
    let promise = Promise::new(&mut |resolve, reject| {
        let mut resolve = Some(resolve);
        let ok = Closure::<dyn FnMut(JsValue)>::new(move |_e: JsValue| {
            if let Some(r) = resolve.take() {
                let _ = r.call0(&JsValue::NULL);
            }
        });
        // `error` (from each failed request) and then `abort` may both fire:
        // settle on the first, ignore the rest.
        let t = tx.clone();
        let mut reject = Some(reject);
        let fail = Closure::<dyn FnMut(JsValue)>::new(move |_e: JsValue| {
            if let Some(r) = reject.take() {
                let e = t.error().map(JsValue::from).unwrap_or(JsValue::from_str("IndexedDB transaction aborted"));
                let _ = r.call1(&JsValue::NULL, &e);
            }
        });
        tx.set_oncomplete(Some(ok.as_ref().unchecked_ref()));
        tx.set_onabort(Some(fail.as_ref().unchecked_ref()));
        tx.set_onerror(Some(fail.as_ref().unchecked_ref()));
        handlers = Some((ok, fail));
    });
    let r = JsFuture::from(promise).await;
    // Detach before the closures are dropped, so a late event finds no handler.
    tx.set_oncomplete(None);
    tx.set_onabort(None);
    tx.set_onerror(None);
    drop(handlers);
    r.map(|_| ()).map_err(|e| format!("{what}: {}", dom_err(&e)))
}

/// Opens (creating or upgrading) the node database.
pub async fn open_db() -> Result<IdbDatabase, String> {
    let factory = web_sys::window()
        .ok_or("no window")?
        .indexed_db()
        .map_err(|e| js_err(&e))?
        .ok_or("IndexedDB is not available")?;
    let open = factory.open_with_u32(DB_NAME, DB_VERSION).map_err(|e| js_err(&e))?;
    let upgrade =
        Closure::<dyn FnMut(web_sys::IdbVersionChangeEvent)>::new(move |e: web_sys::IdbVersionChangeEvent| {
            let Some(target) = e.target() else { return };
            let Ok(req) = target.dyn_into::<IdbRequest>() else {
                return;
            };
            let Ok(db) = req.result().and_then(|r| r.dyn_into::<IdbDatabase>()) else {
                return;
            };
            for name in [IDENTITY_STORE, OPS_STORE, CHECKPOINTS_STORE] {
                if !db.object_store_names().contains(name) {
                    let _ = db.create_object_store(name);
                }
            }
        });
    open.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    let db = JsFuture::from(request_promise(&open)).await.map_err(|e| format!("open IndexedDB: {}", dom_err(&e)))?;
    drop(upgrade);
    db.dyn_into::<IdbDatabase>().map_err(|_| "IndexedDB open returned no database".to_string())
}

/// Loads the identity of `profile`, if one is stored.
pub async fn load_identity(db: &IdbDatabase, profile: &str) -> Result<Option<Identity>, String> {
    let tx = db.transaction_with_str(IDENTITY_STORE).map_err(|e| js_err(&e))?;
    let store = tx.object_store(IDENTITY_STORE).map_err(|e| js_err(&e))?;
    let req = store.get(&JsValue::from_str(profile)).map_err(|e| js_err(&e))?;
    let v = JsFuture::from(request_promise(&req)).await.map_err(|e| js_err(&e))?;
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    let bytes = v.dyn_into::<Uint8Array>().map_err(|_| "stored identity is not bytes".to_string())?.to_vec();
    Identity::from_secret_bytes(&bytes).map(Some).map_err(|e| format!("stored identity: {e}"))
}

/// Stores the identity of `profile`.
pub async fn save_identity(db: &IdbDatabase, profile: &str, identity: &Identity) -> Result<(), String> {
    let tx = db.transaction_with_str_and_mode(IDENTITY_STORE, IdbTransactionMode::Readwrite).map_err(|e| js_err(&e))?;
    let store = tx.object_store(IDENTITY_STORE).map_err(|e| js_err(&e))?;
    let bytes = Uint8Array::from(&identity.to_secret_bytes()[..]);
    store.put_with_key(&bytes, &JsValue::from_str(profile)).map_err(|e| js_err(&e))?;
    commit(&tx, "saving the identity").await
}

/// The identity of `profile`, created and stored on first use.
pub async fn load_or_create_identity(profile: &str) -> Result<Identity, String> {
    let db = open_db().await?;
    if let Some(id) = load_identity(&db, profile).await? {
        db.close();
        return Ok(id);
    }
    let mut rng = rand_core::OsRng;
    let id = Identity::generate(&mut rng);
    save_identity(&db, profile, &id).await?;
    db.close();
    Ok(id)
}

/// Stores signed op bytes under the profile (idempotent: the key is the op
/// id). Resolves once the write is committed.
pub async fn save_ops(db: &IdbDatabase, profile: &str, ops: &[(String, Vec<u8>)]) -> Result<(), String> {
    if ops.is_empty() {
        return Ok(());
    }
    let tx = db.transaction_with_str_and_mode(OPS_STORE, IdbTransactionMode::Readwrite).map_err(|e| js_err(&e))?;
    let store = tx.object_store(OPS_STORE).map_err(|e| js_err(&e))?;
    for (id, bytes) in ops {
        let v = Uint8Array::from(&bytes[..]);
        store.put_with_key(&v, &JsValue::from_str(&format!("{profile}/{id}"))).map_err(|e| js_err(&e))?;
    }
    commit(&tx, "saving ops").await
}

/// Key of a profile's own-chain mark (see the module docs).
fn mark_key(profile: &str) -> JsValue {
    JsValue::from_str(&format!("{profile}#mark"))
}

/// The profile's own-chain mark, if one was written by this identity.
pub async fn load_mark(db: &IdbDatabase, profile: &str, node: NodeId) -> Result<Option<OwnMark>, String> {
    let v = identity_record(db, &mark_key(profile)).await?;
    Ok(v.as_string().and_then(|t| chain_guard::parse_mark(&t, node)))
}

/// One record of the identity store by key (undefined when absent).
async fn identity_record(db: &IdbDatabase, key: &JsValue) -> Result<JsValue, String> {
    let tx = db.transaction_with_str(IDENTITY_STORE).map_err(|e| js_err(&e))?;
    let store = tx.object_store(IDENTITY_STORE).map_err(|e| js_err(&e))?;
    let req = store.get(key).map_err(|e| js_err(&e))?;
    JsFuture::from(request_promise(&req)).await.map_err(|e| js_err(&e))
}

/// Why own ops were not saved.
pub enum SaveOwnError {
    /// Rule `one_writer_per_profile`: the stored mark already covers `seq`,
    /// written by another tab of this profile. Nothing was written.
    Conflict { seq: u64 },
    /// IndexedDB failed (the browser's words).
    Storage(String),
}

/// Saves this node's own ops `own` (consecutive seqs from `first_seq`, the
/// last one `mark`) and the received ops `others`, in one transaction that
/// also moves the mark, after checking that no other tab of this profile
/// wrote `first_seq` already. Resolves once the transaction committed.
pub async fn save_own_ops(
    db: &IdbDatabase,
    profile: &str,
    node: NodeId,
    own: &[(String, Vec<u8>)],
    first_seq: u64,
    mark: OwnMark,
    others: &[(String, Vec<u8>)],
) -> Result<(), SaveOwnError> {
    let st = |e: JsValue| SaveOwnError::Storage(js_err(&e));
    let names = js_sys::Array::of2(&JsValue::from_str(OPS_STORE), &JsValue::from_str(IDENTITY_STORE));
    let tx = db.transaction_with_str_sequence_and_mode(&names, IdbTransactionMode::Readwrite).map_err(st)?;
    let ids = tx.object_store(IDENTITY_STORE).map_err(st)?;
    let ops = tx.object_store(OPS_STORE).map_err(st)?;
    // The read and the writes are one transaction: IndexedDB runs
    // overlapping read-write transactions one after the other, across tabs.
    let req = ids.get(&mark_key(profile)).map_err(st)?;
    let stored = JsFuture::from(request_promise(&req)).await.map_err(st)?;
    if let Some(m) = stored.as_string().and_then(|t| chain_guard::parse_mark(&t, node))
        && m.seq >= first_seq
    {
        let _ = tx.abort();
        return Err(SaveOwnError::Conflict { seq: first_seq });
    }
    for (id, bytes) in own.iter().chain(others) {
        let v = Uint8Array::from(&bytes[..]);
        ops.put_with_key(&v, &JsValue::from_str(&format!("{profile}/{id}"))).map_err(st)?;
    }
    ids.put_with_key(&JsValue::from_str(&chain_guard::encode_mark(node, mark)), &mark_key(profile)).map_err(st)?;
    commit(&tx, "saving this node's ops").await.map_err(SaveOwnError::Storage)
}

/// Every stored op of the profile, as signed bytes.
pub async fn load_ops(db: &IdbDatabase, profile: &str) -> Result<Vec<Vec<u8>>, String> {
    begin_load_ops(db, profile)?.finish().await
}

/// A read of a profile's stored ops already sent to IndexedDB: the browser
/// reads while the page does other work (decoding a checkpoint at start).
pub struct PendingOps(JsFuture);

/// Sends the read of every stored op of `profile`; [`PendingOps::finish`]
/// gives them.
pub fn begin_load_ops(db: &IdbDatabase, profile: &str) -> Result<PendingOps, String> {
    let tx = db.transaction_with_str(OPS_STORE).map_err(|e| js_err(&e))?;
    let store = tx.object_store(OPS_STORE).map_err(|e| js_err(&e))?;
    // Keys of this profile: "{profile}/" up to "{profile}0" ('0' follows '/').
    let range = web_sys::IdbKeyRange::bound_with_lower_open_and_upper_open(
        &JsValue::from_str(&format!("{profile}/")),
        &JsValue::from_str(&format!("{profile}0")),
        false,
        true,
    )
    .map_err(|e| js_err(&e))?;
    let req = store.get_all_with_key(&range).map_err(|e| js_err(&e))?;
    Ok(PendingOps(JsFuture::from(request_promise(&req))))
}

impl PendingOps {
    pub async fn finish(self) -> Result<Vec<Vec<u8>>, String> {
        let all = self.0.await.map_err(|e| js_err(&e))?;
        let arr: js_sys::Array = all.dyn_into().map_err(|_| "stored ops are not a list".to_string())?;
        Ok(arr.iter().filter_map(|v| v.dyn_into::<Uint8Array>().ok()).map(|a| a.to_vec()).collect())
    }
}

/// Saves the last final checkpoint and, in the same transaction, deletes
/// the ops it covers (`pruned`, op ids as text; empty for an archive):
/// either both happen or neither, so no op is lost without the checkpoint
/// that holds its effect. Resolves once committed.
pub async fn save_checkpoint(
    db: &IdbDatabase,
    profile: &str,
    record: &[u8],
    snapshot: &[u8],
    pruned: &[String],
) -> Result<(), String> {
    let names = js_sys::Array::of2(&JsValue::from_str(CHECKPOINTS_STORE), &JsValue::from_str(OPS_STORE));
    let tx =
        db.transaction_with_str_sequence_and_mode(&names, IdbTransactionMode::Readwrite).map_err(|e| js_err(&e))?;
    let cps = tx.object_store(CHECKPOINTS_STORE).map_err(|e| js_err(&e))?;
    let ops = tx.object_store(OPS_STORE).map_err(|e| js_err(&e))?;
    cps.put_with_key(&Uint8Array::from(record), &JsValue::from_str(&format!("{profile}/record")))
        .map_err(|e| js_err(&e))?;
    cps.put_with_key(&Uint8Array::from(snapshot), &JsValue::from_str(&format!("{profile}/snapshot")))
        .map_err(|e| js_err(&e))?;
    for id in pruned {
        ops.delete(&JsValue::from_str(&format!("{profile}/{id}"))).map_err(|e| js_err(&e))?;
    }
    commit(&tx, "saving the final checkpoint").await
}

/// The profile's last saved final checkpoint: `(record, snapshot)`.
pub async fn load_checkpoint(db: &IdbDatabase, profile: &str) -> Result<Option<(Vec<u8>, Vec<u8>)>, String> {
    let tx = db.transaction_with_str(CHECKPOINTS_STORE).map_err(|e| js_err(&e))?;
    let store = tx.object_store(CHECKPOINTS_STORE).map_err(|e| js_err(&e))?;
    let get = |key: String| -> Result<Promise, String> {
        Ok(request_promise(&store.get(&JsValue::from_str(&key)).map_err(|e| js_err(&e))?))
    };
    let record = get(format!("{profile}/record"))?;
    let snapshot = get(format!("{profile}/snapshot"))?;
    let record = JsFuture::from(record).await.map_err(|e| js_err(&e))?;
    let snapshot = JsFuture::from(snapshot).await.map_err(|e| js_err(&e))?;
    let bytes = |v: JsValue| v.dyn_into::<Uint8Array>().ok().map(|a| a.to_vec());
    Ok(bytes(record).zip(bytes(snapshot)))
}

/// Key of a profile's chain floor record (see the module docs).
fn floor_key(profile: &str) -> JsValue {
    JsValue::from_str(&format!("{profile}#chain"))
}

/// The chain head an imported identity had reached elsewhere, if recorded
/// for this profile *and this node id* (a record left by another identity
/// is ignored): the node must not sign before its own chain reaches it.
pub async fn load_chain_floor(db: &IdbDatabase, profile: &str, node: NodeId) -> Result<Option<u64>, String> {
    let v = identity_record(db, &floor_key(profile)).await?;
    let Some(text) = v.as_string() else { return Ok(None) };
    let Some((id, seq)) = text.split_once(':') else { return Ok(None) };
    if NodeId::parse(id).ok() != Some(node) {
        return Ok(None);
    }
    Ok(seq.parse::<u64>().ok())
}

/// When the stored identity could not be used, why, as a sentence for the
/// user (the node then runs on a temporary identity).
pub struct IdentityProblem(pub String);

/// The profile's identity for a starting node. Never fails: when IndexedDB
/// cannot be opened, or the stored identity is unreadable or cannot be
/// saved, the node starts on a **temporary** in-memory identity and the
/// problem says so (an unreadable stored identity is left untouched so a
/// backup can still be imported over it).
pub async fn open_identity(profile: &str) -> (Identity, Option<IdentityProblem>) {
    let temporary = |why: String| {
        let mut rng = rand_core::OsRng;
        (Identity::generate(&mut rng), Some(IdentityProblem(why)))
    };
    let db = match open_db().await {
        Ok(db) => db,
        Err(e) => {
            let p = persistence::classify_storage_error(&e, false);
            return temporary(format!(
                "{} This node runs on a temporary identity that is lost when the tab closes.",
                persistence::storage_sentence(p, &e)
            ));
        }
    };
    let r = match load_identity(&db, profile).await {
        Ok(Some(id)) => (id, None),
        Ok(None) => {
            let mut rng = rand_core::OsRng;
            let id = Identity::generate(&mut rng);
            match save_identity(&db, profile, &id).await {
                Ok(()) => (id, None),
                Err(e) => {
                    let p = persistence::classify_storage_error(&e, true);
                    let s = persistence::storage_sentence(p, &e);
                    (
                        id,
                        Some(IdentityProblem(format!(
                            "{s} This node's new identity could not be saved either: it is temporary and lost when the tab closes."
                        ))),
                    )
                }
            }
        }
        Err(e) => temporary(format!(
            "The stored identity of profile {profile:?} is unreadable ({e}); this node runs on a temporary \
             identity. Import a backup with importIdentity(text, {{replace: true}}) to restore it."
        )),
    };
    db.close();
    r
}

/// The own chain head (highest seq and its op id) among the profile's
/// stored ops, from their bytes (decoded, not re-verified: they are ours).
async fn stored_chain_head(db: &IdbDatabase, profile: &str, me: NodeId) -> Result<Option<ChainHead>, String> {
    let mut head: Option<ChainHead> = None;
    for bytes in load_ops(db, profile).await? {
        if let Ok(op) = crate::core::op::SignedOp::decode(&bytes)
            && op.op().author == me
            && head.is_none_or(|h| op.op().seq > h.seq)
        {
            head = Some(ChainHead { seq: op.op().seq, op: op.id() });
        }
    }
    Ok(head)
}

/// The identity file of `profile`'s stored identity (see
/// `persistence::encode_identity_file`), with the node's own chain head as
/// stored: for a profile that is not running (the running node exports with
/// `Ledger::identity_file`). The text holds the secret keys.
pub async fn export_identity(profile: &str) -> Result<String, String> {
    let db = open_db().await?;
    let r = async {
        let id = load_identity(&db, profile)
            .await?
            .ok_or_else(|| format!("no identity is stored for profile {profile:?}"))?;
        let mut head = stored_chain_head(&db, profile, id.node_id()).await?;
        if let Some(floor) = load_chain_floor(&db, profile, id.node_id()).await?
            && head.is_none_or(|h| h.seq < floor)
        {
            // Imported here and not yet caught up: the floor is the truth.
            head = Some(ChainHead { seq: floor, op: crate::core::op::OpId::ZERO });
        }
        Ok(persistence::encode_identity_file(&id, profile, js_sys::Date::now() as u64, head))
    }
    .await;
    db.close();
    r
}

/// Validates an identity file and stores it as `profile`'s identity; it is
/// used from the next start (reload). Importing the identity already stored
/// is a no-op success. A *different* stored identity is replaced only when
/// `replace` is true, otherwise refused with a sentence saying what would be
/// lost. The profile's stored ops are kept: they are network data signed by
/// their authors, valid whoever runs the profile. The file's chain head is
/// recorded so the node does not sign before its own earlier ops have
/// arrived (signing a seq twice is equivocation).
pub async fn import_identity(profile: &str, text: &str, replace: bool) -> Result<NodeId, String> {
    let imported = persistence::parse_identity_file(text)?;
    let new_id = imported.identity.node_id();
    let db = open_db().await.map_err(|e| {
        let p = persistence::classify_storage_error(&e, false);
        format!("cannot import: {}", persistence::storage_sentence(p, &e))
    })?;
    let r = async {
        let current = load_identity(&db, profile).await.ok().flatten().map(|i| i.node_id());
        if let Some(cur) = current
            && cur != new_id
            && !replace
        {
            return Err(format!(
                "profile {profile:?} already holds node {}…; importing would replace it with node {}… and the \
                 current secret key would be lost unless exported. Export it first, then import with {{replace: \
                 true}}",
                cur.short(),
                new_id.short()
            ));
        }
        let old_floor = load_chain_floor(&db, profile, new_id).await?.unwrap_or(0);
        let floor = imported.chain_head.map_or(0, |h| h.seq).max(old_floor);
        let tx =
            db.transaction_with_str_and_mode(IDENTITY_STORE, IdbTransactionMode::Readwrite).map_err(|e| js_err(&e))?;
        let store = tx.object_store(IDENTITY_STORE).map_err(|e| js_err(&e))?;
        let bytes = Uint8Array::from(&imported.identity.to_secret_bytes()[..]);
        store.put_with_key(&bytes, &JsValue::from_str(profile)).map_err(|e| js_err(&e))?;
        if floor > 0 {
            let v = JsValue::from_str(&format!("{}:{floor}", new_id.to_text()));
            store.put_with_key(&v, &floor_key(profile)).map_err(|e| js_err(&e))?;
        } else {
            store.delete(&floor_key(profile)).map_err(|e| js_err(&e))?;
        }
        commit(&tx, "saving the imported identity").await.map_err(|e| {
            let p = persistence::classify_storage_error(&e, true);
            format!("cannot import: {}", persistence::storage_sentence(p, &e))
        })?;
        Ok(new_id)
    }
    .await;
    db.close();
    r
}
