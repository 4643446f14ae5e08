//! One DataChannel session with a peer, sans-IO: framing, the identity
//! handshake, and message dispatch.
//!
//! ## Identity proof bound to DTLS
//! The DataChannel is DTLS-encrypted between two certificates whose
//! fingerprints are in the two SDPs. On open, each side sends
//! `AuthHello{node_id, nonce}`. On the peer's hello, each side answers
//! `AuthProof` = Ed25519 signature (domain [`PEER_AUTH_DOMAIN`]) over
//!
//! ```text
//! signer_id[32] verifier_id[32] str(signer_fingerprint) str(verifier_fingerprint) verifier_nonce[32]
//! ```
//!
//! where the fingerprints are the `a=fingerprint` lines of the signer's and
//! the verifier's SDP as seen by each side. A man in the middle terminates
//! DTLS with its own certificate, so the fingerprints it presents differ from
//! those the honest peer signed: a proof relayed from another connection does
//! not verify. The nonce makes every proof fresh. The claimed node id must
//! also equal the id we were signaling with. Until the proof verifies,
//! nothing but handshake messages is accepted; any violation ends the session.

use crate::codec::Writer;
use crate::framing::{self, Reassembler};
use crate::identity::{Identity, NodeId};
use crate::wire::{MAX_MESSAGE, SignedHello, WireMsg};

/// Domain of the peer identity proof.
pub const PEER_AUTH_DOMAIN: &[u8] = b"synapse-ng/peer-auth/v1";

/// Extracts the DTLS fingerprint(s) from an SDP, normalised to lowercase
/// `"alg value"` and joined with `,` in the order they appear. Returns `None`
/// if the SDP has none (such a connection cannot be authenticated).
pub fn sdp_fingerprint(sdp: &str) -> Option<String> {
    let fps: Vec<String> = sdp
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=fingerprint:"))
        .map(|v| v.trim().to_ascii_lowercase())
        .collect();
    if fps.is_empty() { None } else { Some(fps.join(",")) }
}

/// What the runtime must do after feeding the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// Put this frame on the DataChannel.
    Send(Vec<u8>),
    /// The peer proved it holds the key of the expected node id.
    Proven,
    /// A verified hello arrived.
    Hello(SignedHello),
    /// A round-trip measurement completed (ping id).
    Pong(u64),
    /// A blob arrived (its length).
    Blob(usize),
    /// The peer's verified record of its own neighbours.
    PeerRecord(crate::wire::PeerRecord),
    /// A verified signal relayed through (or addressed to) this node.
    Relay(crate::wire::RelaySignal),
    /// A snapshot request or part (`SnapAsk`/`SnapPart`), for the app.
    Snapshot(crate::wire::WireMsg),
    /// A SynapseSub packet (tags 0x10-0x1f), passed whole to the router,
    /// which decodes and scores it.
    Pubsub(Vec<u8>),
    /// The peer broke the protocol: drop the connection. The reason is for
    /// logs and counters.
    Violation(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the peer's AuthHello and AuthProof.
    Handshaking {
        got_hello: bool,
    },
    Proven,
    Failed,
}

/// How this side behaves in the handshake; `ForgeProof` exists only so tests
/// can show that honest nodes drop a peer presenting a proof that is not
/// bound to this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProofMode {
    #[default]
    Honest,
    ForgeProof,
}

/// One peer connection's protocol state.
#[derive(Debug)]
pub struct Session {
    local: NodeId,
    remote: NodeId,
    nonce: [u8; 32],
    local_fp: String,
    remote_fp: String,
    state: State,
    reassembler: Reassembler,
    mode: ProofMode,
    /// This node's network (genesis hash).
    genesis: [u8; 32],
}

impl Session {
    /// Starts a session once the channel is open. `nonce` must be fresh
    /// randomness (injected). Returns the session and the frames to send.
    pub fn start(
        identity: &Identity,
        remote: NodeId,
        nonce: [u8; 32],
        local_fp: String,
        remote_fp: String,
        mode: ProofMode,
        genesis: [u8; 32],
    ) -> (Session, Vec<SessionEvent>) {
        let local = identity.node_id();
        let s = Session {
            local,
            remote,
            nonce,
            local_fp,
            remote_fp,
            state: State::Handshaking { got_hello: false },
            reassembler: Reassembler::new(MAX_MESSAGE),
            mode,
            genesis,
        };
        let out = frames(&WireMsg::AuthHello { node_id: local, nonce, genesis });
        (s, out)
    }

    /// Whether the peer's identity is proven.
    pub fn is_proven(&self) -> bool {
        self.state == State::Proven
    }

    /// The node id this session expects on the other side.
    pub fn remote(&self) -> NodeId {
        self.remote
    }

    /// Frames for an application message; `None` until the peer is proven.
    pub fn send(&self, msg: &WireMsg) -> Option<Vec<SessionEvent>> {
        self.is_proven().then(|| frames(msg))
    }

    /// Frames for an already-encoded packet (SynapseSub); `None` until the
    /// peer is proven.
    pub fn send_raw(&self, packet: &[u8]) -> Option<Vec<SessionEvent>> {
        self.is_proven().then(|| framing::split(packet).into_iter().map(SessionEvent::Send).collect())
    }

    /// Feeds one frame received from the DataChannel.
    pub fn on_frame(&mut self, identity: &Identity, frame: &[u8]) -> Vec<SessionEvent> {
        if self.state == State::Failed {
            return vec![];
        }
        let msg = match self.reassembler.push(frame) {
            Ok(None) => return vec![],
            Ok(Some(m)) => m,
            Err(e) => return self.fail(format!("framing: {e}")),
        };
        if is_pubsub_packet(&msg) {
            return match self.state {
                State::Proven => vec![SessionEvent::Pubsub(msg)],
                _ => self.fail("pubsub packet before the handshake completed".into()),
            };
        }
        let msg = match WireMsg::decode(&msg) {
            Ok(m) => m,
            Err(e) => return self.fail(format!("decode: {e}")),
        };
        match (self.state, msg) {
            (State::Handshaking { got_hello: false }, WireMsg::AuthHello { node_id, nonce, genesis }) => {
                // Rule `same_genesis`: a node of another network folds under
                // other rules; exchanging ops with it would mix two states.
                if genesis != self.genesis {
                    return self.fail(format!(
                        "{GENESIS_MISMATCH} (its genesis {}…, ours {}…)",
                        hex::encode(&genesis[..4]),
                        hex::encode(&self.genesis[..4])
                    ));
                }
                if node_id != self.remote {
                    return self.fail(format!(
                        "claimed id {} but signaled as {}",
                        node_id.short(),
                        self.remote.short()
                    ));
                }
                self.state = State::Handshaking { got_hello: true };
                let signature = match self.mode {
                    ProofMode::Honest => identity.sign(
                        PEER_AUTH_DOMAIN,
                        &proof_payload(&self.local, &self.remote, &self.local_fp, &self.remote_fp, &nonce),
                    ),
                    // A proof made for some other DTLS session, as a relaying
                    // attacker would present.
                    ProofMode::ForgeProof => identity.sign(
                        PEER_AUTH_DOMAIN,
                        &proof_payload(&self.local, &self.remote, "sha-256 forged", &self.remote_fp, &nonce),
                    ),
                };
                frames(&WireMsg::AuthProof { signature })
            }
            (State::Handshaking { got_hello: true }, WireMsg::AuthProof { signature }) => {
                let payload = proof_payload(&self.remote, &self.local, &self.remote_fp, &self.local_fp, &self.nonce);
                match self.remote.verify(PEER_AUTH_DOMAIN, &payload, &signature) {
                    Ok(()) => {
                        self.state = State::Proven;
                        vec![SessionEvent::Proven]
                    }
                    Err(e) => self.fail(format!("identity proof: {e}")),
                }
            }
            (State::Handshaking { .. }, other) => self.fail(format!("{} before the handshake completed", name(&other))),
            (State::Proven, WireMsg::Hello(h)) => match h.verify() {
                Ok(()) => vec![SessionEvent::Hello(h)],
                Err(e) => self.fail(format!("hello: {e}")),
            },
            (State::Proven, WireMsg::Ping(id)) => frames(&WireMsg::Pong(id)),
            (State::Proven, WireMsg::Pong(id)) => vec![SessionEvent::Pong(id)],
            (State::Proven, WireMsg::Blob(b)) => vec![SessionEvent::Blob(b.len())],
            (State::Proven, m @ (WireMsg::SnapAsk { .. } | WireMsg::SnapPart(_))) => vec![SessionEvent::Snapshot(m)],
            (State::Proven, WireMsg::PeerRecord(r)) => {
                if r.node_id != self.remote {
                    self.fail("peer record for another node".into())
                } else if !r.verify() {
                    self.fail("peer record signature does not verify".into())
                } else {
                    vec![SessionEvent::PeerRecord(r)]
                }
            }
            (State::Proven, WireMsg::Relay(r)) => {
                if r.verify() {
                    vec![SessionEvent::Relay(r)]
                } else {
                    self.fail("relayed signal signature does not verify".into())
                }
            }
            (State::Proven, other) => self.fail(format!("{} after the handshake", name(&other))),
            (State::Failed, _) => vec![],
        }
    }

    fn fail(&mut self, reason: String) -> Vec<SessionEvent> {
        self.state = State::Failed;
        vec![SessionEvent::Violation(reason)]
    }
}

/// The start of the sentence a `same_genesis` refusal gives.
pub const GENESIS_MISMATCH: &str = "peer is on another network";

/// SynapseSub packets share the channel: version 1, tags 0x10-0x1f.
fn is_pubsub_packet(msg: &[u8]) -> bool {
    msg.len() >= 2 && msg[0] == crate::pubsub::message::PUBSUB_VERSION && (0x10..=0x1f).contains(&msg[1])
}

fn name(m: &WireMsg) -> &'static str {
    match m {
        WireMsg::AuthHello { .. } => "auth_hello",
        WireMsg::AuthProof { .. } => "auth_proof",
        WireMsg::Hello(_) => "hello",
        WireMsg::Ping(_) => "ping",
        WireMsg::Pong(_) => "pong",
        WireMsg::Blob(_) => "blob",
        WireMsg::PeerRecord(_) => "peer_record",
        WireMsg::Relay(_) => "relay",
        WireMsg::SnapAsk { .. } => "snap_ask",
        WireMsg::SnapPart(_) => "snap_part",
    }
}

fn frames(msg: &WireMsg) -> Vec<SessionEvent> {
    framing::split(&msg.encode()).into_iter().map(SessionEvent::Send).collect()
}

fn proof_payload(
    signer: &NodeId,
    verifier: &NodeId,
    signer_fp: &str,
    verifier_fp: &str,
    verifier_nonce: &[u8; 32],
) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(&signer.0).raw(&verifier.0).str(signer_fp).str(verifier_fp).raw(verifier_nonce);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test network.
    const NET: [u8; 32] = [9; 32];

    struct Side {
        id: Identity,
        s: Session,
        outbox: Vec<Vec<u8>>,
        events: Vec<SessionEvent>,
    }

    fn side(seed: u8, remote: NodeId, local_fp: &str, remote_fp: &str, mode: ProofMode) -> Side {
        let id = Identity::from_seed([seed; 32]);
        let (s, ev) = Session::start(&id, remote, [seed; 32], local_fp.into(), remote_fp.into(), mode, NET);
        let mut me = Side { id, s, outbox: vec![], events: vec![] };
        me.absorb(ev);
        me
    }

    impl Side {
        fn absorb(&mut self, ev: Vec<SessionEvent>) {
            for e in ev {
                match e {
                    SessionEvent::Send(f) => self.outbox.push(f),
                    other => self.events.push(other),
                }
            }
        }
        fn deliver_to(&mut self, other: &mut Side) {
            for f in std::mem::take(&mut self.outbox) {
                let ev = other.s.on_frame(&other.id, &f);
                other.absorb(ev);
            }
        }
    }

    #[test]
    fn same_genesis_a_peer_of_another_network_is_refused_with_a_sentence() {
        let a_id = Identity::from_seed([1; 32]).node_id();
        let b_id = Identity::from_seed([2; 32]).node_id();
        let mut a = side(1, b_id, "sha-256 aa", "sha-256 bb", ProofMode::Honest);
        let other = Identity::from_seed([2; 32]);
        let (s, ev) =
            Session::start(&other, a_id, [2; 32], "sha-256 bb".into(), "sha-256 aa".into(), ProofMode::Honest, [8; 32]);
        let mut b = Side { id: other, s, outbox: vec![], events: vec![] };
        b.absorb(ev);
        for _ in 0..3 {
            a.deliver_to(&mut b);
            b.deliver_to(&mut a);
        }
        for side in [&a, &b] {
            assert!(!side.s.is_proven());
            let why = side.events.iter().find_map(|e| match e {
                SessionEvent::Violation(r) => Some(r.clone()),
                _ => None,
            });
            let why = why.expect("refused");
            assert!(
                why.starts_with(GENESIS_MISMATCH) && (why.contains("09090909") || why.contains("08080808")),
                "{why}"
            );
        }
    }

    fn pair(a_mode: ProofMode, a_sees_b_fp: &str) -> (Side, Side) {
        let a_id = Identity::from_seed([1; 32]).node_id();
        let b_id = Identity::from_seed([2; 32]).node_id();
        let mut a = side(1, b_id, "sha-256 aa", a_sees_b_fp, a_mode);
        let mut b = side(2, a_id, "sha-256 bb", "sha-256 aa", ProofMode::Honest);
        for _ in 0..3 {
            a.deliver_to(&mut b);
            b.deliver_to(&mut a);
        }
        (a, b)
    }

    #[test]
    fn honest_peers_prove_each_other_and_exchange_hellos() {
        let (mut a, mut b) = pair(ProofMode::Honest, "sha-256 bb");
        assert!(a.s.is_proven() && b.s.is_proven());
        let h = SignedHello::sign(&a.id, "hi").unwrap();
        let ev = a.s.send(&WireMsg::Hello(h.clone())).unwrap();
        a.absorb(ev);
        a.deliver_to(&mut b);
        assert!(b.events.contains(&SessionEvent::Hello(h)));
    }

    #[test]
    fn forged_proof_is_a_violation() {
        let (_a, b) = pair(ProofMode::ForgeProof, "sha-256 bb");
        assert!(!b.s.is_proven());
        assert!(matches!(b.events.last(), Some(SessionEvent::Violation(r)) if r.contains("identity proof")));
    }

    #[test]
    fn fingerprint_mismatch_means_a_man_in_the_middle() {
        // A sees a different certificate for B than the one B signed over.
        let (a, b) = pair(ProofMode::Honest, "sha-256 mitm");
        assert!(!a.s.is_proven());
        assert!(!b.s.is_proven());
    }

    #[test]
    fn wrong_claimed_id_is_dropped() {
        let a_id = Identity::from_seed([1; 32]);
        let c_id = Identity::from_seed([3; 32]).node_id();
        // B expects C but A shows up.
        let (mut b, _) = Session::start(
            &Identity::from_seed([2; 32]),
            c_id,
            [0; 32],
            "x".into(),
            "y".into(),
            ProofMode::Honest,
            NET,
        );
        let frame =
            framing::split(&WireMsg::AuthHello { node_id: a_id.node_id(), nonce: [0; 32], genesis: NET }.encode());
        let ev = b.on_frame(&Identity::from_seed([2; 32]), &frame[0]);
        assert!(matches!(&ev[0], SessionEvent::Violation(r) if r.contains("claimed id")));
    }

    #[test]
    fn app_messages_before_proof_are_refused() {
        let me = Identity::from_seed([2; 32]);
        let other = Identity::from_seed([1; 32]);
        let (mut s, _) = Session::start(&me, other.node_id(), [0; 32], "x".into(), "y".into(), ProofMode::Honest, NET);
        assert!(s.send(&WireMsg::Ping(1)).is_none());
        let h = SignedHello::sign(&other, "early").unwrap();
        let f = framing::split(&WireMsg::Hello(h).encode());
        let ev = s.on_frame(&me, &f[0]);
        assert!(matches!(&ev[0], SessionEvent::Violation(_)));
        // Once failed, it stays silent.
        assert!(s.on_frame(&me, &f[0]).is_empty());
    }

    #[test]
    fn garbage_frames_never_panic() {
        let me = Identity::from_seed([2; 32]);
        let other = Identity::from_seed([1; 32]).node_id();
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for len in 0..200usize {
            let (mut s, _) = Session::start(&me, other, [0; 32], "x".into(), "y".into(), ProofMode::Honest, NET);
            let frame: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = s.on_frame(&me, &frame);
        }
    }

    #[test]
    fn fingerprints_are_read_from_sdp() {
        let sdp = "v=0\r\na=fingerprint:sha-256 AB:CD\r\nm=application\r\n";
        assert_eq!(sdp_fingerprint(sdp).as_deref(), Some("sha-256 ab:cd"));
        assert_eq!(sdp_fingerprint("v=0\r\n"), None);
    }
}
