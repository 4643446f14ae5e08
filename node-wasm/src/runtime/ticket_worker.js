// Admission ticket search (runtime/ticket.rs, rule admission_ticket): finds
// a nonce such that SHA-256("synapse-ng/admission/v1" ‖ genesis ‖ node id ‖
// nonce as u64 LE) starts with `bits` zero bits. Plain JS, no wasm; the page
// checks every answer with the Rust ticket_valid before using it.
//
// The message is always 95 bytes, so the hash is two blocks: the first (the
// domain, the genesis hash and 9 bytes of the node id) is the same for every
// nonce and is compressed once (the midstate). In the second block only
// words 5-7 hold nonce bytes: rounds 0-4 and schedule words 16-19 are
// computed once too, and each try runs rounds 5-63 and schedule words 20-63.
//
// In:  {mode: "search", prefix: Uint8Array(87), bits, lo, hi, stride, count}
//        tries nonces (hi, lo), (hi, lo + 1), …; when lo wraps, hi += stride.
//        count: most tries (0: no limit).
//      {mode: "hash", prefix, lo, hi}: the digest of one nonce (self-test).
// Out: {type: "progress", tried} about every 250 ms,
//      {type: "found", lo, hi, tried}, {type: "done", tried} (count reached),
//      {type: "hash", words: [8 × u32]}, {type: "error", message}.
"use strict";
const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

// Compresses one 16-word block into state s (8 words), in place.
function compress(s, block) {
  const w = new Int32Array(64);
  w.set(block);
  for (let t = 16; t < 64; t++) {
    const x = w[t - 15], y = w[t - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[t] = (s1 + w[t - 7] + s0 + w[t - 16]) | 0;
  }
  let [a, b, c, d, e, f, g, h] = s;
  for (let t = 0; t < 64; t++) {
    const t1 = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
      ((e & f) ^ (~e & g)) + K[t] + w[t]) | 0;
    const t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
      ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
  }
  s[0] = (s[0] + a) | 0; s[1] = (s[1] + b) | 0; s[2] = (s[2] + c) | 0; s[3] = (s[3] + d) | 0;
  s[4] = (s[4] + e) | 0; s[5] = (s[5] + f) | 0; s[6] = (s[6] + g) | 0; s[7] = (s[7] + h) | 0;
}

function word(p, i) {
  return (p[i] << 24) | (p[i + 1] << 16) | (p[i + 2] << 8) | p[i + 3];
}

// Everything that does not depend on the nonce.
function prepare(prefix) {
  if (!(prefix instanceof Uint8Array) || prefix.length !== 87) throw new Error("prefix must be 87 bytes");
  const block1 = new Int32Array(16);
  for (let i = 0; i < 16; i++) block1[i] = word(prefix, 4 * i);
  const mid = Int32Array.from(IV);
  compress(mid, block1);
  // Block 2: prefix[64..87] (23 bytes), 8 nonce bytes, 0x80, zeros, the
  // length in bits (95 * 8 = 760) in the last word.
  const w = new Int32Array(64);
  for (let i = 0; i < 5; i++) w[i] = word(prefix, 64 + 4 * i);
  const w5hi = (prefix[84] << 24) | (prefix[85] << 16) | (prefix[86] << 8);
  w[15] = 760;
  for (let t = 16; t < 20; t++) {
    const x = w[t - 15], y = w[t - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[t] = (s1 + w[t - 7] + s0 + w[t - 16]) | 0;
  }
  // Rounds 0-4 (words 0-4 are fixed).
  let [a, b, c, d, e, f, g, h] = mid;
  for (let t = 0; t < 5; t++) {
    const t1 = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
      ((e & f) ^ (~e & g)) + K[t] + w[t]) | 0;
    const t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
      ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
  }
  return { mid, w, w5hi, r5: Int32Array.of(a, b, c, d, e, f, g, h) };
}

// Hashes nonce (hi, lo) with the prepared constants into out (8 words of
// the final state, before adding the midstate for words 2-7 is skipped when
// `full` is false: only words 0 and 1 are then meaningful).
function tryNonce(p, lo, hi, out, full) {
  const w = p.w, r5 = p.r5;
  w[5] = p.w5hi | (lo & 0xff);
  w[6] = ((lo >>> 8) & 0xff) << 24 | ((lo >>> 16) & 0xff) << 16 | (lo >>> 24) << 8 | (hi & 0xff);
  w[7] = ((hi >>> 8) & 0xff) << 24 | ((hi >>> 16) & 0xff) << 16 | (hi >>> 24) << 8 | 0x80;
  for (let t = 20; t < 64; t++) {
    const x = w[t - 15], y = w[t - 2];
    w[t] = ((((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10)) + w[t - 7] +
      (((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) + w[t - 16]) | 0;
  }
  let a = r5[0], b = r5[1], c = r5[2], d = r5[3], e = r5[4], f = r5[5], g = r5[6], h = r5[7];
  for (let t = 5; t < 64; t++) {
    const t1 = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
      ((e & f) ^ (~e & g)) + K[t] + w[t]) | 0;
    const t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
      ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
  }
  const m = p.mid;
  out[0] = (m[0] + a) | 0;
  out[1] = (m[1] + b) | 0;
  if (full) {
    out[2] = (m[2] + c) | 0; out[3] = (m[3] + d) | 0; out[4] = (m[4] + e) | 0;
    out[5] = (m[5] + f) | 0; out[6] = (m[6] + g) | 0; out[7] = (m[7] + h) | 0;
  }
}

function enough(h, bits) {
  if (bits <= 32) return Math.clz32(h[0]) >= bits;
  return h[0] === 0 && Math.clz32(h[1]) >= bits - 32;
}

function search(p, bits, lo, hi, stride, count) {
  const out = new Int32Array(8);
  let tried = 0;
  let last = performance.now();
  for (;;) {
    // A batch of 4096 tries between clock reads.
    for (let i = 0; i < 4096; i++) {
      tryNonce(p, lo, hi, out, false);
      tried++;
      if (enough(out, bits)) {
        postMessage({ type: "found", lo: lo >>> 0, hi: hi >>> 0, tried });
        return;
      }
      lo = (lo + 1) >>> 0;
      if (lo === 0) hi = (hi + stride) >>> 0;
      if (count > 0 && tried >= count) {
        postMessage({ type: "done", tried });
        return;
      }
    }
    const now = performance.now();
    if (now - last >= 250) {
      last = now;
      postMessage({ type: "progress", tried });
    }
  }
}

onmessage = (e) => {
  try {
    const m = e.data;
    const p = prepare(m.prefix);
    const lo = m.lo >>> 0, hi = m.hi >>> 0;
    if (m.mode === "hash") {
      const out = new Int32Array(8);
      tryNonce(p, lo, hi, out, true);
      postMessage({ type: "hash", words: Array.from(out, (x) => x >>> 0) });
      return;
    }
    search(p, m.bits | 0, lo, hi, Math.max(1, m.stride >>> 0), Math.max(0, Number(m.count) || 0));
  } catch (err) {
    postMessage({ type: "error", message: String(err && err.message || err) });
  }
};
