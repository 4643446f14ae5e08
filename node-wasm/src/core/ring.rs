//! Linkable ring signatures over Ristretto (LSAG with a per-proposal tag),
//! the building block of anonymous one-per-member voting.
//!
//! A member signs a vote with its *voting key* `x` (public `P = x·B`) on
//! behalf of a ring `P_0..P_{n-1}` of members' published voting keys. A
//! verifier learns that one of the ring signed, not which one. Each
//! signature carries a *key image* `I = x·T`, where `T` is a point hashed
//! from the proposal id (the event tag):
//! - rule `one_image_per_proposal`: two votes by one key on one proposal
//!   carry the same image, so the fold can refuse the second whatever the
//!   ring or the vote;
//! - rule `images_unlinkable_across_proposals`: on another proposal the tag
//!   is another point, and telling `x·T_1` and `x·T_2` of one key from
//!   those of two keys is the decisional Diffie-Hellman problem.
//!
//! The scheme is Liu, Wei and Wong's LSAG (ACISP 2004) with the image base
//! hashed from the event instead of from the signer's key ("event-oriented
//! linkability"), so one proposal's images compare directly. Everything is
//! in the prime-order Ristretto group: no cofactor, canonical encodings
//! only (rule `canonical_ring_encoding`).
//!
//! Deterministic where it must be: verification is a pure function of the
//! bytes. Signing takes its randomness from the caller (`nonce_seed`, 32
//! bytes from the platform CSPRNG), never from an ambient source.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT as B;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

/// Members in one ring, at most (a bound on the verifier's work: one
/// signature costs about four scalar multiplications per member).
pub const MAX_RING: usize = 256;

const TAG_DOMAIN: &[u8] = b"synapse-ng/ring/tag/v1";
const CHALLENGE_DOMAIN: &[u8] = b"synapse-ng/ring/challenge/v1";
const NONCE_DOMAIN: &[u8] = b"synapse-ng/ring/nonce/v1";
const KEY_DOMAIN: &[u8] = b"synapse-ng/ring/voting-key/v1";

/// A member's secret voting key.
#[derive(Clone)]
pub struct VotingSecret(Scalar);

/// A published voting key (compressed Ristretto point; hex in JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VotingKey(#[serde(with = "crate::codec::hex32")] pub [u8; 32]);

/// The key image of one signer on one proposal (compressed point; hex in
/// JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyImage(#[serde(with = "crate::codec::hex32")] pub [u8; 32]);

/// A ring signature: the key image, the first challenge and one response
/// per ring member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingSignature {
    pub image: KeyImage,
    #[serde(with = "crate::codec::hex32")]
    pub c0: [u8; 32],
    #[serde(with = "hex32_list")]
    pub responses: Vec<[u8; 32]>,
}

/// A list of 32-byte values as hex strings in JSON.
mod hex32_list {
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    pub fn serialize<S: Serializer>(v: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for x in v {
            seq.serialize_element(&hex::encode(x))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        texts
            .iter()
            .map(|t| {
                let mut out = [0u8; 32];
                if t.len() != 64 || hex::decode_to_slice(t.as_bytes(), &mut out).is_err() {
                    return Err(serde::de::Error::custom("expected 64 hex characters"));
                }
                Ok(out)
            })
            .collect()
    }
}

/// Why a ring signature is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RingError {
    /// No members, more than [`MAX_RING`], or a member listed twice.
    BadRing(String),
    /// A key, the image or a scalar is not a canonical encoding.
    NotCanonical(&'static str),
    /// The number of responses is not the ring's size.
    WrongLength { ring: usize, responses: usize },
    /// The equations do not close: not signed by a ring member for this
    /// message and proposal.
    Invalid,
    /// The signer's key is not in the ring.
    NotAMember,
}

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RingError::BadRing(why) => write!(f, "bad ring: {why}"),
            RingError::NotCanonical(what) => write!(f, "{what} is not a canonical encoding"),
            RingError::WrongLength { ring, responses } => {
                write!(f, "{responses} responses for a ring of {ring}")
            }
            RingError::Invalid => f.write_str("the ring signature does not verify"),
            RingError::NotAMember => f.write_str("the signing key is not in the ring"),
        }
    }
}

impl VotingSecret {
    /// The voting key derived from a node's identity seed: one secret to
    /// keep, and the voting key is unrelated to the Ed25519 key for anyone
    /// without the seed.
    pub fn from_seed(seed: &[u8; 32]) -> VotingSecret {
        let mut h = Sha512::new();
        h.update(KEY_DOMAIN);
        h.update(seed);
        VotingSecret(Scalar::from_bytes_mod_order_wide(&h.finalize().into()))
    }

    pub fn public(&self) -> VotingKey {
        VotingKey((self.0 * B).compress().to_bytes())
    }

    /// This key's image on `proposal` (what a signature will carry).
    pub fn image(&self, proposal: &[u8; 32]) -> KeyImage {
        KeyImage((self.0 * tag(proposal)).compress().to_bytes())
    }
}

/// The event tag `T`: a point nobody knows the discrete log of, hashed
/// from the proposal id.
fn tag(proposal: &[u8; 32]) -> RistrettoPoint {
    let mut h = Sha512::new();
    h.update(TAG_DOMAIN);
    h.update(proposal);
    RistrettoPoint::from_uniform_bytes(&h.finalize().into())
}

/// The ring's digest: part of every challenge, so a signature is bound to
/// exactly this ring in this order.
pub fn ring_digest(ring: &[VotingKey]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    h.update(b"synapse-ng/ring/members/v1");
    h.update((ring.len() as u32).to_be_bytes());
    for k in ring {
        h.update(k.0);
    }
    h.finalize().into()
}

fn challenge(prefix: &Sha512, l: &RistrettoPoint, r: &RistrettoPoint) -> Scalar {
    let mut h = prefix.clone();
    h.update(l.compress().as_bytes());
    h.update(r.compress().as_bytes());
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// Everything a challenge hashes before `L` and `R`.
fn prefix(ring: &[VotingKey], proposal: &[u8; 32], image: &KeyImage, message: &[u8]) -> Sha512 {
    let mut h = Sha512::new();
    h.update(CHALLENGE_DOMAIN);
    h.update(ring_digest(ring));
    h.update(proposal);
    h.update(image.0);
    h.update((message.len() as u64).to_be_bytes());
    h.update(message);
    h
}

/// Rule `canonical_ring_encoding` for the ring: 1 to [`MAX_RING`]
/// distinct, canonical points.
fn decode_ring(ring: &[VotingKey]) -> Result<Vec<RistrettoPoint>, RingError> {
    if ring.is_empty() || ring.len() > MAX_RING {
        return Err(RingError::BadRing(format!("{} members, 1 to {MAX_RING} allowed", ring.len())));
    }
    let mut seen = std::collections::BTreeSet::new();
    ring.iter()
        .map(|k| {
            if !seen.insert(k.0) {
                return Err(RingError::BadRing("a member is listed twice".into()));
            }
            CompressedRistretto(k.0).decompress().ok_or(RingError::NotCanonical("a ring member"))
        })
        .collect()
}

fn scalar(bytes: &[u8; 32], what: &'static str) -> Result<Scalar, RingError> {
    Option::from(Scalar::from_canonical_bytes(*bytes)).ok_or(RingError::NotCanonical(what))
}

/// Per-index nonces (SHA-512 in counter mode) from the caller's seed, the
/// secret and everything signed: a seed reused by mistake still gives
/// other nonces for another message, so it cannot leak the secret (as in
/// RFC 6979).
fn nonce(base: &Sha512, i: usize) -> Scalar {
    let mut h = base.clone();
    h.update((i as u64).to_be_bytes());
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// Signs `message` on `proposal` as one member of `ring` (which must hold
/// `secret`'s key). `nonce_seed`: 32 fresh random bytes.
pub fn sign(
    secret: &VotingSecret,
    ring: &[VotingKey],
    proposal: &[u8; 32],
    message: &[u8],
    nonce_seed: &[u8; 32],
) -> Result<RingSignature, RingError> {
    let points = decode_ring(ring)?;
    let me = secret.public();
    let pi = ring.iter().position(|k| *k == me).ok_or(RingError::NotAMember)?;
    let n = ring.len();
    let t = tag(proposal);
    let image_point = secret.0 * t;
    let image = KeyImage(image_point.compress().to_bytes());
    let pre = prefix(ring, proposal, &image, message);
    let mut base = Sha512::new();
    base.update(NONCE_DOMAIN);
    base.update(secret.0.as_bytes());
    base.update(nonce_seed);
    base.update(pre.clone().finalize());
    let alpha = nonce(&base, n);
    let mut c = vec![Scalar::ZERO; n];
    let mut s = vec![Scalar::ZERO; n];
    c[(pi + 1) % n] = challenge(&pre, &(alpha * B), &(alpha * t));
    let mut i = (pi + 1) % n;
    while i != pi {
        s[i] = nonce(&base, i);
        let l = RistrettoPoint::vartime_double_scalar_mul_basepoint(&c[i], &points[i], &s[i]);
        let r = RistrettoPoint::vartime_multiscalar_mul([s[i], c[i]], [t, image_point]);
        c[(i + 1) % n] = challenge(&pre, &l, &r);
        i = (i + 1) % n;
    }
    s[pi] = alpha - c[pi] * secret.0;
    Ok(RingSignature { image, c0: c[0].to_bytes(), responses: s.iter().map(Scalar::to_bytes).collect() })
}

/// Verifies `sig` over `message` on `proposal` for `ring`. Returns the key
/// image (what the fold checks for double votes) if valid.
pub fn verify(
    sig: &RingSignature,
    ring: &[VotingKey],
    proposal: &[u8; 32],
    message: &[u8],
) -> Result<KeyImage, RingError> {
    let points = decode_ring(ring)?;
    if sig.responses.len() != ring.len() {
        return Err(RingError::WrongLength { ring: ring.len(), responses: sig.responses.len() });
    }
    let image_point = CompressedRistretto(sig.image.0).decompress().ok_or(RingError::NotCanonical("the key image"))?;
    if image_point == RistrettoPoint::default() {
        return Err(RingError::NotCanonical("the key image"));
    }
    let c0 = scalar(&sig.c0, "the challenge")?;
    let t = tag(proposal);
    let pre = prefix(ring, proposal, &sig.image, message);
    let mut c = c0;
    for (p, s) in points.iter().zip(&sig.responses) {
        let s = scalar(s, "a response")?;
        let l = RistrettoPoint::vartime_double_scalar_mul_basepoint(&c, p, &s);
        let r = RistrettoPoint::vartime_multiscalar_mul([s, c], [t, image_point]);
        c = challenge(&pre, &l, &r);
    }
    if c == c0 { Ok(sig.image) } else { Err(RingError::Invalid) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: u8) -> (Vec<VotingSecret>, Vec<VotingKey>) {
        let secrets: Vec<VotingSecret> = (0..n).map(|i| VotingSecret::from_seed(&[i + 1; 32])).collect();
        let keys = secrets.iter().map(VotingSecret::public).collect();
        (secrets, keys)
    }

    const P1: [u8; 32] = [7; 32];
    const P2: [u8; 32] = [8; 32];

    #[test]
    fn ring_signature_a_reused_seed_gives_other_nonces_for_another_message() {
        let (secrets, ring) = members(3);
        let a = sign(&secrets[1], &ring, &P1, b"yes", &[9; 32]).unwrap();
        let b = sign(&secrets[1], &ring, &P1, b"no", &[9; 32]).unwrap();
        // With alpha reused, s_a - s_b = (c_b - c_a)·x would give x away.
        assert_ne!(a.responses[0], b.responses[0]);
        assert_ne!(a.responses[2], b.responses[2]);
    }

    #[test]
    fn ring_signature_valid_for_every_position_and_ring_size() {
        for n in [1u8, 2, 5, 16] {
            let (secrets, ring) = members(n);
            for (i, s) in secrets.iter().enumerate() {
                let sig = sign(s, &ring, &P1, b"yes", &[i as u8; 32]).unwrap();
                assert_eq!(verify(&sig, &ring, &P1, b"yes"), Ok(s.image(&P1)), "n={n} i={i}");
            }
        }
    }

    #[test]
    fn ring_signature_forged_or_altered_is_refused() {
        let (secrets, ring) = members(5);
        let sig = sign(&secrets[2], &ring, &P1, b"yes", &[1; 32]).unwrap();
        assert_eq!(verify(&sig, &ring, &P1, b"no"), Err(RingError::Invalid), "another vote");
        assert_eq!(verify(&sig, &ring, &P2, b"yes"), Err(RingError::Invalid), "another proposal");
        for k in 0..sig.responses.len() {
            let mut bad = sig.clone();
            bad.responses[k][0] ^= 1;
            assert!(verify(&bad, &ring, &P1, b"yes").is_err(), "response {k}");
        }
        let mut bad = sig.clone();
        bad.c0[3] ^= 1;
        assert!(verify(&bad, &ring, &P1, b"yes").is_err());
        // Another member's image swapped in (to vote twice unnoticed).
        let mut bad = sig.clone();
        bad.image = secrets[3].image(&P1);
        assert_eq!(verify(&bad, &ring, &P1, b"yes"), Err(RingError::Invalid));
        // An outsider cannot sign for the ring.
        let outsider = VotingSecret::from_seed(&[99; 32]);
        assert_eq!(sign(&outsider, &ring, &P1, b"yes", &[1; 32]), Err(RingError::NotAMember));
        // A response that is not a canonical scalar.
        let mut bad = sig.clone();
        bad.responses[0] = [0xff; 32];
        assert_eq!(verify(&bad, &ring, &P1, b"yes"), Err(RingError::NotCanonical("a response")));
        // The identity point as an image.
        let mut bad = sig;
        bad.image = KeyImage(RistrettoPoint::default().compress().to_bytes());
        assert_eq!(verify(&bad, &ring, &P1, b"yes"), Err(RingError::NotCanonical("the key image")));
    }

    #[test]
    fn ring_signature_wrong_ring_is_refused() {
        let (secrets, ring) = members(5);
        let sig = sign(&secrets[0], &ring, &P1, b"yes", &[1; 32]).unwrap();
        let mut other = ring.clone();
        other[4] = VotingSecret::from_seed(&[50; 32]).public();
        assert_eq!(verify(&sig, &other, &P1, b"yes"), Err(RingError::Invalid), "a member replaced");
        let mut reordered = ring.clone();
        reordered.swap(1, 2);
        assert_eq!(verify(&sig, &reordered, &P1, b"yes"), Err(RingError::Invalid), "reordered");
        assert!(matches!(verify(&sig, &ring[..4], &P1, b"yes"), Err(RingError::WrongLength { .. })));
        let mut twice = ring.clone();
        twice[1] = twice[0];
        assert!(matches!(verify(&sig, &twice, &P1, b"yes"), Err(RingError::BadRing(_))));
        assert!(matches!(verify(&sig, &[], &P1, b"yes"), Err(RingError::BadRing(_))));
        let big: Vec<VotingKey> = vec![ring[0]; MAX_RING + 1];
        assert!(matches!(verify(&sig, &big, &P1, b"yes"), Err(RingError::BadRing(_))));
        let mut junk = ring;
        junk[2] = VotingKey([0xff; 32]);
        assert_eq!(verify(&sig, &junk, &P1, b"yes"), Err(RingError::NotCanonical("a ring member")));
    }

    #[test]
    fn one_image_per_proposal_a_double_vote_shows_the_same_image() {
        let (secrets, ring) = members(8);
        let yes = sign(&secrets[5], &ring, &P1, b"yes", &[1; 32]).unwrap();
        // Another ring (a subset that still holds the signer), another
        // vote, other nonces: the same image.
        let no = sign(&secrets[5], &ring[3..], &P1, b"no", &[2; 32]).unwrap();
        assert_eq!(verify(&no, &ring[3..], &P1, b"no"), Ok(yes.image));
        assert_eq!(yes.image, no.image);
        // Two members: two images.
        let other = sign(&secrets[6], &ring, &P1, b"yes", &[3; 32]).unwrap();
        assert_ne!(other.image, yes.image);
    }

    #[test]
    fn images_unlinkable_across_proposals() {
        // What a test can check: a member's images on two proposals differ
        // and match no other image, and a signature is bound to its
        // proposal. That nothing else relates `x·T1` and `x·T2` is the DDH
        // assumption in Ristretto, not something a test can show.
        let (secrets, ring) = members(4);
        let a1 = sign(&secrets[0], &ring, &P1, b"yes", &[1; 32]).unwrap().image;
        let a2 = sign(&secrets[0], &ring, &P2, b"yes", &[1; 32]).unwrap().image;
        assert_ne!(a1, a2);
        // The images on P2 of all members are distinct from each other and
        // from every image on P1.
        let on1: Vec<KeyImage> = secrets.iter().map(|s| s.image(&P1)).collect();
        let on2: Vec<KeyImage> = secrets.iter().map(|s| s.image(&P2)).collect();
        for x in &on2 {
            assert!(!on1.contains(x));
        }
        // Signatures themselves are bound to the proposal: one made for P1
        // does not verify for P2 even with its image.
        let sig = sign(&secrets[1], &ring, &P1, b"yes", &[4; 32]).unwrap();
        assert_eq!(verify(&sig, &ring, &P2, b"yes"), Err(RingError::Invalid));
    }
}
