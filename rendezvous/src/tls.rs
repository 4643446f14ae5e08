//! TLS built into the rendezvous: with `--tls-cert` and `--tls-key` the one
//! listening port serves `https://` (the UI) and `wss://` (`/ws`).
//!
//! Why built in: a page served over https may only open `wss://`, and a
//! small public deployment should not need a reverse proxy just for that.
//! The server behind the TLS layer is exactly the plain one (same router,
//! same limits, same graceful shutdown); only the listener changes.
//!
//! Why this shape: `axum::serve` takes any [`Listener`], and
//! [`TlsListener`] is one whose `accept` yields connections that have
//! finished their TLS handshake. The handshakes do not run inside `accept`
//! (axum calls it one connection at a time, so one slow client would stall
//! everybody) but in a task each, bounded by [`HANDSHAKE_TIMEOUT`], so a
//! client that opens a TCP connection and then says nothing is dropped
//! instead of holding its socket forever; and an address may have at most
//! `--max-connections-per-ip` handshakes in flight, so one client cannot
//! pile them up either. Failed, timed-out and refused handshakes are
//! counted in `/metrics` (`rendezvous_tls_handshake_failures_total`).
//!
//! The client address reaches the handlers as [`ClientAddr`], for TLS and
//! plain connections alike: the WebSocket session claims its per-IP slot
//! with it (`server::Shared::claim_slot`), so `--max-connections-per-ip`
//! holds over `wss://` too.
//!
//! rustls with the *ring* provider: pure Rust plus ring's bundled C and
//! assembly, which builds offline with only a C compiler (aws-lc-rs needs
//! more tooling). Only HTTP/1.1 is offered over ALPN: it is all the server
//! speaks, WebSockets upgrade from it, and the login check reads the `Host`
//! header, which HTTP/2 does not send.

use crate::metrics::{Metrics, TlsFailure};
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tracing::{debug, error};

/// How long a client has to complete its TLS handshake once its TCP
/// connection is accepted. Browsers need a few round trips; anything that
/// takes longer is broken or hostile, and would otherwise keep its socket
/// and task forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Finished handshakes waiting for axum to pick them up.
const READY_QUEUE: usize = 64;

/// The client's address, handed to handlers as `ConnectInfo<ClientAddr>`
/// by both the plain and the TLS listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// Why the certificate or key cannot be used: one sentence naming the file,
/// which the binary prints before refusing to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// Reads the PEM certificate chain at `cert` and the PEM private key at
/// `key`, checks that they belong together, and returns the acceptor for
/// [`TlsListener`]. Every way this can fail is a [`TlsError`] sentence.
pub fn load(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let read = |path: &Path, what: &str| {
        std::fs::read(path).map_err(|e| TlsError(format!("cannot read the TLS {what} file {}: {e}", path.display())))
    };
    let cert_pem = read(cert, "certificate")?;
    let key_pem = read(key, "key")?;

    let chain = CertificateDer::pem_slice_iter(&cert_pem).collect::<Result<Vec<_>, _>>().map_err(|e| {
        TlsError(format!("the TLS certificate file {} is not valid PEM: {}", cert.display(), pem_reason(&e)))
    })?;
    if chain.is_empty() {
        return Err(TlsError(format!(
            "the TLS certificate file {} holds no certificate (no \"BEGIN CERTIFICATE\" block)",
            cert.display()
        )));
    }
    let private_key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(k) => k,
        Err(pem::Error::NoItemsFound) => {
            return Err(TlsError(format!(
                "the TLS key file {} holds no private key (no unencrypted \"BEGIN PRIVATE KEY\", \
                 \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" block)",
                key.display()
            )));
        }
        Err(e) => {
            return Err(TlsError(format!("the TLS key file {} is not valid PEM: {}", key.display(), pem_reason(&e))));
        }
    };

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("cannot set up TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError(format!(
                "the TLS key file {} does not match the certificate in {} (they are not a pair)",
                key.display(),
                cert.display()
            )),
            other => TlsError(format!(
                "cannot use the TLS certificate {} with the key {}: {other}",
                cert.display(),
                key.display()
            )),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A PEM parse error without the `Debug` noise of its variants.
fn pem_reason(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a block has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed".into(),
        pem::Error::Base64Decode(_) => "a block's base64 is corrupt".into(),
        pem::Error::Io(io) => io.to_string(),
        other => format!("{other:?}"),
    }
}

/// A listener whose connections have completed their TLS handshake (see
/// the module documentation). Dropping it closes the port and abandons the
/// handshakes in flight.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    accept_task: JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `tcp` and handshakes with `acceptor`; each handshake gets
    /// `timeout`, and at most `max_per_ip` run at once for one address.
    pub fn new(
        tcp: TcpListener,
        acceptor: TlsAcceptor,
        max_per_ip: usize,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> io::Result<TlsListener> {
        let local_addr = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let limits = Handshakes { acceptor, max_per_ip, timeout, metrics, ready: tx };
        let accept_task = tokio::spawn(limits.accept_loop(tcp));
        Ok(TlsListener { ready, local_addr, accept_task })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // The task owns the TCP listener and the handshake tasks (a JoinSet
        // aborts its tasks when dropped).
        self.accept_task.abort();
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // Only if the accept task died, which it does not do on its
            // own: accept nothing more rather than spin.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

/// What the accept task needs for every handshake.
struct Handshakes {
    acceptor: TlsAcceptor,
    max_per_ip: usize,
    timeout: Duration,
    metrics: Arc<Metrics>,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
}

impl Handshakes {
    async fn accept_loop(self, tcp: TcpListener) {
        let in_flight: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                // Reap finished handshakes so the set does not grow.
                Some(_) = tasks.join_next() => {}
                accepted = tcp.accept() => match accepted {
                    Ok((stream, addr)) => match InFlight::claim(&in_flight, addr.ip(), self.max_per_ip) {
                        Some(claim) => {
                            tasks.spawn(handshake(
                                self.acceptor.clone(),
                                stream,
                                addr,
                                self.timeout,
                                self.ready.clone(),
                                self.metrics.clone(),
                                claim,
                            ));
                        }
                        None => {
                            debug!(%addr, "TLS handshake refused: this address has too many in flight");
                            self.metrics.tls_handshake_failed(TlsFailure::PerIpLimit);
                        }
                    },
                    Err(e) => accept_error(e).await,
                },
            }
        }
    }
}

/// One handshake, delivered to axum if it completes in time.
async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    addr: SocketAddr,
    timeout: Duration,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    metrics: Arc<Metrics>,
    _claim: InFlight,
) {
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            // Fails only when the listener is gone (shutdown): the
            // connection is then dropped, as a plain one would be.
            let _ = ready.send((tls, addr)).await;
        }
        Ok(Err(e)) => {
            // Scanners, plain http to the https port, clients that distrust
            // the certificate: worth a counter, not a log line each.
            debug!(%addr, "TLS handshake failed: {e}");
            metrics.tls_handshake_failed(TlsFailure::Error);
        }
        Err(_) => {
            debug!(%addr, "TLS handshake timed out after {timeout:?}");
            metrics.tls_handshake_failed(TlsFailure::Timeout);
        }
    }
}

/// One address's handshake in flight; released on drop, however the
/// handshake ends (done, failed, timed out, aborted at shutdown).
struct InFlight {
    map: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl InFlight {
    fn claim(map: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<InFlight> {
        let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(InFlight { map: map.clone(), ip })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// As axum's own listener does: errors about one connection are ignored;
/// others (out of file descriptors, say) are logged and retried after a
/// pause instead of spinning.
async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    error!("accept error: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::TlsFailure;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A temporary directory holding `cert.pem` and `key.pem`, removed on drop.
    struct Files(std::path::PathBuf);

    impl Files {
        fn new(tag: &str, cert: &str, key: &str) -> Files {
            let dir = std::env::temp_dir().join(format!("rdv-tls-unit-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("cert.pem"), cert).unwrap();
            std::fs::write(dir.join("key.pem"), key).unwrap();
            Files(dir)
        }

        fn load(&self) -> Result<TlsAcceptor, TlsError> {
            load(&self.0.join("cert.pem"), &self.0.join("key.pem"))
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn self_signed() -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    #[test]
    fn load_explains_each_bad_file() {
        let (cert, key) = self_signed();
        let good = Files::new("good", &cert, &key);
        assert!(good.load().is_ok());

        let missing = Path::new("/nonexistent/synapse-key.pem");
        let e = load(&good.0.join("cert.pem"), missing).err().unwrap().to_string();
        assert!(e.starts_with("cannot read the TLS key file /nonexistent/synapse-key.pem: "), "{e}");

        let swapped = Files::new("swapped", &key, &cert);
        let e = swapped.load().err().unwrap().to_string();
        assert!(e.contains("holds no certificate"), "{e}");
        let e = load(&good.0.join("cert.pem"), &swapped.0.join("key.pem")).err().unwrap().to_string();
        assert!(e.contains("holds no private key"), "{e}");

        let (_, other_key) = self_signed();
        let e = Files::new("mismatch", &cert, &other_key).load().err().unwrap().to_string();
        assert!(e.contains("does not match the certificate"), "{e}");

        let e = Files::new("corrupt", "-----BEGIN CERTIFICATE-----\nnot base64!\n", &key).load().err().unwrap();
        assert!(e.to_string().contains("is not valid PEM"), "{e}");
    }

    /// A client that connects and never speaks loses its connection after
    /// the timeout, and meanwhile holds the one handshake its address may
    /// have in flight.
    #[tokio::test]
    async fn a_stalled_handshake_is_dropped_at_the_timeout() {
        let (cert, key) = self_signed();
        let acceptor = Files::new("stall", &cert, &key).load().unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = Arc::new(Metrics::default());
        let listener = TlsListener::new(tcp, acceptor, 1, Duration::from_millis(300), metrics.clone()).unwrap();
        let addr = listener.local_addr;
        let wait = Duration::from_secs(10);
        // The counters move right after the socket closes: poll for them.
        let counted = async |failure: TlsFailure| {
            let reached = async {
                while metrics.tls_handshake_failures(failure) == 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            };
            tokio::time::timeout(wait, reached).await.unwrap_or_else(|_| panic!("{failure:?} never counted"));
        };

        let mut stalled = TcpStream::connect(addr).await.unwrap();
        // While it stalls, a second connection from the same address is
        // closed at once, without a byte. Which of the two the accept task
        // sees first is not ours to order, so wait for the refusal count.
        let mut second = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(wait, second.read(&mut buf)).await.expect("closed in time").unwrap_or(0);
        assert_eq!(n, 0, "refused before the handshake");
        counted(TlsFailure::PerIpLimit).await;

        // The stalled one is closed by the server once the timeout passes.
        let started = tokio::time::Instant::now();
        let n = tokio::time::timeout(wait, stalled.read(&mut buf)).await.expect("closed in time").unwrap_or(0);
        assert_eq!(n, 0);
        assert!(started.elapsed() < wait);
        counted(TlsFailure::Timeout).await;
        // Its slot is free again: a new connection is handshaken (it gets
        // the server's answer to garbage rather than an immediate close).
        let mut third = TcpStream::connect(addr).await.unwrap();
        third.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let _ = tokio::time::timeout(wait, third.read_to_end(&mut Vec::new())).await.expect("closed in time");
        counted(TlsFailure::Error).await;
        assert_eq!(metrics.tls_handshake_failures(TlsFailure::PerIpLimit), 1, "the third was not refused");
        assert_eq!(metrics.tls_handshake_failures(TlsFailure::Timeout), 1);
        drop(listener);
    }
}
