//! Pure (sans-IO) parts of the browser node's persistence, kept outside
//! `runtime` so they are unit-tested natively:
//!
//! - the **identity file** (`exportIdentity` / `importIdentity`): a versioned
//!   JSON document holding a node's secret keys, parsed as hostile input;
//! - the **storage problem** sentences: how an IndexedDB failure (private
//!   mode, quota, aborted transaction, version clash) is explained to a user.
//!
//! IndexedDB itself is driven by `runtime::store` (wasm32 only).

use crate::identity::{Identity, NodeId, SECRET_LEN};
use serde::{Deserialize, Serialize};
use std::fmt;

/// `format` of an identity file.
pub const IDENTITY_FILE_FORMAT: &str = "synapse-ng-identity";
/// The only identity file version this node writes and reads.
pub const IDENTITY_FILE_VERSION: u64 = 1;
/// An identity file is a few hundred bytes; anything far larger is not one,
/// and is refused before parsing so a hostile file cannot cost memory.
pub const MAX_IDENTITY_FILE_BYTES: usize = 16 * 1024;
/// Shown inside the file itself, so whoever opens it learns what it is.
pub const IDENTITY_FILE_WARNING: &str = "This file holds the SECRET keys of a Synapse-NG node. Anyone who has it \
     can sign as this node and spend its Synapse Points. Keep it private; never share or upload it.";

/// How far the node's own op chain had gone when the file was exported.
/// After an import the node must not sign before its chain here reaches
/// `seq`: signing seq `k <= seq` again would be equivocation, which the
/// network punishes by excluding the node's later ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainHead {
    pub seq: u64,
    /// Hex id of the op at `seq` (informational: lets a reader compare).
    pub op: crate::core::op::OpId,
}

/// The identity file as written (all key material in lowercase hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    format: String,
    version: u64,
    warning: String,
    /// The Ed25519 public key: must match `ed25519_secret`.
    node_id: String,
    /// The 32-byte Ed25519 seed.
    ed25519_secret: String,
    /// The 32-byte X25519 secret (tool secrets are sealed to its public key).
    x25519_secret: String,
    /// Must match `x25519_secret`; checked so a corrupted key is caught here,
    /// not months later when a sealed secret fails to open.
    x25519_public: String,
    /// The profile it was exported from (informational).
    profile: String,
    /// Wall-clock ms of the export (informational).
    exported_at_ms: u64,
    /// The node's own op chain head at export time, if it had signed any op.
    chain_head: Option<ChainHead>,
}

/// A validated identity file.
pub struct ImportedIdentity {
    pub identity: Identity,
    pub chain_head: Option<ChainHead>,
    /// Profile the file was exported from (informational, not trusted).
    pub profile: String,
}

impl fmt::Debug for ImportedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImportedIdentity({:?}, chain {:?})", self.identity.node_id(), self.chain_head)
    }
}

/// Writes the identity file for `identity`.
pub fn encode_identity_file(
    identity: &Identity,
    profile: &str,
    exported_at_ms: u64,
    chain_head: Option<ChainHead>,
) -> String {
    let secret = identity.to_secret_bytes();
    let file = IdentityFile {
        format: IDENTITY_FILE_FORMAT.into(),
        version: IDENTITY_FILE_VERSION,
        warning: IDENTITY_FILE_WARNING.into(),
        node_id: identity.node_id().to_text(),
        ed25519_secret: hex::encode(&secret[..32]),
        x25519_secret: hex::encode(&secret[32..]),
        x25519_public: hex::encode(identity.x25519_public()),
        profile: profile.into(),
        exported_at_ms,
        chain_head,
    };
    // Serialising plain strings and integers cannot fail.
    serde_json::to_string_pretty(&file).unwrap_or_default()
}

/// 32 bytes from exactly 64 hex characters, or a sentence naming the field.
fn key32(field: &str, text: &str) -> Result<[u8; 32], String> {
    if text.len() != 64 {
        return Err(format!(
            "identity file: {field} must be 64 hex characters (32 bytes), found {} characters",
            text.chars().count()
        ));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)
        .map_err(|_| format!("identity file: {field} is not hexadecimal (only 0-9 and a-f are allowed)"))?;
    Ok(out)
}

/// Parses and validates an identity file. Everything is checked before
/// anything is trusted: size, JSON shape (no unknown fields), format and
/// version, the length and encoding of every key, and that both public keys
/// are the ones the secrets produce. Errors are sentences for the user.
pub fn parse_identity_file(text: &str) -> Result<ImportedIdentity, String> {
    if text.len() > MAX_IDENTITY_FILE_BYTES {
        return Err(format!(
            "not a Synapse-NG identity file: it is {} bytes, an identity file is under {} bytes",
            text.len(),
            MAX_IDENTITY_FILE_BYTES
        ));
    }
    // Format and version first, so a file from another program or a newer
    // version gets that explanation rather than a complaint about a field.
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("not a Synapse-NG identity file: it is not valid JSON ({e})"))?;
    let obj = value.as_object().ok_or("not a Synapse-NG identity file: it is not a JSON object")?;
    if obj.get("format").and_then(|f| f.as_str()) != Some(IDENTITY_FILE_FORMAT) {
        return Err(format!("not a Synapse-NG identity file: \"format\" must be \"{IDENTITY_FILE_FORMAT}\""));
    }
    match obj.get("version").and_then(|v| v.as_u64()) {
        Some(IDENTITY_FILE_VERSION) => {}
        Some(v) if v > IDENTITY_FILE_VERSION => {
            return Err(format!(
                "identity file version {v} was written by a newer Synapse-NG; this node reads version \
                 {IDENTITY_FILE_VERSION} only"
            ));
        }
        _ => return Err(format!("identity file: \"version\" must be {IDENTITY_FILE_VERSION}")),
    }
    let file: IdentityFile =
        serde_json::from_value(value).map_err(|e| format!("identity file is malformed or was edited: {e}"))?;
    let ed = key32("ed25519_secret", &file.ed25519_secret)?;
    let x = key32("x25519_secret", &file.x25519_secret)?;
    let claimed_id = key32("node_id", &file.node_id)?;
    let claimed_x = key32("x25519_public", &file.x25519_public)?;
    if x == [0; 32] {
        return Err("identity file: x25519_secret is all zeros; the file is corrupted".into());
    }
    let mut secret = [0u8; SECRET_LEN];
    secret[..32].copy_from_slice(&ed);
    secret[32..].copy_from_slice(&x);
    let identity = Identity::from_secret_bytes(&secret).map_err(|e| format!("identity file: {e}"))?;
    if identity.node_id() != NodeId(claimed_id) {
        return Err(format!(
            "identity file: node_id {}… does not match its Ed25519 secret key (which gives node {}…); the file is \
             corrupted or was edited",
            hex::encode(&claimed_id[..4]),
            identity.node_id().short()
        ));
    }
    if identity.x25519_public() != claimed_x {
        return Err("identity file: x25519_public does not match its X25519 secret key; the file is corrupted or \
                    was edited"
            .into());
    }
    if let Some(h) = &file.chain_head
        && h.seq == 0
    {
        return Err("identity file: chain_head.seq must be at least 1".into());
    }
    Ok(ImportedIdentity { identity, chain_head: file.chain_head, profile: file.profile })
}

/// What went wrong with browser storage, by cause. Each maps to one
/// sentence saying what it means for the user's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageProblem {
    /// IndexedDB refused to open (private mode, disabled by policy, blocked
    /// by another tab, a newer database version).
    Unavailable,
    /// The origin's storage quota is used up.
    Full,
    /// A write transaction was aborted or failed for another reason.
    WriteFailed,
    /// Stored data could not be read back.
    ReadFailed,
}

/// Classifies a raw IndexedDB error text (DOMException name and message as
/// `js_err` gives them) for an operation that `writing` or not.
pub fn classify_storage_error(raw: &str, writing: bool) -> StorageProblem {
    let l = raw.to_ascii_lowercase();
    if l.contains("quota") || l.contains("disk is full") || l.contains("no space") {
        StorageProblem::Full
    } else if l.contains("open indexeddb")
        || l.contains("indexeddb is not available")
        || l.contains("versionerror")
        || l.contains("less than the existing version")
        || l.contains("security")
        || l.contains("not allowed")
        || l.contains("blocked")
    {
        StorageProblem::Unavailable
    } else if writing {
        StorageProblem::WriteFailed
    } else {
        StorageProblem::ReadFailed
    }
}

/// The user-facing sentence for a storage problem, with the browser's own
/// words appended for whoever debugs it.
pub fn storage_sentence(problem: StorageProblem, raw: &str) -> String {
    let what = match problem {
        StorageProblem::Unavailable => {
            "Browser storage (IndexedDB) cannot be opened (private mode, a storage policy, or a newer version of \
             this page in another tab): new operations are kept in memory only and will be lost when the tab closes"
        }
        StorageProblem::Full => {
            "Storage is full: new operations are kept in memory only and will be lost when the tab closes; free \
             space or allow this site more storage"
        }
        StorageProblem::WriteFailed => {
            "Saving to browser storage failed: new operations are kept in memory only and will be lost when the \
             tab closes"
        }
        StorageProblem::ReadFailed => {
            "Reading browser storage failed: the operations saved earlier could not be loaded; this node \
             re-fetches them from peers"
        }
    };
    format!("{what}. (Browser error: {raw})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::op::OpId;

    fn sample() -> (Identity, String) {
        let id = Identity::from_seed([9; 32]);
        let head = ChainHead { seq: 7, op: OpId([3; 32]) };
        let text = encode_identity_file(&id, "alice", 1_700_000_000_000, Some(head));
        (id, text)
    }

    /// Rewrites one field of a valid file.
    fn with(text: &str, key: &str, v: serde_json::Value) -> String {
        let mut j: serde_json::Value = serde_json::from_str(text).unwrap();
        j[key] = v;
        j.to_string()
    }

    #[test]
    fn round_trip_keeps_keys_and_chain_head() {
        let (id, text) = sample();
        assert!(text.contains("SECRET"), "the file warns about itself");
        let back = parse_identity_file(&text).unwrap();
        assert_eq!(back.identity.node_id(), id.node_id());
        assert_eq!(back.identity.to_secret_bytes(), id.to_secret_bytes());
        assert_eq!(back.identity.x25519_public(), id.x25519_public());
        assert_eq!(back.chain_head, Some(ChainHead { seq: 7, op: OpId([3; 32]) }));
        assert_eq!(back.profile, "alice");
        let none = encode_identity_file(&id, "p", 0, None);
        assert_eq!(parse_identity_file(&none).unwrap().chain_head, None);
    }

    #[test]
    fn refuses_what_is_not_an_identity_file() {
        for (text, want) in [
            ("", "not valid JSON"),
            ("garbage", "not valid JSON"),
            ("[1,2]", "not a JSON object"),
            ("{}", "\"format\" must be"),
            (r#"{"format":"other"}"#, "\"format\" must be"),
            (r#"{"format":"synapse-ng-identity"}"#, "\"version\" must be 1"),
            (r#"{"format":"synapse-ng-identity","version":"1"}"#, "\"version\" must be 1"),
            (r#"{"format":"synapse-ng-identity","version":2}"#, "newer Synapse-NG"),
            (r#"{"format":"synapse-ng-identity","version":1}"#, "malformed or was edited"),
        ] {
            let e = parse_identity_file(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let huge = format!("{{\"format\":\"{}\"}}", "x".repeat(MAX_IDENTITY_FILE_BYTES));
        assert!(parse_identity_file(&huge).unwrap_err().contains("bytes"));
    }

    #[test]
    fn refuses_bad_keys_with_the_field_named() {
        let (_, text) = sample();
        let cases = [
            ("ed25519_secret", serde_json::json!("abcd"), "ed25519_secret must be 64 hex characters"),
            ("x25519_secret", serde_json::json!("zz".repeat(32)), "x25519_secret is not hexadecimal"),
            ("x25519_secret", serde_json::json!("00".repeat(32)), "all zeros"),
            ("node_id", serde_json::json!("ab".repeat(33)), "node_id must be 64 hex characters"),
            ("node_id", serde_json::json!(5), "malformed"),
            ("extra", serde_json::json!(1), "unknown field"),
        ];
        for (k, v, want) in cases {
            let e = parse_identity_file(&with(&text, k, v)).unwrap_err();
            assert!(e.contains(want), "{k}: {e}");
        }
        // Multi-byte characters of the right byte length are not hex either.
        let e = parse_identity_file(&with(&text, "node_id", serde_json::json!("é".repeat(32)))).unwrap_err();
        assert!(e.contains("node_id is not hexadecimal"), "{e}");
    }

    #[test]
    fn refuses_a_public_key_that_does_not_match_the_secret() {
        let (_, text) = sample();
        let other = Identity::from_seed([10; 32]);
        let e = parse_identity_file(&with(&text, "node_id", serde_json::json!(other.node_id().to_text()))).unwrap_err();
        assert!(e.contains("does not match its Ed25519 secret key"), "{e}");
        let e =
            parse_identity_file(&with(&text, "x25519_public", serde_json::json!(hex::encode(other.x25519_public()))))
                .unwrap_err();
        assert!(e.contains("x25519_public does not match"), "{e}");
        // A flipped secret bit is caught by the same check.
        let j: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut sk = j["ed25519_secret"].as_str().unwrap().to_string();
        let flipped = if sk.starts_with('0') { "1" } else { "0" };
        sk.replace_range(0..1, flipped);
        let e = parse_identity_file(&with(&text, "ed25519_secret", serde_json::json!(sk))).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let e = parse_identity_file(&with(&text, "chain_head", serde_json::json!({"seq": 0, "op": "00".repeat(32)})))
            .unwrap_err();
        assert!(e.contains("chain_head.seq"), "{e}");
    }

    #[test]
    fn storage_errors_become_sentences_by_cause() {
        let c = classify_storage_error;
        assert_eq!(c("QuotaExceededError: The quota has been exceeded.", true), StorageProblem::Full);
        assert_eq!(
            c("open IndexedDB: VersionError: The requested version (2) is less than the existing version (99).", false),
            StorageProblem::Unavailable
        );
        assert_eq!(c("IndexedDB is not available", false), StorageProblem::Unavailable);
        assert_eq!(c("SecurityError: access denied", false), StorageProblem::Unavailable);
        assert_eq!(c("AbortError: transaction aborted", true), StorageProblem::WriteFailed);
        assert_eq!(c("UnknownError", false), StorageProblem::ReadFailed);
        let s = storage_sentence(StorageProblem::Full, "QuotaExceededError");
        assert!(s.starts_with("Storage is full: new operations are kept in memory only"), "{s}");
        assert!(s.ends_with("(Browser error: QuotaExceededError)"), "{s}");
    }
}
