//! Where a page comes from: served over https by the rendezvous itself
//! (`--tls-cert`, a self-signed certificate made here with rcgen), the node
//! signals over `wss://`; served over plain http from a host that is not
//! loopback, the page is not a secure context, WebCrypto is missing, and
//! the node runs on its pure-Rust crypto alone.
//!
//! Needs the built UI (`trunk build --release`) and the rendezvous binary
//! (`cargo build -p rendezvous`; set `SYNAPSE_RENDEZVOUS_BIN` when
//! `CARGO_TARGET_DIR` is elsewhere).

use e2e::{Browser, NodePage, Rendezvous, serial, short, wait_until};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// Budget for two pages to connect, and for an op to replicate.
const TIMEOUT: Duration = Duration::from_secs(45);

/// A self-signed certificate for 127.0.0.1 as PEM files in a temporary
/// directory, removed on drop.
struct SelfSigned {
    dir: PathBuf,
}

impl SelfSigned {
    fn new() -> SelfSigned {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("self-signed certificate");
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("synapse-e2e-tls-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
        SelfSigned { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where the page is and what it may use: `[protocol, host, isSecureContext,
/// typeof crypto.subtle]`.
async fn origin(page: &NodePage) -> Value {
    page.eval("[location.protocol, location.host, window.isSecureContext, typeof crypto.subtle]").await
}

/// Waits until each page lists the other as a proven peer.
async fn connected(a: &NodePage, b: &NodePage) {
    let (ia, ib) = (a.id().await, b.id().await);
    wait_until(TIMEOUT, "the two pages to list each other as proven peers", async || {
        let (sa, sb) = (a.snapshot().await, b.snapshot().await);
        if sa.status.peers.contains(&ib) && sb.status.peers.contains(&ia) { Ok(()) } else { Err((sa, sb)) }
    })
    .await;
}

/// `a` opens a channel and `b` sees it; `b` joins and posts a task and `a`
/// sees it; both end on the same state hash. Returns the task id.
async fn an_op_replicates_both_ways(a: &NodePage, b: &NodePage) -> String {
    let _: String = a.eval("window.synapse.createChannel('tls', 'made on one page')").await;
    wait_until(TIMEOUT, "the channel to reach the other page", async || {
        let has: bool = b.eval("'tls' in window.synapse.state().state.channels").await;
        if has { Ok(()) } else { Err(b.snapshot().await) }
    })
    .await;
    let _: String = b.eval("window.synapse.subscribe('tls')").await;
    let task: String = b.eval("window.synapse.createTask('tls', {title: 'from the other page', reward: 5})").await;
    wait_until(TIMEOUT, "the task to reach the first page and both hashes to agree", async || {
        let has: bool = a.call("return arguments[0] in window.synapse.state().state.tasks;", vec![json!(task)]).await;
        let (ha, hb): (String, String) =
            (a.eval("window.synapse.stateHash()").await, b.eval("window.synapse.stateHash()").await);
        if has && ha == hb { Ok(()) } else { Err((has, short(&ha).to_string(), short(&hb).to_string())) }
    })
    .await;
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_served_over_https_connects_over_wss() {
    let _serial = serial().await;
    let cert = SelfSigned::new();
    let rdv = Rendezvous::start_with_args(&["--tls-cert", &cert.path("cert.pem"), "--tls-key", &cert.path("key.pem")]);
    let base = rdv.base_url().to_string();
    assert!(base.starts_with("https://127.0.0.1:"), "the binary says https: {base}");
    let browser = Browser::start().await;
    // The certificate is self-signed: Chromium must be told to accept it.
    let args = ["--ignore-certificate-errors"];
    let (url1, url2) = (rdv.page_url("profile=s1"), rdv.page_url("profile=s2"));
    let (a, b) = tokio::join!(browser.open_node_url(&url1, &args), browser.open_node_url(&url2, &args));
    let host = base.trim_start_matches("https://");
    assert_eq!(origin(&a).await, json!(["https:", host, true, "object"]), "a secure context with WebCrypto");
    let ws_url = format!("wss://{host}/ws");
    for page in [&a, &b] {
        wait_until(TIMEOUT, "the node to log in to the rendezvous over wss", async || {
            let s = page.status().await;
            if s.rendezvous.state == "connected" && s.rendezvous.url == ws_url { Ok(()) } else { Err(s) }
        })
        .await;
    }
    connected(&a, &b).await;
    an_op_replicates_both_ways(&a, &b).await;
    for n in [a, b] {
        n.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_over_plain_http_from_another_host_has_no_webcrypto_and_still_works() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    // Not a second machine: Chromium resolves this name to 127.0.0.1, but a
    // page from it over http is not a secure context (only loopback names
    // and addresses are trusted without TLS).
    let host = format!("synapse-remote.test:{}", rdv.port());
    let url = |profile: &str| format!("http://{host}/?profile={profile}");
    let args = ["--host-resolver-rules=MAP synapse-remote.test 127.0.0.1"];
    let (url1, url2) = (url("r1"), url("r2"));
    let (a, b) = tokio::join!(browser.open_node_url(&url1, &args), browser.open_node_url(&url2, &args));
    for page in [&a, &b] {
        assert_eq!(
            origin(page).await,
            json!(["http:", host, false, "undefined"]),
            "{}: an insecure context without crypto.subtle",
            page.label()
        );
        // The rendezvous login (signed for the host the page connected to)
        // worked.
        let ws_url = format!("ws://{host}/ws");
        wait_until(TIMEOUT, "the node to log in to the rendezvous", async || {
            let s = page.status().await;
            if s.rendezvous.state == "connected" && s.rendezvous.url == ws_url { Ok(()) } else { Err(s) }
        })
        .await;
    }
    connected(&a, &b).await;
    let task = an_op_replicates_both_ways(&a, &b).await;

    // Reloaded, the page verifies its stored ops in bulk, the path that
    // uses WebCrypto when there is one: here ed25519-dalek must do it all.
    let id_a = a.id().await;
    a.goto(&url1).await;
    a.wait_ready(TIMEOUT).await;
    assert_eq!(a.id().await, id_a, "the same node after the reload");
    // Its channel, and the other page's subscription and task.
    let ledger: Value = a.eval("window.synapse.pubsubStats().ledger").await;
    assert!(ledger["ops_loaded"].as_u64().unwrap_or(0) >= 3, "ops restored and verified: {ledger}");
    let has: bool = a.call("return arguments[0] in window.synapse.state().state.tasks;", vec![json!(task)]).await;
    assert!(has, "the task was restored from storage: {ledger}");
    assert_eq!(origin(&a).await[3], json!("undefined"), "still without WebCrypto");
    wait_until(TIMEOUT, "the reloaded page and the other to agree on the state", async || {
        let (ha, hb): (String, String) =
            (a.eval("window.synapse.stateHash()").await, b.eval("window.synapse.stateHash()").await);
        if ha == hb { Ok(()) } else { Err((short(&ha).to_string(), short(&hb).to_string())) }
    })
    .await;
    for n in [a, b] {
        n.close().await;
    }
}
