#!/usr/bin/env bash
# Reverse proxies side by side on loopback: one nginx backend answering a short body, and in
# front of it nginx (upstream keepalive), haproxy and Spread's gateway (the `bench_gateway`
# example), each driven by the same wrk run (keep-alive GETs). Also the backend directly.
# Prints req/s, p50 and p99 per target. Installs nothing.
#
# Usage: bench/gateway.sh [seconds] [connections]
# Env:   GW_THREADS=N  threads of the gateway's own runtime (default: what `spread up` uses,
#                      spread_gateway::DEFAULT_THREADS, 1: on a small machine where wrk, the
#                      backend and the proxy share the CPUs, a second thread only adds
#                      cross-thread wake-ups; try the CPU count on a larger one)
#        GW_ACCESS_LOG=1  make an access log line per request and send it to a thread over a
#                      channel, as `spread up` does (counted there, not written)
set -euo pipefail
D=${1:-10}
C=${2:-64}
source "$(dirname "$0")/../scripts/lib.sh"

missing=()
for tool in wrk nginx haproxy; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: install them with apt-get install wrk nginx-light haproxy"
ensure_rust

BACKEND=127.0.0.1:9000 NGINX=127.0.0.1:9101 HAPROXY=127.0.0.1:9102 SPREAD=127.0.0.1:9104
T=$(mktemp -d /tmp/spread-gateway-bench.XXXXXX)
GW_PID=
cleanup() {
  for pidfile in "$T/backend.pid" "$T/nginx.pid" "$T/haproxy.pid"; do
    [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

log "building the gateway example (release)"
cargo build --locked --release -p spread-gateway --example bench_gateway 2>&1 | tail -1

# nginx runs as the calling user with every path under $T, so no root is needed.
common="daemon on; error_log $T/error.log; events { worker_connections 4096; }"
cat >"$T/backend.conf" <<NG
worker_processes 1; pid $T/backend.pid; $common
http { access_log off; client_body_temp_path $T/b-body; proxy_temp_path $T/b-proxy;
  fastcgi_temp_path $T/b-fcgi; uwsgi_temp_path $T/b-uwsgi; scgi_temp_path $T/b-scgi;
  server { listen $BACKEND; location / { return 200 "hello from backend\n"; } } }
NG
cat >"$T/nginx.conf" <<NG
worker_processes auto; pid $T/nginx.pid; $common
http { access_log off; client_body_temp_path $T/n-body; proxy_temp_path $T/n-proxy;
  fastcgi_temp_path $T/n-fcgi; uwsgi_temp_path $T/n-uwsgi; scgi_temp_path $T/n-scgi;
  upstream backend { server $BACKEND; keepalive 128; }
  server { listen $NGINX; location / {
    proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
NG
cat >"$T/haproxy.cfg" <<HA
global
  daemon
  pidfile $T/haproxy.pid
  nbthread 2
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend proxy
  bind $HAPROXY
  default_backend backend
backend backend
  http-reuse always
  server s1 $BACKEND
HA

log "starting the backend, nginx, haproxy and the gateway"
nginx -p "$T" -c "$T/backend.conf" -e "$T/error.log"
nginx -p "$T" -c "$T/nginx.conf" -e "$T/error.log"
haproxy -f "$T/haproxy.cfg"
gw_args=(--listen "$SPREAD" --backend "$BACKEND" --host bench.localhost)
[ -z "${GW_THREADS:-}" ] || gw_args+=(--threads "$GW_THREADS")
[ -z "${GW_ACCESS_LOG:-}" ] || gw_args+=(--access-log)
target/release/examples/bench_gateway "${gw_args[@]}" 2>"$T/gateway.log" &
GW_PID=$!

wait_for() { # name addr
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://$2/" 2>/dev/null && return 0
    sleep 0.1
  done
  die "$1 did not answer on $2; see its log in $T"
}
command -v curl >/dev/null 2>&1 || die "missing curl: install it with apt-get install curl"
wait_for backend $BACKEND; wait_for nginx $NGINX; wait_for haproxy $HAPROXY; wait_for spread $SPREAD

run() { # name addr
  local out rps p50 p99 errors
  out=$(wrk -t1 -c"$C" -d"${D}s" --latency "http://$2/" 2>&1)
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ {sub(/^ +/, ""); printf "%s; ", $0}' <<<"$out")
  printf "%-8s %12s %10s %10s  %s\n" "$1" "$rps" "$p50" "$p99" "$errors"
}

access_log=off
[ -z "${GW_ACCESS_LOG:-}" ] || access_log=on
echo "# wrk -t1 -c$C -d${D}s --latency, keep-alive GETs of a 19-byte body; $(nproc) CPUs;" \
  "gateway: ${GW_THREADS:-default} thread(s), access log $access_log"
printf "%-8s %12s %10s %10s\n" target "req/s" p50 p99
run direct $BACKEND
run nginx $NGINX
run haproxy $HAPROXY
run spread $SPREAD
