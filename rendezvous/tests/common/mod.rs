//! Shared test harness: an in-process rendezvous on 127.0.0.1:0 and a real
//! WebSocket client. Every wait is bounded by [`WAIT`], so a broken server
//! fails a test instead of hanging it. The client helpers take any stream,
//! so the TLS tests (`tls.rs`) drive `wss://` with the same code.

#![allow(dead_code)] // each test binary uses a different subset

use futures_util::{SinkExt, StreamExt};
use node_wasm::signaling::{ClientMsg, ErrorCode, ServerMsg, sign_challenge};
use node_wasm::{Identity, NodeId};
use rendezvous::Config;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Upper bound for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(10);

/// A client WebSocket; plain `ws://` unless a stream type is given.
pub type Ws<S = MaybeTlsStream<TcpStream>> = WebSocketStream<S>;

/// What a WebSocket (or an HTTP exchange) can run over: TCP or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin {}
impl<S: AsyncRead + AsyncWrite + Unpin> Stream for S {}

/// A fresh empty directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let path = std::env::temp_dir().join(format!("rdv-test-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A config for tests: defaults, but no UI directory.
pub fn test_config() -> Config {
    Config { dist: PathBuf::from("/nonexistent/synapse-rdv-test-dist"), ..Config::default() }
}

/// A server running in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(rendezvous::serve(config, listener, async move {
            let _ = stopped.await;
        }));
        TestServer { addr, stop: Some(stop), task: Some(task) }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Triggers graceful shutdown and waits for `serve` to return.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("task");
        tokio::time::timeout(WAIT, task).await.expect("serve returns after shutdown").expect("serve task")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

pub fn identity(seed: u8) -> Identity {
    Identity::from_seed([seed; 32])
}

pub fn id(seed: u8) -> NodeId {
    identity(seed).node_id()
}

pub async fn connect(server: &TestServer) -> Ws {
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(server.ws_url()))
        .await
        .expect("connect in time")
        .expect("websocket handshake");
    ws
}

/// The next protocol message, skipping WebSocket control frames.
pub async fn recv<S: Stream>(ws: &mut Ws<S>) -> ServerMsg {
    let next = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str::<ServerMsg>(t.as_str())
                        .unwrap_or_else(|e| panic!("bad server message {t}: {e}"));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a message, got {other:?}"),
            }
        }
    };
    tokio::time::timeout(WAIT, next).await.expect("message in time")
}

/// Waits until the server closes the connection, failing if it sends another
/// protocol message first. Reads past the close frame to the end of the
/// stream: that flushes tungstenite's close reply (as a browser would send
/// it) and checks the server really hangs up.
pub async fn expect_closed<S: Stream>(ws: &mut Ws<S>) {
    let closed = async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(Message::Close(_) | Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => panic!("expected close, got {other:?}"),
            }
        }
    };
    tokio::time::timeout(WAIT, closed).await.expect("closed in time");
}

/// The next message must be `error{code}`; returns the reason.
pub async fn expect_error<S: Stream>(ws: &mut Ws<S>, code: ErrorCode) -> String {
    match recv(ws).await {
        ServerMsg::Error { code: got, reason } if got == code => {
            assert!(!reason.is_empty(), "errors carry a reason");
            reason
        }
        other => panic!("expected error {code:?}, got {other:?}"),
    }
}

pub async fn send_text<S: Stream>(ws: &mut Ws<S>, text: impl Into<String>) {
    ws.send(Message::text(text.into())).await.expect("send");
}

pub async fn send<S: Stream>(ws: &mut Ws<S>, msg: &ClientMsg) {
    send_text(ws, serde_json::to_string(msg).expect("encode")).await;
}

pub async fn recv_challenge<S: Stream>(ws: &mut Ws<S>) -> String {
    match recv(ws).await {
        ServerMsg::Challenge { nonce } => nonce,
        other => panic!("expected challenge, got {other:?}"),
    }
}

/// Connects until the server admits a connection (a challenge) instead of
/// refusing it with `too_many_connections`: a freed slot is reused.
pub async fn admitted_once_a_slot_frees(server: &TestServer) {
    let admitted = async {
        loop {
            let mut ws = connect(server).await;
            match recv(&mut ws).await {
                ServerMsg::Challenge { .. } => return,
                ServerMsg::Error { code: ErrorCode::TooManyConnections, .. } => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    tokio::time::timeout(WAIT, admitted).await.expect("slot freed after disconnect");
}

/// Connects and authenticates as `seed`'s identity; returns the socket and
/// the peers listed in the welcome.
pub async fn login(server: &TestServer, seed: u8) -> (Ws, Vec<NodeId>) {
    let mut ws = connect(server).await;
    let peers = authenticate(&mut ws, seed, &server.addr.to_string()).await;
    (ws, peers)
}

/// Answers the challenge on a fresh connection as `seed`'s identity, signed
/// for `host`, and expects the welcome; returns the peers it lists.
pub async fn authenticate<S: Stream>(ws: &mut Ws<S>, seed: u8, host: &str) -> Vec<NodeId> {
    let me = identity(seed);
    let nonce = recv_challenge(ws).await;
    let signature = sign_challenge(&me, &nonce, host).expect("sign");
    send(ws, &ClientMsg::Auth { id: me.node_id(), signature }).await;
    match recv(ws).await {
        ServerMsg::Welcome { id, peers, .. } => {
            assert_eq!(id, me.node_id());
            peers
        }
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// A plain HTTP/1.1 GET; returns status, the header block and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr)).await.expect("connect in time").expect("connect");
    http_get_over(stream, &addr.to_string(), path).await
}

/// An HTTP/1.1 GET of `path` from `host` over an open `stream` (TCP or TLS).
pub async fn http_get_over<S: Stream>(mut stream: S, host: &str, path: &str) -> (u16, String, String) {
    let exchange = async {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write request");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read response");
        raw
    };
    let raw = tokio::time::timeout(WAIT, exchange).await.expect("response in time");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header/body separator");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    (status, head.to_string(), body.to_string())
}
