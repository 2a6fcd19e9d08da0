#!/usr/bin/env bash
# Installs what is missing, builds Spread and runs the whole test suite: formatting, clippy with
# warnings as errors, and every test (unit, property, API, end to end with the real binary).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ensure_packages "${BUILD_PACKAGES[@]}" "${RUNTIME_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
ensure_rust
if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

log "cargo fmt --check"
cargo fmt --all --check
log "cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
log "cargo nextest"
cargo nextest run --locked --workspace --no-fail-fast
