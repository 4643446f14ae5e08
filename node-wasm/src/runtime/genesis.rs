//! Which network this page joins: the genesis record its rendezvous serves
//! at `/genesis.json`, fetched once before the node starts (the fold's
//! first state and the handshake's network id both come from it).
//!
//! A page whose rendezvous serves none (an older server, a static host)
//! joins the default network ([`Genesis::default`]) and says so in
//! `status().genesis`. A record that does not parse or breaks a range is
//! never used: the page says why and uses the default.

use crate::core::genesis::{Genesis, MAX_GENESIS_BYTES};
use crate::runtime::util::js_err;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// The genesis a page runs on and where it came from.
#[derive(Clone, Debug)]
pub struct PageGenesis {
    pub genesis: Genesis,
    /// `served` (by the rendezvous) or `default`.
    pub source: &'static str,
    /// Why the served one was not used, if it was not.
    pub problem: Option<String>,
}

/// How long one rendezvous may take to serve its genesis.
const FETCH_TIMEOUT_MS: i32 = 5_000;

/// Fetches the genesis the rendezvous serve, in the page's order: the
/// first that serves a valid one wins (a dead first server must not put
/// the page on another network than its peers).
pub async fn fetch(rendezvous_urls: &[String]) -> PageGenesis {
    let mut problems = vec![];
    for url in rendezvous_urls.iter().filter_map(|u| crate::signaling::genesis_url(u)) {
        match fetch_text(&url).await {
            Ok(text) => match Genesis::from_json(&text) {
                Ok(genesis) => return PageGenesis { genesis, source: "served", problem: None },
                Err(e) => problems.push(format!("{url} served an invalid genesis: {e}")),
            },
            Err(e) => problems.push(format!("{url}: {e}")),
        }
    }
    let problem =
        if problems.is_empty() { "no rendezvous URL to ask for a genesis".to_string() } else { problems.join("; ") };
    crate::console_log!("genesis: {problem}; using the default network");
    PageGenesis { genesis: Genesis::default(), source: "default", problem: Some(problem) }
}

async fn fetch_text(url: &str) -> Result<String, String> {
    let window = web_sys::window().ok_or("no window")?;
    // An unreachable host must not hold the page: race a timer.
    let timer = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, FETCH_TIMEOUT_MS);
    });
    let race = js_sys::Promise::race(&js_sys::Array::of2(&window.fetch_with_str(url), &timer));
    let resp = JsFuture::from(race).await.map_err(|e| js_err(&e))?;
    let resp: web_sys::Response =
        resp.dyn_into().map_err(|_| format!("no answer within {} s", FETCH_TIMEOUT_MS / 1000))?;
    if !resp.ok() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let text = JsFuture::from(resp.text().map_err(|e| js_err(&e))?).await.map_err(|e| js_err(&e))?;
    let text = text.as_string().ok_or("the body is not text")?;
    if text.len() > MAX_GENESIS_BYTES {
        return Err(format!("the genesis is larger than {MAX_GENESIS_BYTES} bytes"));
    }
    Ok(text)
}
