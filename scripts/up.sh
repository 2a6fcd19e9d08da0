#!/usr/bin/env bash
# Installs what is missing, builds Spread and starts the single-node platform.
# Usage: scripts/up.sh [spread up flags...], e.g. scripts/up.sh --domain example.com
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ensure_packages "${BUILD_PACKAGES[@]}" "${RUNTIME_PACKAGES[@]}"
ensure_rust
log "building spread (release)"
cargo build --locked --release -p spread-cli
log "starting spread up"
exec target/release/spread up "$@"
