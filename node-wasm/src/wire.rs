//! Messages exchanged between two nodes over their DataChannel.
//!
//! ```text
//! message = version:u8 (=1) tag:u8 body
//! 1 AuthHello  node_id:[32] nonce:[32]
//! 2 AuthProof  signature:[64]
//! 3 Hello      author:[32] text:str(<= 1000 B) signature:[64]
//! 4 Ping       id:u64
//! 5 Pong       id:u64
//! 6 Blob       data:bytes(<= 4 MiB)          (bulk transfer / throughput)
//! ```
//! Every message is decoded strictly (no trailing bytes, capped lengths).

use crate::codec::{DecodeError, Reader, Writer};
use crate::identity::{Identity, NodeId};

/// The only wire version this node speaks.
pub const WIRE_VERSION: u8 = 1;
/// Longest hello text, in bytes.
pub const MAX_HELLO_BYTES: usize = 1000;
/// Largest blob accepted.
pub const MAX_BLOB: usize = 4 * 1024 * 1024;
/// Largest message accepted from a peer (a blob plus headers).
pub const MAX_MESSAGE: usize = MAX_BLOB + 64;
/// Domain of the signature over a hello.
pub const HELLO_DOMAIN: &[u8] = b"synapse-ng/hello/v1";

/// One message between peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireMsg {
    AuthHello { node_id: NodeId, nonce: [u8; 32] },
    AuthProof { signature: [u8; 64] },
    Hello(SignedHello),
    Ping(u64),
    Pong(u64),
    Blob(Vec<u8>),
}

/// A short text signed by its author; peers show it with the verified author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHello {
    pub author: NodeId,
    pub text: String,
    pub signature: [u8; 64],
}

/// Why a hello was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloError {
    Empty,
    TooLong(usize),
    BadSignature,
}

impl std::fmt::Display for HelloError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HelloError::Empty => f.write_str("hello text is empty"),
            HelloError::TooLong(n) => {
                write!(f, "hello text is {n} bytes, the limit is {MAX_HELLO_BYTES}")
            }
            HelloError::BadSignature => f.write_str("hello signature does not verify"),
        }
    }
}

impl std::error::Error for HelloError {}

impl SignedHello {
    /// Signs `text` as `identity`. Refuses empty or over-long text.
    pub fn sign(identity: &Identity, text: &str) -> Result<SignedHello, HelloError> {
        check_hello_text(text)?;
        let author = identity.node_id();
        let signature = identity.sign(HELLO_DOMAIN, &hello_payload(&author, text));
        Ok(SignedHello { author, text: text.to_owned(), signature })
    }

    /// Checks the text limits and the author's signature.
    pub fn verify(&self) -> Result<(), HelloError> {
        check_hello_text(&self.text)?;
        self.author
            .verify(HELLO_DOMAIN, &hello_payload(&self.author, &self.text), &self.signature)
            .map_err(|_| HelloError::BadSignature)
    }
}

fn check_hello_text(text: &str) -> Result<(), HelloError> {
    if text.trim().is_empty() {
        return Err(HelloError::Empty);
    }
    if text.len() > MAX_HELLO_BYTES {
        return Err(HelloError::TooLong(text.len()));
    }
    Ok(())
}

fn hello_payload(author: &NodeId, text: &str) -> Vec<u8> {
    let mut w = Writer::with_capacity(36 + text.len());
    w.raw(&author.0).str(text);
    w.finish()
}

impl WireMsg {
    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(WIRE_VERSION);
        match self {
            WireMsg::AuthHello { node_id, nonce } => {
                w.u8(1).raw(&node_id.0).raw(nonce);
            }
            WireMsg::AuthProof { signature } => {
                w.u8(2).raw(signature);
            }
            WireMsg::Hello(h) => {
                w.u8(3).raw(&h.author.0).str(&h.text).raw(&h.signature);
            }
            WireMsg::Ping(id) => {
                w.u8(4).u64(*id);
            }
            WireMsg::Pong(id) => {
                w.u8(5).u64(*id);
            }
            WireMsg::Blob(data) => {
                w.u8(6).bytes(data);
            }
        }
        w.finish()
    }

    /// Strict decoding of a message from a peer.
    pub fn decode(buf: &[u8]) -> Result<WireMsg, DecodeError> {
        let mut r = Reader::new(buf);
        let v = r.u8()?;
        if v != WIRE_VERSION {
            return Err(DecodeError::UnknownVersion(v));
        }
        let msg = match r.u8()? {
            1 => WireMsg::AuthHello { node_id: NodeId(r.array()?), nonce: r.array()? },
            2 => WireMsg::AuthProof { signature: r.array()? },
            3 => WireMsg::Hello(SignedHello {
                author: NodeId(r.array()?),
                text: r.str("hello text", MAX_HELLO_BYTES)?.to_owned(),
                signature: r.array()?,
            }),
            4 => WireMsg::Ping(r.u64()?),
            5 => WireMsg::Pong(r.u64()?),
            6 => WireMsg::Blob(r.bytes("blob", MAX_BLOB)?.to_vec()),
            t => return Err(DecodeError::UnknownTag(t)),
        };
        r.finish()?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        let me = Identity::from_seed([1; 32]);
        let msgs = vec![
            WireMsg::AuthHello { node_id: me.node_id(), nonce: [3; 32] },
            WireMsg::AuthProof { signature: [4; 64] },
            WireMsg::Hello(SignedHello::sign(&me, "hi there").unwrap()),
            WireMsg::Ping(7),
            WireMsg::Pong(8),
            WireMsg::Blob(vec![1, 2, 3]),
        ];
        for m in msgs {
            assert_eq!(WireMsg::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn decoding_is_strict() {
        assert_eq!(WireMsg::decode(&[2, 4]), Err(DecodeError::UnknownVersion(2)));
        assert_eq!(WireMsg::decode(&[1, 99]), Err(DecodeError::UnknownTag(99)));
        assert_eq!(WireMsg::decode(&[1, 4, 0]), Err(DecodeError::Truncated));
        let mut ping = WireMsg::Ping(1).encode();
        ping.push(0);
        assert_eq!(WireMsg::decode(&ping), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn hello_signature_binds_author_and_text() {
        let me = Identity::from_seed([1; 32]);
        let h = SignedHello::sign(&me, "hello").unwrap();
        assert!(h.verify().is_ok());
        let mut forged = h.clone();
        forged.text = "hellO".into();
        assert_eq!(forged.verify(), Err(HelloError::BadSignature));
        let mut stolen = h.clone();
        stolen.author = Identity::from_seed([2; 32]).node_id();
        assert_eq!(stolen.verify(), Err(HelloError::BadSignature));
        assert_eq!(SignedHello::sign(&me, "  ").unwrap_err(), HelloError::Empty);
        assert!(matches!(SignedHello::sign(&me, &"x".repeat(1001)), Err(HelloError::TooLong(1001))));
    }
}
