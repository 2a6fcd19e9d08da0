#!/usr/bin/env bash
# State writes, Spread against etcd, in one run on the same disk.
#
# Starts `spread up` and a single-node etcd (Debian's etcd-server), drives the same workload at
# both with `spread-bench` (N concurrent clients doing committed, fsynced writes: a config set on
# Spread, a put through etcd's v3 HTTP/JSON gateway), and prints writes/s, p50, p99 and the ratio.
# Then keeps writing to Spread with one client (so each Raft entry holds one command) until its
# log has passed 100k entries, kills it with SIGKILL and times the restart until the API answers.
#
# Usage: bench/state-writes.sh [clients] [seconds]
set -euo pipefail
CLIENTS=${1:-64}
SECONDS_PER_RUN=${2:-10}
source "$(dirname "$0")/../scripts/lib.sh"

ensure_packages "${BUILD_PACKAGES[@]}" etcd-server curl
ensure_rust
log "building (release)"
cargo build --locked --release -p spread-cli -p spread-bench 2>&1 | tail -1

WORK=$(mktemp -d /var/tmp/spread-bench.XXXXXX)
SPREAD_PID= ETCD_PID=
cleanup() {
  [ -n "$SPREAD_PID" ] && kill -9 "$SPREAD_PID" 2>/dev/null || true
  [ -n "$ETCD_PID" ] && kill -9 "$ETCD_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/home"
API=127.0.0.1:17070
ETCD=127.0.0.1:23790

start_spread() {
  HOME=$WORK/home SPREAD_LOG=warn target/release/spread up --data-dir "$WORK/spread" --api-listen $API \
    >>"$WORK/spread.out" 2>&1 &
  SPREAD_PID=$!
  until curl -sf "http://$API/healthz" >/dev/null; do sleep 0.01; done
}

log "starting spread and etcd"
start_spread
TOKEN=$(awk '/^Admin API token/ {getline; print $1}' "$WORK/spread.out")
etcd --name bench --data-dir "$WORK/etcd" \
  --listen-client-urls "http://$ETCD" --advertise-client-urls "http://$ETCD" \
  --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
  --initial-cluster bench=http://127.0.0.1:23800 --log-level error >"$WORK/etcd.out" 2>&1 &
ETCD_PID=$!
until curl -sf "http://$ETCD/health" >/dev/null; do sleep 0.05; done

echo "# state writes: $CLIENTS clients, ${SECONDS_PER_RUN}s each, data on $(df --output=source "$WORK" | tail -1)"
S=$(target/release/spread-bench state-writes --target spread --url "http://$API" --token "$TOKEN" --clients "$CLIENTS" --seconds "$SECONDS_PER_RUN")
echo "$S"
E=$(target/release/spread-bench state-writes --target etcd --url "http://$ETCD" --clients "$CLIENTS" --seconds "$SECONDS_PER_RUN")
echo "$E"
field() { sed -n "s|.* $1=\([0-9.]*\).*|\1|p" <<<"$2"; }
awk -v sw="$(field writes/s "$S")" -v ew="$(field writes/s "$E")" -v sp="$(field p99_ms "$S")" -v ep="$(field p99_ms "$E")" \
  'BEGIN { printf "ratio    writes/s spread/etcd=%.2f  p99 spread/etcd=%.2f\n", sw/ew, sp/ep }'

log "writing to spread until its raft log passes 100000 entries"
entries() { curl -sf -H "Authorization: Bearer $TOKEN" "http://$API/v1/status" | sed -n 's/.*"last_log_index":\([0-9]*\).*/\1/p'; }
while [ "$(entries)" -lt 100000 ]; do
  target/release/spread-bench state-writes --target spread --url "http://$API" --token "$TOKEN" --clients 1 --apps 1 --seconds 10 >/dev/null
done
N=$(entries)
kill -9 "$SPREAD_PID"; wait "$SPREAD_PID" 2>/dev/null || true
T0=$(date +%s%N)
start_spread
curl -sf -H "Authorization: Bearer $TOKEN" "http://$API/v1/apps" >/dev/null
T1=$(date +%s%N)
echo "restart  after kill -9 with $N raft entries: $(( (T1 - T0) / 1000000 )) ms until the API answers"
