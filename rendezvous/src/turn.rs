//! ICE servers for pages: STUN URLs as configured, and TURN URLs with
//! short-lived credentials in the TURN REST API scheme that coturn checks
//! with `use-auth-secret` / `static-auth-secret`:
//!
//! ```text
//! username   = "<expiry, unix seconds>:<node id>"
//! credential = base64(HMAC-SHA1(shared secret, username))
//! ```
//!
//! The TURN server needs no user database and no call to us: it recomputes
//! the credential from the username and refuses it once the expiry passed.
//! Binding the node id into the username makes a leaked credential name its
//! owner in the TURN server's logs.

use crate::config::Config;
use base64::Engine;
use hmac::{Hmac, Mac};
use node_wasm::NodeId;
use node_wasm::signaling::IceServer;
use sha1::Sha1;

/// The TURN REST credential for `username`.
pub fn credential(secret: &str, username: &str) -> String {
    // HMAC accepts a key of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The servers to hand `id` at unix time `now_secs`, and for how long the
/// credentials hold (0 when there are none to renew).
pub fn ice_for(config: &Config, id: &NodeId, now_secs: u64) -> (Vec<IceServer>, u64) {
    let mut out = vec![];
    if !config.stun_urls.is_empty() {
        out.push(IceServer { urls: config.stun_urls.clone(), username: None, credential: None });
    }
    let ttl = config.turn_ttl.as_secs();
    match (&config.turn_secret, config.turn_urls.is_empty()) {
        (Some(secret), false) => {
            let username = format!("{}:{}", now_secs.saturating_add(ttl), id.to_text());
            let credential = Some(credential(secret, &username));
            out.push(IceServer { urls: config.turn_urls.clone(), username: Some(username), credential });
            (out, ttl)
        }
        _ => (out, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_wasm::Identity;
    use std::time::Duration;

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        // RFC 2202 test case 2: key "Jefe", HMAC-SHA1 effcdf6a…7c79.
        assert_eq!(credential("Jefe", "what do ya want for nothing?"), "7/zfauXrL6LSdBbV8YTfnCWafHk=");
    }

    #[test]
    fn turn_rest_username_names_expiry_and_node() {
        let id = Identity::from_seed([5; 32]).node_id();
        let config = Config {
            stun_urls: vec!["stun:stun.example:3478".into()],
            turn_urls: vec!["turn:turn.example:3478".into()],
            turn_secret: Some("s3cret".into()),
            turn_ttl: Duration::from_secs(600),
            ..Config::default()
        };
        let (servers, ttl) = ice_for(&config, &id, 1_000_000);
        assert_eq!(ttl, 600);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].urls, vec!["stun:stun.example:3478".to_string()]);
        assert!(servers[0].username.is_none());
        let user = servers[1].username.clone().unwrap();
        assert_eq!(user, format!("1000600:{}", id.to_text()));
        assert_eq!(servers[1].credential.as_deref(), Some(credential("s3cret", &user).as_str()));
    }

    #[test]
    fn no_servers_configured_hands_out_none() {
        let id = Identity::from_seed([5; 32]).node_id();
        assert_eq!(ice_for(&Config::default(), &id, 0), (vec![], 0));
    }
}
