//! Identity backup: download this profile's identity file, or restore one.
//!
//! The file holds the secret keys (README, "Identity backup"). A restore is
//! stored for this profile and used from the next start; replacing a
//! different identity needs an explicit tick, since the current secret key
//! would be lost unless it was downloaded first.

use crate::action::{Action, Feedback};
use crate::ctx::ctx;
use leptos::prelude::*;
use node_wasm::runtime::store::import_identity;
use wasm_bindgen::{JsCast, JsValue};

/// Offers `text` to the user as a file download named `name`.
fn download(name: &str, text: &str) -> Result<(), String> {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("application/json");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts)
        .map_err(|_| "the browser could not make the file")?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| "the browser could not make the file")?;
    let doc = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement =
        doc.create_element("a").map_err(|_| "no link")?.dyn_into().map_err(|_| "no link")?;
    a.set_href(&url);
    a.set_download(name);
    a.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

#[component]
pub fn IdentityCard() -> impl IntoView {
    let c = ctx();
    let profile = c.ledger.with_value(|l| l.profile());
    let export = Action::new();
    let restore = Action::new();
    let replace = RwSignal::new(false);
    let file_ref = NodeRef::<leptos::html::Input>::new();
    let p1 = profile.clone();
    let do_export = move |_| {
        let profile = p1.clone();
        let me = c.me;
        export.run_async(async move {
            let text = c.ledger.with_value(|l| l.identity_file(&profile));
            let name = format!("synapse-ng-identity-{}.json", me.short());
            download(&name, &text)?;
            Ok(format!("Downloaded {name}. It holds your secret key: keep it private."))
        });
    };
    let p2 = profile.clone();
    let do_restore = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(input) = file_ref.get() else { return };
        let input: web_sys::HtmlInputElement = input.unchecked_into();
        let profile = p2.clone();
        let replace = replace.get_untracked();
        restore.run_async(async move {
            let file = input.files().and_then(|f| f.get(0)).ok_or("choose an identity file first")?;
            let text =
                wasm_bindgen_futures::JsFuture::from(file.text()).await.map_err(|_| "the file could not be read")?;
            let text = text.as_string().ok_or("the file is not text")?;
            let id = import_identity(&profile, &text, replace).await?;
            Ok(format!("Stored node {}… for profile {profile}: reload the page to run as it.", id.short()))
        });
    };
    view! {
        <section class="card" aria-labelledby="h-identity">
            <h2 id="h-identity">"Identity backup"</h2>
            <p class="muted">{format!("Profile {profile}. The identity file holds this node's secret key: whoever has it is this node.")}</p>
            <div class="form-row">
                <button type="button" id="export-identity" on:click=do_export disabled=move || export.pending()>"Download identity file"</button>
            </div>
            <Feedback action=export id="export-feedback" />
            <form class="form-row" on:submit=do_restore>
                <label for="identity-file">"Restore from a file"</label>
                <input id="identity-file" type="file" accept=".json,application/json" node_ref=file_ref />
                <label><input type="checkbox" id="identity-replace" prop:checked=move || replace.get()
                    on:change=move |ev| replace.set(event_target_checked(&ev)) />" replace this profile's identity"</label>
                <button type="submit" id="import-identity" disabled=move || restore.pending()>"Restore"</button>
            </form>
            <Feedback action=restore id="import-feedback" />
        </section>
    }
}
