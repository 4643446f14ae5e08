// Ed25519 verification with WebCrypto in a worker (runtime/webcrypto.rs).
// Chromium runs crypto.subtle.verify on the calling thread, so workers let
// several cores verify. The page has already applied the strict pre-checks;
// this only answers "does WebCrypto accept it": 1 yes, 0 no, 2 error.
const keys = new Map();
onmessage = async (e) => {
  const { id, keyBytes, keyIdx, sigs, msgs, offs } = e.data;
  const n = keyIdx.length;
  const out = new Uint8Array(n).fill(2);
  try {
    if (keys.size > 4096) keys.clear();
    const nk = keyBytes.length / 32;
    const imported = [];
    for (let k = 0; k < nk; k++) {
      const raw = keyBytes.subarray(32 * k, 32 * k + 32);
      const name = raw.join(",");
      let p = keys.get(name);
      if (!p) {
        p = crypto.subtle.importKey("raw", raw.slice(), { name: "Ed25519" }, false, ["verify"]).catch(() => null);
        keys.set(name, p);
      }
      imported.push(p);
    }
    const ks = await Promise.all(imported);
    const jobs = [];
    for (let i = 0; i < n; i++) {
      const key = ks[keyIdx[i]];
      if (!key) continue;
      jobs.push(
        crypto.subtle
          .verify("Ed25519", key, sigs.subarray(64 * i, 64 * i + 64), msgs.subarray(offs[i], offs[i + 1]))
          .then((ok) => { out[i] = ok ? 1 : 0; }, () => { out[i] = 2; })
      );
    }
    await Promise.all(jobs);
  } catch (_) {
    // Unanswered entries stay 2: the page verifies them itself.
  }
  postMessage({ id, out }, [out.buffer]);
};
