# Shared by scripts/up.sh and scripts/test.sh: install what is missing on a Debian 12 machine.
# Sourced, not run.

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Debian packages Spread needs to build and run.
BUILD_PACKAGES=(ca-certificates gcc libc6-dev pkg-config)
# What running and building apps needs: the OCI runtime, network namespaces, nftables, and
# debootstrap for the builder root filesystems.
RUNTIME_PACKAGES=(runc iproute2 nftables debootstrap)
# What only the tests need: a local OCI registry to pull from.
TEST_PACKAGES=(docker-registry)

ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]}; run this script as root, or install them with apt-get"
  log "installing ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_rust() {
  command -v cargo >/dev/null 2>&1 || die "cargo is not installed: install Rust 1.95 or newer with rustup, then run this again"
  local v
  v=$(cargo --version | awk '{print $2}')
  local major=${v%%.*} rest=${v#*.}
  local minor=${rest%%.*}
  if [ "$major" -lt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -lt 95 ]; }; then
    die "cargo $v is too old: Spread needs Rust 1.95 or newer (rustup update)"
  fi
}

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
