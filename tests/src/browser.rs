//! chromedriver and one isolated headless Chromium per node.

use crate::api::{Hello, PeerState, Stats, Status, Timings};
use crate::paths::{chromedriver_bin, chromium_bin};
use crate::process::ProcessGuard;
use crate::rendezvous::Rendezvous;
use crate::short;
use crate::wait::wait_until;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long chromedriver may take to accept connections.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one Chromium may take to start (a WebDriver session).
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);
/// Default wait for the wasm node to publish `window.synapse`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Chromium flags: headless, no sandbox (containers, root), no background
/// traffic, QUIC off, and real host ICE candidates instead of mDNS names
/// (headless Chromium cannot resolve `.local` names between contexts).
const CHROME_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
];

/// One chromedriver process; every [`NodePage`] it opens is a separate
/// Chromium with its own fresh profile directory. Dropping it kills
/// chromedriver and any Chromium still running, then deletes the profiles.
pub struct Browser {
    driver: Option<ProcessGuard>,
    webdriver_url: String,
    chromium: PathBuf,
    profiles: Arc<Mutex<Vec<PathBuf>>>,
    next: AtomicU32,
}

impl Browser {
    /// Starts chromedriver on a free local port and waits until it accepts
    /// connections.
    pub async fn start() -> Browser {
        let bin = chromedriver_bin();
        let chromium = chromium_bin();
        let port = free_port();
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("--port={port}")).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut driver =
            ProcessGuard::spawn("chromedriver", cmd).unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        driver.capture_stderr();
        let start = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            if let Some(status) = driver.exited() {
                panic!(
                    "chromedriver exited ({status}) before listening on port {port}; log:\n{}",
                    driver.log_tail().join("\n")
                );
            }
            assert!(
                start.elapsed() < DRIVER_START_TIMEOUT,
                "chromedriver did not listen on port {port} within {DRIVER_START_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Browser {
            driver: Some(driver),
            webdriver_url: format!("http://127.0.0.1:{port}"),
            chromium,
            profiles: Arc::new(Mutex::new(Vec::new())),
            next: AtomicU32::new(0),
        }
    }

    /// Starts a new Chromium (fresh `--user-data-dir`) showing `about:blank`.
    /// `label` names it in messages.
    pub async fn open(&self, label: &str) -> NodePage {
        self.open_with_args(label, &[]).await
    }

    /// [`Browser::open`] with Chromium flags added to [`CHROME_ARGS`], e.g.
    /// `--ignore-certificate-errors` for a self-signed https rendezvous, or
    /// `--host-resolver-rules=MAP name 127.0.0.1` to reach this machine under
    /// another host name.
    pub async fn open_with_args(&self, label: &str, extra_args: &[&str]) -> NodePage {
        self.open_with(label, &self.chromium.clone(), extra_args).await
    }

    /// Like [`Browser::open`], with `binary` started instead of Chromium: a
    /// wrapper that runs Chromium elsewhere, e.g. inside a network namespace
    /// ([`crate::NatLab::chromium_wrapper`]). chromedriver then talks to it
    /// over `--remote-debugging-pipe` (inherited file descriptors) instead
    /// of a DevTools TCP port on a loopback the wrapper may not share.
    pub async fn open_in(&self, label: &str, binary: &Path) -> NodePage {
        self.open_with(label, binary, &["--remote-debugging-pipe"]).await
    }

    /// [`Browser::open_in`], then [`Browser::open_node`]'s navigation and
    /// wait. The rendezvous's origin is treated as secure (it is plain
    /// `http://` on a lab address, not loopback, and WebCrypto and other
    /// APIs the node uses exist only in secure contexts).
    pub async fn open_node_in(&self, rdv: &Rendezvous, query: &str, binary: &Path) -> NodePage {
        let secure = format!("--unsafely-treat-insecure-origin-as-secure={}", rdv.base_url());
        let page = self.open_with(&label_of(query), binary, &["--remote-debugging-pipe", &secure]).await;
        page.goto(&rdv.page_url(query)).await;
        page.wait_ready(READY_TIMEOUT).await;
        page
    }

    async fn open_with(&self, label: &str, binary: &Path, extra_args: &[&str]) -> NodePage {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let profile = std::env::temp_dir().join(format!("synapse-e2e-{}-{}-{n}", std::process::id(), nanos_now()));
        std::fs::create_dir_all(&profile).unwrap_or_else(|e| panic!("cannot create {}: {e}", profile.display()));
        self.profiles.lock().unwrap().push(profile.clone());

        let mut args: Vec<String> = CHROME_ARGS.iter().map(|s| s.to_string()).collect();
        args.extend(extra_args.iter().map(|s| s.to_string()));
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": { "script": 120_000, "pageLoad": 60_000, "implicit": 0 },
            "goog:chromeOptions": {
                "binary": binary.display().to_string(),
                "args": args,
            },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        let client = match tokio::time::timeout(SESSION_TIMEOUT, builder.connect(&self.webdriver_url)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                panic!("cannot start Chromium for {label}: {e}; chromedriver log:\n{}", self.driver_log().join("\n"))
            }
            Err(_) => panic!("Chromium for {label} did not start within {SESSION_TIMEOUT:?}"),
        };
        NodePage { client, label: label.to_string(), profile, profiles: self.profiles.clone() }
    }

    /// Opens a new Chromium on the UI served by `rdv` with `query` (e.g.
    /// `profile=n1`), and waits until its node has published
    /// `window.synapse`.
    pub async fn open_node(&self, rdv: &Rendezvous, query: &str) -> NodePage {
        self.open_node_url(&rdv.page_url(query), &[]).await
    }

    /// Opens a new Chromium with `extra_args` (see
    /// [`Browser::open_with_args`]) on `url`, a page of the UI, and waits
    /// until its node has published `window.synapse`. The label is the
    /// URL's `profile=` parameter.
    pub async fn open_node_url(&self, url: &str, extra_args: &[&str]) -> NodePage {
        let label = label_of(url.split_once('?').map_or("", |(_, q)| q));
        let page = self.open_with_args(&label, extra_args).await;
        page.goto(url).await;
        page.wait_ready(READY_TIMEOUT).await;
        page
    }

    fn driver_log(&self) -> Vec<String> {
        self.driver.as_ref().map(ProcessGuard::log_tail).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Kill chromedriver and its Chromium processes first, so nothing
        // writes into the profile directories while they are removed.
        drop(self.driver.take());
        if let Ok(dirs) = self.profiles.lock() {
            for d in dirs.iter() {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
}

/// `profile=NAME` as the label when present, else the whole query.
fn label_of(query: &str) -> String {
    query.split('&').find_map(|kv| kv.strip_prefix("profile=")).unwrap_or(query).to_string()
}

fn nanos_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// A port that was free a moment ago (bound to 127.0.0.1:0, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind 127.0.0.1:0 to find a free port")
}

/// One node: a Chromium window (WebDriver session) on the UI.
pub struct NodePage {
    client: Client,
    label: String,
    profile: PathBuf,
    profiles: Arc<Mutex<Vec<PathBuf>>>,
}

/// Everything a node exposes, fetched in one round trip; its `Debug` output
/// is compact (short ids) for failure messages.
#[derive(Clone, Deserialize)]
pub struct Snapshot {
    #[serde(skip)]
    pub label: String,
    pub status: Status,
    pub stats: Stats,
    pub hellos: Vec<Hello>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shorts = |v: &[String]| v.iter().map(|s| short(s).to_string()).collect::<Vec<_>>();
        let s = &self.stats;
        f.debug_struct(&format!("{}@{}", self.label, short(&self.status.id)))
            .field("rendezvous", &self.status.rendezvous.state)
            .field("last_error", &self.status.rendezvous.last_error)
            .field("directory", &shorts(&self.status.rendezvous.directory))
            .field("peers", &shorts(&self.status.peers))
            .field(
                "ice",
                &format_args!("{} {} {:?}", self.status.ice.source, self.status.ice.policy, self.status.ice.sentence),
            )
            .field("hellos", &self.hellos.iter().map(|h| format!("{}: {}", short(&h.from), h.text)).collect::<Vec<_>>())
            .field(
                "stats",
                &format_args!(
                    "created={} open={} proven={} proofs_rejected={} violations={} \
                     handshake_timeouts={} reconnects={}",
                    s.connections_created,
                    s.channels_opened,
                    s.peers_proven,
                    s.proofs_rejected,
                    s.protocol_violations,
                    s.handshake_timeouts,
                    s.reconnects_scheduled
                ),
            )
            .finish()
    }
}

impl NodePage {
    /// The label given at [`Browser::open`] (the profile name for
    /// [`Browser::open_node`]).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The underlying WebDriver client, for anything the helpers lack.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Navigates and waits for the page's `load` event.
    pub async fn goto(&self, url: &str) {
        if let Err(e) = self.client.goto(url).await {
            panic!("{}: cannot load {url}: {e}", self.label);
        }
    }

    /// Runs `script` (a function body: use `return`; `arguments[i]` are the
    /// `args`) and returns its JSON result; a returned Promise is awaited.
    pub async fn try_call(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.client.execute(script, args).await.map_err(|e| format!("{}: script failed: {e}", self.label))
    }

    /// [`NodePage::try_call`], deserialised into `T`; panics on failure.
    pub async fn call<T: DeserializeOwned>(&self, script: &str, args: Vec<Value>) -> T {
        let v = self.try_call(script, args).await.unwrap_or_else(|e| panic!("{e}\nscript: {script}"));
        serde_json::from_value(v.clone())
            .unwrap_or_else(|e| panic!("{}: unexpected result {v} of script {script}: {e}", self.label))
    }

    /// Evaluates the JS expression `expr` (awaiting a Promise) into `T`.
    pub async fn eval<T: DeserializeOwned>(&self, expr: &str) -> T {
        self.call(&format!("return ({expr});"), vec![]).await
    }

    /// Waits until the wasm node has started and published `window.synapse`.
    /// On timeout the message shows the document state and the page text
    /// (where the UI reports start-up errors).
    pub async fn wait_ready(&self, timeout: Duration) {
        const PROBE: &str = "if (typeof window.synapse !== 'undefined') return true; \
            return { readyState: document.readyState, url: location.href, \
                     title: document.title, \
                     text: (document.body ? document.body.innerText : '').slice(0, 500) };";
        let what = format!("{} to publish window.synapse", self.label);
        wait_until(timeout, &what, async || match self.try_call(PROBE, vec![]).await {
            Ok(Value::Bool(true)) => Ok(()),
            Ok(other) => Err(other.to_string()),
            Err(e) => Err(e),
        })
        .await;
    }

    /// `synapse.id()`: this node's id (64 hex characters).
    pub async fn id(&self) -> String {
        self.eval("window.synapse.id()").await
    }

    /// `synapse.peers()`: ids with an open channel and a proven identity.
    pub async fn peers(&self) -> Vec<String> {
        self.eval("window.synapse.peers()").await
    }

    /// `synapse.peerStates()`: every connection, in any state.
    pub async fn peer_states(&self) -> Vec<PeerState> {
        self.eval("window.synapse.peerStates()").await
    }

    /// The connection to `id` in `synapse.peerStates()`, if any.
    pub async fn peer_state(&self, id: &str) -> Option<PeerState> {
        self.peer_states().await.into_iter().find(|p| p.id == id)
    }

    /// `synapse.setIceServers(servers)` (`[{urls, username?, credential?}]`);
    /// `Err` with the page's reason if it refused them.
    pub async fn set_ice_servers(&self, servers: Value) -> Result<(), String> {
        self.try_call("return window.synapse.setIceServers(arguments[0]);", vec![servers]).await.map(|_| ())
    }

    /// `synapse.hellos()`: verified hellos received.
    pub async fn hellos(&self) -> Vec<Hello> {
        self.eval("window.synapse.hellos()").await
    }

    /// `synapse.status()`.
    pub async fn status(&self) -> Status {
        self.eval("window.synapse.status()").await
    }

    /// `synapse.stats()`.
    pub async fn stats(&self) -> Stats {
        self.eval("window.synapse.stats()").await
    }

    /// `synapse.timings()`.
    pub async fn timings(&self) -> Timings {
        self.eval("window.synapse.timings()").await
    }

    /// Status, stats and hellos in one round trip.
    pub async fn snapshot(&self) -> Snapshot {
        let mut s: Snapshot = self
            .eval(
                "{ status: window.synapse.status(), stats: window.synapse.stats(), \
                   hellos: window.synapse.hellos() }",
            )
            .await;
        s.label = self.label.clone();
        s
    }

    /// `synapse.sendHello(text)`: the number of peers it went to.
    pub async fn send_hello(&self, text: &str) -> u32 {
        self.call("return window.synapse.sendHello(arguments[0]);", vec![json!(text)]).await
    }

    /// `synapse.closePeer(id)`: whether a channel was open.
    pub async fn close_peer(&self, id: &str) -> bool {
        self.call("return window.synapse.closePeer(arguments[0]);", vec![json!(id)]).await
    }

    /// `synapse.sendBlob(id, len)`: false if `id` is not a proven peer.
    pub async fn send_blob(&self, id: &str, len: u32) -> bool {
        self.call("return window.synapse.sendBlob(arguments[0], arguments[1]);", vec![json!(id), json!(len)]).await
    }

    /// Ends the WebDriver session (Chromium quits) and deletes the profile
    /// directory. Pages that are only dropped are cleaned up with their
    /// [`Browser`].
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(20), self.client.close()).await;
        // Chromium's helpers may still be exiting; retry briefly.
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.profile).is_ok() || !self.profile.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !self.profile.exists()
            && let Ok(mut dirs) = self.profiles.lock()
        {
            dirs.retain(|d| d != &self.profile);
        }
    }
}
