//! Shamir secret sharing of a 32-byte key over GF(2^8), byte by byte: a
//! common tool's data key is split among its custodians so that any
//! `threshold` of them can hand it to a task's assignee and fewer learn
//! nothing about it (rule `tool_custody`).
//!
//! Share `i` (x = i + 1, never 0) of byte `j` is `f_j(x)`, where `f_j` is a
//! polynomial of degree `threshold − 1` with `f_j(0)` = the secret byte and
//! the other coefficients random (injected, so callers stay deterministic
//! in tests). Combining is Lagrange interpolation at 0. With one share of
//! threshold 1 the share is the secret itself.

/// Multiplication in GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let carry = a & 0x80;
        a <<= 1;
        if carry != 0 {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    p
}

/// The inverse in GF(2^8) (`a^254`); 0 has none and maps to 0.
fn inv(a: u8) -> u8 {
    let mut r = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e != 0 {
        if e & 1 != 0 {
            r = mul(r, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    r
}

/// The threshold for `n` custodians: a majority, `floor(n/2) + 1`.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// Splits `secret` into `n` shares (x = 1..=n), any `threshold` of which
/// recover it. `random` fills the coefficients. `None` when `threshold` is
/// 0, above `n`, or `n` above 255.
pub fn split(
    secret: &[u8; 32],
    n: usize,
    threshold: usize,
    mut random: impl FnMut(&mut [u8]),
) -> Option<Vec<[u8; 32]>> {
    if threshold == 0 || threshold > n || n > 255 {
        return None;
    }
    // coeffs[c][j]: coefficient of x^c for byte j; coeffs[0] is the secret.
    let mut coeffs = vec![*secret];
    for _ in 1..threshold {
        let mut c = [0u8; 32];
        random(&mut c);
        coeffs.push(c);
    }
    let shares = (1..=n as u8)
        .map(|x| {
            let mut y = [0u8; 32];
            for (j, out) in y.iter_mut().enumerate() {
                // Horner: ((c_{k-1} x + c_{k-2}) x + …) x + c_0.
                let mut acc = 0u8;
                for c in coeffs.iter().rev() {
                    acc = mul(acc, x) ^ c[j];
                }
                *out = acc;
            }
            y
        })
        .collect();
    Some(shares)
}

/// Recovers the secret from shares `(x, y)` with distinct non-zero `x`
/// (as many as the threshold; more are fine). `None` for a repeated or zero
/// `x`, or no share at all.
pub fn combine(shares: &[(u8, [u8; 32])]) -> Option<[u8; 32]> {
    if shares.is_empty() {
        return None;
    }
    for (i, (xi, _)) in shares.iter().enumerate() {
        if *xi == 0 || shares[..i].iter().any(|(xj, _)| xj == xi) {
            return None;
        }
    }
    let mut secret = [0u8; 32];
    for (i, (xi, yi)) in shares.iter().enumerate() {
        // Lagrange basis at 0: Π_{j≠i} x_j / (x_j − x_i); minus is xor.
        let mut l = 1u8;
        for (j, (xj, _)) in shares.iter().enumerate() {
            if i != j {
                l = mul(l, mul(*xj, inv(*xj ^ *xi)));
            }
        }
        for (s, y) in secret.iter_mut().zip(yi) {
            *s ^= mul(l, *y);
        }
    }
    Some(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter_rng(seed: u8) -> impl FnMut(&mut [u8]) {
        let mut n = seed;
        move |b: &mut [u8]| {
            for x in b {
                n = n.wrapping_mul(31).wrapping_add(7);
                *x = n;
            }
        }
    }

    #[test]
    fn gf256_inverse_is_an_inverse() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "{a}");
        }
    }

    #[test]
    fn any_threshold_shares_recover_the_secret_and_fewer_do_not() {
        let secret = [0x5a; 32];
        for (n, k) in [(1, 1), (2, 2), (3, 2), (5, 3), (7, 4)] {
            let shares = split(&secret, n, k, counter_rng(n as u8)).unwrap();
            let pts: Vec<(u8, [u8; 32])> = shares.iter().enumerate().map(|(i, s)| (i as u8 + 1, *s)).collect();
            // Every window of k consecutive shares recovers it.
            for start in 0..=n - k {
                assert_eq!(combine(&pts[start..start + k]), Some(secret), "n {n} k {k}");
            }
            assert_eq!(combine(&pts), Some(secret), "all shares");
            if k > 1 {
                assert_ne!(combine(&pts[..k - 1]), Some(secret), "k - 1 shares of n {n} k {k}");
            }
        }
    }

    #[test]
    fn one_share_below_the_threshold_says_nothing_about_the_secret() {
        // With k = 2, share 1 is secret ⊕ a·1 for a random a: for a fixed
        // share value every secret is possible (one coefficient each).
        let s1 = split(&[1; 32], 3, 2, counter_rng(9)).unwrap()[0];
        let s2 = split(&[2; 32], 3, 2, counter_rng(9)).unwrap()[0];
        assert_ne!(s1, [1; 32]);
        assert_ne!(s1, s2, "a share depends on the secret and the randomness, never shows it");
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(split(&[0; 32], 3, 0, counter_rng(1)).is_none());
        assert!(split(&[0; 32], 3, 4, counter_rng(1)).is_none());
        assert!(combine(&[]).is_none());
        assert!(combine(&[(1, [0; 32]), (1, [1; 32])]).is_none());
        assert!(combine(&[(0, [0; 32])]).is_none());
    }
}
