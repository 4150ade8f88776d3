#!/usr/bin/env bash
# Install and start everything the tests need.  Idempotent, and fast when
# everything is already present (no apt-get call at all in that case).
#
#   Debian packages: notary (client + notary-server + notary-signer),
#                    docker-registry, skopeo, softhsm2, postgresql,
#                    exim4-daemon-light (the SMTP sink of the notify tests;
#                    the tests run it on a free loopback port, never as a
#                    system service)
#   Docker CLI:      must provide `docker trust`; installed from Debian's
#                    docker.io package only when no docker binary exists
#   PostgreSQL:      started if nothing answers on 127.0.0.1:5432
#   Go tools:        built from the Go module proxy into a per-machine cache
#                    (see "Go tools" below)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "test-deps: $*"; }
die() { echo "test-deps: error: $*" >&2; exit 1; }

SUDO=()
if [[ $(id -u) != 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo; cannot install packages"
  SUDO=(sudo)
fi

apt_updated=0
apt_install() {
  if [[ $apt_updated == 0 ]]; then
    say "apt-get update"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  say "installing $*"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# --- Debian packages -------------------------------------------------------
packages=(notary docker-registry skopeo softhsm2 postgresql exim4-daemon-light)
missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt_install "${missing[@]}"
fi
for b in notary notary-server notary-signer docker-registry skopeo softhsm2-util pg_ctlcluster pg_isready exim4; do
  command -v "$b" >/dev/null 2>&1 || [[ -x /usr/sbin/$b ]] || die "$b not found on PATH after installing ${packages[*]}"
done

# systemd-analyze checks deploy/systemd (the systemd package; nothing is started).
if ! command -v systemd-analyze >/dev/null 2>&1; then
  apt_install systemd
fi

# --- Docker CLI ------------------------------------------------------------
if ! command -v docker >/dev/null 2>&1; then
  # The machine image ships a static Docker CLI in /usr/local/bin.  Without
  # it, fall back to Debian's client if the archive has one.
  pkg=
  for candidate in docker-cli docker.io; do
    if apt-cache policy "$candidate" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      pkg=$candidate; break
    fi
  done
  [[ -n $pkg ]] || die "no docker CLI on PATH and no docker-cli/docker.io package in apt; install the Docker CLI (28.x, with 'docker trust') into /usr/local/bin"
  apt_install "$pkg"
  command -v docker >/dev/null 2>&1 || die "installed $pkg but there is still no docker binary on PATH"
fi
docker trust --help >/dev/null 2>&1 || die "$(command -v docker) has no 'docker trust' subcommand (Docker 29 moved it to a plugin); use a Docker CLI 28.x"

# --- PostgreSQL ------------------------------------------------------------
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
  [[ -n $version ]] || die "no cluster under /etc/postgresql; is the postgresql package installed?"
  say "starting PostgreSQL $version/main"
  "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 50); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 0.2
  done
  pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL $version/main did not become ready on 127.0.0.1:5432"
fi

# --- Go tools --------------------------------------------------------------
# One "binary module@version" per line.  Each is built from the Go module
# proxy once per machine into a cache outside the checkout,
#   ${XDG_CACHE_HOME:-$HOME/.cache}/signet/tools/<binary>@<version>/<binary>
# so a fresh clone reuses it.  The Makefile exports the paths to the tests
# (SIGNET_COSIGN_BIN for cosign).
go_tools=(
  "cosign github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3"
)
toolcache=${XDG_CACHE_HOME:-$HOME/.cache}/signet/tools
for entry in "${go_tools[@]}"; do
  bin=${entry%% *} mod=${entry#* }
  dir=$toolcache/$bin@${mod##*@}
  [[ -x $dir/$bin ]] && continue
  say "go install $mod into $dir (a few minutes, once per machine)"
  mkdir -p "$dir.tmp"
  GOBIN=$dir.tmp go install "$mod" || die "go install $mod failed"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
done
