//! One WebSocket connection: challenge, authentication, then relaying, with
//! every limit enforced here.
//!
//! A session is a single task that owns its socket and selects over: frames
//! from the client, frames queued for it by other sessions (relayed signals,
//! join/leave notices), its ping ticker, its deadline (auth, idle or TTL),
//! and shutdown. Owning the socket in one task keeps the protocol a plain
//! sequential state machine.
//!
//! Every way out of the loop is an [`Exit`]; refusals carry the error code
//! and a human reason, and [`Session::close`] is the single place that sends
//! the final `error`, the close frame, counts the rejection and logs it.

use crate::directory::{ConnHandle, Delivery, Directory};
use crate::limits::TokenBucket;
use crate::server::{Shared, SlotRefused};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use node_wasm::NodeId;
use node_wasm::signaling::{ClientMsg, ErrorCode, ServerMsg, verify_challenge};
use rand_core::{OsRng, RngCore};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

/// Frames queued for one client by other sessions. Deep enough for a burst
/// of ICE candidates from several peers; beyond it signals are dropped and
/// counted (the client stays connected: see `Delivery::Full`).
const OUTBOUND_QUEUE: usize = 256;
/// A client that stalls a single write this long is treated as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After sending a close frame, read (and discard) until the client answers
/// or this passes. Closing the TCP socket with unread input makes the kernel
/// send a reset, which can destroy the error message before the client
/// reads it.
const CLOSE_DRAIN: Duration = Duration::from_secs(2);
/// Malformed messages tolerated before the connection is closed.
const MAX_MALFORMED: u32 = 10;
/// Rate-limited (dropped) messages tolerated before the connection is closed.
const MAX_DROPPED: u32 = 100;
/// Longest error reason echoed to the client (serde messages quote input).
const MAX_REASON: usize = 200;

// Close codes (RFC 6455 section 7.4.1).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_TRY_LATER: u16 = 1013;

/// Why a session ends.
#[derive(Debug)]
enum Exit {
    /// A fatal refusal: send `error{code, reason}`, then close with `close`.
    Refuse { code: ErrorCode, reason: String, close: u16 },
    /// The client closed the connection or the transport failed.
    Disconnected(&'static str),
}

impl Exit {
    fn refuse(code: ErrorCode, reason: impl Into<String>) -> Exit {
        let close = match code {
            ErrorCode::FrameTooLarge => CLOSE_TOO_BIG,
            ErrorCode::TooManyConnections => CLOSE_TRY_LATER,
            ErrorCode::ShuttingDown => CLOSE_GOING_AWAY,
            ErrorCode::IdleTimeout | ErrorCode::AuthTimeout => CLOSE_NORMAL,
            _ => CLOSE_POLICY,
        };
        Exit::Refuse { code, reason: reason.into(), close }
    }

    fn shutting_down() -> Exit {
        Exit::refuse(ErrorCode::ShuttingDown, "the server is shutting down")
    }
}

/// Which deadline a session is waiting on.
#[derive(Debug, Clone, Copy)]
enum Timeout {
    Auth,
    Idle,
    Ttl,
}

/// `Err` ends the session; `?` propagates it out of the handlers.
type Step = Result<(), Exit>;

/// Runs one upgraded WebSocket to completion.
pub(crate) async fn run(shared: Arc<Shared>, socket: WebSocket, addr: SocketAddr, host: String) {
    let conn = shared.next_conn();
    // Claimed before anything else so the cap holds however the session ends.
    let slot = if shared.is_stopping() { None } else { Some(shared.claim_slot(addr.ip())) };
    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    let now = Instant::now();
    let session = Session {
        bucket: TokenBucket::new(shared.config.rate_per_sec, shared.config.rate_burst, now.into_std()),
        auth_deadline: now + shared.config.auth_timeout,
        last_frame: now,
        last_refresh: now,
        shared,
        socket,
        conn,
        addr,
        host,
        nonce: [0; 32],
        tx,
        registration: None,
        malformed: 0,
        dropped: 0,
        logged_codes: 0,
    };
    let refused = match &slot {
        None => Some(Exit::shutting_down()),
        Some(Ok(_)) => None,
        Some(Err(SlotRefused::Total)) => {
            let max = session.shared.config.max_connections;
            Some(Exit::refuse(
                ErrorCode::TooManyConnections,
                format!("the server is at its limit of {max} connections; try again later"),
            ))
        }
        Some(Err(SlotRefused::PerIp)) => {
            let max = session.shared.config.max_connections_per_ip;
            Some(Exit::refuse(
                ErrorCode::TooManyConnections,
                format!("your address already holds {max} connections, the most one address may hold"),
            ))
        }
    };
    if let Some(exit) = refused {
        // The upgrade is accepted anyway so the client gets a reason it can
        // show, rather than an opaque HTTP error from the WebSocket API.
        session.close(exit).await;
        return;
    }
    session.shared.metrics.connection_opened();
    debug!(conn, %addr, "websocket connected");
    session.serve(rx).await;
}

struct Session {
    shared: Arc<Shared>,
    socket: WebSocket,
    conn: u64,
    addr: SocketAddr,
    /// The `Host` the client reached us at (lowercase).
    host: String,
    /// The challenge this connection must sign.
    nonce: [u8; 32],
    /// Kept so the directory handle can be created at auth time; also keeps
    /// the queue open, so `rx.recv()` never reports closed.
    tx: mpsc::Sender<Utf8Bytes>,
    /// Present once authenticated; dropping it leaves the directory.
    registration: Option<Registration>,
    bucket: TokenBucket,
    auth_deadline: Instant,
    /// Any frame at all (idle timeout).
    last_frame: Instant,
    /// Any valid client message or pong (directory TTL).
    last_refresh: Instant,
    malformed: u32,
    dropped: u32,
    /// Error codes already logged for this connection (bit per `ErrorCode::ALL` index).
    logged_codes: u16,
}

impl Session {
    fn id(&self) -> Option<NodeId> {
        self.registration.as_ref().map(|r| r.id)
    }

    /// Runs the protocol, then closes.
    async fn serve(mut self, rx: mpsc::Receiver<Utf8Bytes>) {
        let exit = self.main_loop(rx).await;
        self.close(exit).await;
    }

    /// The main loop; returns why the session ended.
    async fn main_loop(&mut self, mut rx: mpsc::Receiver<Utf8Bytes>) -> Exit {
        OsRng.fill_bytes(&mut self.nonce);
        let challenge = ServerMsg::Challenge { nonce: hex::encode(self.nonce) };
        if let Err(exit) = self.send_msg(&challenge).await {
            return exit;
        }
        let period = self.shared.config.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + period, period);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut stopping = self.shared.stopping();
        loop {
            let (deadline, timeout) = self.deadline();
            let step = tokio::select! {
                // Checked first so shutdown wins over a busy client.
                biased;
                _ = stopping.changed() => Err(Exit::shutting_down()),
                _ = tokio::time::sleep_until(deadline) => Err(self.timeout_exit(timeout)),
                Some(text) = rx.recv() => self.send(Message::Text(text)).await,
                _ = ping.tick() => self.send(Message::Ping(Default::default())).await,
                frame = self.socket.recv() => match frame {
                    Some(Ok(frame)) => self.on_frame(frame).await,
                    Some(Err(e)) => Err(transport_error(e)),
                    None => Err(Exit::Disconnected("connection closed")),
                },
            };
            if let Err(exit) = step {
                return exit;
            }
        }
    }

    /// The earliest deadline and what it means: the auth timeout before
    /// authentication, the directory TTL after, and the idle timeout always.
    fn deadline(&self) -> (Instant, Timeout) {
        let cfg = &self.shared.config;
        let idle = (self.last_frame + cfg.idle_timeout, Timeout::Idle);
        let other = if self.registration.is_none() {
            (self.auth_deadline, Timeout::Auth)
        } else {
            (self.last_refresh + cfg.ttl, Timeout::Ttl)
        };
        if other.0 < idle.0 { other } else { idle }
    }

    fn timeout_exit(&self, timeout: Timeout) -> Exit {
        let cfg = &self.shared.config;
        match timeout {
            Timeout::Auth => {
                Exit::refuse(ErrorCode::AuthTimeout, format!("no valid auth within {:?}", cfg.auth_timeout))
            }
            Timeout::Idle => {
                Exit::refuse(ErrorCode::IdleTimeout, format!("no frame received for {:?}", cfg.idle_timeout))
            }
            Timeout::Ttl => Exit::refuse(
                ErrorCode::IdleTimeout,
                format!("directory entry expired: no message or pong for {:?}", cfg.ttl),
            ),
        }
    }

    async fn on_frame(&mut self, frame: Message) -> Step {
        let now = Instant::now();
        self.last_frame = now;
        match frame {
            Message::Text(text) => self.on_text(text).await,
            Message::Binary(_) => {
                if self.admit_rate().await? {
                    self.refuse(ErrorCode::BinaryNotSupported, "binary frames are not supported; send JSON text")
                        .await?;
                }
                Ok(())
            }
            // axum answers pings itself.
            Message::Ping(_) => Ok(()),
            Message::Pong(_) => {
                self.last_refresh = now;
                Ok(())
            }
            Message::Close(_) => Err(Exit::Disconnected("client closed")),
        }
    }

    async fn on_text(&mut self, text: Utf8Bytes) -> Step {
        let max = self.shared.config.max_frame_bytes;
        if text.len() > max {
            return Err(Exit::refuse(
                ErrorCode::FrameTooLarge,
                format!("message of {} bytes exceeds the limit of {max} bytes", text.len()),
            ));
        }
        if !self.admit_rate().await? {
            return Ok(());
        }
        let msg = match serde_json::from_str::<ClientMsg>(text.as_str()) {
            Ok(msg) => msg,
            Err(e) => {
                self.malformed += 1;
                let reason = truncate(format!("not a valid client message: {e}"));
                if self.malformed >= MAX_MALFORMED {
                    return Err(Exit::refuse(
                        ErrorCode::MalformedMessage,
                        format!("{reason} (closing after {MAX_MALFORMED} malformed messages)"),
                    ));
                }
                return self.refuse(ErrorCode::MalformedMessage, reason).await;
            }
        };
        self.last_refresh = Instant::now();
        let Some(me) = self.id() else {
            return match msg {
                ClientMsg::Auth { id, signature } => self.authenticate(id, &signature).await,
                _ => Err(Exit::refuse(
                    ErrorCode::NotAuthenticated,
                    "authenticate first: answer the challenge with an auth message",
                )),
            };
        };
        match msg {
            ClientMsg::Auth { .. } => {
                self.refuse(
                    ErrorCode::AlreadyAuthenticated,
                    format!("this connection is already authenticated as {me}"),
                )
                .await
            }
            ClientMsg::Signal { to, payload } => self.relay(me, to, payload).await,
            ClientMsg::List => {
                let all = self.shared.directory().peers_except(&me);
                let peers = sample_peers(all, self.shared.config.directory_sample);
                self.send_msg(&ServerMsg::Peers { peers }).await
            }
            ClientMsg::Ping => self.send_msg(&ServerMsg::Pong).await,
            ClientMsg::Ice => {
                let (ice, ice_ttl_secs) = crate::turn::ice_for(&self.shared.config, &me, unix_now());
                self.send_msg(&ServerMsg::Ice { ice, ice_ttl_secs }).await
            }
        }
    }

    /// Charges one message to the token bucket. `Ok(false)`: dropped (the
    /// client was told); `Err`: the client keeps flooding, close it.
    async fn admit_rate(&mut self) -> Result<bool, Exit> {
        if self.bucket.try_take(Instant::now().into_std()) {
            return Ok(true);
        }
        self.dropped += 1;
        let cfg = &self.shared.config;
        let reason = format!("over {} messages/s (burst {}); message dropped", cfg.rate_per_sec, cfg.rate_burst);
        if self.dropped >= MAX_DROPPED {
            return Err(Exit::refuse(
                ErrorCode::RateLimited,
                format!("{reason}; closing after {MAX_DROPPED} dropped messages"),
            ));
        }
        self.refuse(ErrorCode::RateLimited, reason).await?;
        Ok(false)
    }

    async fn authenticate(&mut self, id: NodeId, signature: &str) -> Step {
        // Rule `login_bound_to_host`: the signature covers the host the
        // client connected to; it must be one this server answers to (the
        // configured public hosts, else the `Host` it was reached at).
        let hosts = &self.shared.config.public_hosts;
        let ok = if hosts.is_empty() {
            verify_challenge(&id, &self.nonce, &self.host, signature).is_ok()
        } else {
            hosts.iter().any(|h| verify_challenge(&id, &self.nonce, &h.to_ascii_lowercase(), signature).is_ok())
        };
        if !ok {
            let reason = format!(
                "challenge signature rejected: it must sign the nonce and this server's host ({})",
                if hosts.is_empty() { self.host.clone() } else { hosts.join(", ") }
            );
            return Err(Exit::refuse(ErrorCode::AuthFailed, reason));
        }
        let shared = self.shared.clone();
        let cfg = &shared.config;
        let handle = ConnHandle::new(self.conn, self.tx.clone());
        let registered = shared
            .directory()
            .register(id, handle, cfg.max_connections_per_id, || encode(&ServerMsg::PeerJoined { id }));
        let peers = match registered {
            Ok((peers, _first)) => sample_peers(peers, cfg.directory_sample),
            Err(full) => {
                return Err(Exit::refuse(
                    ErrorCode::TooManyConnectionsForId,
                    format!(
                        "{} already has {} connection(s), the limit is {}",
                        id.short(),
                        full.existing,
                        cfg.max_connections_per_id
                    ),
                ));
            }
        };
        self.registration = Some(Registration { shared: shared.clone(), id, conn: self.conn });
        shared.metrics.auth_succeeded();
        info!(conn = self.conn, addr = %self.addr, peer = %id.short(), "authenticated");
        let ttl_secs = cfg.ttl.as_secs_f64().ceil() as u64;
        let (ice, ice_ttl_secs) = crate::turn::ice_for(cfg, &id, unix_now());
        let siblings = cfg.siblings.clone();
        self.send_msg(&ServerMsg::Welcome { id, peers, ttl_secs, ice, ice_ttl_secs, siblings }).await
    }

    async fn relay(&mut self, me: NodeId, to: NodeId, payload: serde_json::Value) -> Step {
        if to == me {
            return self.refuse(ErrorCode::SelfSignal, "cannot signal your own id").await;
        }
        let text = encode(&ServerMsg::Signal { from: me, payload });
        let delivery = self.shared.directory().deliver_to(&to, text);
        match delivery {
            Delivery::Delivered => {
                self.shared.metrics.signal_relayed();
                Ok(())
            }
            Delivery::Gone => self.refuse(ErrorCode::UnknownPeer, format!("{to} is not connected")).await,
            Delivery::Full => {
                // Dropped, not disconnected: flooding a node with signals
                // must not cut it off the rendezvous.
                self.shared.metrics.signal_dropped();
                let why = format!("{to} receives signals faster than it reads them; this one was dropped");
                self.refuse(ErrorCode::RateLimited, why).await
            }
        }
    }

    /// A non-fatal refusal: tell the client and carry on.
    async fn refuse(&mut self, code: ErrorCode, reason: impl Into<String>) -> Step {
        let reason = reason.into();
        self.note_rejection(code, &reason, false);
        self.send_msg(&ServerMsg::Error { code, reason }).await
    }

    /// Counts and logs a refusal. Counted before the client is told, so a
    /// client that has seen the error also sees it in `/metrics`. Logged at
    /// warn when it ends the connection, otherwise at info the first time
    /// per code and connection and debug after, so a client looping on a
    /// mistake cannot flood the log (the counters still see everything).
    fn note_rejection(&mut self, code: ErrorCode, reason: &str, fatal: bool) {
        self.shared.metrics.rejected(code);
        let bit = ErrorCode::ALL.iter().position(|c| *c == code).map_or(0, |i| 1u16 << i);
        let first = self.logged_codes & bit == 0;
        self.logged_codes |= bit;
        let peer = self.peer_label();
        let (conn, addr, code) = (self.conn, self.addr, code.as_str());
        if fatal && code != ErrorCode::ShuttingDown.as_str() {
            warn!(conn, %addr, peer, code, reason, fatal, "refused");
        } else if first && !fatal {
            info!(conn, %addr, peer, code, reason, fatal, "refused");
        } else {
            debug!(conn, %addr, peer, code, reason, fatal, "refused");
        }
    }

    /// Short node id for logs, `-` before authentication.
    fn peer_label(&self) -> String {
        self.id().map_or_else(|| "-".to_string(), |id| id.short())
    }

    async fn send_msg(&mut self, msg: &ServerMsg) -> Step {
        self.send(Message::Text(encode(msg))).await
    }

    async fn send(&mut self, frame: Message) -> Step {
        match tokio::time::timeout(WRITE_TIMEOUT, self.socket.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Exit::Disconnected("write failed")),
            Err(_) => Err(Exit::Disconnected("write timed out")),
        }
    }

    /// Ends the session: leaves the directory first (peers learn at once),
    /// then sends the final error and close frame where there is one.
    async fn close(mut self, exit: Exit) {
        if let Exit::Refuse { code, reason, .. } = &exit {
            self.note_rejection(*code, reason, true);
        }
        self.registration.take();
        let (frame, reason) = match exit {
            Exit::Refuse { code, reason, close } => {
                let _ = self.send_msg(&ServerMsg::Error { code, reason }).await;
                (CloseFrame { code: close, reason: Utf8Bytes::from_static(code.as_str()) }, code.as_str())
            }
            Exit::Disconnected(why) => {
                debug!(conn = self.conn, addr = %self.addr, why, "websocket disconnected");
                return;
            }
        };
        if self.send(Message::Close(Some(frame))).await.is_ok() {
            let socket = &mut self.socket;
            let _ = tokio::time::timeout(CLOSE_DRAIN, async { while let Some(Ok(_)) = socket.recv().await {} }).await;
        }
        debug!(conn = self.conn, addr = %self.addr, peer = %self.peer_label(), reason, "websocket closed by server");
    }
}

/// Seconds since the Unix epoch (TURN credential expiry).
fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A random sample of at most `k` peers (`Directory::sample` with the OS RNG).
fn sample_peers(peers: Vec<NodeId>, k: usize) -> Vec<NodeId> {
    Directory::sample(peers, k, |n| (OsRng.next_u64() % n as u64) as usize)
}

/// Membership in the directory for one authenticated connection. Removing it
/// in `Drop` means every way a session can end (including a panic) leaves
/// the directory and, for the id's last connection, announces `peer_left`.
struct Registration {
    shared: Arc<Shared>,
    id: NodeId,
    conn: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Everyone is being disconnected during shutdown; spare them the noise.
        let left = (!self.shared.is_stopping()).then(|| encode(&ServerMsg::PeerLeft { id: self.id }));
        if self.shared.directory().unregister(&self.id, self.conn, left) {
            info!(conn = self.conn, peer = %self.id.short(), "peer left");
        }
    }
}

/// Maps a WebSocket read error to an exit; the two a client can cause on
/// purpose get their protocol error code.
fn transport_error(e: axum::Error) -> Exit {
    match e.into_inner().downcast::<tungstenite::Error>() {
        Ok(e) => match *e {
            tungstenite::Error::Capacity(c) => Exit::refuse(ErrorCode::FrameTooLarge, format!("frame too large: {c}")),
            tungstenite::Error::Utf8(_) => Exit::refuse(ErrorCode::MalformedMessage, "text frame is not valid UTF-8"),
            _ => Exit::Disconnected("transport error"),
        },
        Err(_) => Exit::Disconnected("transport error"),
    }
}

/// Serializes a server message. It cannot fail (no maps with non-string
/// keys), but a fallback keeps even that impossibility off the panic path.
fn encode(msg: &ServerMsg) -> Utf8Bytes {
    match serde_json::to_string(msg) {
        Ok(text) => text.into(),
        Err(e) => {
            warn!(error = %e, "failed to encode a server message");
            Utf8Bytes::from_static(r#"{"type":"error","code":"malformed_message","reason":"internal encoding error"}"#)
        }
    }
}

fn truncate(mut reason: String) -> String {
    if reason.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        let long = "é".repeat(300);
        let t = truncate(long);
        assert!(t.len() <= MAX_REASON + '…'.len_utf8());
        assert!(t.ends_with('…'));
        assert_eq!(truncate("short".into()), "short");
    }
}
