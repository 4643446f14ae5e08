//! Node identity: an Ed25519 signing key (the node id is its public key) and an
//! X25519 key for sealing secrets to the node.
//!
//! Text form of a node id: 64 lowercase hex characters of the 32-byte Ed25519
//! public key. Hex is unambiguous, URL- and JSON-safe, and what a user can
//! compare by eye; parsing accepts upper case too but always prints lower case.
//!
//! Every signature is made over a *domain-separated* message
//! (`domain || 0x00 || payload`), so a signature produced for one purpose (say
//! the rendezvous login) can never be replayed as another (a peer handshake).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The length of an encoded identity secret: Ed25519 seed then X25519 secret.
pub const SECRET_LEN: usize = 64;

/// Errors raised when parsing identities or checking signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityError {
    /// The text is not 64 hex characters.
    BadNodeIdText,
    /// The bytes are not a valid Ed25519 point.
    BadPublicKey,
    /// A signature was not 64 bytes or was malformed.
    BadSignature,
    /// The signature does not verify (under `verify_strict`).
    VerifyFailed,
    /// Stored secret bytes had the wrong length.
    BadSecret,
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            IdentityError::BadNodeIdText => "node id must be 64 hex characters",
            IdentityError::BadPublicKey => "node id is not a valid Ed25519 public key",
            IdentityError::BadSignature => "signature must be 64 bytes",
            IdentityError::VerifyFailed => "signature does not verify",
            IdentityError::BadSecret => "identity secret must be 64 bytes",
        };
        f.write_str(s)
    }
}

impl std::error::Error for IdentityError {}

/// A node id: the node's Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub [u8; 32]);

impl NodeId {
    /// Parses the 64-hex-character text form.
    pub fn parse(text: &str) -> Result<NodeId, IdentityError> {
        if text.len() != 64 {
            return Err(IdentityError::BadNodeIdText);
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(|_| IdentityError::BadNodeIdText)?;
        Ok(NodeId(out))
    }

    /// Lowercase hex text form.
    pub fn to_text(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex characters, for logs and compact display.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    /// The Ed25519 verifying key, if these bytes are a valid point.
    pub fn verifying_key(&self) -> Result<VerifyingKey, IdentityError> {
        VerifyingKey::from_bytes(&self.0).map_err(|_| IdentityError::BadPublicKey)
    }

    /// Verifies `sig` over `domain || 0 || payload` with `verify_strict`, which
    /// rejects small-order keys and non-canonical signatures.
    pub fn verify(&self, domain: &[u8], payload: &[u8], sig: &[u8]) -> Result<(), IdentityError> {
        let key = self.verifying_key()?;
        let sig: [u8; 64] = sig.try_into().map_err(|_| IdentityError::BadSignature)?;
        let sig = Signature::from_bytes(&sig);
        key.verify_strict(&domain_message(domain, payload), &sig).map_err(|_| IdentityError::VerifyFailed)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_text())
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        NodeId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `domain || 0x00 || payload`: what is actually signed.
pub(crate) fn domain_message(domain: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(domain.len() + 1 + payload.len());
    m.extend_from_slice(domain);
    m.push(0);
    m.extend_from_slice(payload);
    m
}

/// A node's secret keys. Never leaves the node; stored in IndexedDB.
pub struct Identity {
    signing: SigningKey,
    x25519: x25519_dalek::StaticSecret,
}

impl Identity {
    /// A fresh identity from the given randomness source (injected so the core
    /// stays deterministic in tests and the simulator).
    pub fn generate<R: rand_core::CryptoRngCore>(rng: &mut R) -> Identity {
        let signing = SigningKey::generate(rng);
        let x25519 = x25519_dalek::StaticSecret::random_from_rng(rng);
        Identity { signing, x25519 }
    }

    /// A deterministic identity from a 32-byte seed (tests, simulator).
    pub fn from_seed(seed: [u8; 32]) -> Identity {
        use sha2::{Digest, Sha256};
        let x = Sha256::new().chain_update(b"synapse-ng/x25519-from-seed").chain_update(seed).finalize();
        let mut xs = [0u8; 32];
        xs.copy_from_slice(&x);
        Identity { signing: SigningKey::from_bytes(&seed), x25519: x25519_dalek::StaticSecret::from(xs) }
    }

    /// The Ed25519 seed: what every other key of this identity (X25519 aside)
    /// derives from, e.g. its voting key.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// Restores an identity from [`Identity::to_secret_bytes`].
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Identity, IdentityError> {
        if bytes.len() != SECRET_LEN {
            return Err(IdentityError::BadSecret);
        }
        let mut ed = [0u8; 32];
        ed.copy_from_slice(&bytes[..32]);
        let mut x = [0u8; 32];
        x.copy_from_slice(&bytes[32..]);
        Ok(Identity { signing: SigningKey::from_bytes(&ed), x25519: x25519_dalek::StaticSecret::from(x) })
    }

    /// Ed25519 seed followed by the X25519 secret.
    pub fn to_secret_bytes(&self) -> [u8; SECRET_LEN] {
        let mut out = [0u8; SECRET_LEN];
        out[..32].copy_from_slice(&self.signing.to_bytes());
        out[32..].copy_from_slice(&self.x25519.to_bytes());
        out
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        NodeId(self.signing.verifying_key().to_bytes())
    }

    /// The X25519 public key peers seal secrets to.
    pub fn x25519_public(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.x25519).to_bytes()
    }

    /// X25519 Diffie-Hellman with a peer's public key (opens sealed boxes).
    pub fn x25519_agree(&self, public: &[u8; 32]) -> [u8; 32] {
        self.x25519.diffie_hellman(&x25519_dalek::PublicKey::from(*public)).to_bytes()
    }

    /// Signs `domain || 0 || payload`.
    pub fn sign(&self, domain: &[u8], payload: &[u8]) -> [u8; 64] {
        self.signing.sign(&domain_message(domain, payload)).to_bytes()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({:?})", self.node_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_text_round_trip() {
        let id = Identity::from_seed([7; 32]).node_id();
        let text = id.to_text();
        assert_eq!(text.len(), 64);
        assert_eq!(NodeId::parse(&text).unwrap(), id);
        assert_eq!(NodeId::parse(&text.to_uppercase()).unwrap(), id);
        assert_eq!(NodeId::parse("abc"), Err(IdentityError::BadNodeIdText));
        assert_eq!(NodeId::parse(&"zz".repeat(32)), Err(IdentityError::BadNodeIdText));
    }

    #[test]
    fn sign_verify_with_domain_separation() {
        let me = Identity::from_seed([1; 32]);
        let sig = me.sign(b"a", b"payload");
        assert!(me.node_id().verify(b"a", b"payload", &sig).is_ok());
        assert_eq!(me.node_id().verify(b"b", b"payload", &sig), Err(IdentityError::VerifyFailed));
        assert_eq!(me.node_id().verify(b"a", b"payloaX", &sig), Err(IdentityError::VerifyFailed));
        assert_eq!(me.node_id().verify(b"a", b"payload", &sig[..10]), Err(IdentityError::BadSignature));
        let other = Identity::from_seed([2; 32]).node_id();
        assert_eq!(other.verify(b"a", b"payload", &sig), Err(IdentityError::VerifyFailed));
    }

    #[test]
    fn secret_round_trip_keeps_both_keys() {
        let me = Identity::from_seed([3; 32]);
        let back = Identity::from_secret_bytes(&me.to_secret_bytes()).unwrap();
        assert_eq!(back.node_id(), me.node_id());
        assert_eq!(back.x25519_public(), me.x25519_public());
        assert!(Identity::from_secret_bytes(&[0; 10]).is_err());
    }

    #[test]
    fn serde_uses_text_form() {
        let id = Identity::from_seed([4; 32]).node_id();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", id.to_text()));
        let back: NodeId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<NodeId>("\"nope\"").is_err());
    }
}
