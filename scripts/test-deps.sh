#!/usr/bin/env bash
# Install and start everything the tests need.  Idempotent, and fast when
# everything is already present (no apt-get call at all in that case).
#
#   Debian packages: notary (client + notary-server + notary-signer),
#                    docker-registry, skopeo, softhsm2, postgresql,
#                    exim4-daemon-light (the SMTP sink of the notify tests;
#                    the tests run it on a free loopback port, never as a
#                    system service), etcd-server (under the kube-apiserver
#                    of the webhook tests; never started as a system service),
#                    chromium (the headless browser of the web dashboard's
#                    end-to-end test, internal/e2e/ui)
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
packages=(notary docker-registry skopeo softhsm2 postgresql exim4-daemon-light etcd-server chromium)
missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt_install "${missing[@]}"
fi
for b in notary notary-server notary-signer docker-registry skopeo softhsm2-util pg_ctlcluster pg_isready exim4 etcd chromium; do
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
  "staticcheck honnef.co/go/tools/cmd/staticcheck@v0.8.2"
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

# --- kube-apiserver --------------------------------------------------------
# The admission webhook's tests register it with a real kube-apiserver. The
# module proxy serves k8s.io/kubernetes, but its zip lacks staging/: a small
# build module requires it and replaces every k8s.io/<staging module> its
# go.mod names with the published v0.<minor>.<patch>. Built once per machine
# (6-9 minutes) into the same tool cache; the Makefile exports the path
# (SIGNET_KUBE_APISERVER_BIN).
kube_version=v1.37.2 kube_staging=v0.37.2
kube_dir=$toolcache/kube-apiserver@$kube_version
if [[ ! -x $kube_dir/kube-apiserver ]]; then
  say "building kube-apiserver $kube_version into $kube_dir (6-9 minutes, once per machine)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (
    cd "$work"
    modfile=$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$kube_version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
    [[ -f $modfile ]] || die "go mod download k8s.io/kubernetes@$kube_version gave no go.mod"
    {
      echo "module signet.test/kubeapiserver"
      echo "go 1.26"
      echo "require k8s.io/kubernetes $kube_version"
      sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$modfile" |
        while read -r m; do echo "replace $m => $m $kube_staging"; done
    } > go.mod
    printf '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' > tools.go
    GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
    mkdir -p "$kube_dir.tmp"
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$kube_dir.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  ) || die "building kube-apiserver $kube_version failed"
  rm -rf "$kube_dir" && mv "$kube_dir.tmp" "$kube_dir"
fi
