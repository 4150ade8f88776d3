#!/usr/bin/env bash
# bench/signer.sh — signatures/s through signet-signer (software keys, and
# SoftHSM2 keys with a signet-signer built -tags pkcs11), and publishes/s
# through signet-server with its embedded custodian versus --signer. Writes
# the "Signer" section of docs/benchmarks.md (benchreport -only signer),
# leaving the other sections as they are. Run by bench/run.sh (BENCH_ONLY=signer,
# and in the default all); it can also be run alone.
#
# Everything listens on 127.0.0.1 with a throw-away CA made here, every load
# is bounded in time, and every process started here is stopped on exit.
# Knobs (environment):
#   BENCH_SIGNER_CONNS=8  BENCH_SIGNER_DURATION=10s  BENCH_SIGNER_WARMUP=2s  BENCH_SIGNER_REPS=3
#   BENCH_PUBLISH_WORKERS=4  BENCH_PUBLISH_PER_REPO=10  BENCH_PUBLISH_DURATION=15s
#   BENCH_OUT=path  BENCH_KEEP=1  BENCH_COMMIT=text   (as in run.sh)
#   SIGNET_SOFTHSM_MODULE=path   the SoftHSM2 module (default: Debian's)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")" && git rev-parse --show-toplevel)
conns=${BENCH_SIGNER_CONNS:-8}
duration=${BENCH_SIGNER_DURATION:-10s}
warmup=${BENCH_SIGNER_WARMUP:-2s}
reps=${BENCH_SIGNER_REPS:-3}
pub_workers=${BENCH_PUBLISH_WORKERS:-4}
pub_per_repo=${BENCH_PUBLISH_PER_REPO:-10}
pub_duration=${BENCH_PUBLISH_DURATION:-15s}
out=${BENCH_OUT:-$repo/docs/benchmarks.md}

say() { printf 'bench/signer: %s\n' "$*" >&2; }
die() {
  printf '\nbench/signer.sh: FAILED: %s\n' "$*" >&2
  exit 1
}

module=${SIGNET_SOFTHSM_MODULE:-}
if [[ -z $module ]]; then
  for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so; do
    [[ -f $m ]] && { module=$m; break; }
  done
fi
[[ -n $module && -f $module ]] || die "SoftHSM2 is not installed (apt-get install softhsm2; or set SIGNET_SOFTHSM_MODULE)"
for c in softhsm2-util openssl curl ss go git gcc; do
  command -v "$c" >/dev/null || die "$c is not installed (run scripts/test-deps.sh)"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/signet-bench-signer.XXXXXX")
bin=$tmp/bin pki=$tmp/pki results=$tmp/results.jsonl
mkdir -p "$bin" "$pki"
: >"$results"
pids=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [[ $rc -ne 0 || ${BENCH_KEEP:-0} == 1 ]]; then
    say "logs, data and raw results kept in $tmp"
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

next_port=24500
port=
free_port() { # sets port to a free port above the last one handed out (no subshell: it counts)
  while [[ -n $(ss -Hltn "sport = :$next_port") ]]; do next_port=$((next_port + 1)); done
  port=$next_port
  next_port=$((next_port + 1))
}
# port_owner PORT PID: is PORT listened on by PID (not by another server)?
port_owner() { ss -Hltnp "sport = :$1" | grep -q "pid=$2,"; }

# wait_ready NAME PID PORT URL LOG [curl args…]: poll URL until PID answers it with 200 on
# PORT, failing loudly if PID dies or 30 s pass.
wait_ready() {
  local name=$1 pid=$2 p=$3 url=$4 log=$5 i
  shift 5
  for i in $(seq 1 150); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "---- $name exited; last lines of $log" >&2
      tail -n 30 "$log" >&2 || true
      return 1
    fi
    if curl -fsS -o /dev/null --max-time 2 --cacert "$pki/ca.crt" "$@" "$url" 2>/dev/null && port_owner "$p" "$pid"; then
      say "$name ready at $url (pid $pid)"
      return 0
    fi
    sleep 0.2
  done
  echo "---- $name not ready after 30 s; last lines of $log" >&2
  tail -n 30 "$log" >&2 || true
  return 1
}

# ---- build
say "building bench tools, signet-server, signet-signer and signet-signer -tags pkcs11"
(cd "$repo/bench" && go build -o "$bin/" ./cmd/signload ./cmd/publishload ./cmd/benchreport) || die "bench tools do not build"
(cd "$repo" && go build -o "$bin/signet-server" ./cmd/signet-server) || die "signet-server does not build"
(cd "$repo" && go build -o "$bin/signet-signer" ./cmd/signet-signer) || die "signet-signer does not build"
(cd "$repo" && go build -tags pkcs11 -o "$bin/signet-signer-pkcs11" ./cmd/signet-signer) ||
  die "signet-signer does not build with -tags pkcs11 (needs cgo: gcc)"

# ---- PKI: one CA; the signers' and the server's certificates for 127.0.0.1; one client certificate
say "making a throw-away CA in $pki"
(
  cd "$pki"
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
  openssl req -x509 -new -key ca.key -subj /CN=signet-bench-ca -days 2 -out ca.crt \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
  for leaf in signer:serverAuth server:serverAuth client:clientAuth; do
    name=${leaf%%:*} eku=${leaf##*:}
    openssl ecparam -name prime256v1 -genkey -noout -out "$name.ec" 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in "$name.ec" -out "$name.key"
    openssl req -new -key "$name.key" -subj "/CN=signet-bench-$name" -out "$name.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=%s\nkeyUsage=critical,digitalSignature\n' "$eku" >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  done
) || die "could not make the test PKI with openssl"
mtls=(--cert "$pki/client.crt" --key "$pki/client.key")

# ---- a SoftHSM2 token of our own
export SOFTHSM2_CONF=$tmp/softhsm2.conf
mkdir -p "$tmp/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' "$tmp/tokens" >"$SOFTHSM2_CONF"
pin=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
so_pin=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
softhsm2-util --init-token --free --label signet-bench --so-pin "$so_pin" --pin "$pin" >/dev/null ||
  die "softhsm2-util could not initialise a token"

# ---- the two signers
start_signer() { # NAME BIN PORT [args…]
  local name=$1 b=$2 port=$3
  shift 3
  SIGNET_SIGNER_PASSPHRASE_DEFAULT=bench-$RANDOM$RANDOM SIGNET_SIGNER_PKCS11_PIN=$pin \
    "$b" --listen "127.0.0.1:$port" --data-dir "$tmp/$name-data" --tls-cert "$pki/signer.crt" \
    --tls-key "$pki/signer.key" --client-ca "$pki/ca.crt" --log-level warn "$@" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  wait_ready "signet-signer ($name)" "$!" "$port" "https://127.0.0.1:$port/v1/health" "$tmp/$name.log" "${mtls[@]}" ||
    die "signet-signer ($name) did not start"
}
free_port
sw_port=$port
free_port
hsm_port=$port
start_signer software "$bin/signet-signer" "$sw_port"
start_signer softhsm "$bin/signet-signer-pkcs11" "$hsm_port" --pkcs11 "pkcs11:token=signet-bench?module-path=$module"
grep -q 'new keys in PKCS#11 pkcs11:token=signet-bench' "$tmp/softhsm.log" ||
  die "the softhsm signer does not say it creates keys in the token; see $tmp/softhsm.log"
declare -A signer_url=([software]=https://127.0.0.1:$sw_port [softhsm]=https://127.0.0.1:$hsm_port)

failed=0
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq 1 "$reps"); do
  for run in software:ecdsa softhsm:ecdsa software:ed25519; do
    s=${run%%:*} alg=${run##*:}
    say "rep $rep/$reps: sign $alg through $s ($conns in flight, $warmup + $duration)"
    if ! "$bin/signload" -url "${signer_url[$s]}" -ca "$pki/ca.crt" -cert "$pki/client.crt" -key "$pki/client.key" \
      -alg "$alg" -c "$conns" -d "$duration" -warmup "$warmup" -label "$s" -rep "$rep" >>"$results"; then
      say "sign $alg through $s failed"
      failed=1
    fi
    tail -n 1 "$results" >&2
  done
done

# ---- signet-server: embedded custodian, and --signer to each signer
start_server() { # NAME PORT [args…]
  local name=$1 port=$2
  shift 2
  # The publish load initialises many repositories: the default limit on keys for repositories
  # without metadata (limits.new_repository_keys_*) would turn it away with 429.
  printf 'tls_no_post_quantum: true\nlimits:\n  new_repository_keys_per_second: 1000\n  new_repository_keys_burst: 1000\n' >"$tmp/server-$name.yaml"
  SIGNET_KEY_PASSPHRASE=bench-$RANDOM$RANDOM \
    "$bin/signet-server" --config "$tmp/server-$name.yaml" --listen "127.0.0.1:$port" --data-dir "$tmp/server-$name-data" \
    --tls-cert "$pki/server.crt" --tls-key "$pki/server.key" "$@" >"$tmp/server-$name.log" 2>&1 &
  pids+=($!)
  wait_ready "signet-server ($name)" "$!" "$port" "https://127.0.0.1:$port/v2/" "$tmp/server-$name.log" ||
    die "signet-server ($name) did not start"
}
declare -A server_url
for name in embedded remote remote-softhsm; do
  free_port
  case $name in
  embedded) start_server "$name" "$port" ;;
  remote) start_server "$name" "$port" --signer "${signer_url[software]}" \
    --signer-cert "$pki/client.crt" --signer-key "$pki/client.key" --signer-ca "$pki/ca.crt" ;;
  remote-softhsm) start_server "$name" "$port" --signer "${signer_url[softhsm]}" \
    --signer-cert "$pki/client.crt" --signer-key "$pki/client.key" --signer-ca "$pki/ca.crt" ;;
  esac
  server_url[$name]=https://127.0.0.1:$port
done
for rep in $(seq 1 "$reps"); do
  for name in embedded remote remote-softhsm; do
    say "rep $rep/$reps: publish on signet-server ($name; $pub_workers workers x $pub_per_repo publishes per repository, $pub_duration)"
    if ! "$bin/publishload" -url "${server_url[$name]}" -ca "$pki/ca.crt" -workers "$pub_workers" -publishes "$pub_per_repo" \
      -d "$pub_duration" -label "$name" -rep "$rep" -gun-prefix "example.com/publish/$name-r$rep" \
      -trust-dir "$tmp/trust-publish-$name-$rep" >>"$results"; then
      say "publish on $name failed (see the first_error and durability fields)"
      failed=1
    fi
    tail -n 1 "$results" >&2
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report: only the signer section of $out
if [[ -n ${BENCH_COMMIT:-} ]]; then
  commit=$BENCH_COMMIT
else
  commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo "none (no commits yet)")
  [[ -n $(git -C "$repo" status --porcelain 2>/dev/null) ]] && commit+=" + uncommitted changes"
fi
notes=()
if awk -v l="${load_start%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  notes+=(-note "The load average was already $load_start on $(nproc) cores when the loads started: other work on this machine skews these figures; compare the configurations within a repetition.")
fi
"$bin/benchreport" -only signer "${notes[@]}" -in "$results" -out "$out" \
  -date "$(date -u '+%Y-%m-%d %H:%M UTC')" -nproc "$(nproc)" \
  -cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" -commit "$commit" \
  -signer-conns "$conns" -signer-duration "$duration" -signer-warmup "$warmup" -signer-reps "$reps" \
  -signer-load "$load_start → $load_end" -softhsm-version "$(dpkg-query -W -f='${Version}' softhsm2 2>/dev/null || echo unknown)" \
  -publish-workers "$pub_workers" -publish-per-repo "$pub_per_repo" -publish-duration "$pub_duration" ||
  die "could not write the report"
say "wrote the signer section of $out"
[[ $failed == 0 ]] || die "some loads failed; figures were written, see the errors in $out"
