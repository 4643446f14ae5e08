//! Small browser helpers: logging, time, randomness, sleeping, a JSON POST.

use wasm_bindgen::JsValue;

/// Logs to the browser console with a `[synapse]` prefix.
#[macro_export]
macro_rules! console_log {
    ($($t:tt)*) => {
        web_sys::console::log_1(&wasm_bindgen::JsValue::from_str(&format!("[synapse] {}", format_args!($($t)*))))
    };
}

/// Milliseconds since navigation start (`performance.now()`), monotonic.
pub fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or(0.0)
}

/// The stages of start-up, each a `performance.mark` (ms since navigation
/// start) that `bench_finality` reports (docs/BENCHMARKS.md). All in one
/// place so the bench, the docs and the code name the same marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The wasm module is instantiated and `start` runs.
    WasmStarted,
    /// The genesis is fetched and the identity opened (in parallel).
    GenesisAndIdentity,
    /// The saved checkpoint is read from IndexedDB.
    LoadCheckpointRead,
    /// The saved checkpoint is verified and the replica starts from it.
    LoadCheckpointStarted,
    /// The stored ops after the checkpoint are read.
    LoadOpsRead,
    /// Those ops are folded.
    LoadOpsFolded,
    /// The node runs (networking started).
    NodeStarted,
    /// The UI is mounted and interactive.
    UiReady,
    /// The UI shows a proven peer.
    UiConnected,
}

impl Stage {
    /// The mark's name (every one starts with `synapse-`).
    pub fn name(self) -> &'static str {
        match self {
            Stage::WasmStarted => "synapse-wasm-started",
            Stage::GenesisAndIdentity => "synapse-genesis-and-identity",
            Stage::LoadCheckpointRead => "synapse-load-checkpoint-read",
            Stage::LoadCheckpointStarted => "synapse-load-checkpoint-started",
            Stage::LoadOpsRead => "synapse-load-ops-read",
            Stage::LoadOpsFolded => "synapse-load-ops-folded",
            Stage::NodeStarted => "synapse-node-started",
            Stage::UiReady => "synapse-ui-ready",
            Stage::UiConnected => "synapse-ui-connected",
        }
    }
}

/// Marks that start-up reached `stage`.
pub fn mark(stage: Stage) {
    if let Some(p) = web_sys::window().and_then(|w| w.performance()) {
        let _ = p.mark(stage.name());
    }
}

/// Fresh random bytes from the browser's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // getrandom's `js` backend uses crypto.getRandomValues; it cannot fail in
    // a browser that runs wasm, and a zeroed nonce would still be safe to use
    // (it only weakens freshness), so an error is logged rather than fatal.
    if let Err(e) = getrandom::getrandom(&mut out) {
        crate::console_log!("getrandom failed: {e}");
    }
    out
}

/// A random u32.
pub fn random_u32() -> u32 {
    u32::from_le_bytes(random_bytes::<4>())
}

/// Sleeps without blocking the event loop.
pub async fn sleep_ms(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}

/// Text of a JS error value, for logs.
pub fn js_err(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| js_sys::Reflect::get(e, &JsValue::from_str("message")).ok().and_then(|m| m.as_string()))
        .unwrap_or_else(|| format!("{e:?}"))
}

/// A POST in flight: its response, and the timer that aborts the request
/// (kept alive while the caller reads the body, so a body that never ends
/// is cut off too).
pub struct Posted {
    pub response: web_sys::Response,
    _abort: gloo_timers::callback::Timeout,
}

/// POSTs `body` as JSON to `url`, with `bearer` as the `Authorization`
/// token if any, aborted after `timeout_ms`. Errs with the browser's reason
/// when no response came (network error, CORS, timeout); any HTTP status
/// is a response. Used by the agent's chat endpoint and tool webhooks.
pub async fn post_json(url: &str, bearer: Option<&str>, body: &str, timeout_ms: u32) -> Result<Posted, String> {
    use wasm_bindgen::JsCast;
    let window = web_sys::window().ok_or("no window")?;
    let abort = web_sys::AbortController::new().map_err(|e| js_err(&e))?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    init.set_signal(Some(&abort.signal()));
    let headers = web_sys::Headers::new().map_err(|e| js_err(&e))?;
    headers.set("Content-Type", "application/json").map_err(|e| js_err(&e))?;
    if let Some(token) = bearer {
        headers.set("Authorization", &format!("Bearer {token}")).map_err(|e| js_err(&e))?;
    }
    init.set_headers(&headers);
    let req = web_sys::Request::new_with_str_and_init(url, &init).map_err(|e| js_err(&e))?;
    let timer = gloo_timers::callback::Timeout::new(timeout_ms, move || abort.abort());
    let resp = wasm_bindgen_futures::JsFuture::from(window.fetch_with_request(&req)).await.map_err(|e| js_err(&e))?;
    let response: web_sys::Response = resp.dyn_into().map_err(|_| "not a response".to_string())?;
    Ok(Posted { response, _abort: timer })
}
