//! The HTTP side (health, metrics, UI), graceful shutdown, and the real
//! binary.

mod common;

use common::*;
use node_wasm::signaling::{ClientMsg, ErrorCode, sign_challenge};
use rendezvous::Config;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn healthz_says_ok() {
    let server = TestServer::start(test_config()).await;
    let (status, _, body) = http_get(server.addr, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body, "ok");
}

#[tokio::test]
async fn metrics_expose_counters_and_count_rejections() {
    let server = TestServer::start(test_config()).await;
    let (status, head, body) = http_get(server.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain"), "{head}");
    for name in [
        "rendezvous_connections",
        "rendezvous_authenticated_peers",
        "rendezvous_connections_total",
        "rendezvous_auth_success_total",
        "rendezvous_signals_relayed_total",
        "rendezvous_rejections_total",
    ] {
        assert!(body.contains(&format!("# TYPE {name} ")), "{name} missing:\n{body}");
        assert!(body.contains(&format!("# HELP {name} ")), "{name} help missing:\n{body}");
    }
    for code in ErrorCode::ALL {
        assert!(body.contains(&format!("rendezvous_rejections_total{{code=\"{}\"}} 0\n", code.as_str())), "{body}");
    }

    // One failed auth and one successful login.
    let mut bad = connect(&server).await;
    let nonce = recv_challenge(&mut bad).await;
    let signature = sign_challenge(&identity(2), &nonce, &server.addr.to_string()).unwrap();
    send(&mut bad, &ClientMsg::Auth { id: id(1), signature }).await;
    expect_error(&mut bad, ErrorCode::AuthFailed).await;
    let (_good, _) = login(&server, 3).await;

    let (_, _, body) = http_get(server.addr, "/metrics").await;
    assert!(body.contains("rendezvous_rejections_total{code=\"auth_failed\"} 1\n"), "{body}");
    assert!(body.contains("rendezvous_auth_success_total 1\n"), "{body}");
    assert!(body.contains("rendezvous_connections_total 2\n"), "{body}");
    assert!(body.contains("rendezvous_authenticated_peers 1\n"), "{body}");
}

#[tokio::test]
async fn relayed_signals_are_counted() {
    let server = TestServer::start(test_config()).await;
    let (mut a, _) = login(&server, 1).await;
    let (mut b, _) = login(&server, 2).await;
    send(&mut a, &ClientMsg::Signal { to: id(2), payload: serde_json::json!(7) }).await;
    recv(&mut b).await;
    let (_, _, body) = http_get(server.addr, "/metrics").await;
    assert!(body.contains("rendezvous_signals_relayed_total 1\n"), "{body}");
    assert!(body.contains("rendezvous_connections 2\n"), "{body}");
}

#[tokio::test]
async fn missing_ui_gives_503_with_build_hint() {
    let server = TestServer::start(test_config()).await;
    for path in ["/", "/index.html", "/some/route"] {
        let (status, _, body) = http_get(server.addr, path).await;
        assert_eq!(status, 503, "{path}");
        assert_eq!(body, rendezvous::UI_NOT_BUILT);
        assert!(body.contains("./scripts/run") && body.contains("trunk build --release"));
    }
    // The API still works without a UI.
    assert_eq!(http_get(server.addr, "/healthz").await.0, 200);
}

#[tokio::test]
async fn dist_without_index_html_counts_as_not_built() {
    let dist = TempDir::new("noindex");
    std::fs::write(dist.0.join("app.js"), "x").unwrap();
    let server = TestServer::start(Config { dist: dist.0.clone(), ..test_config() }).await;
    assert_eq!(http_get(server.addr, "/").await.0, 503);
}

#[tokio::test]
async fn built_ui_is_served_with_spa_fallback() {
    let dist = TempDir::new("dist");
    std::fs::write(dist.0.join("index.html"), "<!doctype html><title>synapse</title>").unwrap();
    std::fs::write(dist.0.join("app.js"), "console.log(1)").unwrap();
    let server = TestServer::start(Config { dist: dist.0.clone(), ..test_config() }).await;

    let (status, head, body) = http_get(server.addr, "/").await;
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: text/html"), "{head}");
    assert!(body.contains("<title>synapse</title>"));

    let (status, _, body) = http_get(server.addr, "/app.js").await;
    assert_eq!(status, 200);
    assert_eq!(body, "console.log(1)");

    let (status, _, body) = http_get(server.addr, "/peers/abc").await;
    assert_eq!(status, 200, "client-side routes fall back to index.html");
    assert!(body.contains("<title>synapse</title>"));
}

/// Content-hashed files are cached for good; the page and unhashed files
/// are revalidated (a new build must reach the next load).
#[tokio::test]
async fn hashed_assets_are_immutable_and_the_page_is_revalidated() {
    let dist = TempDir::new("cached");
    std::fs::write(dist.0.join("index.html"), "<!doctype html><title>synapse</title>").unwrap();
    std::fs::write(dist.0.join("web-ui-fab3eafea15e26f7_bg.wasm"), "wasm").unwrap();
    std::fs::write(dist.0.join("styles-90fe9472ed008b61.css"), "p{}").unwrap();
    std::fs::write(dist.0.join("wat_worker.js"), "x").unwrap();
    let server = TestServer::start(Config { dist: dist.0.clone(), ..test_config() }).await;
    let cache = |head: &str| {
        head.lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("cache-control: ").map(str::to_string))
            .unwrap_or_default()
    };
    for path in ["/web-ui-fab3eafea15e26f7_bg.wasm", "/styles-90fe9472ed008b61.css"] {
        let (status, head, _) = http_get(server.addr, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(cache(&head), "public, max-age=31536000, immutable", "{path}: {head}");
    }
    for path in ["/", "/index.html", "/wat_worker.js", "/some/route", "/healthz"] {
        let (status, head, _) = http_get(server.addr, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(cache(&head), "no-cache", "{path}: {head}");
    }
    assert!(!rendezvous::is_hashed_asset("/web-ui-fab3eafea15e26f7"), "no extension");
    assert!(!rendezvous::is_hashed_asset("/web-ui-fab3eafea15e26fz.js"), "not hex");
    assert!(!rendezvous::is_hashed_asset("/a-b.js"));
}

#[tokio::test]
async fn graceful_shutdown_tells_clients_and_returns() {
    let server = TestServer::start(test_config()).await;
    let (mut a, _) = login(&server, 1).await;
    let mut unauthenticated = connect(&server).await;
    recv_challenge(&mut unauthenticated).await;
    let addr = server.addr;
    let stopped = tokio::spawn(server.shutdown());
    expect_error(&mut a, ErrorCode::ShuttingDown).await;
    expect_closed(&mut a).await;
    expect_error(&mut unauthenticated, ErrorCode::ShuttingDown).await;
    expect_closed(&mut unauthenticated).await;
    stopped.await.unwrap().expect("serve returns Ok");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "listener closed");
}

#[tokio::test]
async fn invalid_config_is_refused_by_serve() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = Config { rate_burst: 0.0, ..test_config() };
    let err = rendezvous::serve(config, listener, std::future::pending()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn binary_prints_its_address_and_serves() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rendezvous"))
        .args(["--listen", "127.0.0.1:0", "--dist", "/nonexistent/synapse-rdv-test-dist"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rendezvous");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(WAIT, BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("listening line in time")
        .expect("read stdout");
    let addr = line
        .trim_end()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let addr: std::net::SocketAddr = addr.parse().expect("a socket address");
    assert_ne!(addr.port(), 0, "the real bound port is printed");
    let (status, _, body) = http_get(addr, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    child.kill().await.expect("kill");
}

#[cfg(unix)]
#[tokio::test]
async fn binary_exits_cleanly_on_sigterm() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rendezvous"))
        .args(["--listen", "127.0.0.1:0", "--dist", "/nonexistent/synapse-rdv-test-dist", "--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rendezvous");
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    tokio::time::timeout(WAIT, stdout.read_line(&mut line)).await.unwrap().unwrap();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line:?}");
    let pid = child.id().expect("running");
    let status = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill -TERM");
    assert!(status.success());
    let exit = tokio::time::timeout(WAIT, child.wait()).await.expect("exits in time").unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}

#[tokio::test]
async fn genesis_json_serves_the_default_network_or_the_configured_file() {
    use node_wasm::core::genesis::Genesis;
    let server = TestServer::start(test_config()).await;
    let (status, head, body) = http_get(server.addr, "/genesis.json").await;
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("application/json"), "{head}");
    assert!(head.to_ascii_lowercase().contains("access-control-allow-origin: *"), "readable cross-origin: {head}");
    assert_eq!(Genesis::from_json(&body).unwrap(), Genesis::default());

    let dir = std::env::temp_dir().join(format!("rdv-genesis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("genesis.json");
    let mine = Genesis::open("a test network");
    std::fs::write(&path, serde_json::to_string(&mine).unwrap()).unwrap();
    let server = TestServer::start(Config { genesis: Some(path.clone()), ..test_config() }).await;
    let (_, _, body) = http_get(server.addr, "/genesis.json").await;
    assert_eq!(Genesis::from_json(&body).unwrap().hash(), mine.hash());

    // A file with a field out of range stops the server with a sentence.
    let bad = serde_json::to_string(&mine).unwrap().replace("\"validator_floor\":1", "\"validator_floor\":0");
    std::fs::write(&path, bad).unwrap();
    let e = rendezvous::server::Server::new(Config { genesis: Some(path.clone()), ..test_config() }).err().unwrap();
    assert!(e.contains("--genesis") && e.contains("validator_floor"), "{e}");
    let e = rendezvous::server::Server::new(Config { genesis: Some(dir.join("missing.json")), ..test_config() })
        .err()
        .unwrap();
    assert!(e.contains("missing.json"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
