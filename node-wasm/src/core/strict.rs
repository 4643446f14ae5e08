//! `verify_strict` semantics on top of a plain RFC 8032 verifier.
//!
//! Every node must accept exactly the signatures ed25519-dalek's
//! `VerifyingKey::verify_strict` accepts, or the network splits. A browser can
//! verify several times faster with the platform's Ed25519 (WebCrypto), which
//! follows RFC 8032 *cofactorless* verification: `S < L` and
//! `encode([S]B - [k]A) == R` with `k = SHA-512(R || A || M) mod L`. What
//! `verify_strict` (ed25519-dalek 2.2, `verifying.rs`) does is:
//!
//! 1. `VerifyingKey::from_bytes(A)`: `CompressedEdwardsY::decompress`, which
//!    accepts non-canonical `y >= p` (it reduces mod p); failure is
//!    [`IdentityError::BadPublicKey`] here.
//! 2. `S` must be canonical (`Scalar::from_canonical_bytes`, i.e. `S < L`).
//! 3. `R` must decompress, and neither `R` nor `A` may be of small order.
//! 4. `R' = [S]B - [k]A` (cofactorless), and `compress(R') == R` **as bytes**:
//!    a non-canonical `R` encoding can never match, since `compress` is
//!    canonical.
//!
//! The platform verifier may agree with (4) and still differ elsewhere (it may
//! or may not reject small-order points, non-canonical encodings or
//! mixed-order keys). So a signature is handed to it only when the answer
//! cannot depend on those differences:
//!
//! - The key is classified once ([`classify_key`], cached by callers):
//!   undecodable or small-order keys are rejected here with verify_strict's
//!   error; keys with a non-canonical encoding or a torsion component (never
//!   produced by an honest key generator) go to ed25519-dalek itself
//!   ([`KeyClass::DalekOnly`]); only canonical, torsion-free keys
//!   ([`KeyClass::Strict`]) may use the platform.
//! - The signature is pre-checked on bytes ([`signature_precheck`]): `S < L`;
//!   `R`'s `y` (sign bit cleared) `< p`; and `y` is not the `y` of one of the
//!   8 small-order points. With a `Strict` key, a signature passing this check
//!   is accepted by verify_strict iff `encode([S]B - [k]A) == R`, which is
//!   RFC 8032's equation. Proof sketch: if `y >= p`, verify_strict always
//!   rejects (either the point is small-order or `R` is not the canonical
//!   encoding its recomputed point would have); the small-order points are
//!   exactly those with `y` in `{0, 1, -1, ±y8}`, and every encoding with such
//!   a `y` that decompresses is small-order, so rejecting all of them is
//!   exact; any other `R` either fails to decompress (then no point encodes
//!   to it, so the equation fails too) or is the canonical encoding of a
//!   point of large order (`x != 0`, so the sign bit is meaningful).
//!   Because the key is torsion-free, `[S]B - [k]A` lies in the prime-order
//!   subgroup, so whether the platform rejects mixed-order `R` is irrelevant.
//!
//! The native tests check the byte-level pre-check against the literal
//! decompress/`is_small_order` mirror, and "pre-check + cofactorless
//! equation" against `verify_strict` on every edge-case vector; the browser
//! tests repeat the latter with Chromium's WebCrypto.

use crate::identity::IdentityError;
use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;
use std::sync::OnceLock;

/// The group order `L = 2^252 + 27742317777372353535851937790883648493`,
/// little-endian.
pub const L_BYTES: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// How a public key may be verified, decided once per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyClass {
    /// Does not decompress: verify_strict fails with `BadPublicKey`.
    Invalid,
    /// A point of small order: verify_strict rejects every signature.
    SmallOrder,
    /// Decodes to a large-order point, but its encoding is non-canonical
    /// (`y >= p`) or the point has a torsion component. Honest keys never
    /// look like this; only ed25519-dalek decides for them.
    DalekOnly,
    /// Canonical encoding of a torsion-free point: a cofactorless RFC 8032
    /// verifier plus [`signature_precheck`] gives verify_strict's answer.
    Strict,
}

/// Classifies a 32-byte Ed25519 public key (see the module docs).
pub fn classify_key(a: &[u8; 32]) -> KeyClass {
    let Some(point) = CompressedEdwardsY(*a).decompress() else {
        return KeyClass::Invalid;
    };
    if point.is_small_order() {
        return KeyClass::SmallOrder;
    }
    if !y_is_canonical(a) || !point.is_torsion_free() {
        return KeyClass::DalekOnly;
    }
    KeyClass::Strict
}

/// True if `y` (the low 255 bits, little-endian) is below `p = 2^255 - 19`.
pub fn y_is_canonical(enc: &[u8; 32]) -> bool {
    // y >= p iff y is one of 2^255-19 ..= 2^255-1: bytes ed..ff, ff * 30, 7f.
    !(enc[31] & 0x7f == 0x7f && enc[1..31].iter().all(|&b| b == 0xff) && enc[0] >= 0xed)
}

/// `y` (sign bit cleared) of the 8 small-order points: 0, 1, p-1 and ±y8.
fn small_order_ys() -> &'static [[u8; 32]] {
    static YS: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    YS.get_or_init(|| {
        let mut ys: Vec<[u8; 32]> = EIGHT_TORSION
            .iter()
            .map(|p| {
                let mut y = p.compress().to_bytes();
                y[31] &= 0x7f;
                y
            })
            .collect();
        ys.sort();
        ys.dedup();
        ys
    })
}

/// True if `s` is a canonical scalar (`s < L`), exactly as ed25519-dalek
/// checks it.
pub fn s_is_canonical(s: &[u8; 32]) -> bool {
    Option::<Scalar>::from(Scalar::from_canonical_bytes(*s)).is_some()
}

/// The checks on the signature bytes that verify_strict performs besides the
/// equation, in the form that needs no point decompression (see the module
/// docs for why this is exact). `Err(VerifyFailed)` means verify_strict
/// rejects the signature whatever the key and message.
pub fn signature_precheck(sig: &[u8; 64]) -> Result<(), IdentityError> {
    let mut r = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    let mut s = [0u8; 32];
    s.copy_from_slice(&sig[32..]);
    if !s_is_canonical(&s) || !y_is_canonical(&r) {
        return Err(IdentityError::VerifyFailed);
    }
    r[31] &= 0x7f;
    if small_order_ys().contains(&r) {
        return Err(IdentityError::VerifyFailed);
    }
    Ok(())
}

/// The literal mirror of verify_strict's checks besides the equation, using
/// point decompression (reference for tests; the byte-level
/// [`signature_precheck`] is what runs).
pub fn reference_precheck(a: &[u8; 32], sig: &[u8; 64]) -> Result<(), IdentityError> {
    let a = CompressedEdwardsY(*a).decompress().ok_or(IdentityError::BadPublicKey)?;
    let mut s = [0u8; 32];
    s.copy_from_slice(&sig[32..]);
    if !s_is_canonical(&s) {
        return Err(IdentityError::VerifyFailed);
    }
    let r = CompressedEdwardsY::from_slice(&sig[..32])
        .ok()
        .and_then(|r| r.decompress())
        .ok_or(IdentityError::VerifyFailed)?;
    if r.is_small_order() || a.is_small_order() {
        return Err(IdentityError::VerifyFailed);
    }
    Ok(())
}

/// ed25519-dalek's `verify_strict` with this crate's error mapping (the same
/// as [`crate::identity::NodeId::verify`], without domain separation).
pub fn dalek_verify_strict(a: &[u8; 32], sig: &[u8; 64], msg: &[u8]) -> Result<(), IdentityError> {
    let key = ed25519_dalek::VerifyingKey::from_bytes(a).map_err(|_| IdentityError::BadPublicKey)?;
    key.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig)).map_err(|_| IdentityError::VerifyFailed)
}

/// What a strict verification needs after the cheap checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// The answer is already known.
    Done(Result<(), IdentityError>),
    /// Ask a cofactorless RFC 8032 verifier (WebCrypto); its answer is
    /// verify_strict's.
    Platform,
    /// Only ed25519-dalek may decide.
    Dalek,
}

/// Decides how to verify `sig` under a key of class `class`.
pub fn route(class: KeyClass, sig: &[u8; 64]) -> Route {
    match class {
        KeyClass::Invalid => Route::Done(Err(IdentityError::BadPublicKey)),
        KeyClass::SmallOrder => Route::Done(Err(IdentityError::VerifyFailed)),
        KeyClass::DalekOnly => Route::Dalek,
        KeyClass::Strict => match signature_precheck(sig) {
            Ok(()) => Route::Platform,
            Err(e) => Route::Done(Err(e)),
        },
    }
}

/// Known edge cases for Ed25519 verifiers ("Taming the many EdDSAs",
/// Chalkias et al. 2020, and the speccheck suite), built here from scratch.
pub mod vectors {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use ed25519_dalek::{Signer, SigningKey};
    use sha2::{Digest, Sha512};

    /// One case: a key, a signature and a message.
    #[derive(Clone, Debug)]
    pub struct EdgeVector {
        pub name: String,
        pub key: [u8; 32],
        pub sig: [u8; 64],
        pub msg: Vec<u8>,
    }

    fn k(r: &[u8; 32], a: &[u8; 32], msg: &[u8]) -> Scalar {
        let h = Sha512::new().chain_update(r).chain_update(a).chain_update(msg).finalize();
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&h);
        Scalar::from_bytes_mod_order_wide(&wide)
    }

    fn scalar(seed: &[u8]) -> Scalar {
        let h = Sha512::digest(seed);
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&h);
        Scalar::from_bytes_mod_order_wide(&wide)
    }

    fn sig(r: [u8; 32], s: [u8; 32]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&r);
        out[32..].copy_from_slice(&s);
        out
    }

    /// `s + L` as a 256-bit integer (fits: `s < L < 2^253`).
    pub fn add_l(s: &[u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = s[i] as u16 + super::L_BYTES[i] as u16 + carry;
            out[i] = v as u8;
            carry = v >> 8;
        }
        out
    }

    /// The low 255 bits of `p + d` with sign bit `sign` (non-canonical `y`).
    fn p_plus(d: u8, sign: bool) -> [u8; 32] {
        let mut y = [0xffu8; 32];
        y[0] = 0xed + d;
        y[31] = if sign { 0xff } else { 0x7f };
        y
    }

    /// Every encoding that decompresses to a point of small order: the 8
    /// canonical ones plus the non-canonical ones (`y >= p`, and `x = 0`
    /// with the sign bit set).
    pub fn small_order_encodings() -> Vec<[u8; 32]> {
        let mut out: Vec<[u8; 32]> = EIGHT_TORSION.iter().map(|p| p.compress().to_bytes()).collect();
        let mut candidates = vec![];
        for d in 0..19u8 {
            candidates.push(p_plus(d, false));
            candidates.push(p_plus(d, true));
        }
        for e in out.clone() {
            let mut f = e;
            f[31] ^= 0x80;
            candidates.push(f);
        }
        for c in candidates {
            if CompressedEdwardsY(c).decompress().is_some_and(|p| p.is_small_order()) && !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    /// Non-canonical (`y >= p`) encodings of points that are *not* of small
    /// order.
    pub fn non_canonical_large_order_encodings() -> Vec<[u8; 32]> {
        let mut out = vec![];
        for d in 0..19u8 {
            for sign in [false, true] {
                let c = p_plus(d, sign);
                if CompressedEdwardsY(c).decompress().is_some_and(|p| !p.is_small_order()) {
                    out.push(c);
                }
            }
        }
        out
    }

    /// A signature by secret scalar `a` (public encoding `a_enc`) with nonce
    /// point encoding `r_enc` and nonce scalar `r`: `S = r + k a`.
    fn sign_raw(a: Scalar, a_enc: &[u8; 32], r: Scalar, r_enc: &[u8; 32], msg: &[u8]) -> [u8; 64] {
        let s = r + k(r_enc, a_enc, msg) * a;
        sig(*r_enc, s.to_bytes())
    }

    /// All vectors. Deterministic.
    pub fn all() -> Vec<EdgeVector> {
        let mut v = vec![];
        let mut push = |name: String, key: [u8; 32], sig: [u8; 64], msg: &[u8]| {
            v.push(EdgeVector { name, key, sig, msg: msg.to_vec() })
        };
        let msg: &[u8] = b"synapse-ng edge case";
        let sk = SigningKey::from_bytes(&[7; 32]);
        let pk = sk.verifying_key().to_bytes();
        let good = sk.sign(msg).to_bytes();
        push("valid".into(), pk, good, msg);
        push("valid, empty message".into(), pk, sk.sign(b"").to_bytes(), b"");
        push("wrong message".into(), pk, good, b"synapse-ng edge casE");
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        push("signature by a different key".into(), other, good, msg);
        let mut flipped = good;
        flipped[31] ^= 0x80;
        push("R sign bit flipped".into(), pk, flipped, msg);
        let mut s = [0u8; 32];
        s.copy_from_slice(&good[32..]);
        push("S + L (non-canonical S)".into(), pk, sig(good[..32].try_into().unwrap_or([0; 32]), add_l(&s)), msg);
        push("S = L".into(), pk, sig(good[..32].try_into().unwrap_or([0; 32]), super::L_BYTES), msg);
        let mut high = s;
        high[31] |= 0xe0;
        push("S with the top 3 bits set".into(), pk, sig(good[..32].try_into().unwrap_or([0; 32]), high), msg);
        push("all-zero signature".into(), pk, [0; 64], msg);
        push("all-ones signature".into(), pk, [0xff; 64], msg);

        // A key that is not a point.
        let mut not_point = None;
        for i in 0..=255u8 {
            let mut c = [i; 32];
            c[31] &= 0x7f;
            if CompressedEdwardsY(c).decompress().is_none() {
                not_point = Some(c);
                break;
            }
        }
        if let Some(c) = not_point {
            push("public key not on the curve".into(), c, good, msg);
        }

        // A prime-order key with known secret.
        let a = scalar(b"edge/a");
        let a_pt = EdwardsPoint::mul_base(&a);
        let a_enc = a_pt.compress().to_bytes();
        let r = scalar(b"edge/r");
        let r_enc = EdwardsPoint::mul_base(&r).compress().to_bytes();
        push("raw valid signature".into(), a_enc, sign_raw(a, &a_enc, r, &r_enc, msg), msg);

        let small = small_order_encodings();
        let identity = EdwardsPoint::default().compress().to_bytes();
        for (i, t) in small.iter().enumerate() {
            // Small-order R with S = k a: [S]B - [k]A = 0, so the RFC 8032
            // equation holds for the identity (any encoding the platform
            // decodes); verify_strict rejects every one.
            push(
                format!("small-order R #{i} {}", hex::encode(t)),
                a_enc,
                sign_raw(a, &a_enc, Scalar::ZERO, t, msg),
                msg,
            );
            // Small-order A with R = identity, S = 0: valid for many messages
            // under RFC 8032 without the small-order rule.
            push(format!("small-order A #{i}, R = identity, S = 0"), *t, sig(identity, [0; 32]), msg);
            for (j, u) in small.iter().enumerate().take(8) {
                push(format!("small-order A #{i}, small-order R #{j}, S = 0"), *t, sig(*u, [0; 32]), msg);
            }
            // Small-order A with an ordinary R and S = r.
            push(format!("small-order A #{i}, R = rB, S = r"), *t, sig(r_enc, r.to_bytes()), msg);
        }

        // Non-canonical A encodings of large-order points.
        for (i, c) in non_canonical_large_order_encodings().iter().enumerate() {
            push(format!("non-canonical A #{i} {}", hex::encode(c)), *c, sig(r_enc, r.to_bytes()), msg);
            push(format!("non-canonical A #{i}, R = identity, S = 0"), *c, sig(identity, [0; 32]), msg);
        }
        // Non-canonical R: y >= p for points of large order.
        for (i, c) in non_canonical_large_order_encodings().iter().enumerate() {
            push(format!("non-canonical R #{i}"), a_enc, sign_raw(a, &a_enc, r, c, msg), msg);
        }
        // Non-canonical R encoding of a real nonce point: y + p where y < 19
        // is infeasible, so also try an R that is not a point at all.
        for i in 0..=255u8 {
            let mut c = [i; 32];
            c[0] = 3;
            c[31] &= 0x7f;
            if CompressedEdwardsY(c).decompress().is_none() {
                push("R not on the curve".into(), a_enc, sign_raw(a, &a_enc, r, &c, msg), msg);
                break;
            }
        }

        // Mixed-order keys A = aB + T (T of order 8). With k = 0 mod 8 the
        // cofactorless equation holds (both accept); otherwise only the
        // cofactored one does (both must reject).
        let t8 = EIGHT_TORSION[1];
        let mixed = a_pt + t8;
        let mixed_enc = mixed.compress().to_bytes();
        let (mut zero_mod_8, mut nonzero_mod_8) = (false, false);
        for n in 0..200u32 {
            let m = format!("mixed-order key message {n}").into_bytes();
            let kk = k(&r_enc, &mixed_enc, &m);
            let divisible = kk.to_bytes()[0].is_multiple_of(8);
            if divisible && !zero_mod_8 {
                zero_mod_8 = true;
                push(
                    "mixed-order A, k = 0 mod 8 (cofactorless-valid)".into(),
                    mixed_enc,
                    sign_raw(a, &mixed_enc, r, &r_enc, &m),
                    &m,
                );
            } else if !divisible && !nonzero_mod_8 {
                nonzero_mod_8 = true;
                push(
                    "mixed-order A, k != 0 mod 8 (cofactored-only)".into(),
                    mixed_enc,
                    sign_raw(a, &mixed_enc, r, &r_enc, &m),
                    &m,
                );
            }
            if zero_mod_8 && nonzero_mod_8 {
                break;
            }
        }
        // Mixed-order R with a mixed-order A: R = rB + T', valid without the
        // cofactor when T' = -[k]T.
        for n in 0..400u32 {
            let m = format!("mixed-order R message {n}").into_bytes();
            let r_mixed = EdwardsPoint::mul_base(&r) + EIGHT_TORSION[3];
            let r_mixed_enc = r_mixed.compress().to_bytes();
            let kk = k(&r_mixed_enc, &mixed_enc, &m);
            // [S]B - [k]A = rB - [k]T; equal to R iff -[k]T == EIGHT_TORSION[3].
            if -(t8 * kk) == EIGHT_TORSION[3] {
                push(
                    "mixed-order A and R (cofactorless-valid)".into(),
                    mixed_enc,
                    sign_raw(a, &mixed_enc, r, &r_mixed_enc, &m),
                    &m,
                );
                break;
            }
        }
        // Prime-order A, mixed-order R = rB + T, S = r + k a: cofactored-only.
        let r_mixed_enc = (EdwardsPoint::mul_base(&r) + t8).compress().to_bytes();
        push(
            "mixed-order R, prime-order A (cofactored-only)".into(),
            a_enc,
            sign_raw(a, &a_enc, r, &r_mixed_enc, msg),
            msg,
        );
        // Sanity: the base point is not a key anyone should use, but its
        // signatures are ordinary.
        let b_enc = ED25519_BASEPOINT_POINT.compress().to_bytes();
        push("A = B".into(), b_enc, sign_raw(Scalar::ONE, &b_enc, r, &r_enc, msg), msg);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::vectors::{self, EdgeVector};
    use super::*;
    use curve25519_dalek::edwards::EdwardsPoint;
    use sha2::{Digest, Sha512};

    /// A plain RFC 8032 cofactorless verifier (no small-order or canonicity
    /// rules), modelling what a platform Ed25519 does for `Strict` keys.
    fn rfc8032_cofactorless(a: &[u8; 32], sig: &[u8; 64], msg: &[u8]) -> bool {
        let Some(a_pt) = CompressedEdwardsY(*a).decompress() else { return false };
        let mut s = [0u8; 32];
        s.copy_from_slice(&sig[32..]);
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)) else { return false };
        let h = Sha512::new().chain_update(&sig[..32]).chain_update(a).chain_update(msg).finalize();
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&h);
        let k = Scalar::from_bytes_mod_order_wide(&wide);
        let r = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-a_pt, &s);
        r.compress().to_bytes() == sig[..32]
    }

    fn strict_via_platform(v: &EdgeVector) -> Result<(), IdentityError> {
        match route(classify_key(&v.key), &v.sig) {
            Route::Done(r) => r,
            Route::Dalek => dalek_verify_strict(&v.key, &v.sig, &v.msg),
            Route::Platform => {
                if rfc8032_cofactorless(&v.key, &v.sig, &v.msg) {
                    Ok(())
                } else {
                    Err(IdentityError::VerifyFailed)
                }
            }
        }
    }

    #[test]
    fn l_bytes_are_the_group_order() {
        assert!(!s_is_canonical(&L_BYTES));
        let mut l_minus_1 = L_BYTES;
        l_minus_1[0] -= 1;
        assert!(s_is_canonical(&l_minus_1));
        assert_eq!(Scalar::from_bytes_mod_order(L_BYTES), Scalar::ZERO);
    }

    #[test]
    fn there_are_fourteen_small_order_encodings() {
        // 8 canonical, plus y = p and y = p + 1 with either sign, plus the
        // "negative zero" x for y = 1 and y = -1.
        let all = vectors::small_order_encodings();
        assert_eq!(all.len(), 14, "{:?}", all.iter().map(hex::encode).collect::<Vec<_>>());
        assert_eq!(small_order_ys().len(), 5);
    }

    #[test]
    fn signature_precheck_matches_the_decompressing_reference() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key().to_bytes();
        let mut rs: Vec<[u8; 32]> = vectors::small_order_encodings();
        rs.extend(vectors::non_canonical_large_order_encodings());
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..2000 {
            let mut r = [0u8; 32];
            for b in r.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            rs.push(r);
        }
        for r in rs {
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r);
            sig[32] = 1;
            let reference = reference_precheck(&key, &sig);
            let fast = signature_precheck(&sig);
            // The reference lets a non-canonical R through (the byte equality
            // rejects it later); the byte check rejects it at once. The byte
            // check lets an R that is not a point through (no point encodes to
            // it, so the equation rejects it later). Otherwise they are equal.
            if !y_is_canonical(&r) {
                assert_eq!(fast, Err(IdentityError::VerifyFailed));
            } else if CompressedEdwardsY(r).decompress().is_none() {
                assert_eq!(reference, Err(IdentityError::VerifyFailed));
            } else {
                assert_eq!(fast, reference, "R = {}", hex::encode(r));
            }
        }
    }

    #[test]
    fn key_classes() {
        let honest = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key().to_bytes();
        assert_eq!(classify_key(&honest), KeyClass::Strict);
        for t in vectors::small_order_encodings() {
            assert_eq!(classify_key(&t), KeyClass::SmallOrder, "{}", hex::encode(t));
        }
        for c in vectors::non_canonical_large_order_encodings() {
            assert_eq!(classify_key(&c), KeyClass::DalekOnly);
        }
        let mixed = (EdwardsPoint::mul_base(&Scalar::from(5u8)) + EIGHT_TORSION[2]).compress().to_bytes();
        assert_eq!(classify_key(&mixed), KeyClass::DalekOnly);
    }

    #[test]
    fn precheck_plus_cofactorless_agrees_with_verify_strict_on_every_edge_vector() {
        let all = vectors::all();
        assert!(all.len() > 150);
        let names: Vec<&str> = all.iter().map(|v| v.name.as_str()).collect();
        for wanted in [
            "mixed-order A, k = 0 mod 8 (cofactorless-valid)",
            "mixed-order A, k != 0 mod 8 (cofactored-only)",
            "mixed-order A and R (cofactorless-valid)",
            "public key not on the curve",
        ] {
            assert!(names.contains(&wanted), "missing vector {wanted}");
        }
        let mut accepted = 0;
        let mut platform_would_differ = 0;
        for v in &all {
            let strict = dalek_verify_strict(&v.key, &v.sig, &v.msg);
            assert_eq!(strict_via_platform(v), strict, "vector {}", v.name);
            accepted += strict.is_ok() as usize;
            // Without the pre-checks a plain RFC 8032 verifier would split the
            // network on some of these vectors.
            if rfc8032_cofactorless(&v.key, &v.sig, &v.msg) != strict.is_ok() {
                platform_would_differ += 1;
            }
        }
        assert!(accepted >= 5, "accepted {accepted}");
        assert!(platform_would_differ > 0);
        // The cases both must accept.
        for name in ["valid", "raw valid signature", "mixed-order A, k = 0 mod 8 (cofactorless-valid)"] {
            let v = all.iter().find(|v| v.name == name).unwrap();
            assert_eq!(dalek_verify_strict(&v.key, &v.sig, &v.msg), Ok(()), "{name}");
        }
    }
}
