//! Where the binaries and the built UI are, with clear failures when missing.

use std::path::{Path, PathBuf};

/// The workspace root (this crate's parent directory).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the e2e crate lives inside the workspace").to_path_buf()
}

fn from_env_or(var: &str, default: PathBuf) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => default,
    }
}

/// The rendezvous binary: `$SYNAPSE_RENDEZVOUS_BIN`, default
/// `<workspace>/target/debug/rendezvous`. Panics with the build command when
/// it does not exist.
pub fn rendezvous_bin() -> PathBuf {
    let bin = from_env_or("SYNAPSE_RENDEZVOUS_BIN", workspace_dir().join("target/debug/rendezvous"));
    assert!(
        bin.is_file(),
        "rendezvous binary not found at {}: run `cargo build -p rendezvous` first \
         (or point SYNAPSE_RENDEZVOUS_BIN at it, e.g. when CARGO_TARGET_DIR is set)",
        bin.display()
    );
    bin
}

/// The built UI: `$SYNAPSE_DIST`, default `<workspace>/dist`. Panics with the
/// build command when `index.html` is missing.
pub fn dist_dir() -> PathBuf {
    let dist = from_env_or("SYNAPSE_DIST", workspace_dir().join("dist"));
    assert!(
        dist.join("index.html").is_file(),
        "built UI not found: {} is missing; run `trunk build --release` in the workspace \
         (or point SYNAPSE_DIST at a built dist directory)",
        dist.join("index.html").display()
    );
    dist
}

/// chromedriver: `$SYNAPSE_CHROMEDRIVER`, default `/usr/bin/chromedriver`.
pub fn chromedriver_bin() -> PathBuf {
    let bin = from_env_or("SYNAPSE_CHROMEDRIVER", PathBuf::from("/usr/bin/chromedriver"));
    assert!(
        bin.is_file(),
        "chromedriver not found at {}: install it (`apt-get install chromium-driver`) \
         or set SYNAPSE_CHROMEDRIVER",
        bin.display()
    );
    bin
}

/// Chromium: `$SYNAPSE_CHROMIUM`, default `/usr/bin/chromium`.
pub fn chromium_bin() -> PathBuf {
    let bin = from_env_or("SYNAPSE_CHROMIUM", PathBuf::from("/usr/bin/chromium"));
    assert!(
        bin.is_file(),
        "Chromium not found at {}: install it (`apt-get install chromium`) \
         or set SYNAPSE_CHROMIUM",
        bin.display()
    );
    bin
}
