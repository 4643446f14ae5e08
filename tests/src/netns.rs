//! Network namespaces for NAT tests: a small "internet" with home routers,
//! built from `ip netns`, veth pairs and nftables, so that two browser nodes
//! can be put behind real Linux NATs on one machine.
//!
//! Why namespaces: every node of the other e2e tests runs on loopback, where
//! host candidates always work and neither STUN nor TURN is ever needed.
//! Real users sit behind home routers that rewrite source addresses and drop
//! unsolicited inbound packets; only a real NAT shows whether the node's ICE
//! configuration (STUN for server-reflexive candidates, TURN for relays)
//! gets two such users connected. A namespace is a separate network stack
//! of the kernel (own interfaces, routes, firewall, conntrack), so a few of
//! them make hosts and routers without any VM or container runtime.
//!
//! Layout built by [`NatLab::build`] (addresses are the same in every run:
//! they live inside the lab's own namespaces, never in the machine's):
//!
//! ```text
//!   public ns  10.200.0.1 (+ .254) on bridge br0   (coturn, rendezvous)
//!        |                  |
//!   router 0 wan 10.200.0.2   router 1 wan 10.200.0.3   (masquerade + drop unsolicited)
//!   router 0 lan 192.168.1.1  router 1 lan 192.168.2.1
//!        |                  |
//!   client 0  192.168.1.2     client 1  192.168.2.2     (Chromium)
//! ```
//!
//! Nothing is added to the machine's own (root) namespace: links are
//! created directly inside the lab's namespaces, and the nftables rules live
//! in the routers' namespaces, so deleting the namespaces removes every
//! interface and rule with them. The harness, in the root namespace, reaches
//! into the lab in two ways only: processes started with
//! `ip netns exec <ns> …` ([`Netns::command`]), and sockets opened from a
//! thread that joined a namespace ([`Netns::run_in`]). Chromium is started by
//! a chromedriver in the root namespace through a wrapper script
//! ([`NatLab::chromium_wrapper`]) and driven over `--remote-debugging-pipe`
//! (file descriptors, which cross namespaces, instead of a TCP DevTools port
//! on a loopback that the two sides would not share).
//!
//! Names are unique per run (`synapse-e2e-<pid>-<n>-<role>`), so a crashed
//! earlier run cannot collide with a new one; [`sweep_stale`] deletes lab
//! namespaces whose creating process is gone. Everything is torn down on
//! drop, also when a test panics. Needs root (CAP_NET_ADMIN), `ip`
//! (iproute2) and `nft` (nftables): `scripts/install-tools.sh` installs them.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Prefix of every namespace this harness creates.
const PREFIX: &str = "synapse-e2e-";

/// The public side's address: the TURN server and the rendezvous listen here.
pub const PUBLIC_IP: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);

/// A second public address on the same bridge: a TURN/STUN server listening
/// on both lets a client compare the mappings its NAT makes towards two
/// destinations (same port: endpoint-independent; different: symmetric).
pub const PUBLIC_IP2: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 254);

/// Runs `ip ARGS`, returning its stderr as the error.
pub fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args, None)
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let mut cmd = Command::new(program);
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e} (is it installed? see scripts/install-tools.sh)"))?;
    if let Some(text) = stdin {
        use std::io::Write;
        let mut input = child.stdin.take().expect("stdin is piped");
        input.write_all(text.as_bytes()).map_err(|e| format!("cannot feed {program}: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("{program} failed: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A network namespace made for this run; deleted on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates namespace `name` with its loopback up.
    pub fn create(name: &str) -> Result<Netns, String> {
        ip(&["netns", "add", name])?;
        let ns = Netns { name: name.to_string() };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Loads an nftables ruleset into this namespace.
    pub fn nft(&self, ruleset: &str) -> Result<(), String> {
        run("ip", &["netns", "exec", &self.name, "nft", "-f", "-"], Some(ruleset))
    }

    /// Sets a sysctl inside this namespace (e.g. `net.ipv4.ip_forward=1`).
    pub fn sysctl(&self, setting: &str) -> Result<(), String> {
        run("ip", &["netns", "exec", &self.name, "sysctl", "-qw", setting], None)
    }

    /// `ip netns exec NAME program`: a command whose process (the program
    /// itself: `ip` execs it) runs in this namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.arg("netns").arg("exec").arg(&self.name).arg(program);
        cmd
    }

    /// Runs `f` on a new thread that joined this namespace, and returns its
    /// result: sockets it opens belong to the namespace (a socket stays in
    /// the namespace it was created in). The caller's thread is untouched.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, String> {
        let path = Path::new("/run/netns").join(&self.name);
        let file = std::fs::File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns(2) on a file descriptor we own, for the
                // network namespace only; it changes this (fresh, scoped)
                // thread's namespace and touches no memory of ours.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    return Err(format!("setns into {}: {}", self.name, std::io::Error::last_os_error()));
                }
                Ok(f())
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("warning: {e}");
        }
    }
}

/// Deletes lab namespaces (`synapse-e2e-<pid>-…`) left by runs whose process
/// no longer exists (a run killed before its destructors ran). Namespaces
/// of live processes (another test binary running now) are left alone.
pub fn sweep_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).stderr(Stdio::null()).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else { continue };
        let Some(pid) = name.strip_prefix(PREFIX).and_then(|rest| rest.split('-').next()) else { continue };
        let Ok(pid) = pid.parse::<libc::pid_t>() else { continue };
        // SAFETY: kill(2) with signal 0 only checks that the process exists.
        let alive =
            unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// How the routers translate addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    /// Plain `masquerade`: Linux keeps the source port when it can, so one
    /// inside socket appears as the same public address and port to every
    /// destination (endpoint-independent mapping). STUN's server-reflexive
    /// candidate is then valid towards the peer too, and two such NATs are
    /// crossed by hole punching: the "direct through NAT" case.
    PortPreserving,
    /// `masquerade fully-random`: every new flow (each destination) gets a
    /// random source port, like a symmetric NAT. The port STUN saw is not
    /// the one the peer sees, so hole punching between two such NATs fails
    /// and only a TURN relay connects them.
    RandomPorts,
}

/// The router ruleset: masquerade out of `wan`; forward from `lan` out;
/// from `wan` in only what belongs to a flow started inside (conntrack), as
/// a home router does; the router itself accepts nothing new from `wan`.
fn router_rules(nat: Nat) -> String {
    let masquerade = match nat {
        Nat::PortPreserving => "masquerade",
        Nat::RandomPorts => "masquerade fully-random",
    };
    format!(
        "table ip nat {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname \"wan\" {masquerade}
  }}
}}
table ip filter {{
  chain forward {{
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname \"lan\" oifname \"wan\" accept
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname \"wan\" ct state established,related accept
    iifname \"wan\" drop
  }}
}}
"
    )
}

/// One home: a client namespace behind its router namespace.
pub struct Home {
    /// The client: where Chromium runs.
    pub client: Netns,
    /// The router: masquerades and filters.
    pub router: Netns,
    /// The client's LAN address (`192.168.N.2`).
    pub client_ip: Ipv4Addr,
    /// The router's public address (`10.200.0.N+2`): what STUN reports.
    pub public_ip: Ipv4Addr,
    wrapper: PathBuf,
}

/// A public namespace and `homes` client namespaces behind their own
/// masquerading routers (see the module docs). Dropping it deletes the
/// namespaces (and with them every link and rule) and the wrapper scripts;
/// drop the processes running inside first.
pub struct NatLab {
    // Field order is drop order: homes (clients, routers), then the public
    // side, then the scripts.
    homes: Vec<Home>,
    public: Netns,
    dir: PathBuf,
    nat: Nat,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl NatLab {
    /// Builds the lab with `homes` homes (at most 250) behind `nat` routers.
    /// Panics with the failing command when it cannot (not root, no `ip` or
    /// `nft`); anything already created is deleted again.
    pub fn build(nat: Nat, homes: usize) -> NatLab {
        assert!((1..=250).contains(&homes), "1 to 250 homes");
        sweep_stale();
        let tag = format!("{PREFIX}{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let dir = std::env::temp_dir().join(&tag);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let public = Netns::create(&format!("{tag}-pub")).unwrap_or_else(|e| {
            let _ = std::fs::remove_dir_all(&dir);
            panic!("cannot create the public namespace (root, iproute2 needed): {e}")
        });
        let mut lab = NatLab { homes: vec![], public, dir, nat };
        if let Err(e) = lab.wire_public() {
            panic!("cannot set up the public namespace: {e}");
        }
        for i in 0..homes {
            if let Err(e) = lab.add_home(&tag, i) {
                panic!("cannot set up home {i}: {e}");
            }
        }
        lab
    }

    fn wire_public(&self) -> Result<(), String> {
        let p = &self.public;
        p.ip(&["link", "add", "br0", "type", "bridge"])?;
        p.ip(&["link", "set", "br0", "up"])?;
        p.ip(&["addr", "add", &format!("{PUBLIC_IP}/24"), "dev", "br0"])?;
        p.ip(&["addr", "add", &format!("{PUBLIC_IP2}/24"), "dev", "br0"])?;
        // The public side routes nothing: a packet for a private LAN
        // address that reaches it is dropped, as on the internet.
        p.sysctl("net.ipv4.ip_forward=0")?;
        // And what it sends to an address that is not on the bridge (a
        // peer's private host candidate, which coturn relays ICE checks
        // to) leaves silently through a default route, as a real server's
        // packets to 192.168.x.x vanish upstream. Without a default route
        // the kernel refuses the send (ENETUNREACH), and coturn then closes
        // the whole allocation: a lab artefact that tore relayed connections
        // down seconds after they were made. The "upstream" is a veth whose
        // gateway is a permanent neighbour with a MAC nobody has, so frames
        // are sent and dropped by the other end, with no error and no ICMP.
        p.ip(&["link", "add", "upstream", "type", "veth", "peer", "name", "void"])?;
        p.ip(&["link", "set", "void", "up"])?;
        p.ip(&["link", "set", "upstream", "up"])?;
        p.ip(&["addr", "add", "198.18.0.1/30", "dev", "upstream"])?;
        p.ip(&["neigh", "add", "198.18.0.2", "lladdr", "02:00:00:00:00:02", "dev", "upstream", "nud", "permanent"])?;
        p.ip(&["route", "add", "default", "via", "198.18.0.2", "dev", "upstream"])?;
        Ok(())
    }

    fn add_home(&mut self, tag: &str, i: usize) -> Result<(), String> {
        let router = Netns::create(&format!("{tag}-r{i}"))?;
        let client = Netns::create(&format!("{tag}-c{i}"))?;
        let public_ip = Ipv4Addr::new(10, 200, 0, 2 + i as u8);
        let lan_net = 1 + i as u8;
        let router_lan = Ipv4Addr::new(192, 168, lan_net, 1);
        let client_ip = Ipv4Addr::new(192, 168, lan_net, 2);
        let uplink = format!("up{i}");

        // WAN: router `wan` <-> `up<i>` on the public bridge. Created inside
        // the router's namespace with its peer put straight into the public
        // one, so no name ever exists in the root namespace.
        router.ip(&["link", "add", "wan", "type", "veth", "peer", "name", &uplink, "netns", self.public.name()])?;
        self.public.ip(&["link", "set", &uplink, "master", "br0", "up"])?;
        router.ip(&["addr", "add", &format!("{public_ip}/24"), "dev", "wan"])?;
        router.ip(&["link", "set", "wan", "up"])?;
        router.ip(&["route", "add", "default", "via", &PUBLIC_IP.to_string()])?;

        // LAN: router `lan` <-> client `eth0`.
        router.ip(&["link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", client.name()])?;
        router.ip(&["addr", "add", &format!("{router_lan}/24"), "dev", "lan"])?;
        router.ip(&["link", "set", "lan", "up"])?;
        client.ip(&["addr", "add", &format!("{client_ip}/24"), "dev", "eth0"])?;
        client.ip(&["link", "set", "eth0", "up"])?;
        client.ip(&["route", "add", "default", "via", &router_lan.to_string()])?;

        router.sysctl("net.ipv4.ip_forward=1")?;
        router.nft(&router_rules(self.nat))?;

        let wrapper = self.dir.join(format!("chromium-c{i}"));
        let script = format!(
            "#!/bin/sh\n# Chromium inside {ns} (written by the e2e harness, tests/src/netns.rs)\nexec ip netns exec {ns} {chromium} \"$@\"\n",
            ns = client.name(),
            chromium = crate::paths::chromium_bin().display()
        );
        std::fs::write(&wrapper, script).map_err(|e| format!("cannot write {}: {e}", wrapper.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot chmod {}: {e}", wrapper.display()))?;
        self.homes.push(Home { client, router, client_ip, public_ip, wrapper });
        Ok(())
    }

    /// The public namespace (run the TURN server and the rendezvous here).
    pub fn public(&self) -> &Netns {
        &self.public
    }

    /// Home `i`.
    pub fn home(&self, i: usize) -> &Home {
        &self.homes[i]
    }

    /// The routers' translation.
    pub fn nat(&self) -> Nat {
        self.nat
    }

    /// A script that runs Chromium in home `i`'s client namespace, for
    /// chromedriver's `binary` capability (see [`crate::Browser::open_in`]).
    pub fn chromium_wrapper(&self, i: usize) -> &Path {
        &self.homes[i].wrapper
    }
}

impl Drop for NatLab {
    fn drop(&mut self) {
        self.homes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
