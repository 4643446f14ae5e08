//! A real TURN server (coturn's `turnserver`) as a child process, checking
//! TURN REST credentials (`--use-auth-secret`) exactly as in production.
//!
//! It runs with no configuration file (`-n`), its SQLite database and pid
//! file in a temporary directory removed on drop, TLS/DTLS and the admin CLI
//! off, verbose logging (`-v`: allocations, refusals and byte counts) to
//! stdout, which the harness keeps in full: tests assert on what the server
//! actually did ([`TurnServer::allocations`], [`TurnServer::refusals`],
//! [`TurnServer::usage`]). Readiness is a STUN Binding request answered, not
//! a sleep.

use crate::netns::Netns;
use crate::process::ProcessGuard;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long `turnserver` may take to answer its first STUN request.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Relay ports given to a loopback server by default (a test's few pages
/// need one or two each).
const LOOPBACK_RELAY_PORTS: u16 = 16;

/// The coturn binary: `$SYNAPSE_TURNSERVER`, default `/usr/bin/turnserver`.
pub fn turnserver_bin() -> PathBuf {
    let bin = match std::env::var_os("SYNAPSE_TURNSERVER") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from("/usr/bin/turnserver"),
    };
    assert!(
        bin.is_file(),
        "turnserver not found at {}: install coturn (`scripts/install-tools.sh` or \
         `apt-get install coturn`) or set SYNAPSE_TURNSERVER",
        bin.display()
    );
    bin
}

/// Byte and packet counters coturn logs for one allocation when it ends
/// (`usage:` for the client side, `peer usage:` for the relayed side).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub session: String,
    pub username: String,
    /// Client <-> server: packets and bytes received from / sent to the client.
    pub client_rp: u64,
    pub client_rb: u64,
    pub client_sp: u64,
    pub client_sb: u64,
    /// Relay <-> peers: packets and bytes received from / sent to peers.
    pub peer_rp: u64,
    pub peer_rb: u64,
    pub peer_sp: u64,
    pub peer_sb: u64,
}

/// A running `turnserver`, killed on drop (its log is printed if the test
/// panicked).
pub struct TurnServer {
    /// Always `Some` until drop.
    process: Option<ProcessGuard>,
    log: Arc<Mutex<Vec<String>>>,
    dir: PathBuf,
    ip: Ipv4Addr,
    port: u16,
    secret: String,
    netns: Option<String>,
}

impl TurnServer {
    /// Starts a TURN server on 127.0.0.1 (a free port, a small free relay
    /// range, loopback peers allowed) checking TURN REST credentials made
    /// with `secret`.
    pub fn start(secret: &str) -> TurnServer {
        TurnServer::start_with_relay_ports(secret, LOOPBACK_RELAY_PORTS)
    }

    /// [`TurnServer::start`] with `count` relay ports. Every allocation
    /// holds one until released, and a Chromium that quits does not
    /// release its allocations (they expire after their 600 s lifetime):
    /// something that opens many pages, like a benchmark, needs more than
    /// the default.
    pub fn start_with_relay_ports(secret: &str, count: u16) -> TurnServer {
        let port = free_udp_tcp_port();
        let (min, max) = free_udp_range(count);
        let cmd = Command::new(turnserver_bin());
        TurnServer::spawn(cmd, None, Ipv4Addr::LOCALHOST, port, (min, max), secret, true)
    }

    /// Starts a TURN server inside `netns` on `ips`:3478 (the first one
    /// also relays), relay ports 49152-49251 (the namespace is the lab's
    /// own, so they are free). A second address gives STUN clients two
    /// servers to compare their mapped ports against.
    pub fn start_in(netns: &Netns, ips: &[Ipv4Addr], secret: &str) -> TurnServer {
        let mut cmd = netns.command(turnserver_bin());
        for extra in ips.iter().skip(1) {
            cmd.arg(format!("--listening-ip={extra}"));
        }
        let ip = *ips.first().expect("at least one address");
        let mut turn = TurnServer::spawn(cmd, Some(netns), ip, 3478, (49152, 49251), secret, false);
        turn.netns = Some(netns.name().to_string());
        turn
    }

    fn spawn(
        mut cmd: Command,
        netns: Option<&Netns>,
        ip: Ipv4Addr,
        port: u16,
        (min_port, max_port): (u16, u16),
        secret: &str,
        loopback: bool,
    ) -> TurnServer {
        let dir = std::env::temp_dir().join(format!(
            "synapse-e2e-turn-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        cmd.arg("-n") // no configuration file
            .arg("-v") // allocations, refusals and usage counters in the log
            .arg("--use-auth-secret")
            .arg(format!("--static-auth-secret={secret}"))
            .arg("--realm=synapse")
            .arg("--no-cli")
            .arg("--no-tls")
            .arg("--no-dtls")
            .arg(format!("--listening-ip={ip}"))
            .arg(format!("--relay-ip={ip}"))
            .arg(format!("--listening-port={port}"))
            .arg(format!("--min-port={min_port}"))
            .arg(format!("--max-port={max_port}"))
            .arg("--log-file=stdout")
            .arg("--simple-log")
            .arg(format!("--userdb={}", dir.join("turndb").display()))
            .arg(format!("--pidfile={}", dir.join("turnserver.pid").display()))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if loopback {
            cmd.arg("--allow-loopback-peers");
        }
        let mut process =
            ProcessGuard::spawn("turnserver", cmd).unwrap_or_else(|e| panic!("cannot start turnserver: {e}"));
        process.capture_stderr();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stdout = process.take_stdout().expect("stdout is piped");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
        let mut turn =
            TurnServer { process: Some(process), log, dir, ip, port, secret: secret.to_string(), netns: None };
        turn.wait_ready(netns);
        turn
    }

    /// Waits until the server answers a STUN Binding request.
    fn wait_ready(&mut self, netns: Option<&Netns>) {
        let start = Instant::now();
        let server = SocketAddr::V4(SocketAddrV4::new(self.ip, self.port));
        loop {
            let answer = match netns {
                None => stun_binding(server, Duration::from_millis(200)),
                Some(ns) => ns.run_in(|| stun_binding(server, Duration::from_millis(200))).and_then(|r| r),
            };
            if answer.is_ok() {
                return;
            }
            if let Some(status) = self.process.as_mut().and_then(ProcessGuard::exited) {
                panic!("turnserver exited ({status}) before answering STUN on {server}; log:\n{}", self.log_text());
            }
            assert!(
                start.elapsed() < START_TIMEOUT,
                "turnserver did not answer STUN on {server} within {START_TIMEOUT:?} (last: {answer:?}); log:\n{}",
                self.log_text()
            );
        }
    }

    /// `turn:IP:PORT?transport=udp`.
    pub fn url(&self) -> String {
        format!("turn:{}:{}?transport=udp", self.ip, self.port)
    }

    /// `stun:IP:PORT` (coturn answers STUN on the same port).
    pub fn stun_url(&self) -> String {
        format!("stun:{}:{}", self.ip, self.port)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, self.port))
    }

    /// The shared secret it checks credentials with.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Every line logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn log_text(&self) -> String {
        let mut lines = self.log();
        lines.extend(self.process.as_ref().map(ProcessGuard::log_tail).unwrap_or_default());
        lines.join("\n")
    }

    /// Usernames of successful allocations (`ALLOCATE processed, success`),
    /// one entry per allocation.
    pub fn allocations(&self) -> Vec<String> {
        self.log()
            .iter()
            .filter(|l| l.contains("incoming packet ALLOCATE processed, success"))
            .filter_map(|l| between(l, "user <", ">").map(str::to_string))
            .collect()
    }

    /// Log lines where the server refused the credentials of a request
    /// (401 with a username: wrong or expired). The first, anonymous
    /// request of every allocation is also answered 401 (that is how the
    /// client learns the realm and nonce), and a stale nonce is answered 438
    /// (the client retries with the new one); neither is counted.
    pub fn refusals(&self) -> Vec<String> {
        self.log().into_iter().filter(|l| l.contains("error 401") && !l.contains("user <>")).collect()
    }

    /// Usage counters of every allocation that has ended.
    pub fn usage(&self) -> Vec<Usage> {
        parse_usage(&self.log())
    }

    /// The network namespace it runs in, if any.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }
}

impl Drop for TurnServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let from = log.len().saturating_sub(300);
            eprintln!("---- last {} lines of turnserver's log ----", log.len() - from);
            for l in &log[from..] {
                eprintln!("{l}");
            }
            eprintln!("---- end of turnserver's log ----");
        }
        // The process must be gone before its directory is removed.
        drop(self.process.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `usage:` / `peer usage:` lines coturn logs when an allocation ends,
/// one [`Usage`] per session.
fn parse_usage(log: &[String]) -> Vec<Usage> {
    let mut out: Vec<Usage> = vec![];
    for l in log {
        let peer = l.contains(": peer usage: ");
        if !peer && !l.contains(": usage: ") {
            continue;
        }
        let session = between(l, "session ", ":").unwrap_or_default().to_string();
        let username = between(l, "username=<", ">").unwrap_or_default().to_string();
        // `…, rp=13, rb=1436, sp=13, sb=1212`: each counter up to the next
        // comma, the last one to the end of the line.
        let n = |k: &str| {
            let key = format!(", {k}=");
            let from = l.find(&key)? + key.len();
            let rest = &l[from..];
            rest[..rest.find(',').unwrap_or(rest.len())].trim().parse::<u64>().ok()
        };
        let n = |k: &str| n(k).unwrap_or(0);
        let idx = match out.iter().position(|u| u.session == session) {
            Some(i) => i,
            None => {
                out.push(Usage { session, username, ..Usage::default() });
                out.len() - 1
            }
        };
        let u = &mut out[idx];
        if peer {
            (u.peer_rp, u.peer_rb, u.peer_sp, u.peer_sb) = (n("rp"), n("rb"), n("sp"), n("sb"));
        } else {
            (u.client_rp, u.client_rb, u.client_sp, u.client_sb) = (n("rp"), n("rb"), n("sp"), n("sb"));
        }
    }
    out
}

/// The text between `start` and the next `end` in `line`.
fn between<'a>(line: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = line.find(start)? + start.len();
    let len = line[from..].find(end)?;
    Some(&line[from..from + len])
}

/// Sends one STUN Binding request (RFC 5389) to `server` from a fresh UDP
/// socket and returns the XOR-MAPPED-ADDRESS of the answer: the address the
/// server saw the request come from (behind a NAT, the NAT's public side).
pub fn stun_binding(server: SocketAddr, timeout: Duration) -> Result<SocketAddr, String> {
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("bind: {e}"))?;
    stun_binding_from(&socket, server, timeout)
}

/// [`stun_binding`] from an existing socket (its read timeout is changed).
pub fn stun_binding_from(socket: &UdpSocket, server: SocketAddr, timeout: Duration) -> Result<SocketAddr, String> {
    const MAGIC: u32 = 0x2112_A442;
    socket.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let mut txn = [0u8; 12];
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    for (i, b) in txn.iter_mut().enumerate() {
        *b = (seed >> ((i % 8) * 8)) as u8 ^ (i as u8).wrapping_mul(37);
    }
    let mut req = Vec::with_capacity(20);
    req.extend_from_slice(&0x0001u16.to_be_bytes()); // Binding request
    req.extend_from_slice(&0u16.to_be_bytes()); // no attributes
    req.extend_from_slice(&MAGIC.to_be_bytes());
    req.extend_from_slice(&txn);
    socket.send_to(&req, server).map_err(|e| format!("send to {server}: {e}"))?;
    let mut buf = [0u8; 1500];
    let (n, _) = socket.recv_from(&mut buf).map_err(|e| format!("no answer from {server}: {e}"))?;
    let msg = &buf[..n];
    if n < 20 || msg[0..2] != 0x0101u16.to_be_bytes() || msg[8..20] != txn {
        return Err(format!("not a Binding success for our request: {:02x?}", &msg[..n.min(20)]));
    }
    let mut at = 20;
    while at + 4 <= n {
        let kind = u16::from_be_bytes([msg[at], msg[at + 1]]);
        let len = u16::from_be_bytes([msg[at + 2], msg[at + 3]]) as usize;
        let value = msg.get(at + 4..at + 4 + len).ok_or("truncated attribute")?;
        if kind == 0x0020 && len >= 8 && value[1] == 0x01 {
            let port = u16::from_be_bytes([value[2], value[3]]) ^ (MAGIC >> 16) as u16;
            let raw = u32::from_be_bytes([value[4], value[5], value[6], value[7]]) ^ MAGIC;
            return Ok(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(raw), port)));
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    Err("Binding success without an IPv4 XOR-MAPPED-ADDRESS".into())
}

/// A port free for both UDP and TCP on 127.0.0.1 a moment ago.
fn free_udp_tcp_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("cannot bind UDP 127.0.0.1:0");
        let port = udp.local_addr().expect("bound").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1 after 100 tries")
}

/// `count` consecutive UDP ports free on 127.0.0.1 a moment ago, from a
/// start that differs between runs (so parallel test binaries rarely try
/// the same range).
fn free_udp_range(count: u16) -> (u16, u16) {
    let mut start = 20_000
        + (std::process::id() as u64
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0))
            % 20_000;
    for _ in 0..200 {
        let s = start as u16;
        let held: Vec<_> = (s..s + count).map_while(|p| UdpSocket::bind(("127.0.0.1", p)).ok()).collect();
        if held.len() == count as usize {
            return (s, s + count - 1);
        }
        start = 20_000 + (start + 97 * u64::from(count)) % 20_000;
    }
    panic!("no {count} consecutive free UDP ports found on 127.0.0.1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_turnserver_answers_stun_and_is_gone_after_drop() {
        let turn = TurnServer::start("unit-secret");
        let addr = turn.addr();
        let mapped = stun_binding(addr, Duration::from_secs(2)).expect("a STUN answer");
        assert_eq!(mapped.ip(), std::net::IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(turn.url().starts_with("turn:127.0.0.1:") && turn.url().ends_with("?transport=udp"), "{}", turn.url());
        let dir = turn.dir.clone();
        assert!(dir.join("turndb").exists(), "the user database stays in the temporary directory");
        drop(turn);
        assert!(!dir.exists(), "the temporary directory is removed");
        assert!(stun_binding(addr, Duration::from_millis(300)).is_err(), "nothing answers once dropped");
    }

    #[test]
    fn usage_lines_are_parsed_per_session() {
        let line = |s: &str| s.to_string();
        let log = vec![
            line(
                "8: : session 000000000000000001: usage: realm=<synapse>, username=<17:ab>, rp=13, rb=1436, sp=12, sb=1212",
            ),
            line(
                "8: : session 000000000000000001: peer usage: realm=<synapse>, username=<17:ab>, rp=5, rb=500, sp=6, sb=600",
            ),
            line("8: : session 001000000000000002: usage: realm=<synapse>, username=<17:cd>, rp=1, rb=2, sp=3, sb=4"),
        ];
        let u = parse_usage(&log);
        assert_eq!(u.len(), 2);
        assert_eq!(
            u[0],
            Usage {
                session: "000000000000000001".into(),
                username: "17:ab".into(),
                client_rp: 13,
                client_rb: 1436,
                client_sp: 12,
                client_sb: 1212,
                peer_rp: 5,
                peer_rb: 500,
                peer_sp: 6,
                peer_sb: 600,
            }
        );
        assert_eq!((u[1].client_rb, u[1].client_sb, u[1].peer_rb), (2, 4, 0));
    }
}
