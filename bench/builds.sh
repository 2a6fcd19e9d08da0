#!/usr/bin/env bash
# Builds every example with a fresh `spread up` (cold: new app, no dependency cache; warm: a
# code-only change) and prints build times and image sizes, beside the usual "slim" anchor:
# the same Python app installed into a Debian minbase root with python3, measured in the same
# run. Then the deploy latency of a code change to the Python example with warm caches: from
# the deploy command's start until the gateway answers with the new code (build, rollout,
# route switch). Builder roots are cached in $CACHE (made on first use, not counted). Needs
# root.
#   sudo bench/builds.sh [CACHE]
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${1:-/var/cache/spread-test/builder}
BIN=${SPREAD_BIN:-target/release/spread}
[[ -x $BIN ]] || cargo build --release -p spread-cli
WORK=$(mktemp -d /tmp/spread-bench-builds.XXXXXX)
chmod 755 "$WORK"  # containers run as other users and must reach their bundles under it
export XDG_CONFIG_HOME=$WORK/config
PORT=7391
HTTP=7392
cleanup() {
  pkill -TERM -f "$WORK/data" || true
  sleep 1
  for c in $(runc --root "$WORK/data/runc" list -q 2>/dev/null); do
    runc --root "$WORK/data/runc" kill "$c" KILL 2>/dev/null || true
    sleep 0.2
    runc --root "$WORK/data/runc" delete --force "$c" 2>/dev/null || true
  done
  pkill -f "spread monitor --config $WORK" || true
  grep "$WORK" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l || true
  ip link del spbench0 2>/dev/null || true
  nft delete table ip spbench_nat 2>/dev/null || true
  nft delete table inet spbench_filter 2>/dev/null || true
  for dir in /sys/fs/cgroup/*/spread-bench /sys/fs/cgroup/spread-bench; do
    [[ -d $dir ]] && find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
cat > "$WORK/net.toml" <<TOML
bridge = "spbench0"
cluster = "10.247.0.0/16"
node = 1
protected_ports = [$PORT]
netns_dir = "$WORK/netns"
nat_table = "spbench_nat"
filter_table = "spbench_filter"
TOML
"$BIN" up --data-dir "$WORK/data" --api-listen 127.0.0.1:$PORT --http-listen 127.0.0.1:$HTTP \
  --builder-cache "$CACHE" \
  --net-config "$WORK/net.toml" --cgroup-parent /spread-bench >"$WORK/daemon.log" 2>&1 &
for _ in $(seq 100); do grep -q "Spread is up" "$WORK/daemon.log" && break; sleep 0.1; done

seconds() { local start=$1; echo "scale=2; ($(date +%s%N) - start) / 1000000000" | sed "s/start/$start/" | bc; }
image_size() { # compressed and uncompressed bytes of the app's newest image
  local digest
  digest=$("$BIN" releases -a "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["image"]["digest"].split(":")[1])')
  python3 - "$WORK/data/images" "$digest" <<'PY'
import gzip, json, os, sys
store, digest = sys.argv[1], sys.argv[2]
blob = lambda d: os.path.join(store, "blobs", "sha256", d.split(":")[-1])
manifest = json.load(open(blob(digest)))
packed = sum(l["size"] for l in manifest["layers"])
unpacked = sum(len(gzip.open(blob(l["digest"])).read()) for l in manifest["layers"])
print(f"{packed / 2**20:.1f} MiB {unpacked / 2**20:.1f} MiB")
PY
}

# Deploy latency: a code change to the Python example, warm caches, until the new text is served.
src=$WORK/src-latency
cp -r examples/python "$src"
"$BIN" apps create latency >/dev/null
"$BIN" deploy "$src" -a latency >"$WORK/latency.0" 2>&1 || { cat "$WORK/latency.0" "$WORK/daemon.log"; exit 1; }
latencies=()
for round in 1 2 3 4 5; do
  sed -i "s/on Spread!\( round [0-9]*\)\?/on Spread! round $round/" "$src/app.py"
  start=$(date +%s%N)
  "$BIN" deploy "$src" -a latency >"$WORK/latency.$round" 2>&1 || { cat "$WORK/latency.$round"; exit 1; }
  until curl -sf -H "Host: latency.localhost" "http://127.0.0.1:$HTTP/" | grep -q "round $round"; do
    sleep 0.02
  done
  latencies+=("$(seconds "$start")")
done
printf 'deploy latency (code change, warm, until the new code answers): %s s\n\n' "${latencies[*]}"

printf '%-8s %10s %10s %14s %14s\n' stack cold warm compressed unpacked
for stack in python node go static binary; do
  src=$WORK/src-$stack
  cp -r "examples/$stack" "$src"
  [[ $stack == binary ]] && gcc -O2 -o "$src/server" "$src/server.c"
  "$BIN" apps create "b-$stack" >/dev/null
  start=$(date +%s%N); "$BIN" deploy "$src" -a "b-$stack" >"$WORK/$stack.cold" 2>&1; cold=$(seconds "$start")
  for f in app.py server.js main.go public/index.html Procfile; do
    [[ -f $src/$f ]] && { echo >>"$src/$f"; break; }
  done
  start=$(date +%s%N); "$BIN" deploy "$src" -a "b-$stack" >"$WORK/$stack.warm" 2>&1; warm=$(seconds "$start")
  read -r packed punit unpacked uunit < <(image_size "b-$stack")
  printf '%-8s %9ss %9ss %10s %s %10s %s\n' "$stack" "$cold" "$warm" "$packed" "$punit" "$unpacked" "$uunit"
done

# The anchor: Debian minbase + python3 + venv + the same requirements, as a "slim" image would.
ROOT=$(ls -d "$CACHE"/python-*/rootfs | head -1)
ANCHOR=$WORK/anchor
cp -a "$ROOT" "$ANCHOR"
cp examples/python/requirements.txt "$ANCHOR/tmp/"
cp /etc/resolv.conf "$ANCHOR/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$ANCHOR/tmp/host-ca.crt"  # as build steps trust the host's CAs
start=$(date +%s%N)
chroot "$ANCHOR" env -i PATH=/usr/bin:/bin HOME=/tmp python3 -m venv /srv/venv >/dev/null
chroot "$ANCHOR" env -i PATH=/usr/bin:/bin HOME=/tmp /srv/venv/bin/pip install -q --no-cache-dir \
  --cert /tmp/host-ca.crt -r /tmp/requirements.txt >/dev/null
anchor_time=$(seconds "$start")
rm "$ANCHOR/tmp/host-ca.crt" "$ANCHOR/tmp/requirements.txt"
anchor_unpacked=$(du -sb "$ANCHOR" | cut -f1)
anchor_packed=$(tar -C "$ANCHOR" -cf - . | gzip -6 | wc -c)
printf '%-8s %9ss %10s %14s %14s\n' anchor "$anchor_time" "-" \
  "$(echo "scale=1; $anchor_packed / 1048576" | bc) MiB" "$(echo "scale=1; $anchor_unpacked / 1048576" | bc) MiB"
echo "(anchor: Debian minbase bookworm + python3, python3-venv, python3-pip + requirements.txt in a venv; cold time is the pip install only)"
