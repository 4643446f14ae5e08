//! Server configuration: one struct that is both the clap command line (every
//! flag also readable from a `SYNAPSE_RDV_*` environment variable, for
//! containers and systemd units) and what [`crate::serve`] takes, so tests
//! build it directly with [`Config::default`] and shrink the limits they probe.

use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default maximum size of one client message (64 KiB). Signaling messages
/// are SDPs and ICE candidates, a few KiB at most; anything bigger is abuse.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Rendezvous server configuration.
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(name = "rendezvous", version, about = "Synapse-NG rendezvous: signaling relay, peer directory and UI server")]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "SYNAPSE_RDV_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// PEM certificate chain, leaf first (e.g. certbot's `fullchain.pem`).
    /// With `--tls-key`, the listening port serves `https://` and `wss://`
    /// itself, no reverse proxy needed.
    #[arg(long, env = "SYNAPSE_RDV_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `--tls-cert` (e.g. certbot's `privkey.pem`;
    /// unencrypted PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "SYNAPSE_RDV_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,

    /// Directory holding the built UI (trunk's output).
    #[arg(long, env = "SYNAPSE_RDV_DIST", default_value = "dist")]
    pub dist: PathBuf,

    /// Largest accepted client message, in bytes.
    #[arg(long, env = "SYNAPSE_RDV_MAX_FRAME_BYTES", default_value_t = DEFAULT_MAX_FRAME_BYTES,
          value_parser = parse_at_least::<64>)]
    pub max_frame_bytes: usize,

    /// Sustained messages per second allowed per connection.
    #[arg(long, env = "SYNAPSE_RDV_RATE_PER_SEC", default_value_t = 20.0,
          value_parser = parse_positive)]
    pub rate_per_sec: f64,

    /// Messages a connection may send in a burst above the sustained rate.
    #[arg(long, env = "SYNAPSE_RDV_RATE_BURST", default_value_t = 40.0,
          value_parser = parse_positive)]
    pub rate_burst: f64,

    /// Maximum simultaneous WebSocket connections.
    #[arg(long, env = "SYNAPSE_RDV_MAX_CONNECTIONS", default_value_t = 1000,
          value_parser = parse_at_least::<1>)]
    pub max_connections: usize,

    /// Maximum simultaneous connections authenticated as the same node id
    /// (more than one allows a reload to overlap with the old tab).
    #[arg(long, env = "SYNAPSE_RDV_MAX_CONNECTIONS_PER_ID", default_value_t = 2,
          value_parser = parse_at_least::<1>)]
    pub max_connections_per_id: usize,

    /// Maximum simultaneous connections from one IP address, so that one
    /// client cannot take every slot (a household or office behind one NAT
    /// shares it, hence not 1).
    #[arg(long, env = "SYNAPSE_RDV_MAX_CONNECTIONS_PER_IP", default_value_t = 64,
          value_parser = parse_at_least::<1>)]
    pub max_connections_per_ip: usize,

    /// The hosts (`name` or `name:port`, as in the page's rendezvous URL)
    /// logins may be signed for. Empty: the `Host` header each client sent.
    /// Set it behind a reverse proxy that rewrites `Host`.
    #[arg(long = "public-host", env = "SYNAPSE_RDV_PUBLIC_HOSTS", value_delimiter = ',')]
    pub public_hosts: Vec<String>,

    /// Other rendezvous servers of the same network (`wss://host/ws`),
    /// advertised in every `welcome` so that pages log in to them too and
    /// keep finding peers when this one is down (at most 3).
    #[arg(long = "sibling", env = "SYNAPSE_RDV_SIBLINGS", value_delimiter = ',')]
    pub siblings: Vec<String>,

    /// The network's genesis record (JSON), served at `/genesis.json`:
    /// pages fold from it and refuse peers of any other genesis. Without
    /// it the default network's genesis is served (every safeguard on).
    #[arg(long, env = "SYNAPSE_RDV_GENESIS", value_name = "PATH")]
    pub genesis: Option<PathBuf>,

    /// STUN server URLs handed to every page after authentication
    /// (`stun:host:port`; repeat the flag or separate with commas).
    #[arg(long = "stun-url", env = "SYNAPSE_RDV_STUN_URLS", value_delimiter = ',')]
    pub stun_urls: Vec<String>,

    /// TURN server URLs (`turn:host:3478?transport=udp`, `turns:…`), handed
    /// to pages with credentials from `--turn-secret`.
    #[arg(long = "turn-url", env = "SYNAPSE_RDV_TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,

    /// The secret shared with the TURN server (coturn `static-auth-secret`
    /// with `use-auth-secret`). Prefer the environment variable: a flag shows
    /// in the process list.
    #[arg(long, env = "SYNAPSE_RDV_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,

    /// How long issued TURN credentials stay valid (seconds); pages ask for
    /// fresh ones at half this.
    #[arg(long = "turn-ttl-secs", env = "SYNAPSE_RDV_TURN_TTL_SECS", default_value = "3600",
          value_name = "SECS", value_parser = parse_secs)]
    pub turn_ttl: Duration,

    /// How many ids a `welcome` or `peers` lists at most: a random sample
    /// of the directory, not all of it (a page dials a bounded number of
    /// peers anyway, and a list of thousands would be sent to every joiner).
    #[arg(long, env = "SYNAPSE_RDV_DIRECTORY_SAMPLE", default_value_t = 32,
          value_parser = parse_at_least::<1>)]
    pub directory_sample: usize,

    /// Close a connection that sends no frame at all for this long (seconds).
    #[arg(long = "idle-timeout-secs", env = "SYNAPSE_RDV_IDLE_TIMEOUT_SECS", default_value = "60",
          value_name = "SECS", value_parser = parse_secs)]
    pub idle_timeout: Duration,

    /// Close a connection that has not authenticated after this long (seconds).
    #[arg(long = "auth-timeout-secs", env = "SYNAPSE_RDV_AUTH_TIMEOUT_SECS", default_value = "10",
          value_name = "SECS", value_parser = parse_secs)]
    pub auth_timeout: Duration,

    /// Directory entry lifetime (seconds), refreshed by any client message
    /// and by WebSocket pongs.
    #[arg(long = "ttl-secs", env = "SYNAPSE_RDV_TTL_SECS", default_value = "60",
          value_name = "SECS", value_parser = parse_secs)]
    pub ttl: Duration,

    /// Interval between server WebSocket pings (seconds); browsers answer
    /// them automatically, which keeps idle but healthy tabs registered.
    #[arg(long = "ping-interval-secs", env = "SYNAPSE_RDV_PING_INTERVAL_SECS", default_value = "20",
          value_name = "SECS", value_parser = parse_secs)]
    pub ping_interval: Duration,

    /// Log format (`RUST_LOG` selects the levels, default `info`).
    #[arg(long, env = "SYNAPSE_RDV_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Default for Config {
    /// The command-line defaults, built without reading the real command line
    /// or environment (tests must not depend on the caller's shell). A unit
    /// test checks they equal clap's defaults.
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_cert: None,
            tls_key: None,
            dist: PathBuf::from("dist"),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            rate_per_sec: 20.0,
            rate_burst: 40.0,
            max_connections: 1000,
            max_connections_per_id: 2,
            max_connections_per_ip: 64,
            directory_sample: 32,
            public_hosts: vec![],
            siblings: vec![],
            genesis: None,
            stun_urls: vec![],
            turn_urls: vec![],
            turn_secret: None,
            turn_ttl: Duration::from_secs(3600),
            idle_timeout: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(10),
            ttl: Duration::from_secs(60),
            ping_interval: Duration::from_secs(20),
            log_format: LogFormat::Text,
        }
    }
}

impl Config {
    /// The genesis this server serves: `--genesis` checked field by field,
    /// or the default network's. The error names the file and the field.
    pub fn load_genesis(&self) -> Result<node_wasm::core::genesis::Genesis, String> {
        use node_wasm::core::genesis::{Genesis, MAX_GENESIS_BYTES};
        let Some(path) = &self.genesis else { return Ok(Genesis::default()) };
        let text = std::fs::read_to_string(path).map_err(|e| format!("--genesis {}: {e}", path.display()))?;
        if text.len() > MAX_GENESIS_BYTES {
            return Err(format!("--genesis {}: larger than {MAX_GENESIS_BYTES} bytes", path.display()));
        }
        Genesis::from_json(&text).map_err(|e| format!("--genesis {}: {e}", path.display()))
    }

    /// Rejects values the server cannot run with. clap already checks the
    /// command line; this also covers configs built in code.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_frame_bytes < 64 {
            return Err("max_frame_bytes must be at least 64".into());
        }
        if !(self.rate_per_sec.is_finite() && self.rate_per_sec > 0.0) {
            return Err("rate_per_sec must be a positive number".into());
        }
        if !(self.rate_burst.is_finite() && self.rate_burst >= 1.0) {
            return Err("rate_burst must be at least 1".into());
        }
        if !self.turn_urls.is_empty() && self.turn_secret.as_deref().is_none_or(str::is_empty) {
            return Err("--turn-url needs --turn-secret (TURN servers are handed out with credentials)".into());
        }
        if self.siblings.len() > 3 {
            return Err("at most 3 --sibling rendezvous (a page logs in to 4 servers at most)".into());
        }
        for s in &self.siblings {
            node_wasm::signaling::check_rendezvous_url(s).map_err(|e| format!("--sibling: {e}"))?;
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                return Err("--tls-cert needs --tls-key as well (give both, or neither for plain http)".into());
            }
            (None, Some(_)) => {
                return Err("--tls-key needs --tls-cert as well (give both, or neither for plain http)".into());
            }
            _ => {}
        }
        if self.max_connections == 0 || self.max_connections_per_id == 0 || self.max_connections_per_ip == 0 {
            return Err("connection limits must be at least 1".into());
        }
        for (name, d) in [
            ("idle_timeout", self.idle_timeout),
            ("auth_timeout", self.auth_timeout),
            ("ttl", self.ttl),
            ("turn_ttl", self.turn_ttl),
            ("ping_interval", self.ping_interval),
        ] {
            if d.is_zero() || d > MAX_DURATION {
                return Err(format!("{name} must be greater than zero and at most {} seconds", MAX_DURATION.as_secs()));
            }
        }
        Ok(())
    }

    /// The certificate and key files when TLS is on (both given).
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        Some((self.tls_cert.as_deref()?, self.tls_key.as_deref()?))
    }
}

/// Longest accepted duration (one year): far beyond any sane timeout, and
/// small enough that `Instant + duration` can never overflow and panic.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses seconds, fractions allowed (`0.5`), strictly positive (a zero
/// interval would make tokio's ticker panic and a zero timeout is useless)
/// and at most [`MAX_DURATION`].
fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.trim().parse().map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= MAX_DURATION.as_secs_f64()) {
        return Err(format!("must be a positive number of seconds, at most {}", MAX_DURATION.as_secs()));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a count of at least `MIN`.
fn parse_at_least<const MIN: usize>(text: &str) -> Result<usize, String> {
    let v: usize = text.trim().parse().map_err(|_| format!("`{text}` is not a whole number"))?;
    if v >= MIN { Ok(v) } else { Err(format!("must be at least {MIN}")) }
}

fn parse_positive(text: &str) -> Result<f64, String> {
    let v: f64 = text.trim().parse().map_err(|_| format!("`{text}` is not a number"))?;
    if v.is_finite() && v > 0.0 { Ok(v) } else { Err("must be a positive number".into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_url_without_a_secret_is_refused() {
        let c = Config { turn_urls: vec!["turn:x:3478".into()], ..Config::default() };
        assert!(c.validate().unwrap_err().contains("--turn-secret"));
        let c = Config { turn_secret: Some("s".into()), ..c };
        assert!(c.validate().is_ok());
    }

    #[test]
    fn siblings_must_be_rendezvous_urls_and_few() {
        let c = Config { siblings: vec!["https://x/ws".into()], ..Config::default() };
        assert!(c.validate().unwrap_err().contains("--sibling"));
        let four = (0..4).map(|i| format!("wss://r{i}/ws")).collect();
        assert!(Config { siblings: four, ..Config::default() }.validate().unwrap_err().contains("at most 3"));
        assert!(Config { siblings: vec!["wss://r/ws".into()], ..Config::default() }.validate().is_ok());
    }

    #[test]
    fn defaults_are_valid_and_match_the_command_line() {
        let c = Config::default();
        if std::env::vars().all(|(k, _)| !k.starts_with("SYNAPSE_RDV_")) {
            assert_eq!(Config::try_parse_from(["rendezvous"]).unwrap(), c);
        }
        assert!(c.validate().is_ok());
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.max_frame_bytes, 64 * 1024);
        assert_eq!(c.max_connections_per_id, 2);
        assert_eq!(c.ping_interval, Duration::from_secs(20));
    }

    #[test]
    fn flags_parse_and_bad_values_are_refused() {
        let c = Config::try_parse_from([
            "rendezvous",
            "--listen",
            "127.0.0.1:0",
            "--idle-timeout-secs",
            "0.5",
            "--log-format",
            "json",
            "--rate-burst",
            "5",
        ])
        .unwrap();
        assert_eq!(c.idle_timeout, Duration::from_millis(500));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.rate_burst, 5.0);
        assert!(Config::try_parse_from(["rendezvous", "--ping-interval-secs", "0"]).is_err());
        assert!(Config::try_parse_from(["rendezvous", "--ttl-secs", "1e30"]).is_err());
        assert!(Config::try_parse_from(["rendezvous", "--ttl-secs", "NaN"]).is_err());
        assert!(Config::try_parse_from(["rendezvous", "--max-connections", "0"]).is_err());
        assert!(Config::try_parse_from(["rendezvous", "--rate-per-sec", "-1"]).is_err());
    }

    #[test]
    fn tls_needs_both_files() {
        let c = Config::try_parse_from(["rendezvous", "--tls-cert", "/c.pem", "--tls-key", "/k.pem"]).unwrap();
        assert_eq!(c.tls_files(), Some((Path::new("/c.pem"), Path::new("/k.pem"))));
        assert!(c.validate().is_ok());
        assert_eq!(Config::default().tls_files(), None);
        let only_cert = Config { tls_cert: Some("/c.pem".into()), ..Config::default() };
        assert!(only_cert.validate().unwrap_err().contains("--tls-cert needs --tls-key"));
        let only_key = Config { tls_key: Some("/k.pem".into()), ..Config::default() };
        assert!(only_key.validate().unwrap_err().contains("--tls-key needs --tls-cert"));
    }

    #[test]
    fn validate_catches_code_built_configs() {
        let c = Config { ping_interval: Duration::ZERO, ..Config::default() };
        assert!(c.validate().is_err());
    }
}
