//! What this node knows about its ICE servers, and the sentence it shows
//! when they cannot work (rule `ice_error_sentence`).
//!
//! A TURN server that refuses the credentials (wrong shared secret, or a
//! TURN REST username whose expiry has passed) makes every connection that
//! needs a relay fail silently: the browser only fires
//! `icecandidateerror` on the peer connection. Between two homes that is
//! the 14-22 % of connections that cannot go direct, so the user must be
//! told why, not left with "connecting" forever. Pure and native so the
//! wording and the bounds are tested without a browser.

use crate::signaling::IceServer;
use serde::Serialize;

/// Distinct errors remembered (by url and code); later ones only count.
pub const MAX_ICE_ERRORS: usize = 16;
/// ICE servers `setIceServers` accepts, and bytes per field.
pub const MAX_PAGE_ICE_SERVERS: usize = 8;
pub const MAX_ICE_FIELD: usize = 512;

/// Where the ICE servers in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IceSource {
    /// `?ice=` or `setIceServers`: the page's own choice wins.
    Page,
    /// Handed out by the rendezvous after login (with TURN credentials).
    Rendezvous,
    /// None at all: only host candidates (fine on one machine or LAN).
    None,
}

/// `iceTransportPolicy`: `relay` (`?relay=1`) uses TURN relays only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IcePolicy {
    All,
    Relay,
}

/// One `icecandidateerror`, folded by url and code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceError {
    pub url: String,
    pub code: u16,
    pub text: String,
    pub count: u32,
}

/// `status().ice`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceStatus {
    pub source: IceSource,
    pub policy: IcePolicy,
    /// The server URLs (never the credentials).
    pub servers: Vec<String>,
    pub errors: Vec<IceError>,
    /// Why connections through these servers cannot work, if they cannot.
    pub sentence: Option<String>,
}

impl IceStatus {
    pub fn new(source: IceSource, policy: IcePolicy, servers: &[IceServer]) -> IceStatus {
        let mut s = IceStatus { source, policy, servers: vec![], errors: vec![], sentence: None };
        s.set_servers(source, servers);
        s
    }

    /// New servers (renewed credentials, `setIceServers`): earlier errors
    /// were about the old ones, so they are forgotten.
    pub fn set_servers(&mut self, source: IceSource, servers: &[IceServer]) {
        self.source = if servers.is_empty() { IceSource::None } else { source };
        self.servers = servers.iter().flat_map(|s| s.urls.iter().cloned()).collect();
        self.errors.clear();
        self.sentence = self.base_sentence();
    }

    /// Records an `icecandidateerror` (`url` as the browser reports it,
    /// e.g. `turn:127.0.0.1:3478?transport=udp`).
    pub fn record_error(&mut self, url: &str, code: u16, text: &str) {
        let url: String = url.chars().take(MAX_ICE_FIELD).collect();
        let text: String = text.chars().take(MAX_ICE_FIELD).collect();
        if let Some(e) = self.errors.iter_mut().find(|e| e.url == url && e.code == code) {
            e.count = e.count.saturating_add(1);
            e.text = text;
        } else if self.errors.len() < MAX_ICE_ERRORS {
            self.errors.push(IceError { url, code, text, count: 1 });
        }
        self.sentence = self.error_sentence().or_else(|| self.base_sentence());
    }

    /// A relay-only node with no TURN server cannot connect to anyone.
    fn base_sentence(&self) -> Option<String> {
        let has_turn = self.servers.iter().any(|u| is_turn(u));
        (self.policy == IcePolicy::Relay && !has_turn).then(|| {
            "Relay-only mode is on but no TURN server is configured, so no connection can be made.".to_string()
        })
    }

    /// Rule `ice_error_sentence`: a TURN server refusing the credentials
    /// (401, 403, 437, 441) or unreachable (701 on a `turn:` URL) is a
    /// sentence; a STUN lookup failing (701 on `stun:`, common and harmless
    /// when another route works) and a stale nonce (438: the browser
    /// retries with the fresh nonce the server sent) are only counted.
    fn error_sentence(&self) -> Option<String> {
        let refused = self.errors.iter().find(|e| is_turn(&e.url) && matches!(e.code, 401 | 403 | 437 | 441));
        if let Some(e) = refused {
            return Some(format!(
                "The TURN server {} refused this node's credentials ({} {}): they are wrong or have \
                 expired, so connections that need a relay fail.",
                e.url,
                e.code,
                e.text.trim()
            ));
        }
        let unreachable = self.errors.iter().find(|e| is_turn(&e.url) && e.code == 701);
        unreachable.map(|e| {
            format!(
                "The TURN server {} cannot be reached ({}), so connections that need a relay fail.",
                e.url,
                e.text.trim()
            )
        })
    }
}

fn is_turn(url: &str) -> bool {
    url.starts_with("turn:") || url.starts_with("turns:")
}

/// Checks servers a page passes to `setIceServers`: at most 8, each with
/// 1-8 `stun:`/`stuns:`/`turn:`/`turns:` URLs, a TURN URL with both a
/// username and a credential, every field at most 512 bytes.
pub fn check_page_servers(servers: &[IceServer]) -> Result<(), String> {
    if servers.len() > MAX_PAGE_ICE_SERVERS {
        return Err(format!("at most {MAX_PAGE_ICE_SERVERS} ICE servers, got {}", servers.len()));
    }
    for s in servers {
        if s.urls.is_empty() || s.urls.len() > 8 {
            return Err("each ICE server needs 1 to 8 urls".into());
        }
        for u in &s.urls {
            if u.len() > MAX_ICE_FIELD {
                return Err(format!("ICE server url longer than {MAX_ICE_FIELD} bytes"));
            }
            let known = ["stun:", "stuns:", "turn:", "turns:"].iter().any(|p| u.starts_with(p));
            if !known {
                return Err(format!("ICE server url must start with stun:, stuns:, turn: or turns:, got {u:?}"));
            }
            if is_turn(u) && (s.username.is_none() || s.credential.is_none()) {
                return Err(format!("the TURN server {u} needs a username and a credential"));
            }
        }
        for f in [&s.username, &s.credential].into_iter().flatten() {
            if f.len() > MAX_ICE_FIELD {
                return Err(format!("ICE username or credential longer than {MAX_ICE_FIELD} bytes"));
            }
        }
    }
    Ok(())
}

/// A candidate's type as `getStats()` names it (`candidateType`), or
/// `None` for anything else (a modified browser, a new type).
pub fn candidate_type(s: &str) -> Option<&'static str> {
    match s {
        "host" => Some("host"),
        "srflx" => Some("srflx"),
        "prflx" => Some("prflx"),
        "relay" => Some("relay"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(url: &str) -> IceServer {
        IceServer { urls: vec![url.into()], username: Some("1:a".into()), credential: Some("x".into()) }
    }

    #[test]
    fn a_refused_turn_credential_is_a_sentence_naming_the_server() {
        let mut s = IceStatus::new(IceSource::Rendezvous, IcePolicy::All, &[turn("turn:10.0.0.1:3478")]);
        assert_eq!(s.sentence, None);
        s.record_error("turn:10.0.0.1:3478?transport=udp", 401, "Unauthorized");
        s.record_error("turn:10.0.0.1:3478?transport=udp", 401, "Unauthorized");
        let text = s.sentence.clone().expect("a sentence");
        assert!(text.contains("refused") && text.contains("10.0.0.1:3478") && text.contains("401"), "{text}");
        assert_eq!(s.errors.len(), 1);
        assert_eq!(s.errors[0].count, 2);
    }

    #[test]
    fn stun_lookup_failures_and_stale_nonces_are_counted_not_shown() {
        let mut s = IceStatus::new(IceSource::Page, IcePolicy::All, &[turn("stun:stun.example:3478")]);
        s.record_error("stun:stun.example:3478", 701, "lookup failed");
        s.record_error("turn:10.0.0.1:3478?transport=udp", 438, "Stale Nonce");
        assert_eq!(s.sentence, None);
        assert_eq!(s.errors.len(), 2);
    }

    #[test]
    fn relay_only_without_turn_says_so_and_new_servers_clear_old_errors() {
        let mut s = IceStatus::new(IceSource::Page, IcePolicy::Relay, &[]);
        assert_eq!(s.source, IceSource::None);
        assert!(s.sentence.as_deref().unwrap_or("").contains("no TURN server"));
        s.set_servers(IceSource::Rendezvous, &[turn("turn:h:1")]);
        assert_eq!(s.sentence, None);
        s.record_error("turn:h:1", 701, "unreachable");
        assert!(s.sentence.as_deref().unwrap_or("").contains("cannot be reached"));
        s.set_servers(IceSource::Rendezvous, &[turn("turn:h:1")]);
        assert_eq!((s.sentence.clone(), s.errors.len()), (None, 0));
    }

    #[test]
    fn errors_are_bounded_per_url_and_code() {
        let mut s = IceStatus::new(IceSource::Page, IcePolicy::All, &[turn("turn:h:1")]);
        for i in 0..100 {
            s.record_error(&format!("turn:h{i}:1"), 701, &"x".repeat(2000));
        }
        assert_eq!(s.errors.len(), MAX_ICE_ERRORS);
        assert!(s.errors.iter().all(|e| e.text.len() <= MAX_ICE_FIELD));
    }

    #[test]
    fn page_servers_are_checked() {
        assert!(check_page_servers(&[turn("turn:h:1")]).is_ok());
        let no_cred = IceServer { urls: vec!["turn:h:1".into()], username: None, credential: None };
        assert!(check_page_servers(&[no_cred]).unwrap_err().contains("username"));
        let bad = IceServer { urls: vec!["http://h".into()], username: None, credential: None };
        assert!(check_page_servers(&[bad]).is_err());
        assert!(check_page_servers(&vec![turn("turn:h:1"); 9]).is_err());
        assert_eq!(candidate_type("relay"), Some("relay"));
        assert_eq!(candidate_type("bogus"), None);
    }
}
