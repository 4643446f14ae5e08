//! Perfect negotiation (the W3C pattern) as a pure decision: what to do
//! with our connection to a peer when one of its descriptions arrives.
//!
//! Either side may offer at any time. On an offer collision the *polite*
//! side (the greater node id) gives way and the impolite side keeps its own
//! offer. Every RTCPeerConnection carries a session id in its signals, so a
//! peer that replaced its connection (failure, reload) is recognised.

use crate::signaling::SdpType;

/// What the manager knows of its current connection to the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnView {
    /// This side is the polite one (greater node id).
    pub polite: bool,
    /// An offer of ours is being created (`setLocalDescription` pending).
    pub making_offer: bool,
    /// The browser's `signalingState` is `stable`.
    pub stable: bool,
    /// A remote description has been applied to this connection.
    pub remote_bound: bool,
    /// The peer's session the connection is bound to.
    pub remote_session: Option<u32>,
}

/// What to do before applying a remote description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Apply it to the current connection.
    Use,
    /// Replace the connection with a fresh one bound to the peer's session,
    /// then apply it there.
    Fresh,
    /// Do nothing (a stale answer, or our own offer wins the collision).
    Ignore,
}

/// Rule `plan_description`: decides for one incoming description.
///
/// - `replaced_connection_starts_afresh`: the peer's session differs from the
///   one our bound connection belongs to: an offer starts a fresh
///   connection, an old answer is stale.
/// - `polite_glare_uses_fresh_connection`: on a collision before the first
///   negotiation completed, the polite side answers with a fresh connection
///   instead of rolling back, because Chromium gathers no ICE candidates for
///   an answer made after rolling back the first offer.
/// - `impolite_keeps_its_offer`: the impolite side ignores a colliding offer.
/// - An answer never creates a connection (`Fresh` for an answer is
///   `Ignore`): only offers may.
pub fn plan_description(conn: Option<ConnView>, sdp_type: SdpType, session: u32) -> Plan {
    let offer = sdp_type == SdpType::Offer;
    let plan = match conn {
        None => Plan::Fresh,
        Some(c) => {
            let collision = offer && (c.making_offer || !c.stable);
            if c.remote_bound && c.remote_session != Some(session) {
                if offer { Plan::Fresh } else { Plan::Ignore }
            } else if collision && c.polite && !c.remote_bound {
                Plan::Fresh
            } else if collision && !c.polite {
                Plan::Ignore
            } else {
                Plan::Use
            }
        }
    };
    if plan == Plan::Fresh && !offer { Plan::Ignore } else { plan }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(polite: bool) -> ConnView {
        ConnView { polite, making_offer: false, stable: true, remote_bound: false, remote_session: None }
    }

    #[test]
    fn an_offer_with_no_connection_creates_one_and_an_answer_does_not() {
        assert_eq!(plan_description(None, SdpType::Offer, 1), Plan::Fresh);
        assert_eq!(plan_description(None, SdpType::Answer, 1), Plan::Ignore);
    }

    #[test]
    fn replaced_connection_starts_afresh() {
        let c = ConnView { remote_bound: true, remote_session: Some(1), ..view(false) };
        assert_eq!(plan_description(Some(c), SdpType::Offer, 2), Plan::Fresh);
        assert_eq!(plan_description(Some(c), SdpType::Answer, 2), Plan::Ignore, "old answer is stale");
        assert_eq!(plan_description(Some(c), SdpType::Offer, 1), Plan::Use, "renegotiation on the same session");
    }

    #[test]
    fn polite_glare_uses_fresh_connection() {
        let c = ConnView { making_offer: true, ..view(true) };
        assert_eq!(plan_description(Some(c), SdpType::Offer, 5), Plan::Fresh);
        let c = ConnView { stable: false, ..view(true) };
        assert_eq!(plan_description(Some(c), SdpType::Offer, 5), Plan::Fresh);
        // after a completed negotiation the polite side rolls back in place
        let c = ConnView { stable: false, remote_bound: true, remote_session: Some(5), ..view(true) };
        assert_eq!(plan_description(Some(c), SdpType::Offer, 5), Plan::Use);
    }

    #[test]
    fn impolite_keeps_its_offer() {
        let c = ConnView { making_offer: true, ..view(false) };
        assert_eq!(plan_description(Some(c), SdpType::Offer, 5), Plan::Ignore);
        let c = ConnView { stable: false, ..view(false) };
        assert_eq!(plan_description(Some(c), SdpType::Offer, 5), Plan::Ignore);
        // the answer to our offer is used
        assert_eq!(plan_description(Some(c), SdpType::Answer, 5), Plan::Use);
    }
}
