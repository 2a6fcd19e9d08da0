#!/usr/bin/env bash
# Instance start latency and daemon memory, Spread against plain runc, in one run.
#
# Builds the release binaries, then `spread-bench instance-start` compiles the test app
# (crates/cli/tests/fixtures/app_probe.c) statically, pushes it as an image to a local
# docker-registry, starts `spread up` with its node agent on a network, cgroup parent and uid
# range of its own, and times N starts of one instance (scale request -> accepting TCP on $PORT)
# alternating with N plain `runc run`s of an equivalent bundle (the same hardened config.json,
# timed until the probe accepts TCP in the container's network namespace). Then it scales to
# 20 instances and reads the RSS of `spread up` and of the monitors. Everything it made is
# removed when it ends, also on failure or Ctrl-C. The daemon's log is kept in the file
# given as the third argument (set SPREAD_LOG=info to see its phases).
#
# Usage: sudo bench/instance-start.sh [runs] [instances] [daemon-log]
set -euo pipefail
RUNS=${1:-30}
INSTANCES=${2:-20}
DAEMON_LOG=${3:-}
source "$(dirname "$0")/../scripts/lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root: the node agent and plain runc need it"
ensure_packages "${BUILD_PACKAGES[@]}" "${RUNTIME_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
ensure_rust
log "building (release)"
cargo build --locked --release -p spread-cli -p spread-bench 2>&1 | tail -1

cgroups=v1; [ -d /sys/fs/cgroup/unified ] && cgroups="v1 hybrid"
[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && cgroups=v2
echo "# instance start: $(nproc) cores, $(runc --version | head -1), cgroup $cgroups, kernel $(uname -r)"
target/release/spread-bench instance-start --spread target/release/spread \
  --runs "$RUNS" --instances "$INSTANCES" ${DAEMON_LOG:+--daemon-log "$DAEMON_LOG"}
