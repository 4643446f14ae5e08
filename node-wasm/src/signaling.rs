//! The rendezvous signaling protocol, shared by the browser node and the
//! rendezvous server. JSON text frames over one WebSocket.
//!
//! ```text
//! server -> client  {"type":"challenge","nonce":HEX32}
//! client -> server  {"type":"auth","id":NODE_ID,"signature":HEX64}
//! server -> client  {"type":"welcome","id":NODE_ID,"peers":[NODE_ID..],"ttl_secs":N}
//! server -> client  {"type":"peer_joined","id":NODE_ID} | {"type":"peer_left","id":NODE_ID}
//! client -> server  {"type":"signal","to":NODE_ID,"payload":SIGNAL}
//! server -> client  {"type":"signal","from":NODE_ID,"payload":SIGNAL}
//! client -> server  {"type":"list"}   server -> client {"type":"peers","peers":[..]}
//! client -> server  {"type":"ping"}   server -> client {"type":"pong"}
//! server -> client  {"type":"error","code":CODE,"reason":TEXT}
//! ```
//!
//! The auth signature is over [`AUTH_DOMAIN`] `|| 0 ||` the 32 nonce bytes, so
//! a login proof is useless anywhere else and for any other nonce. The server
//! relays `payload` without reading it; the receiving node parses it as a
//! [`SignalPayload`] and treats it as hostile.

use crate::identity::{Identity, IdentityError, NodeId};
use serde::{Deserialize, Serialize};

/// Domain of the rendezvous login signature.
pub const AUTH_DOMAIN: &[u8] = b"synapse-ng/rendezvous-auth/v2";

/// Messages a client sends to the rendezvous.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    /// Answer to the challenge: the node id and its signature of the nonce.
    Auth { id: NodeId, signature: String },
    /// Relay `payload` to the authenticated node `to`.
    Signal { to: NodeId, payload: serde_json::Value },
    /// Ask for the current directory.
    List,
    /// Keep-alive; refreshes the directory entry's TTL.
    Ping,
    /// Ask for fresh ICE servers (TURN credentials expire; a page asks again
    /// before they do).
    Ice,
}

/// One STUN or TURN server as `RTCIceServer` takes it. TURN servers carry
/// short-lived credentials (the TURN REST API scheme coturn implements:
/// `username = "<expiry unix s>:<node id>"`, `credential =
/// base64(HMAC-SHA1(shared secret, username))`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Messages the rendezvous sends to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// First frame on every connection.
    Challenge { nonce: String },
    /// Authentication succeeded; `peers` are the other live ids (a sample);
    /// `ice` the STUN/TURN servers to use, valid for `ice_ttl_secs`.
    Welcome {
        id: NodeId,
        peers: Vec<NodeId>,
        ttl_secs: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice: Vec<IceServer>,
        #[serde(default, skip_serializing_if = "is_zero")]
        ice_ttl_secs: u64,
        /// Other rendezvous servers of the same network (`ws://`/`wss://`
        /// URLs) the page may log in to as well.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        siblings: Vec<String>,
    },
    /// Answer to `ice`: fresh servers and credentials.
    Ice { ice: Vec<IceServer>, ice_ttl_secs: u64 },
    /// A node authenticated.
    PeerJoined { id: NodeId },
    /// A node left or its entry expired.
    PeerLeft { id: NodeId },
    /// Answer to `list`.
    Peers { peers: Vec<NodeId> },
    /// A relayed signal from an authenticated node.
    Signal { from: NodeId, payload: serde_json::Value },
    /// Answer to `ping`.
    Pong,
    /// A refused request. Fatal codes are followed by a close.
    Error { code: ErrorCode, reason: String },
}

/// Why the rendezvous refused something. Stable strings: clients match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not valid JSON for a client message.
    MalformedMessage,
    /// The frame exceeded the size limit.
    FrameTooLarge,
    /// A binary frame (only text is spoken).
    BinaryNotSupported,
    /// Anything but `auth` before authenticating.
    NotAuthenticated,
    /// `auth` after authenticating.
    AlreadyAuthenticated,
    /// The auth signature did not verify.
    AuthFailed,
    /// No `auth` within the auth timeout.
    AuthTimeout,
    /// The connection sent nothing for the idle timeout.
    IdleTimeout,
    /// Too many messages per second.
    RateLimited,
    /// The server is at its connection limit.
    TooManyConnections,
    /// This id already has the maximum number of connections.
    TooManyConnectionsForId,
    /// The signal's target is not an authenticated, connected node.
    UnknownPeer,
    /// A node tried to signal itself.
    SelfSignal,
    /// The server is shutting down.
    ShuttingDown,
}

impl ErrorCode {
    /// The snake_case wire name (also the metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedMessage => "malformed_message",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::BinaryNotSupported => "binary_not_supported",
            ErrorCode::NotAuthenticated => "not_authenticated",
            ErrorCode::AlreadyAuthenticated => "already_authenticated",
            ErrorCode::AuthFailed => "auth_failed",
            ErrorCode::AuthTimeout => "auth_timeout",
            ErrorCode::IdleTimeout => "idle_timeout",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::TooManyConnectionsForId => "too_many_connections_for_id",
            ErrorCode::UnknownPeer => "unknown_peer",
            ErrorCode::SelfSignal => "self_signal",
            ErrorCode::ShuttingDown => "shutting_down",
        }
    }

    /// Every code, for metrics that list all of them.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::MalformedMessage,
        ErrorCode::FrameTooLarge,
        ErrorCode::BinaryNotSupported,
        ErrorCode::NotAuthenticated,
        ErrorCode::AlreadyAuthenticated,
        ErrorCode::AuthFailed,
        ErrorCode::AuthTimeout,
        ErrorCode::IdleTimeout,
        ErrorCode::RateLimited,
        ErrorCode::TooManyConnections,
        ErrorCode::TooManyConnectionsForId,
        ErrorCode::UnknownPeer,
        ErrorCode::SelfSignal,
        ErrorCode::ShuttingDown,
    ];
}

/// The host a client signs into its login: the authority of the URL it
/// connected to (`ws://Host:8080/ws` → `host:8080`), lowercase. The server
/// compares it with the `Host` it was reached at, so a login made for one
/// rendezvous is useless at another (a malicious rendezvous cannot relay a
/// victim's login to a real one).
///
/// The scheme's default port is dropped (`wss://h:443/ws` → `h`), as the
/// browser drops it from the `Host` header it sends; otherwise a page given
/// `?rendezvous=wss://h:443/ws` would sign a host the server never sees.
pub fn url_host(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("").to_ascii_lowercase();
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "wss" | "https" => ":443",
        "ws" | "http" => ":80",
        _ => return host,
    };
    match host.strip_suffix(default_port) {
        // What is left must be a name or a bracketed IPv6 address.
        Some(name) if !name.is_empty() && (name.ends_with(']') || !name.contains(':')) => name.to_string(),
        _ => host,
    }
}

/// Where a rendezvous serves its network's genesis record: `ws://h/ws` →
/// `http://h/genesis.json`, `wss://h/ws` → `https://h/genesis.json`.
pub fn genesis_url(rendezvous_ws_url: &str) -> Option<String> {
    let (scheme, rest) = rendezvous_ws_url.split_once("://")?;
    let http = match scheme.to_ascii_lowercase().as_str() {
        "ws" => "http",
        "wss" => "https",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().filter(|a| !a.is_empty())?;
    Some(format!("{http}://{authority}/genesis.json"))
}

/// Longest rendezvous URL a page accepts (from its query or a sibling list).
pub const MAX_RENDEZVOUS_URL: usize = 512;

/// Checks one rendezvous URL: `ws://` or `wss://`, a host, at most
/// [`MAX_RENDEZVOUS_URL`] bytes, no whitespace.
pub fn check_rendezvous_url(url: &str) -> Result<(), String> {
    let scheme_ok = url.starts_with("ws://") || url.starts_with("wss://");
    if !scheme_ok {
        return Err(format!("a rendezvous must be a ws:// or wss:// URL, got {url:?}"));
    }
    if url.len() > MAX_RENDEZVOUS_URL || url.chars().any(char::is_whitespace) || url_host(url).is_empty() {
        return Err(format!("not a usable rendezvous URL: {url:?}"));
    }
    Ok(())
}

/// Rule `rendezvous_list`: the servers a page logs in to, from
/// `?rendezvous=a,b` or a sibling list, in order, without duplicates (by
/// host and path, case-insensitive), at most `max`. Errors name the first
/// bad URL.
pub fn rendezvous_list(text: &str, max: usize) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for url in text.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        check_rendezvous_url(url)?;
        if !out.iter().any(|u| same_rendezvous(u, url)) && out.len() < max {
            out.push(url.to_string());
        }
    }
    if out.is_empty() {
        return Err("no rendezvous URL given".into());
    }
    Ok(out)
}

/// Whether two URLs name the same rendezvous (scheme, host and path; case
/// of the host ignored).
pub fn same_rendezvous(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// What a login signs: the nonce, then the host (length-prefixed).
fn auth_payload(nonce: &[u8; 32], host: &str) -> Vec<u8> {
    let mut w = crate::codec::Writer::with_capacity(34 + host.len());
    w.raw(nonce).str(host);
    w.finish()
}

/// Signs a rendezvous challenge nonce (hex text as sent by the server) for
/// the rendezvous at `host` (see [`url_host`]).
pub fn sign_challenge(identity: &Identity, nonce_hex: &str, host: &str) -> Result<String, IdentityError> {
    let nonce = decode_nonce(nonce_hex)?;
    Ok(hex::encode(identity.sign(AUTH_DOMAIN, &auth_payload(&nonce, host))))
}

/// Checks a client's answer to the challenge `nonce`, made for `host`.
pub fn verify_challenge(id: &NodeId, nonce: &[u8; 32], host: &str, signature_hex: &str) -> Result<(), IdentityError> {
    let sig = hex::decode(signature_hex).map_err(|_| IdentityError::BadSignature)?;
    id.verify(AUTH_DOMAIN, &auth_payload(nonce, host), &sig)
}

fn decode_nonce(nonce_hex: &str) -> Result<[u8; 32], IdentityError> {
    let mut nonce = [0u8; 32];
    hex::decode_to_slice(nonce_hex, &mut nonce).map_err(|_| IdentityError::BadSignature)?;
    Ok(nonce)
}

/// What travels inside `signal.payload` between two nodes: the WebRTC
/// negotiation of one RTCPeerConnection, relayed verbatim by the rendezvous
/// (or, later, by peers).
///
/// `session` identifies the sender's RTCPeerConnection. When a peer replaces
/// its connection (after a failure or a reload) the new session id tells the
/// receiver to start afresh instead of feeding a new certificate's offer
/// into the old connection; late candidates of an old session are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerSignal {
    pub session: u32,
    #[serde(flatten)]
    pub signal: SignalPayload,
    /// On an offer: the sender holds fewer than `STARVED_BELOW` proven
    /// peers, so a full receiver may make room for it (rule
    /// `make_room_for_the_starved`). Absent means false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub starved: bool,
}

/// One negotiation step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SignalPayload {
    /// An SDP offer or answer.
    Description { sdp_type: SdpType, sdp: String },
    /// A trickled ICE candidate (`candidate` empty means end of candidates).
    Candidate { candidate: String, sdp_mid: Option<String>, sdp_m_line_index: Option<u16> },
    /// The sender closed its connection to the receiver; tear down and let
    /// the reconnect logic decide.
    Bye,
}

/// SDP description type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SdpType {
    Offer,
    Answer,
}

/// Upper bound on an SDP we accept from a peer (Chromium's are ~1-3 KiB).
pub const MAX_SDP_LEN: usize = 16 * 1024;
/// Upper bound on one ICE candidate line.
pub const MAX_CANDIDATE_LEN: usize = 1024;

impl PeerSignal {
    /// Parses and size-checks a payload from the network.
    pub fn from_json(value: serde_json::Value) -> Result<PeerSignal, String> {
        let p: PeerSignal = serde_json::from_value(value).map_err(|e| format!("malformed signal: {e}"))?;
        match &p.signal {
            SignalPayload::Description { sdp, .. } if sdp.len() > MAX_SDP_LEN => Err("sdp too large".into()),
            SignalPayload::Candidate { candidate, sdp_mid, .. }
                if candidate.len() > MAX_CANDIDATE_LEN || sdp_mid.as_ref().is_some_and(|m| m.len() > 64) =>
            {
                Err("candidate too large".into())
            }
            _ => Ok(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_have_the_documented_shape() {
        let id = Identity::from_seed([1; 32]).node_id();
        let m = ClientMsg::Signal { to: id, payload: serde_json::json!({"kind":"bye"}) };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(text, format!(r#"{{"type":"signal","to":"{id}","payload":{{"kind":"bye"}}}}"#));
        assert_eq!(serde_json::from_str::<ClientMsg>(r#"{"type":"ping"}"#).unwrap(), ClientMsg::Ping);
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"nope"}"#).is_err());
    }

    #[test]
    fn server_error_codes_are_snake_case() {
        let m = ServerMsg::Error { code: ErrorCode::TooManyConnectionsForId, reason: "x".into() };
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.contains(r#""code":"too_many_connections_for_id""#), "{text}");
        for code in ErrorCode::ALL {
            let j = serde_json::to_value(code).unwrap();
            assert_eq!(j.as_str().unwrap(), code.as_str());
        }
    }

    #[test]
    fn challenge_signature_round_trip() {
        let me = Identity::from_seed([9; 32]);
        let nonce = [5u8; 32];
        let sig = sign_challenge(&me, &hex::encode(nonce), "rdv.example:443").unwrap();
        assert!(verify_challenge(&me.node_id(), &nonce, "rdv.example:443", &sig).is_ok());
        assert!(verify_challenge(&me.node_id(), &nonce, "evil.example", &sig).is_err(), "bound to the host");
        assert!(verify_challenge(&me.node_id(), &[6u8; 32], "rdv.example:443", &sig).is_err());
        let other = Identity::from_seed([8; 32]).node_id();
        assert!(verify_challenge(&other, &nonce, "rdv.example:443", &sig).is_err());
        assert!(verify_challenge(&me.node_id(), &nonce, "rdv.example:443", "zz").is_err());
    }

    #[test]
    fn url_host_is_the_lowercase_authority() {
        assert_eq!(url_host("ws://127.0.0.1:8080/ws"), "127.0.0.1:8080");
        assert_eq!(url_host("wss://Rdv.Example/ws?x=1"), "rdv.example");
        assert_eq!(url_host("wss://user@rdv.example:444"), "rdv.example:444");
        assert_eq!(url_host("ws://[::1]:8080/ws"), "[::1]:8080");
    }

    #[test]
    fn rendezvous_list_is_checked_deduplicated_and_bounded() {
        let l = rendezvous_list("ws://a:1/ws, wss://b/ws,ws://A:1/ws", 4).unwrap();
        assert_eq!(l, vec!["ws://a:1/ws".to_string(), "wss://b/ws".to_string()]);
        assert!(rendezvous_list("ws://a/ws,http://b", 4).unwrap_err().contains("http://b"));
        assert!(rendezvous_list(" , ", 4).is_err());
        assert!(rendezvous_list("ws:///ws", 4).is_err(), "no host");
        let many = (0..9).map(|i| format!("ws://h{i}/ws")).collect::<Vec<_>>().join(",");
        assert_eq!(rendezvous_list(&many, 4).unwrap().len(), 4);
        assert!(check_rendezvous_url(&format!("ws://h/{}", "x".repeat(600))).is_err());
    }

    #[test]
    fn url_host_drops_the_default_port_as_the_host_header_does() {
        assert_eq!(url_host("wss://Rdv.Example:443/ws"), "rdv.example");
        assert_eq!(url_host("ws://rdv.example:80/ws"), "rdv.example");
        assert_eq!(url_host("wss://[::1]:443/ws"), "[::1]");
        // Only the scheme's own default, and only a whole port.
        assert_eq!(url_host("ws://rdv.example:443/ws"), "rdv.example:443");
        assert_eq!(url_host("wss://rdv.example:80/ws"), "rdv.example:80");
        assert_eq!(url_host("wss://rdv.example:8443/ws"), "rdv.example:8443");
        assert_eq!(url_host("ws://rdv.example:8080/ws"), "rdv.example:8080");
    }

    #[test]
    fn signal_payload_is_size_checked() {
        let ok = serde_json::json!({"session":7,"kind":"description","sdp_type":"offer","sdp":"v=0"});
        let p = PeerSignal::from_json(ok.clone()).unwrap();
        assert_eq!(p.session, 7);
        assert_eq!(serde_json::to_value(&p).unwrap(), ok);
        let big =
            serde_json::json!({"session":1,"kind":"description","sdp_type":"offer","sdp":"x".repeat(MAX_SDP_LEN + 1)});
        assert!(PeerSignal::from_json(big).is_err());
        assert!(PeerSignal::from_json(serde_json::json!({"session":1,"kind":"evil"})).is_err());
        assert!(PeerSignal::from_json(serde_json::json!({"kind":"bye"})).is_err());
        assert!(PeerSignal::from_json(serde_json::json!(42)).is_err());
    }

    #[test]
    fn genesis_url_follows_the_rendezvous() {
        assert_eq!(genesis_url("ws://127.0.0.1:8080/ws").as_deref(), Some("http://127.0.0.1:8080/genesis.json"));
        assert_eq!(genesis_url("wss://h.example/ws?x=1").as_deref(), Some("https://h.example/genesis.json"));
        assert_eq!(genesis_url("http://h/ws"), None);
        assert_eq!(genesis_url("ws:///ws"), None);
    }
}
