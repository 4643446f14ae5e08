//! Fuzzing entry point for the peer manager: what strangers can make it
//! handle. [`script`] reads its input as a script of steps against node 0 of
//! a three-node network that has connected and proven itself: signals with
//! arbitrary JSON, raw DataChannel frames, signed relays and peer records
//! with arbitrary contents, browser events for live and stale sessions,
//! directory changes, time passing. It must never panic. The cargo-fuzz
//! target `peer_manager` calls it, and so does a unit test over seeds.

use super::net::{Net, sim_identity};
use super::{Candidate, ConnState, Input, NodeConfig};
use crate::identity::NodeId;
use crate::signaling::SdpType;
use crate::wire::{PeerRecord, RelaySignal, WireMsg};

/// Runs one input: chunks of `[kind, arg, len, bytes…]`.
pub fn script(data: &[u8]) {
    let mut net = Net::new(3, NodeConfig { max_connections: 8, connection_budget: 32, ..NodeConfig::default() }, 5);
    for i in 0..3 {
        net.join(i);
    }
    net.run_until(500);
    let ids: Vec<NodeId> = (0..3).map(|i| net.id(i)).collect();
    let stranger = sim_identity(9).node_id();
    let mut rest = data;
    while let [kind, arg, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (bytes, next) = tail.split_at(n);
        rest = next;
        let peer = [ids[1], ids[2], stranger][*arg as usize % 3];
        let session = net.nodes[0].manager.session_of(peer).unwrap_or(u32::from(*arg));
        let text = String::from_utf8_lossy(bytes).into_owned();
        match kind % 12 {
            0 => {
                let payload = serde_json::from_slice(bytes).unwrap_or(serde_json::Value::String(text));
                net.input(0, Input::Signal { rdv: usize::from(*arg % 6), from: peer, payload });
            }
            1 => net.input(0, Input::Frame { peer, session, bytes: bytes.to_vec() }),
            2 => {
                // A signed relay from a proven peer, to anyone, any payload.
                let to = [ids[0], ids[2], stranger][*arg as usize % 3];
                let r = RelaySignal::sign(&sim_identity(1), to, arg % 3, bytes.to_vec());
                net.nodes[1].manager.send_to(ids[0], &WireMsg::Relay(r));
                net.input(1, Input::Connect(ids[1])); // drains node 1
            }
            3 => {
                let neighbors = bytes.chunks_exact(1).map(|b| sim_identity(b[0] as usize % 16).node_id()).collect();
                let r = PeerRecord::sign(&sim_identity(2), u64::from(*arg), neighbors);
                net.nodes[2].manager.send_to(ids[0], &WireMsg::PeerRecord(r));
                net.input(2, Input::Connect(ids[2]));
            }
            4 => {
                let state = [
                    ConnState::New,
                    ConnState::Connecting,
                    ConnState::Connected,
                    ConnState::Disconnected,
                    ConnState::Failed,
                    ConnState::Closed,
                ][*arg as usize % 6];
                net.input(0, Input::ConnectionState { peer, session, state });
            }
            5 => net
                .input(0, Input::ChannelOpen { peer, session, local_sdp: Some(text.clone()), remote_sdp: Some(text) }),
            6 => {
                let sdp_type = if arg % 2 == 0 { SdpType::Offer } else { SdpType::Answer };
                net.input(0, Input::LocalDescription { peer, session, sdp_type, sdp: text });
            }
            7 => {
                let result = if arg % 2 == 0 { Ok(()) } else { Err(text) };
                net.input(0, Input::RemoteDescriptionSet { peer, session, result });
            }
            8 => {
                let candidate = Candidate { candidate: text, sdp_mid: None, sdp_m_line_index: Some(u16::from(*arg)) };
                net.input(0, Input::IceCandidate { peer, session, candidate });
            }
            9 => match arg % 5 {
                0 => net.input(0, Input::PeerJoined { rdv: usize::from(*arg / 5 % 6), id: peer }),
                1 => net.input(0, Input::PeerLeft { rdv: usize::from(*arg / 5 % 6), id: peer }),
                2 => net.input(0, Input::Directory { rdv: usize::from(*arg / 5 % 6), ids: vec![peer, ids[0]] }),
                3 => net.input(0, Input::DirectorySample { rdv: usize::from(*arg / 5 % 6), ids: vec![peer, ids[0]] }),
                _ => net.input(0, Input::ChannelClosed { peer, session }),
            },
            10 => {
                let stable = arg % 2 == 0;
                net.input(0, Input::SignalingStable { peer, session, stable });
            }
            _ => {
                let t = net.now + u64::from(*arg) * 100;
                net.run_until(t);
            }
        }
        let t = net.now + 1;
        net.run_until(t);
    }
    let t = net.now + 60_000;
    net.run_until(t);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_seeds_do_not_panic() {
        let seeds: [&[u8]; 6] = [
            b"",
            &[0, 0, 2, b'4', b'2', 1, 1, 3, 0xff, 0x10, 0x00],
            &[2, 0, 5, b'{', b'"', b'a', b'"', b'}', 3, 1, 3, 1, 2, 3],
            &[4, 0, 0, 5, 1, 4, b'x', b'y', b'z', b'w', 11, 200, 0],
            &[9, 0, 0, 9, 1, 0, 9, 2, 0, 9, 3, 0, 6, 0, 1, b'v', 7, 1, 1, b'e', 8, 2, 1, b'c', 10, 1, 0],
            &[
                2, 2, 40, b'{', b'"', b's', b'e', b's', b's', b'i', b'o', b'n', b'"', b':', b'1', b',', b'"', b'k',
                b'i', b'n', b'd', b'"', b':', b'"', b'b', b'y', b'e', b'"', b'}', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        ];
        for s in seeds {
            script(s);
        }
        // And a deterministic spread of pseudo-random scripts.
        let mut rng = crate::pubsub::rng::SplitMix64::new(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200 {
            let bytes: Vec<u8> = (0..64).map(|_| rng.next_u64() as u8).collect();
            script(&bytes);
        }
    }
}
