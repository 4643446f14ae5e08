//! A stand-in for the browser's RTCPeerConnection, for native tests and the
//! whole-node simulator: it models just what the manager's rules depend on
//! (the signaling state machine with implicit rollback, descriptions that
//! carry a DTLS fingerprint, a channel that opens once both sides hold each
//! other's description) and reports back the [`Input`]s a browser would.
//!
//! It never decides policy: every choice is the [`PeerManager`]'s.

use super::{ConnState, Input, Output};
use crate::identity::NodeId;
use crate::signaling::SdpType;
use std::collections::BTreeMap;

/// The W3C signaling states the manager can drive a connection into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signaling {
    Stable,
    HaveLocalOffer,
    HaveRemoteOffer,
}

/// One simulated RTCPeerConnection.
#[derive(Debug, Clone)]
pub struct FakeConn {
    signaling: Signaling,
    pub local: Option<String>,
    pub remote: Option<String>,
    pub open: bool,
    pub closed: bool,
}

/// The fake browser of one node: its connections by (peer, session).
#[derive(Debug)]
pub struct FakeBrowser {
    me: NodeId,
    pub conns: BTreeMap<(NodeId, u32), FakeConn>,
}

/// What the fake did with one output: inputs for the same node, and a frame
/// or signal leaving it.
#[derive(Debug, Default)]
pub struct Effects {
    /// Inputs to feed back into the same manager, in order.
    pub inputs: Vec<Input>,
    /// A frame for `peer` on connection `session` of the sender.
    pub frames: Vec<(NodeId, u32, Vec<u8>)>,
}

/// The SDP a fake connection presents: the fingerprint is unique to the
/// node and the connection, as a DTLS certificate is.
pub fn fake_sdp(me: NodeId, session: u32, kind: &str) -> String {
    format!(
        "v=0\r\ns={kind}\r\na=ice-ufrag:{session:08x}\r\na=ice-pwd:{}{session:08x}\r\na=fingerprint:sha-256 {}:{session:08x}\r\n",
        me.short(),
        me.short()
    )
}

impl FakeBrowser {
    pub fn new(me: NodeId) -> FakeBrowser {
        FakeBrowser { me, conns: BTreeMap::new() }
    }

    /// Carries out one output of the manager. Signals and events are the
    /// caller's business (they travel over the simulated rendezvous or up
    /// the stack); this handles everything that touches a connection.
    pub fn run(&mut self, out: &Output) -> Effects {
        let mut fx = Effects::default();
        let me = self.me;
        match out {
            Output::Create { peer, session } => {
                self.conns.insert(
                    (*peer, *session),
                    FakeConn { signaling: Signaling::Stable, local: None, remote: None, open: false, closed: false },
                );
                // The pre-negotiated DataChannel makes negotiation needed.
                fx.inputs.push(Input::NegotiationNeeded { peer: *peer, session: *session });
            }
            Output::Close { peer, session } => {
                if let Some(c) = self.conns.get_mut(&(*peer, *session)) {
                    c.closed = true;
                    c.open = false;
                }
            }
            Output::SetLocalDescription { peer, session } => {
                let Some(c) = self.conns.get_mut(&(*peer, *session)).filter(|c| !c.closed) else { return fx };
                let sdp_type = match c.signaling {
                    Signaling::HaveRemoteOffer => {
                        c.signaling = Signaling::Stable;
                        SdpType::Answer
                    }
                    _ if c.local.is_some() && c.remote.is_some() => return fx, // nothing to renegotiate
                    _ => {
                        c.signaling = Signaling::HaveLocalOffer;
                        SdpType::Offer
                    }
                };
                let kind = if sdp_type == SdpType::Offer { "offer" } else { "answer" };
                let sdp = fake_sdp(me, *session, kind);
                c.local = Some(sdp.clone());
                let stable = c.signaling == Signaling::Stable;
                fx.inputs.push(Input::SignalingStable { peer: *peer, session: *session, stable });
                fx.inputs.push(Input::LocalDescription { peer: *peer, session: *session, sdp_type, sdp });
            }
            Output::SetRemoteDescription { peer, session, sdp_type, sdp } => {
                let Some(c) = self.conns.get_mut(&(*peer, *session)).filter(|c| !c.closed) else { return fx };
                let result = match (sdp_type, c.signaling) {
                    // An offer rolls back our own (implicit rollback).
                    (SdpType::Offer, _) => {
                        c.signaling = Signaling::HaveRemoteOffer;
                        c.local = None;
                        Ok(())
                    }
                    (SdpType::Answer, Signaling::HaveLocalOffer) => {
                        c.signaling = Signaling::Stable;
                        Ok(())
                    }
                    (SdpType::Answer, s) => Err(format!("answer in state {s:?}")),
                };
                if result.is_ok() {
                    c.remote = Some(sdp.clone());
                    let stable = c.signaling == Signaling::Stable;
                    fx.inputs.push(Input::SignalingStable { peer: *peer, session: *session, stable });
                }
                fx.inputs.push(Input::RemoteDescriptionSet { peer: *peer, session: *session, result });
            }
            Output::AddCandidate { .. } | Output::Signal { .. } | Output::AskDirectory { .. } | Output::Event(_) => {}
            Output::Frame { peer, session, bytes } => {
                if self.conns.get(&(*peer, *session)).is_some_and(|c| c.open) {
                    fx.frames.push((*peer, *session, bytes.clone()));
                }
            }
        }
        fx
    }

    /// Whether connection `(peer, session)` has negotiated: stable, with a
    /// local and a remote description, and not yet open.
    pub fn negotiated(&self, peer: NodeId, session: u32) -> Option<(String, String)> {
        let c = self.conns.get(&(peer, session))?;
        if c.closed || c.open || c.signaling != Signaling::Stable {
            return None;
        }
        Some((c.local.clone()?, c.remote.clone()?))
    }

    /// The session id our connection `(peer, session)` presents in its SDP
    /// (the fingerprint's suffix), to match the two ends of a link.
    pub fn remote_session(&self, peer: NodeId, session: u32) -> Option<u32> {
        let remote = self.conns.get(&(peer, session))?.remote.as_ref()?;
        let fp = remote.lines().find_map(|l| l.strip_prefix("a=fingerprint:sha-256 "))?;
        let hex = fp.trim().rsplit(':').next()?;
        u32::from_str_radix(hex, 16).ok()
    }

    /// Marks the connection open and returns the browser's events for it.
    pub fn open(&mut self, peer: NodeId, session: u32) -> Vec<Input> {
        let Some(c) = self.conns.get_mut(&(peer, session)) else { return vec![] };
        c.open = true;
        vec![
            Input::ConnectionState { peer, session, state: ConnState::Connected },
            Input::ChannelOpen { peer, session, local_sdp: c.local.clone(), remote_sdp: c.remote.clone() },
        ]
    }

    /// Closes a connection as the network would (both directions break);
    /// returns the events the browser reports.
    pub fn break_link(&mut self, peer: NodeId, session: u32) -> Vec<Input> {
        let Some(c) = self.conns.get_mut(&(peer, session)).filter(|c| c.open) else { return vec![] };
        c.open = false;
        vec![Input::ChannelClosed { peer, session }]
    }
}
