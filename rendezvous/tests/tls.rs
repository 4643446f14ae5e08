//! TLS on the rendezvous port (`--tls-cert`, `--tls-key`): `https://` serves
//! the UI, a `wss://` client logs in as over `ws://`, the limits and the
//! graceful shutdown hold, plain http to the port fails without harm, and
//! the binary refuses bad certificate files with one sentence.
//!
//! Certificates are self-signed, made here with rcgen for `127.0.0.1`; the
//! clients trust exactly that certificate.

mod common;

use common::*;
use node_wasm::signaling::{ClientMsg, ErrorCode, ServerMsg, sign_challenge};
use rendezvous::Config;
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// A self-signed certificate for 127.0.0.1 and its key, as PEM files.
struct Cert {
    dir: TempDir,
    cert: PathBuf,
    key: PathBuf,
    der: CertificateDer<'static>,
}

impl Cert {
    fn new(tag: &str) -> Cert {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("self-signed certificate");
        let dir = TempDir::new(tag);
        let (cert, key) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        Cert { dir, cert, key, der: made.cert.der().clone() }
    }

    /// `test_config()` serving TLS with this certificate.
    fn config(&self) -> Config {
        Config { tls_cert: Some(self.cert.clone()), tls_key: Some(self.key.clone()), ..test_config() }
    }

    /// A client that trusts this certificate only.
    fn connector(&self) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).expect("trust anchor");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }

    async fn connect(&self, addr: SocketAddr) -> TlsStream<TcpStream> {
        let open = async {
            let tcp = TcpStream::connect(addr).await.expect("tcp connect");
            self.connector().connect(ServerName::IpAddress(addr.ip().into()), tcp).await.expect("TLS handshake")
        };
        tokio::time::timeout(WAIT, open).await.expect("TLS connection in time")
    }

    async fn https_get(&self, addr: SocketAddr, path: &str) -> (u16, String, String) {
        http_get_over(self.connect(addr).await, &addr.to_string(), path).await
    }

    /// A `wss://…/ws` client, not yet logged in.
    async fn wss(&self, addr: SocketAddr) -> Ws<TlsStream<TcpStream>> {
        let tls = self.connect(addr).await;
        let handshake = tokio_tungstenite::client_async(format!("wss://{addr}/ws"), tls);
        let (ws, _) = tokio::time::timeout(WAIT, handshake).await.expect("upgrade in time").expect("upgrade");
        ws
    }
}

/// Polls `/metrics` over https until it holds `line`.
async fn metrics_show(cert: &Cert, addr: SocketAddr, line: &str) {
    let shows = async {
        loop {
            let (_, _, body) = cert.https_get(addr, "/metrics").await;
            if body.contains(line) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, shows).await.unwrap_or_else(|_| panic!("/metrics never showed {line:?}"));
}

#[tokio::test]
async fn https_serves_the_ui_index() {
    let cert = Cert::new("https-ui");
    let dist = TempDir::new("https-dist");
    std::fs::write(dist.0.join("index.html"), "<!doctype html><title>synapse over tls</title>").unwrap();
    let server = TestServer::start(Config { dist: dist.0.clone(), ..cert.config() }).await;

    let (status, head, body) = cert.https_get(server.addr, "/").await;
    assert_eq!(status, 200, "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/html"), "{head}");
    assert!(body.contains("<title>synapse over tls</title>"), "{body}");
    let (status, _, body) = cert.https_get(server.addr, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
}

#[tokio::test]
async fn wss_login_gets_welcome_and_signals_are_relayed() {
    let cert = Cert::new("wss-login");
    let server = TestServer::start(cert.config()).await;
    let host = server.addr.to_string();
    let mut a = cert.wss(server.addr).await;
    assert!(authenticate(&mut a, 1, &host).await.is_empty());
    let mut b = cert.wss(server.addr).await;
    assert_eq!(authenticate(&mut b, 2, &host).await, vec![id(1)]);
    assert_eq!(recv(&mut a).await, ServerMsg::PeerJoined { id: id(2) });
    send(&mut a, &ClientMsg::Signal { to: id(2), payload: json!({"over": "tls"}) }).await;
    assert_eq!(recv(&mut b).await, ServerMsg::Signal { from: id(1), payload: json!({"over": "tls"}) });

    // The login stays bound to the host over TLS: signed for another one,
    // it is refused, naming the host this client reached.
    let mut c = cert.wss(server.addr).await;
    let nonce = recv_challenge(&mut c).await;
    let signature = sign_challenge(&identity(3), &nonce, "evil.example").unwrap();
    send(&mut c, &ClientMsg::Auth { id: id(3), signature }).await;
    let why = expect_error(&mut c, ErrorCode::AuthFailed).await;
    assert!(why.contains(&host), "{why}");
}

#[tokio::test]
async fn plain_http_to_the_tls_port_fails_cleanly_and_the_server_keeps_serving() {
    let cert = Cert::new("plain");
    let server = TestServer::start(cert.config()).await;
    let exchange = async {
        let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
        let request = format!("GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", server.addr);
        tcp.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        // Closed by the server: a clean end or a reset, either is fine.
        let _ = tcp.read_to_end(&mut answer).await;
        answer
    };
    let answer = tokio::time::timeout(WAIT, exchange).await.expect("the server closes the connection in time");
    assert!(!answer.starts_with(b"HTTP/"), "no plain http answer: {:?}", String::from_utf8_lossy(&answer));
    metrics_show(&cert, server.addr, "rendezvous_tls_handshake_failures_total{reason=\"error\"} 1\n").await;
    // Still serving, the WebSocket side too.
    let mut ws = cert.wss(server.addr).await;
    authenticate(&mut ws, 1, &server.addr.to_string()).await;
}

#[tokio::test]
async fn per_ip_connection_cap_holds_over_wss() {
    let cert = Cert::new("per-ip");
    let server = TestServer::start(Config { max_connections_per_ip: 2, ..cert.config() }).await;
    let mut first = cert.wss(server.addr).await;
    let mut second = cert.wss(server.addr).await;
    recv_challenge(&mut first).await;
    recv_challenge(&mut second).await;
    let mut third = cert.wss(server.addr).await;
    let why = expect_error(&mut third, ErrorCode::TooManyConnections).await;
    assert!(why.contains("your address"), "{why}");
    expect_closed(&mut third).await;
}

#[tokio::test]
async fn graceful_shutdown_over_tls_tells_wss_clients_and_returns() {
    let cert = Cert::new("shutdown");
    let server = TestServer::start(cert.config()).await;
    let addr = server.addr;
    let mut a = cert.wss(addr).await;
    authenticate(&mut a, 1, &addr.to_string()).await;
    let stopped = tokio::spawn(server.shutdown());
    expect_error(&mut a, ErrorCode::ShuttingDown).await;
    expect_closed(&mut a).await;
    stopped.await.unwrap().expect("serve returns Ok");
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

/// Runs the binary with `args` (and no UI); it must exit non-zero in time.
/// Returns its stderr, which must be one line, with no panic.
async fn refused(args: &[&str]) -> String {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rendezvous"))
        .args(["--listen", "127.0.0.1:0", "--dist", "/nonexistent/synapse-rdv-test-dist"])
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rendezvous");
    let out = tokio::time::timeout(WAIT, child.wait_with_output()).await.expect("exits in time").unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "started anyway; stderr: {stderr}");
    assert!(out.stdout.is_empty(), "printed {:?}", String::from_utf8_lossy(&out.stdout));
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[tokio::test]
async fn binary_refuses_a_missing_key_file() {
    let cert = Cert::new("bin-missing");
    let missing = cert.dir.0.join("no-such-key.pem");
    let err = refused(&["--tls-cert", path(&cert.cert), "--tls-key", path(&missing)]).await;
    assert!(err.contains(&format!("cannot read the TLS key file {}: ", missing.display())), "{err}");
}

#[tokio::test]
async fn binary_refuses_a_mismatched_pair() {
    let (one, other) = (Cert::new("bin-pair-1"), Cert::new("bin-pair-2"));
    let err = refused(&["--tls-cert", path(&one.cert), "--tls-key", path(&other.key)]).await;
    assert!(err.contains("does not match the certificate"), "{err}");
}

#[tokio::test]
async fn binary_refuses_one_file_without_the_other() {
    let cert = Cert::new("bin-one");
    let err = refused(&["--tls-cert", path(&cert.cert)]).await;
    assert!(err.contains("--tls-cert needs --tls-key"), "{err}");
    // The environment variables count as the flags.
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rendezvous"))
        .args(["--listen", "127.0.0.1:0"])
        .env("SYNAPSE_RDV_TLS_KEY", &cert.key)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(WAIT, child.wait_with_output()).await.expect("exits in time").unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key needs --tls-cert"));
}

#[tokio::test]
async fn binary_refuses_pem_files_without_a_certificate_or_a_key() {
    let cert = Cert::new("bin-swapped");
    // The key file given as the certificate, and the other way round.
    let err = refused(&["--tls-cert", path(&cert.key), "--tls-key", path(&cert.key)]).await;
    assert!(err.contains(&format!("the TLS certificate file {} holds no certificate", cert.key.display())), "{err}");
    let err = refused(&["--tls-cert", path(&cert.cert), "--tls-key", path(&cert.cert)]).await;
    assert!(err.contains(&format!("the TLS key file {} holds no private key", cert.cert.display())), "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn binary_serves_https_and_wss_and_exits_cleanly_on_sigterm() {
    let cert = Cert::new("bin-serve");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rendezvous"))
        .args(["--listen", "127.0.0.1:0", "--dist", "/nonexistent/synapse-rdv-test-dist"])
        .args(["--tls-cert", path(&cert.cert), "--tls-key", path(&cert.key)])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rendezvous");
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    tokio::time::timeout(WAIT, stdout.read_line(&mut line)).await.expect("listening line in time").unwrap();
    let addr: SocketAddr = line
        .trim_end()
        .strip_prefix("listening on https://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("a socket address");
    let (status, _, body) = cert.https_get(addr, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let mut ws = cert.wss(addr).await;
    authenticate(&mut ws, 1, &addr.to_string()).await;

    let pid = child.id().expect("running");
    let status = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill -TERM");
    assert!(status.success());
    expect_error(&mut ws, ErrorCode::ShuttingDown).await;
    expect_closed(&mut ws).await;
    let exit = tokio::time::timeout(WAIT, child.wait()).await.expect("exits in time").unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}
