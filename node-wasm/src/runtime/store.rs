//! The node's identity in IndexedDB.
//!
//! Database `synapse-ng`, object store `identity`, one record per profile
//! name: the 64 secret bytes (Ed25519 seed, X25519 secret) as a Uint8Array.
//! `?profile=NAME` selects the record, so one browser can host several nodes.

use crate::identity::Identity;
use crate::runtime::util::js_err;
use js_sys::{Promise, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbRequest, IdbTransactionMode};

const DB_NAME: &str = "synapse-ng";
const DB_VERSION: u32 = 2;
const IDENTITY_STORE: &str = "identity";
/// Op log: key `"{profile}/{op id hex}"`, value the signed op bytes.
const OPS_STORE: &str = "ops";

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
            for name in [IDENTITY_STORE, OPS_STORE] {
                if !db.object_store_names().contains(name) {
                    let _ = db.create_object_store(name);
                }
            }
        });
    open.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    let db = JsFuture::from(request_promise(&open)).await.map_err(|e| format!("open IndexedDB: {}", js_err(&e)))?;
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
    let req = store.put_with_key(&bytes, &JsValue::from_str(profile)).map_err(|e| js_err(&e))?;
    JsFuture::from(request_promise(&req)).await.map_err(|e| js_err(&e))?;
    Ok(())
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
    let mut last = None;
    for (id, bytes) in ops {
        let v = Uint8Array::from(&bytes[..]);
        last = Some(store.put_with_key(&v, &JsValue::from_str(&format!("{profile}/{id}"))).map_err(|e| js_err(&e))?);
    }
    if let Some(req) = last {
        JsFuture::from(request_promise(&req)).await.map_err(|e| format!("saving ops: {}", js_err(&e)))?;
    }
    Ok(())
}

/// Every stored op of the profile, as signed bytes.
pub async fn load_ops(db: &IdbDatabase, profile: &str) -> Result<Vec<Vec<u8>>, String> {
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
    let all = JsFuture::from(request_promise(&req)).await.map_err(|e| js_err(&e))?;
    let arr: js_sys::Array = all.dyn_into().map_err(|_| "stored ops are not a list".to_string())?;
    Ok(arr.iter().filter_map(|v| v.dyn_into::<Uint8Array>().ok()).map(|a| a.to_vec()).collect())
}
