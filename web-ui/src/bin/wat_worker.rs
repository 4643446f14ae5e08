//! The agent's WAT compiler, in a Web Worker of its own.
//!
//! Why a separate binary: the `wat` crate is 124 KB gzipped, needed only
//! when a user drafts a policy module with the agent. Built as a trunk
//! worker (`www/index.html`), it is fetched on the first draft instead of
//! on every page load, and compiling runs off the page's thread.
//!
//! Protocol: the worker posts `"ready"` once it listens (messages sent
//! before would be lost while its wasm loads), then answers each message
//! holding WAT text with `{ok: Uint8Array}` or `{error: string}`. The page
//! checks the size of the text before sending it and loads the bytes as a
//! policy module itself, so nothing here is trusted.

#[cfg(target_arch = "wasm32")]
fn main() {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::prelude::*;

    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let reply_to = scope.clone();
    let on_message = Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
        let reply = js_sys::Object::new();
        let (key, value): (&str, JsValue) = match ev.data().as_string() {
            Some(text) => match wat::parse_str(&text) {
                Ok(bytes) => ("ok", js_sys::Uint8Array::from(bytes.as_slice()).into()),
                Err(e) => ("error", JsValue::from_str(&e.to_string())),
            },
            None => ("error", JsValue::from_str("send WAT as a string")),
        };
        let posted =
            js_sys::Reflect::set(&reply, &JsValue::from_str(key), &value).and_then(|_| reply_to.post_message(&reply));
        if posted.is_err() {
            web_sys::console::error_1(&JsValue::from_str("wat_worker: could not answer"));
        }
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    if scope.post_message(&JsValue::from_str("ready")).is_err() {
        web_sys::console::error_1(&JsValue::from_str("wat_worker: could not say ready"));
    }
}

/// Native builds (the workspace's checks) have no worker to run.
#[cfg(not(target_arch = "wasm32"))]
fn main() {}
