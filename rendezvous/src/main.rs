//! The rendezvous binary: parse flags, set up logging, load the TLS
//! certificate if any, bind, serve until SIGINT/SIGTERM. Everything else
//! lives in the library so tests run it in-process.

use clap::Parser;
use rendezvous::{Config, LogFormat, Server};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    init_tracing(config.log_format);
    let listen = config.listen;
    // Checks the flags and loads the TLS certificate before anything is
    // bound or printed: a bad file is one sentence and a non-zero exit.
    let server = match Server::new(config) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%listen, "cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("cannot read the bound address: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Signal handlers before the line below: whoever reads it may stop us at
    // once, and a SIGTERM before the handler exists would kill the process
    // without a clean shutdown.
    let shutdown = shutdown_signal();
    // The one line on stdout: scripts and tests read the real port from it
    // (logs go to stderr). Flushed because stdout is block-buffered on a pipe.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}://{addr}", server.scheme());
    let _ = out.flush();
    drop(out);

    match server.serve(listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr (stdout carries only the `listening on` line), filtered
/// by `RUST_LOG` (default `info`).
fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only help a human at a terminal; they garble log files.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM (what service managers
/// and `docker stop` send). The handlers are installed when this is called,
/// not when the future is first polled.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (int, term) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()));
        async move {
            match (int, term) {
                (Ok(mut int), Ok(mut term)) => tokio::select! {
                    _ = int.recv() => tracing::info!("received SIGINT"),
                    _ = term.recv() => tracing::info!("received SIGTERM"),
                },
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!("cannot listen for SIGINT/SIGTERM: {e}");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
        tracing::info!("received Ctrl-C");
    }
}
