//! The HTTP side: router, shared state, serving (plain or TLS, see
//! [`crate::tls`]) and graceful shutdown.

use crate::config::Config;
use crate::directory::Directory;
use crate::metrics::Metrics;
use crate::session;
use crate::tls::{self, ClientAddr, TlsListener};
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::{DefaultOnFailure, TraceLayer};

/// What `GET /` says when there is no UI to serve.
pub const UI_NOT_BUILT: &str = "The UI is not built. Run ./scripts/run (or: trunk build --release) and restart.";

/// How much bigger than `max_frame_bytes` axum's own WebSocket limits are.
/// Messages between the two reach our check and get a `frame_too_large`
/// answer; the transport limit only bounds memory for anything larger.
const TRANSPORT_SLACK: usize = 4 * 1024;

/// How long shutdown waits for connections to say goodbye before returning.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// State shared by every connection and handler.
#[derive(Debug)]
pub struct Shared {
    /// The configuration the server was started with.
    pub config: Config,
    /// Counters for `/metrics` (shared with the TLS listener).
    pub metrics: Arc<Metrics>,
    directory: Mutex<Directory>,
    /// Open WebSocket connections. A watch channel rather than an atomic so
    /// shutdown can wait for it to reach zero.
    connections: watch::Sender<usize>,
    /// Becomes true when shutdown starts.
    stopping: watch::Receiver<bool>,
    next_conn: AtomicU64,
    /// Open connections per client IP address (`max_connections_per_ip`).
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// The genesis record pages fetch at `/genesis.json`.
    genesis_json: String,
}

impl Shared {
    /// The directory. A poisoned lock only means a task panicked while
    /// holding it; the map itself is still consistent (every mutation is a
    /// single insert/remove), so keep serving rather than cascade panics.
    pub fn directory(&self) -> MutexGuard<'_, Directory> {
        self.directory.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A fresh connection number for logs and directory bookkeeping.
    pub fn next_conn(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// A receiver that changes when shutdown starts.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.clone()
    }

    /// True once shutdown has started.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Claims one of the `max_connections` slots for a client at `ip`,
    /// within `max_connections_per_ip`. The slot is released when the
    /// returned guard drops, whatever way the connection ends.
    pub fn claim_slot(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, SlotRefused> {
        {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let n = per_ip.entry(ip).or_insert(0);
            if *n >= self.config.max_connections_per_ip {
                return Err(SlotRefused::PerIp);
            }
            *n += 1;
        }
        let max = self.config.max_connections;
        let claimed = self.connections.send_if_modified(|n| {
            if *n >= max {
                false
            } else {
                *n += 1;
                true
            }
        });
        if claimed {
            Ok(ConnectionSlot(self.clone(), ip))
        } else {
            self.release_ip(ip);
            Err(SlotRefused::Total)
        }
    }

    fn release_ip(&self, ip: IpAddr) {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_ip.remove(&ip);
            }
        }
    }

    /// Open WebSocket connections.
    pub fn connections(&self) -> usize {
        *self.connections.borrow()
    }
}

/// Why [`Shared::claim_slot`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRefused {
    /// Every one of `max_connections` is taken.
    Total,
    /// This IP address holds `max_connections_per_ip` already.
    PerIp,
}

/// One claimed connection slot (see [`Shared::claim_slot`]).
#[derive(Debug)]
pub struct ConnectionSlot(Arc<Shared>, IpAddr);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.send_modify(|n| *n = n.saturating_sub(1));
        self.0.release_ip(self.1);
    }
}

/// Serves the rendezvous on `listener` until `shutdown` completes, then stops
/// accepting, tells every connected client `shutting_down`, waits briefly for
/// them to close and returns. A config that [`Server::new`] refuses is an
/// `InvalidInput` error carrying its sentence.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let server = Server::new(config).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    server.serve(listener, shutdown).await
}

/// A server ready to run: its configuration checked and, with `--tls-cert`
/// and `--tls-key`, the certificate loaded. The binary builds it before it
/// binds or prints anything, so a bad certificate stops it with one
/// sentence instead of failing later.
pub struct Server {
    config: Config,
    tls: Option<tokio_rustls::TlsAcceptor>,
    genesis: node_wasm::core::genesis::Genesis,
}

impl Server {
    /// Checks `config` and loads its TLS files; the error is a sentence
    /// for the operator.
    pub fn new(config: Config) -> Result<Server, String> {
        config.validate().map_err(|e| format!("invalid configuration: {e}"))?;
        let tls = match config.tls_files() {
            Some((cert, key)) => Some(tls::load(cert, key).map_err(|e| e.to_string())?),
            None => None,
        };
        let genesis = config.load_genesis()?;
        Ok(Server { config, tls, genesis })
    }

    /// `https` with TLS, else `http` (for the `listening on` line).
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// See [`serve`].
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        run(self.config, self.tls, self.genesis, listener, shutdown).await
    }
}

async fn run(
    config: Config,
    tls: Option<tokio_rustls::TlsAcceptor>,
    genesis: node_wasm::core::genesis::Genesis,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let genesis_hash = genesis.hash().to_hex();
    tracing::info!(network = %genesis.name, genesis = %genesis_hash, "serving the genesis at /genesis.json");
    let shared = Arc::new(Shared {
        genesis_json: serde_json::to_string(&genesis).unwrap_or_default(),
        config,
        metrics: Arc::default(),
        directory: Mutex::new(Directory::default()),
        connections: watch::channel(0).0,
        stopping: stop_rx,
        next_conn: AtomicU64::new(1),
        per_ip: Mutex::new(HashMap::new()),
    });
    let app = router(shared.clone());
    if let Ok(addr) = listener.local_addr() {
        let tls = tls.is_some();
        tracing::info!(%addr, tls, dist = %shared.config.dist.display(), "rendezvous serving");
    }

    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested: refusing new connections, closing open ones");
        // Sessions watch this and send `shutting_down` before closing.
        let _ = stop_tx.send(true);
    };
    let app = app.into_make_service_with_connect_info::<ClientAddr>();
    match tls {
        None => axum::serve(listener, app).with_graceful_shutdown(signal).await?,
        Some(acceptor) => {
            let max_per_ip = shared.config.max_connections_per_ip;
            let listener =
                TlsListener::new(listener, acceptor, max_per_ip, tls::HANDSHAKE_TIMEOUT, shared.metrics.clone())?;
            axum::serve(listener, app).with_graceful_shutdown(signal).await?
        }
    }

    // axum stops tracking a connection once it is upgraded to a WebSocket, so
    // wait for the sessions ourselves.
    let mut open = shared.connections.subscribe();
    if tokio::time::timeout(SHUTDOWN_GRACE, open.wait_for(|n| *n == 0)).await.is_err() {
        tracing::warn!(open = shared.connections(), "connections still open after the shutdown grace period");
    }
    tracing::info!("rendezvous stopped");
    Ok(())
}

/// The routes: `/ws`, `/healthz`, `/metrics`, and the UI for everything else.
pub fn router(shared: Arc<Shared>) -> Router {
    let routes = Router::new()
        .route("/ws", get(ws_upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/genesis.json", get(genesis));
    let dist = shared.config.dist.clone();
    let routes = if ui_is_built(&dist) {
        // Unknown paths get index.html (200) so client-side routes survive a reload.
        let files = ServeDir::new(&dist).fallback(ServeFile::new(dist.join("index.html")));
        routes.fallback_service(files).layer(axum::middleware::from_fn(cache_policy))
    } else {
        tracing::warn!(dist = %dist.display(), "{UI_NOT_BUILT}");
        routes.fallback(ui_not_built)
    };
    // Handlers never fail; the only 5xx is the deliberate "UI not built"
    // 503, already warned about at startup, so keep it out of error logs.
    let trace = TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG));
    routes.layer(trace).with_state(shared)
}

/// `Cache-Control` for what the server answers without one: trunk names
/// the app's files by content hash (`web-ui-<16 hex>_bg.wasm`), so they
/// never change and are cached for a year; everything else (`index.html`,
/// unhashed worker files) is revalidated on every load. A cached module
/// also lets the browser reuse its optimized machine code, so a reload
/// does not start again in the engine's baseline tier (docs/BENCHMARKS.md,
/// "Reload").
async fn cache_policy(req: axum::http::Request<axum::body::Body>, next: axum::middleware::Next) -> Response {
    let immutable = is_hashed_asset(req.uri().path());
    let mut res = next.run(req).await;
    if res.status().is_success() && !res.headers().contains_key(header::CACHE_CONTROL) {
        let policy = if immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
        res.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static(policy));
    }
    res
}

/// True for a file named `<name>-<16 hex digits>` then `.` or `_` (trunk's
/// content-hashed output).
pub fn is_hashed_asset(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or("");
    let Some((_, tail)) = file.rsplit_once('-') else { return false };
    let hash = tail.split(['.', '_']).next().unwrap_or("");
    hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) && tail.len() > 16
}

/// The UI counts as built when its entry point exists. Checked once at
/// startup: the hint tells the operator to restart after building.
fn ui_is_built(dist: &Path) -> bool {
    dist.join("index.html").is_file()
}

async fn ui_not_built() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], UI_NOT_BUILT)
        .into_response()
}

/// The network's genesis record: pages fetch it before their node starts.
/// Public, and readable cross-origin: a page served by one rendezvous may
/// be given another (`?rendezvous=`) and fetch its genesis from there.
async fn genesis(State(shared): State<Arc<Shared>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        shared.genesis_json.clone(),
    )
        .into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let peers = shared.directory().len();
    let body = shared.metrics.render(shared.connections(), peers);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

async fn ws_upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(ClientAddr(addr)): ConnectInfo<ClientAddr>,
    headers: axum::http::HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // The host the client reached us at: its login signature covers it.
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_ascii_lowercase).unwrap_or_default();
    let limit = shared.config.max_frame_bytes.saturating_add(TRANSPORT_SLACK);
    ws.max_message_size(limit).max_frame_size(limit).on_upgrade(move |socket| session::run(shared, socket, addr, host))
}
