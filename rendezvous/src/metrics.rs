//! Counters for `/metrics`, in the Prometheus text exposition format.
//!
//! Hand-written rather than a metrics crate: a handful of atomics is all the
//! server needs, and the output format is a few lines of text.

use node_wasm::signaling::ErrorCode;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters. Gauges (current connections, authenticated peers) are
/// read from the live state at render time instead, so they cannot drift.
#[derive(Debug, Default)]
pub struct Metrics {
    connections_total: AtomicU64,
    auth_success_total: AtomicU64,
    signals_relayed_total: AtomicU64,
    signals_dropped_total: AtomicU64,
    rejections: [AtomicU64; ErrorCode::ALL.len()],
    tls_failures: [AtomicU64; TlsFailure::ALL.len()],
}

/// Why a TLS connection never reached the server (`--tls-cert` only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    /// The handshake failed: not TLS (plain http to the https port), a
    /// client that distrusts the certificate, a scanner.
    Error,
    /// The client did not finish its handshake in time.
    Timeout,
    /// Its address already had `max_connections_per_ip` handshakes in flight.
    PerIpLimit,
}

impl TlsFailure {
    /// Every reason, in the order `/metrics` lists them.
    pub const ALL: [TlsFailure; 3] = [TlsFailure::Error, TlsFailure::Timeout, TlsFailure::PerIpLimit];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsFailure::Error => "error",
            TlsFailure::Timeout => "timeout",
            TlsFailure::PerIpLimit => "per_ip_limit",
        }
    }
}

impl Metrics {
    /// A WebSocket connection was admitted.
    pub fn connection_opened(&self) {
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A node authenticated.
    pub fn auth_succeeded(&self) {
        self.auth_success_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A signal was handed to its recipient's connection.
    pub fn signal_relayed(&self) {
        self.signals_relayed_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A signal was dropped because its recipient's queue was full.
    pub fn signal_dropped(&self) {
        self.signals_dropped_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Signals dropped for a full recipient queue (tests, logs).
    pub fn signals_dropped(&self) -> u64 {
        self.signals_dropped_total.load(Ordering::Relaxed)
    }

    /// The server answered something with `ServerMsg::Error { code, .. }`.
    pub fn rejected(&self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.rejections[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Current count of rejections with `code` (tests, logs).
    pub fn rejections(&self, code: ErrorCode) -> u64 {
        ErrorCode::ALL.iter().position(|c| *c == code).map_or(0, |i| self.rejections[i].load(Ordering::Relaxed))
    }

    /// A TLS connection was dropped before its handshake completed.
    pub fn tls_handshake_failed(&self, why: TlsFailure) {
        self.tls_failures[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// TLS connections dropped for `why` so far (tests, logs).
    pub fn tls_handshake_failures(&self, why: TlsFailure) -> u64 {
        self.tls_failures[why as usize].load(Ordering::Relaxed)
    }

    /// Renders every metric. Every error code is listed, zeros included, so
    /// dashboards and alerts see the series before the first incident.
    pub fn render(&self, connections: usize, authenticated_peers: usize) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        metric("rendezvous_connections", "gauge", "Open WebSocket connections.", connections as u64);
        metric(
            "rendezvous_authenticated_peers",
            "gauge",
            "Distinct node ids with at least one authenticated connection.",
            authenticated_peers as u64,
        );
        metric(
            "rendezvous_connections_total",
            "counter",
            "WebSocket connections admitted since start.",
            self.connections_total.load(Ordering::Relaxed),
        );
        metric(
            "rendezvous_auth_success_total",
            "counter",
            "Successful authentications since start.",
            self.auth_success_total.load(Ordering::Relaxed),
        );
        metric(
            "rendezvous_signals_relayed_total",
            "counter",
            "Signals delivered to their recipient since start.",
            self.signals_relayed_total.load(Ordering::Relaxed),
        );
        metric(
            "rendezvous_signals_dropped_total",
            "counter",
            "Signals dropped because the recipient's outbound queue was full (the recipient stays connected).",
            self.signals_dropped_total.load(Ordering::Relaxed),
        );
        let name = "rendezvous_rejections_total";
        let _ = writeln!(out, "# HELP {name} Requests refused with an error, by error code.");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (code, count) in ErrorCode::ALL.iter().zip(&self.rejections) {
            let _ = writeln!(out, "{name}{{code=\"{}\"}} {}", code.as_str(), count.load(Ordering::Relaxed));
        }
        let name = "rendezvous_tls_handshake_failures_total";
        let _ = writeln!(
            out,
            "# HELP {name} TLS connections dropped before their handshake completed, by reason (0 without TLS)."
        );
        let _ = writeln!(out, "# TYPE {name} counter");
        for (why, count) in TlsFailure::ALL.iter().zip(&self.tls_failures) {
            let _ = writeln!(out, "{name}{{reason=\"{}\"}} {}", why.as_str(), count.load(Ordering::Relaxed));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_every_code_and_counts() {
        let m = Metrics::default();
        m.connection_opened();
        m.rejected(ErrorCode::AuthFailed);
        m.rejected(ErrorCode::AuthFailed);
        let text = m.render(3, 1);
        assert!(text.contains("# TYPE rendezvous_connections gauge\nrendezvous_connections 3\n"), "{text}");
        assert!(text.contains("rendezvous_authenticated_peers 1\n"));
        assert!(text.contains("rendezvous_connections_total 1\n"));
        assert!(text.contains("rendezvous_rejections_total{code=\"auth_failed\"} 2\n"));
        for code in ErrorCode::ALL {
            assert!(text.contains(&format!("{{code=\"{}\"}}", code.as_str())), "{code:?} missing");
        }
        assert_eq!(m.rejections(ErrorCode::AuthFailed), 2);
        assert!(text.contains("rendezvous_tls_handshake_failures_total{reason=\"timeout\"} 0\n"), "{text}");
        m.tls_handshake_failed(TlsFailure::Timeout);
        assert!(m.render(0, 0).contains("rendezvous_tls_handshake_failures_total{reason=\"timeout\"} 1\n"));
        assert_eq!(m.tls_handshake_failures(TlsFailure::Error), 0);
    }
}
