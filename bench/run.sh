#!/usr/bin/env bash
# bench/run.sh — side-by-side benchmark of signet-server, the reference
# notary-server 0.7.0 (Debian) and a bare Go TLS server; writes
# docs/benchmarks.md. Called by `make bench` after scripts/test-deps.sh.
#
# Everything listens on 127.0.0.1, every load is bounded in time, and every
# process started here is stopped on exit. Knobs (environment):
#   BENCH_CONNS=32  BENCH_DURATION=10s  BENCH_WARMUP=2s  BENCH_REPS=3  BENCH_TAGS=20
#   BENCH_PUBLISH_WORKERS=4  BENCH_PUBLISH_PER_REPO=10  BENCH_PUBLISH_DURATION=15s
#   BENCH_CONNECT_DURATION=8s (server CPU per new TLS connection: one connection, keep-alive off)
#   BENCH_WORKLOADS="timestamp snapshot targets checksum"
#   BENCH_SKIP_SIGNET=1   measure only the reference and bare servers (the report says so)
#   BENCH_SIGNET_BIN=path use this signet-server binary instead of building ./cmd/signet-server
#   BENCH_ONLY=all|server|client|signer  run every part (default), only the server loads, only
#                         the client benchmark, or only the signer benchmark (bench/signer.sh:
#                         signatures/s through signet-signer, software and SoftHSM2, and
#                         publishes/s with the embedded custodian vs --signer; its knobs are at the
#                         top of signer.sh); client-only and signer-only replace just their section
#                         of an existing report and keep the other figures in it
#   BENCH_ONLY=postgres   only bench/postgres.sh: signet-server --db postgres://… beside the
#                         reference on the same PostgreSQL server, 1–3 replicas on one database,
#                         growth to 100,000 repositories and to 100,000 tags (its knobs are at
#                         the top of postgres.sh); replaces just the "PostgreSQL" section. Also
#                         run by the default all, after the signer benchmark
#   client benchmark (signet list vs notary list, signet/docker trust inspect, cold cache):
#   BENCH_CLIENT_TAGS=10000  BENCH_CLIENT_REPS=5  BENCH_CLIENT_WARMUP=1
#   BENCH_CLIENT_RUN_TIMEOUT=60s (one command)  BENCH_CLIENT_MAX=20m (the whole client part)
#   BENCH_SIGNET_CLI_BIN=path use this signet client instead of building ./cmd/signet
#   BENCH_COMMIT=text     what the report names as the commit measured (default: git describes
#                         the work tree; set it when the *_BIN binaries come from elsewhere)
#   BENCH_OUT=path        report file (default docs/benchmarks.md)
#   BENCH_KEEP=1          keep the temporary directory (logs, data, raw JSON lines)
# The reference runs with this repository's recipe (internal/e2e/reference, through its
# command notary-reference): certificates, configs and free loopback ports of its own.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")" && git rev-parse --show-toplevel)

conns=${BENCH_CONNS:-32}
duration=${BENCH_DURATION:-10s}
warmup=${BENCH_WARMUP:-2s}
reps=${BENCH_REPS:-3}
tags=${BENCH_TAGS:-20}
pub_workers=${BENCH_PUBLISH_WORKERS:-4}
pub_per_repo=${BENCH_PUBLISH_PER_REPO:-10}
pub_duration=${BENCH_PUBLISH_DURATION:-15s}
connect_duration=${BENCH_CONNECT_DURATION:-8s}
workloads=${BENCH_WORKLOADS:-timestamp snapshot targets checksum}
skip_signet=${BENCH_SKIP_SIGNET:-0}
out=${BENCH_OUT:-$repo/docs/benchmarks.md}
only=${BENCH_ONLY:-all}
client_tags=${BENCH_CLIENT_TAGS:-10000}
client_reps=${BENCH_CLIENT_REPS:-5}
client_warmup=${BENCH_CLIENT_WARMUP:-1}
client_run_timeout=${BENCH_CLIENT_RUN_TIMEOUT:-60s}
client_max=${BENCH_CLIENT_MAX:-20m}
gun=example.com/bench/app
client_gun=example.com/bench/tags$client_tags

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
  printf '\nbench/run.sh: FAILED: %s\n' "$*" >&2
  exit 1
}

case $only in
all | server | client) ;;
signer) exec "$repo/bench/signer.sh" ;; # needs none of the reference's tools
postgres) exec "$repo/bench/postgres.sh" ;; # starts its own reference on PostgreSQL
*) die "BENCH_ONLY=$only: want all, server, client, signer or postgres" ;;
esac
run_server=0 run_client=0
[[ $only == client ]] || run_server=1
[[ $only == server ]] || run_client=1
[[ $run_client == 0 || $only == all || -f $out ]] ||
  die "BENCH_ONLY=client replaces the client section of $out, which does not exist (run the whole benchmark once)"

for c in notary-server notary-signer curl ss go git; do
  command -v "$c" >/dev/null || die "$c is not installed (run scripts/test-deps.sh)"
done
if [[ $run_client == 1 ]]; then
  # The clients signet is measured against: notary (Debian package notary, with the
  # server) and the docker CLI (no daemon is used). Neither is built here.
  command -v notary >/dev/null || die "the notary client is not installed (Debian package notary; or BENCH_ONLY=server)"
  command -v docker >/dev/null || die "the docker CLI is not installed (Debian package docker-cli; or BENCH_ONLY=server)"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/signet-bench.XXXXXX")
run_dir=$tmp/reference # notary-reference's directory: certs, configs, logs, reference.env
bin=$tmp/bin
results=$tmp/results.jsonl
mkdir -p "$bin" "$run_dir"
: >"$results"
signet_pid= bare_pid= ref_pid=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # notary-reference stops its notary-server and notary-signer when it is told to stop.
  for pid in $bare_pid $signet_pid $ref_pid; do
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

port_free() { [[ -z $(ss -Hltn "sport = :$1") ]]; }
# port_owner PORT PID: is PORT listened on by PID (not by someone else's server)?
port_owner() { ss -Hltnp "sport = :$1" | grep -q "pid=$2,"; }
free_port() { # first free port from the arguments
  local p
  for p in "$@"; do port_free "$p" && { echo "$p"; return 0; }; done
  return 1
}

# wait_ready NAME PID PORT LOG: poll GET /v2/ (every Notary server answers {})
# until PID serves it on PORT; fail loudly if PID dies or 30 s pass.
wait_ready() {
  local name=$1 pid=$2 port=$3 log=$4 i
  for i in $(seq 1 150); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "---- last lines of $log" >&2
      tail -n 30 "$log" >&2 || true
      return 1
    fi
    if curl -fsS -o /dev/null --max-time 2 --cacert "$ca" "https://127.0.0.1:$port/v2/" 2>/dev/null &&
      port_owner "$port" "$pid"; then
      say "$name ready on https://127.0.0.1:$port (pid $pid)"
      return 0
    fi
    sleep 0.2
  done
  echo "---- $name not ready after 30 s; last lines of $log" >&2
  tail -n 30 "$log" >&2 || true
  return 1
}

# ---- build
say "building bench tools and notary-reference"
(cd "$repo/bench" && go build -o "$bin/" ./cmd/...) || die "bench tools do not build"
(cd "$repo" && go build -o "$bin/notary-reference" ./internal/e2e/reference/cmd/notary-reference) ||
  die "notary-reference does not build (go build ./internal/e2e/reference/cmd/notary-reference)"
if [[ $run_client == 1 ]]; then
  signet_cli=${BENCH_SIGNET_CLI_BIN:-$bin/signet}
  if [[ -z ${BENCH_SIGNET_CLI_BIN:-} ]]; then
    say "building the signet client"
    (cd "$repo" && go build -o "$signet_cli" ./cmd/signet) || die "the signet client does not build (go build ./cmd/signet)"
  fi
fi

# ---- reference notary-server + notary-signer (memory storage), with the in-repo recipe
say "starting the reference with notary-reference (run dir $run_dir)"
"$bin/notary-reference" -dir "$run_dir" >"$tmp/reference.log" 2>&1 &
ref_pid=$!
for _ in $(seq 1 300); do
  [[ -f $run_dir/reference.env ]] && break
  kill -0 "$ref_pid" 2>/dev/null || { cat "$tmp/reference.log" >&2; die "the reference notary-server did not start"; }
  sleep 0.2
done
[[ -f $run_dir/reference.env ]] || { cat "$tmp/reference.log" >&2; die "the reference notary-server did not start within 60 s"; }
# shellcheck disable=SC1091
. "$run_dir/reference.env"
say "reference notary-server ready on $REFERENCE_URL"
ca=$REFERENCE_CA
server_cert=$REFERENCE_SERVER_CERT server_key=$REFERENCE_SERVER_KEY
ref_url=$REFERENCE_URL

# ---- signet-server (same certificate as the reference, from the same CA)
signet_url=
if [[ $skip_signet == 1 ]]; then
  say "BENCH_SKIP_SIGNET=1: signet-server is not measured"
else
  signet_port=$(free_port 24444 24454 24464 24474) || die "no free port for signet-server"
  signet_bin=${BENCH_SIGNET_BIN:-$bin/signet-server}
  if [[ -z ${BENCH_SIGNET_BIN:-} ]]; then
    say "building signet-server"
    if ! (cd "$repo" && go build -o "$signet_bin" ./cmd/signet-server) >"$tmp/signet-build.log" 2>&1; then
      cat "$tmp/signet-build.log" >&2
      die "signet-server does not build (go build ./cmd/signet-server). The benchmark needs it;
  to measure only the reference and bare servers, run with BENCH_SKIP_SIGNET=1."
    fi
  fi
  # The publish load initialises a new repository every few publishes, each asking for a new
  # timestamp key: far more than the default limit on keys for repositories without metadata
  # (limits.new_repository_keys_*), which the reference does not have.
  printf 'tls_no_post_quantum: true\nlimits:\n  new_repository_keys_per_second: 1000\n  new_repository_keys_burst: 1000\n' >"$tmp/signet.yaml"
  SIGNET_KEY_PASSPHRASE=bench-passphrase-$RANDOM$RANDOM \
    "$signet_bin" --config "$tmp/signet.yaml" --listen "127.0.0.1:$signet_port" --data-dir "$tmp/signet-data" \
    --tls-cert "$server_cert" --tls-key "$server_key" \
    >"$tmp/signet.log" 2>&1 &
  signet_pid=$!
  wait_ready "signet-server" "$signet_pid" "$signet_port" "$tmp/signet.log" ||
    die "signet-server did not start or does not answer GET /v2/ on 127.0.0.1:$signet_port.
  The benchmark needs a working signet-server; to measure only the reference and bare
  servers, run with BENCH_SKIP_SIGNET=1."
  signet_url=https://127.0.0.1:$signet_port
fi

# ---- the repository every GET reads, published with the notary client library
servers=(reference)
declare -A url=([reference]=$ref_url)
if [[ -n $signet_url ]]; then
  servers=(signet reference)
  url[signet]=$signet_url
fi
failed=0 load_start=
if [[ $run_server == 1 ]]; then
  for s in "${servers[@]}"; do
    say "setup: $gun with $tags tags on $s"
    "$bin/notaryload" setup -url "${url[$s]}" -ca "$ca" -gun "$gun" -tags "$tags" -trust-dir "$tmp/trust-setup-$s" >&2 ||
      die "could not publish the benchmark repository to $s"
  done

  # ---- bare server: the bytes of the server under test (the reference if signet is skipped)
  origin=${signet_url:-$ref_url}
  bare_port=$(free_port 24445 24455 24465 24475) || die "no free port for bareserver"
  "$bin/bareserver" -listen "127.0.0.1:$bare_port" -cert "$server_cert" -key "$server_key" \
    -origin "$origin" -ca "$ca" -gun "$gun" -max-lifetime 2h >"$tmp/bare.log" 2>&1 &
  bare_pid=$!
  wait_ready "bareserver" "$bare_pid" "$bare_port" "$tmp/bare.log" || die "bareserver did not start"
  url[bare]=https://127.0.0.1:$bare_port
  get_servers=("${servers[@]}" bare)

  # ---- GET load, repetitions interleaved across servers
  load_start=$(cut -d' ' -f1-3 /proc/loadavg)
  if awk -v l="${load_start%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
    say "WARNING: load average $load_start before the loads start: other work on this machine will skew the figures"
  fi
  for rep in $(seq 1 "$reps"); do
    for w in $workloads; do
      for s in "${get_servers[@]}"; do
        say "rep $rep/$reps: GET $w on $s ($conns conns, $warmup + $duration)"
        if ! "$bin/notaryload" get -url "${url[$s]}" -ca "$ca" -gun "$gun" -workload "$w" \
          -c "$conns" -d "$duration" -warmup "$warmup" -label "$s" -rep "$rep" >>"$results"; then
          say "GET $w on $s failed"
          failed=1
        fi
        tail -n 1 "$results" >&2
      done
    done
  done

  # ---- publish load (the bare server cannot take publishes). Each run also reports the CPU time
  # the server's processes spent meanwhile (/proc/<pid>/stat): signet-server itself; the
  # reference's notary-server and notary-signer, the children of notary-reference.
  declare -A cpu_pids=([reference]=$(pgrep -d, -P "$ref_pid" -x 'notary-server|notary-signer' || true))
  [[ -n $signet_url ]] && cpu_pids[signet]=$signet_pid
  [[ $(tr ',' '\n' <<<"${cpu_pids[reference]}" | wc -l) == 2 ]] ||
    die "could not find the reference's notary-server and notary-signer processes (children of $ref_pid: $(pgrep -l -P "$ref_pid" | tr '\n' ' '))"
  for rep in $(seq 1 "$reps"); do
    for s in "${servers[@]}"; do
      say "rep $rep/$reps: publish on $s ($pub_workers workers x $pub_per_repo publishes per repository, $pub_duration)"
      if ! "$bin/publishload" -url "${url[$s]}" -ca "$ca" -workers "$pub_workers" -publishes "$pub_per_repo" \
        -d "$pub_duration" -label "$s" -rep "$rep" -gun-prefix "example.com/publish/$s-r$rep" \
        -trust-dir "$tmp/trust-publish-$s-$rep" -cpu-pids "${cpu_pids[$s]}" >>"$results"; then
        say "publish on $s failed (see the first_error and durability fields)"
        failed=1
      fi
      tail -n 1 "$results" >&2
    done
  done
  # ---- the floor under a publish's CPU: server CPU per GET on a new TLS connection (one
  # connection at a time, keep-alive off, as the notary client sends each of a publish's five
  # requests), on every server, the bare one included.
  cpu_pids[bare]=$bare_pid
  for rep in $(seq 1 "$reps"); do
    for s in "${get_servers[@]}"; do
      say "rep $rep/$reps: GET timestamp on new connections, $s (1 conn, keep-alive off, $connect_duration)"
      if ! "$bin/notaryload" get -url "${url[$s]}" -ca "$ca" -gun "$gun" -workload timestamp -keepalive=false \
        -c 1 -d "$connect_duration" -warmup 1s -label "$s" -rep "$rep" -cpu-pids "${cpu_pids[$s]}" >>"$results"; then
        say "GET on new connections on $s failed"
        failed=1
      fi
      tail -n 1 "$results" >&2
    done
  done
  # The bare server is not needed any more.
  kill "$bare_pid" 2>/dev/null || true
  wait "$bare_pid" 2>/dev/null || true
  bare_pid=
fi # run_server
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- client benchmark: one repository with many tags, read by each client through a cold cache
client_load=
if [[ $run_client == 1 ]]; then
  client_servers=()
  for s in "${servers[@]}"; do
    say "setup: $client_gun with $client_tags tags on $s (one publish)"
    "$bin/notaryload" setup -url "${url[$s]}" -ca "$ca" -gun "$client_gun" -tags "$client_tags" \
      -trust-dir "$tmp/trust-setup-client-$s" >&2 ||
      die "could not publish the client benchmark's repository to $s"
    client_servers+=(-server "$s=${url[$s]}")
  done
  client_load=$(cut -d' ' -f1-3 /proc/loadavg)
  say "client benchmark: $client_reps runs of each command against ${servers[*]} (load average $client_load)"
  if ! "$bin/clientbench" -signet "$signet_cli" -notary notary -docker docker -ca "$ca" -gun "$client_gun" \
    -tags "$client_tags" -reps "$client_reps" -warmup "$client_warmup" -timeout "$client_run_timeout" \
    -max-total "$client_max" -work "$tmp/client" "${client_servers[@]}" >>"$results"; then
    say "the client benchmark had failed runs (see the first errors in the report)"
    failed=1
  fi
  client_load+=" → $(cut -d' ' -f1-3 /proc/loadavg)"
fi

# ---- report
notes=(-note "Load average (1/5/15 min) when the loads started: $load_start; when they ended: $load_end. The benchmark's own processes account for part of it; the machine may be shared, so compare the raw figures per repetition.")
if [[ -n $signet_url ]]; then
  notes+=(-note "signet-server ran with its defaults except limits.new_repository_keys_per_second and _burst (1000 each): the publish load initialises a repository every $pub_per_repo publishes, more than the default 1 a second after a burst of 100; and tls_no_post_quantum: the load generator is built with this Go and would negotiate the hybrid post-quantum key exchange signet offers by default, while the reference (and the notary 0.7 CLI, both go1.19) negotiate X25519, so both servers do the same key exchange.")
fi
if [[ -z $signet_url ]]; then
  notes+=(-note "signet-server was not measured in this run (BENCH_SKIP_SIGNET=1); the bare server served the reference's bytes.")
fi
only_flags=()
[[ $only == client ]] && only_flags=(-only client)
if [[ -n ${BENCH_COMMIT:-} ]]; then
  commit=$BENCH_COMMIT
else
  commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo "none (no commits yet)")
  [[ -n $(git -C "$repo" status --porcelain 2>/dev/null) ]] && commit+=" + uncommitted changes"
fi
"$bin/benchreport" -in "$results" -out "$out" \
  -date "$(date -u '+%Y-%m-%d %H:%M UTC')" -nproc "$(nproc)" \
  -cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" -kernel "$(uname -r)" \
  -go "$(go version | cut -d' ' -f3-)" -commit "$commit" \
  -reference-version "$(dpkg-query -W -f='${Version}' notary 2>/dev/null || echo unknown)" \
  -conns "$conns" -duration "$duration" -warmup "$warmup" -reps "$reps" -tags "$tags" \
  -publish-workers "$pub_workers" -publish-per-repo "$pub_per_repo" -publish-duration "$pub_duration" \
  -publish-keepalive off \
  -client-tags "$client_tags" -client-reps "$client_reps" -client-warmup "$client_warmup" -client-gun "$client_gun" \
  -findings "$repo/bench/profile-findings.md" \
  -client-load "$client_load" -docker-version "$(docker --version 2>/dev/null | sed 's/,.*//' || echo unknown)" \
  "${only_flags[@]}" "${notes[@]}" || die "could not write the report"
say "wrote $out"
if [[ $only == all ]]; then
  say "signer benchmark (bench/signer.sh)"
  BENCH_OUT=$out "$repo/bench/signer.sh" || failed=1
  say "PostgreSQL benchmark (bench/postgres.sh)"
  BENCH_OUT=$out "$repo/bench/postgres.sh" || failed=1
fi
[[ $failed == 0 ]] || die "some loads failed; figures were written, see the errors in $out"
