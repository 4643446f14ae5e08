//! The signed envelope: [`Op`] (author, chain position, time, channel,
//! body), [`SignedOp`] (its canonical bytes, signature and id) and
//! [`VerifiedOp`] (one whose signature has been checked).

use sha2::{Digest, Sha256};
use std::fmt;

use super::bodies::OpBody;
use super::codec::OP_DOMAIN;
use super::ids::OpId;
use super::limits::MAX_OP_BYTES;
use crate::codec::{DecodeError, Reader};
use crate::core::hlc::Hlc;
use crate::identity::{Identity, IdentityError, NodeId};

/// The signed content of an op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub author: NodeId,
    /// 1-based position in the author's chain.
    pub seq: u64,
    /// Id of the author's op `seq - 1`; zero for `seq == 1`.
    pub prev: OpId,
    pub hlc: Hlc,
    pub channel: String,
    pub body: OpBody,
}

/// Why an op could not be built or accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpError {
    Decode(DecodeError),
    TooLarge(usize),
    Signature(IdentityError),
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::Decode(e) => write!(f, "malformed op: {e}"),
            OpError::TooLarge(n) => write!(f, "op is {n} bytes, the limit is {MAX_OP_BYTES}"),
            OpError::Signature(e) => write!(f, "op signature: {e}"),
        }
    }
}

impl std::error::Error for OpError {}

impl From<DecodeError> for OpError {
    fn from(e: DecodeError) -> Self {
        OpError::Decode(e)
    }
}

/// An op with its author's signature, its canonical bytes and its id.
/// Constructed only by [`SignedOp::create`] and [`SignedOp::decode`], so the
/// bytes, id and fields always agree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedOp {
    op: Op,
    signature: [u8; 64],
    bytes: Vec<u8>,
    id: OpId,
}

/// A [`SignedOp`] whose signature has been checked. Only [`SignedOp::verify`]
/// (and, crate-private, the strict-equivalent batch verifier through
/// `VerifiedOp::from_external_check`) makes one, so the log can only ever
/// hold verified ops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedOp(SignedOp);

impl std::ops::Deref for VerifiedOp {
    type Target = SignedOp;
    fn deref(&self) -> &SignedOp {
        &self.0
    }
}

impl VerifiedOp {
    /// Wraps an op whose signature was checked outside [`SignedOp::verify`].
    /// Call **only** after a check proven equivalent to `verify_strict` on
    /// `OP_DOMAIN || 0 || payload` (the WebCrypto path with the
    /// [`crate::core::strict`] pre-checks): anything else would let an op
    /// that other nodes reject into the log and split the network.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // used by runtime::webcrypto
    pub(crate) fn from_external_check(op: SignedOp) -> VerifiedOp {
        VerifiedOp(op)
    }

    pub fn into_inner(self) -> SignedOp {
        self.0
    }
}

/// SHA-256 of the signed bytes.
pub fn op_id(bytes: &[u8]) -> OpId {
    OpId(Sha256::digest(bytes).into())
}

impl SignedOp {
    /// Builds and signs an op as `identity`. Fails if the result would not
    /// decode (a field over its limit), so everything we emit is acceptable
    /// to every peer.
    pub fn create(
        identity: &Identity,
        seq: u64,
        prev: OpId,
        hlc: Hlc,
        channel: &str,
        body: OpBody,
    ) -> Result<VerifiedOp, OpError> {
        let op = Op { author: identity.node_id(), seq, prev, hlc, channel: channel.to_owned(), body };
        let mut bytes = op.encode_payload();
        let signature = identity.sign(OP_DOMAIN, &bytes);
        bytes.extend_from_slice(&signature);
        let decoded = SignedOp::decode(&bytes)?;
        debug_assert_eq!(decoded.op, op);
        Ok(VerifiedOp(decoded))
    }

    /// Strict decoding of an op from a peer. Does not check the signature.
    pub fn decode(bytes: &[u8]) -> Result<SignedOp, OpError> {
        if bytes.len() > MAX_OP_BYTES {
            return Err(OpError::TooLarge(bytes.len()));
        }
        if bytes.len() < 64 {
            return Err(OpError::Decode(DecodeError::Truncated));
        }
        let (payload, sig) = bytes.split_at(bytes.len() - 64);
        let mut r = Reader::new(payload);
        let op = Op::decode_payload(&mut r)?;
        r.finish()?;
        let mut signature = [0u8; 64];
        signature.copy_from_slice(sig);
        Ok(SignedOp { op, signature, id: op_id(bytes), bytes: bytes.to_vec() })
    }

    /// Checks the author's signature with `verify_strict`.
    pub fn verify(self) -> Result<VerifiedOp, OpError> {
        let payload = &self.bytes[..self.bytes.len() - 64];
        self.op.author.verify(OP_DOMAIN, payload, &self.signature).map_err(OpError::Signature)?;
        Ok(VerifiedOp(self))
    }

    pub fn op(&self) -> &Op {
        &self.op
    }
    /// The signed payload (the op bytes without the signature).
    pub fn payload(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - 64]
    }
    pub fn id(&self) -> OpId {
        self.id
    }
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }
}
