//! The real rendezvous binary on a free port.

use crate::netns::Netns;
use crate::paths::{dist_dir, rendezvous_bin};
use crate::process::ProcessGuard;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the binary may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running rendezvous process, killed (with SIGTERM, then SIGKILL) on drop.
pub struct Rendezvous {
    process: ProcessGuard,
    /// `http://127.0.0.1:PORT` (`https://` with `--tls-cert`), without a
    /// trailing slash.
    base_url: String,
}

impl Rendezvous {
    /// Starts `rendezvous --listen 127.0.0.1:0 --dist DIST` and reads the
    /// bound address from its single stdout line. Panics (with the binary's
    /// log) if it exits or stays silent for 15 s.
    pub fn start() -> Rendezvous {
        Rendezvous::start_with_args(&[])
    }

    /// Like [`Rendezvous::start`], with extra command-line flags (for example
    /// `["--rate-per-sec", "5"]`, or `--tls-cert`/`--tls-key`, after which
    /// the base URL is `https://`).
    pub fn start_with_args(extra: &[&str]) -> Rendezvous {
        Rendezvous::spawn(Command::new(rendezvous_bin()), "127.0.0.1:0", extra)
    }

    /// Starts the rendezvous inside network namespace `netns`, listening on
    /// `ip` (a free port), with extra flags. Its URL uses that address, which
    /// is also the `Host` pages sign their login for.
    pub fn start_in(netns: &Netns, ip: Ipv4Addr, extra: &[&str]) -> Rendezvous {
        Rendezvous::spawn(netns.command(rendezvous_bin()), &format!("{ip}:0"), extra)
    }

    fn spawn(mut cmd: Command, listen: &str, extra: &[&str]) -> Rendezvous {
        let bin = rendezvous_bin();
        let dist = dist_dir();
        // Tests of other features run on a network with every safeguard
        // off, named by its own genesis; a test of the safeguards passes
        // its own `--genesis` (see `write_genesis`). The defaults stay.
        if !extra.contains(&"--genesis") {
            cmd.arg("--genesis").arg(write_genesis(&node_wasm::core::genesis::Genesis::open("e2e")));
        }
        cmd.arg("--listen")
            .arg(listen)
            .arg("--dist")
            .arg(&dist)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let mut process =
            ProcessGuard::spawn("rendezvous", cmd).unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        process.capture_stderr();
        let stdout = process.take_stdout().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep reading so a later write never hits a closed pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            Ok(other) => panic!(
                "rendezvous exited or closed stdout before printing its address ({other:?}); \
                 log:\n{}",
                process.log_tail().join("\n")
            ),
            Err(_) => panic!(
                "rendezvous printed no `listening on` line within {START_TIMEOUT:?}; log:\n{}",
                process.log_tail().join("\n")
            ),
        };
        let base_url = line
            .strip_prefix("listening on ")
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            .unwrap_or_else(|| panic!("unexpected first stdout line from rendezvous: {line:?}"))
            .trim_end_matches('/')
            .to_string();
        Rendezvous { process, base_url }
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT` (no trailing
    /// slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.base_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {}", self.base_url))
    }

    /// The UI URL with `query` (without the leading `?`), e.g.
    /// `profile=n1&debug_forge_proof=1`.
    pub fn page_url(&self, query: &str) -> String {
        if query.is_empty() { format!("{}/", self.base_url) } else { format!("{}/?{query}", self.base_url) }
    }

    /// The signaling URL, `ws://127.0.0.1:PORT/ws` (`wss://` with TLS).
    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.base_url.replacen("http", "ws", 1))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// The last lines the server logged (stderr).
    pub fn log_tail(&self) -> Vec<String> {
        self.process.log_tail()
    }
}

/// Writes `genesis` to a file of its own (named by its hash) and returns
/// the path, for `--genesis`.
pub fn write_genesis(genesis: &node_wasm::core::genesis::Genesis) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("synapse-genesis-{}.json", genesis.hash().short()));
    let text = serde_json::to_string(genesis).expect("a genesis serializes");
    // Written whole and renamed, so a concurrent test never reads half a file.
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).expect("write the genesis file");
    std::fs::rename(&tmp, &path).expect("place the genesis file");
    path
}
