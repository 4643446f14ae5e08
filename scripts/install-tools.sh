#!/usr/bin/env bash
# Installs, idempotently, every tool the build and the tests need on a fresh
# Debian machine that has only Rust: the wasm32 target, wasm-bindgen-cli,
# wasm-pack, trunk, wasm-opt 132 (npm binaryen), Debian chromium +
# chromium-driver, and coturn, nftables and iproute2 for the TURN and NAT
# tests. Each step is guarded by a version check, so a kept machine
# skips it. Never installs Debian's binaryen (its wasm-opt 108 breaks
# wasm-bindgen 0.2.130 output).
#
# Usage: scripts/install-tools.sh [--no-trunk]
# Afterwards put "$(scripts/install-tools.sh --print-path)" first on PATH.
set -euo pipefail

WASM_BINDGEN_VERSION=0.2.130
TRUNK_VERSION=0.21.14
BINARYEN_VERSION=132
TOOLS_DIR="${SYNAPSE_TOOLS_DIR:-$HOME/.cache/synapse-ng-tools}"

if [ "${1:-}" = "--print-path" ]; then
  echo "$TOOLS_DIR/node_modules/.bin"
  exit 0
fi
want_trunk=1
[ "${1:-}" = "--no-trunk" ] && want_trunk=0

log() { echo "[install-tools] $*" >&2; }
export PATH="$HOME/.cargo/bin:$PATH"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  log "installing Debian chromium + chromium-driver"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium chromium-driver
fi

# coturn (the real TURN server of tests/tests/turn.rs and nat.rs), iproute2
# and nftables (the network namespaces, veths and masquerading routers of
# tests/tests/nat.rs). Debian's coturn ships a service that must not start
# and hold port 3478: /etc/default/coturn leaves it disabled, and a
# policy-rc.d that refuses service starts is put in place for the install if
# the machine has none (containers usually do). The tests start their own
# turnserver on free ports either way.
if ! command -v turnserver >/dev/null || ! command -v nft >/dev/null || ! command -v ip >/dev/null; then
  log "installing Debian coturn, nftables, iproute2"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  added_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q coturn nftables iproute2
  if [ "$added_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
  # Should a service manager have started it anyway, stop and disable it.
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now coturn >/dev/null 2>&1 || true
  fi
fi

if [ ! -x "$TOOLS_DIR/node_modules/.bin/wasm-opt" ] || \
   ! "$TOOLS_DIR/node_modules/.bin/wasm-opt" --version 2>/dev/null | grep -q "version $BINARYEN_VERSION"; then
  log "installing wasm-opt $BINARYEN_VERSION from npm binaryen into $TOOLS_DIR"
  mkdir -p "$TOOLS_DIR"
  npm install --prefix "$TOOLS_DIR" --no-audit --no-fund "binaryen@$BINARYEN_VERSION" >&2
fi

if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION"; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (no --locked: its lock pins a crate the registry lacks)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

if ! command -v wasm-pack >/dev/null; then
  log "installing wasm-pack"
  cargo install wasm-pack --locked
fi

if [ "$want_trunk" = 1 ] && ! trunk --version 2>/dev/null | grep -q " $TRUNK_VERSION"; then
  log "installing trunk $TRUNK_VERSION (0.22 needs rustc 1.96)"
  cargo install trunk --version "$TRUNK_VERSION" --locked --force
fi
log "tools ready"
