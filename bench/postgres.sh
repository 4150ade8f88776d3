#!/usr/bin/env bash
# bench/postgres.sh — signet-server on PostgreSQL: side by side with the
# reference notary-server (+ notary-signer) on the same PostgreSQL server,
# scaling from one to three replicas on one database, and growth (many
# repositories; one repository with many tags). Writes the "PostgreSQL"
# section of docs/benchmarks.md (benchreport -only postgres), leaving the
# other sections as they are. Run by bench/run.sh (BENCH_ONLY=postgres, and in
# the default all); it can also be run alone.
#
# PostgreSQL: the server of SIGNET_TEST_POSTGRES_URL (default the system server
# on 127.0.0.1:5432, trust auth, user postgres), with fresh databases: signet's
# made here, the reference's two made by notary-reference (the in-repo recipe,
# internal/e2e/reference, which applies the reference schema and drops them on
# exit). Everything listens on 127.0.0.1, every load is bounded in time, the
# whole run by BENCH_PG_MAX (a watchdog), and every process and database made
# here is removed on exit.
#
# Knobs (environment):
#   BENCH_PG_CONNS=16  BENCH_PG_DURATION=5s  BENCH_PG_WARMUP=1s  BENCH_PG_REPS=2
#   BENCH_PG_WORKLOADS="timestamp targets checksum"     (side by side)
#   BENCH_PG_PUBLISH_WORKERS=4  BENCH_PUBLISH_PER_REPO=10  BENCH_PG_PUBLISH_DURATION=10s
#   BENCH_PG_REPLICAS="1 2 3"
#   BENCH_PG_REPOS="1000 10000 100000"   growth: repositories (cumulative sizes)
#   BENCH_PG_TAGS="1000 10000 100000"    growth: tags of one repository
#   BENCH_PG_MAX=15m   hard bound on the whole script
#   BENCH_OUT=path  BENCH_KEEP=1  BENCH_COMMIT=text   (as in run.sh)
#   SIGNET_TEST_POSTGRES_URL   the PostgreSQL server (an administrative URL)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")" && git rev-parse --show-toplevel)
conns=${BENCH_PG_CONNS:-16}
duration=${BENCH_PG_DURATION:-5s}
warmup=${BENCH_PG_WARMUP:-1s}
reps=${BENCH_PG_REPS:-2}
workloads=${BENCH_PG_WORKLOADS:-timestamp targets checksum}
pub_workers=${BENCH_PG_PUBLISH_WORKERS:-4}
pub_per_repo=${BENCH_PUBLISH_PER_REPO:-10}
pub_duration=${BENCH_PG_PUBLISH_DURATION:-10s}
replica_counts=${BENCH_PG_REPLICAS:-1 2 3}
repo_sizes=${BENCH_PG_REPOS:-1000 10000 100000}
tag_sizes=${BENCH_PG_TAGS:-1000 10000 100000}
pg_admin=${SIGNET_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
max=${BENCH_PG_MAX:-15m}
out=${BENCH_OUT:-$repo/docs/benchmarks.md}
gun=example.com/bench/app
fill_fmt=example.com/fill/r%d

say() { printf 'bench/postgres: %s\n' "$*" >&2; }
die() {
  printf '\nbench/postgres.sh: FAILED: %s\n' "$*" >&2
  exit 1
}

for c in notary-server notary-signer psql curl ss go git; do
  command -v "$c" >/dev/null || die "$c is not installed (run scripts/test-deps.sh)"
done
max_s=$(( $(sed -E 's/m$/*60/; s/s$//' <<<"$max") )) || die "BENCH_PG_MAX=$max: want e.g. 15m or 900s"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/signet-bench-pg.XXXXXX")
run_dir=$tmp/reference bin=$tmp/bin results=$tmp/results.jsonl
mkdir -p "$bin" "$run_dir"
: >"$results"
pids=() signet_pids=() dbs=() watchdog= ref_pid=
suffix=$$_$RANDOM

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $watchdog ]]; then
    pkill -P "$watchdog" 2>/dev/null || true # its sleep
    kill "$watchdog" 2>/dev/null || true
  fi
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  # notary-reference stops its programs and drops its databases when told to stop
  # (it is the first of pids).
  for db in "${dbs[@]}"; do
    psql "$pg_admin" -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  if [[ $rc -ne 0 || ${BENCH_KEEP:-0} == 1 ]]; then
    say "logs and raw results kept in $tmp"
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'say "BENCH_PG_MAX=$max reached"; exit 124' TERM
# The watchdog ends this script (and so, through the trap, everything it started).
(sleep "$max_s" && kill -TERM $$) 2>/dev/null &
watchdog=$!

next_port=24600
port=
free_port() { # sets port to a free port above the last one handed out
  while [[ -n $(ss -Hltn "sport = :$next_port") ]]; do next_port=$((next_port + 1)); done
  port=$next_port
  next_port=$((next_port + 1))
}
port_owner() { ss -Hltnp "sport = :$1" | grep -q "pid=$2,"; }

# wait_ready NAME PID PORT LOG: poll GET /v2/ until PID serves it on PORT (30 s).
wait_ready() {
  local name=$1 pid=$2 p=$3 log=$4 i
  for i in $(seq 1 150); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "---- $name exited; last lines of $log" >&2
      tail -n 30 "$log" >&2 || true
      return 1
    fi
    if curl -fsS -o /dev/null --max-time 2 --cacert "$ca" "https://127.0.0.1:$p/v2/" 2>/dev/null && port_owner "$p" "$pid"; then
      say "$name ready on https://127.0.0.1:$p (pid $pid)"
      return 0
    fi
    sleep 0.2
  done
  echo "---- $name not ready after 30 s; last lines of $log" >&2
  tail -n 30 "$log" >&2 || true
  return 1
}

# ---- build
say "building bench tools, storefill, signet-server and notary-reference"
(cd "$repo/bench" && go build -o "$bin/" ./cmd/notaryload ./cmd/publishload ./cmd/benchreport) || die "bench tools do not build"
(cd "$repo/bench/storefill" && go build -o "$bin/storefill" .) || die "bench/storefill does not build"
(cd "$repo" && go build -o "$bin/signet-server" ./cmd/signet-server) || die "signet-server does not build"
(cd "$repo" && go build -o "$bin/notary-reference" ./internal/e2e/reference/cmd/notary-reference) || die "notary-reference does not build"

# ---- PostgreSQL: the server of SIGNET_TEST_POSTGRES_URL, a fresh database for signet
psql "$pg_admin" -tAc 'select 1' >/dev/null 2>&1 || die "no PostgreSQL at $pg_admin (run scripts/test-deps.sh)"
pg_host=$(sed -E 's|^[a-z]+://([^@/]*@)?([^/?]*).*|\2|' <<<"$pg_admin")
signet_dbname=signet_bench_$suffix
psql "$pg_admin" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $signet_dbname" || die "cannot create database $signet_dbname"
dbs+=("$signet_dbname")
signet_db=$(sed -E "s|^([a-z]+://[^/]*)/[^?]*|\1/$signet_dbname|" <<<"$pg_admin")
[[ $signet_db == *\?* ]] || signet_db+="?sslmode=disable"
pg_version=$(psql "$pg_admin" -tAc 'show server_version')
pg_where="the PostgreSQL server on $pg_host, fresh databases for each server (the reference's made by the in-repo recipe, internal/e2e/reference, with its schema)"

# ---- the reference: notary-signer + notary-server on PostgreSQL (notary-reference makes their databases)
"$bin/notary-reference" -dir "$run_dir" -postgres "$pg_admin" >"$tmp/reference.log" 2>&1 &
ref_pid=$!
pids+=($ref_pid)
for _ in $(seq 1 300); do
  [[ -f $run_dir/reference.env ]] && break
  kill -0 "$ref_pid" 2>/dev/null || { cat "$tmp/reference.log" >&2; die "the reference notary-server did not start on PostgreSQL"; }
  sleep 0.2
done
[[ -f $run_dir/reference.env ]] || { cat "$tmp/reference.log" >&2; die "the reference notary-server did not start within 60 s"; }
# shellcheck disable=SC1091
. "$run_dir/reference.env"
say "reference notary-server (postgres) ready on $REFERENCE_URL"
ca=$REFERENCE_CA server_cert=$REFERENCE_SERVER_CERT server_key=$REFERENCE_SERVER_KEY
ref_url=$REFERENCE_URL

# ---- signet-server replicas on one database (same passphrase; own data directories)
passphrase=bench-$RANDOM$RANDOM$RANDOM
signet_urls=()
start_signet() { # N
  local n=$1
  free_port
  # The publish loads initialise many repositories: the default limit on keys for repositories
  # without metadata (limits.new_repository_keys_*) would turn them away with 429.
  printf 'tls_no_post_quantum: true\nlimits:\n  new_repository_keys_per_second: 1000\n  new_repository_keys_burst: 1000\n' >"$tmp/signet-$n.yaml"
  SIGNET_KEY_PASSPHRASE=$passphrase "$bin/signet-server" --config "$tmp/signet-$n.yaml" --listen "127.0.0.1:$port" --data-dir "$tmp/signet-$n" \
    --db "$signet_db" --tls-cert "$server_cert" --tls-key "$server_key" \
    >"$tmp/signet-$n.log" 2>&1 &
  pids+=($!)
  signet_pids+=($!)
  wait_ready "signet-server replica $n (postgres)" "$!" "$port" "$tmp/signet-$n.log" ||
    die "signet-server --db postgres://… (replica $n) did not start"
  signet_urls+=("https://127.0.0.1:$port")
}
start_signet 1
declare -A url=([signet]=${signet_urls[0]} [reference]=$ref_url)

failed=0
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
get() { # LABEL URLS WORKLOAD REP [extra notaryload flags…]
  local label=$1 urls=$2 w=$3 rep=$4
  shift 4
  if ! "$bin/notaryload" get -url "$urls" -ca "$ca" -workload "$w" -c "$conns" -d "$duration" -warmup "$warmup" \
    -label "$label" -rep "$rep" "$@" >>"$results"; then
    say "GET $w on $label failed"
    failed=1
  fi
  tail -n 1 "$results" >&2
}
publish() { # LABEL URLS REP WORKERS DURATION
  if ! "$bin/publishload" -url "$2" -ca "$ca" -workers "$4" -publishes "$pub_per_repo" -d "$5" \
    -label "$1" -rep "$3" -gun-prefix "example.com/publish/$1-r$3" -trust-dir "$tmp/trust-publish-$1-$3" >>"$results"; then
    say "publish on $1 failed (see the first_error and durability fields)"
    failed=1
  fi
  tail -n 1 "$results" >&2
}

# ---- 1. side by side on one PostgreSQL server
for s in signet reference; do
  say "setup: $gun with 20 tags on $s"
  "$bin/notaryload" setup -url "${url[$s]}" -ca "$ca" -gun "$gun" -tags 20 -trust-dir "$tmp/trust-setup-$s" >&2 ||
    die "could not publish the benchmark repository to $s"
done
for rep in $(seq 1 "$reps"); do
  for w in $workloads; do
    for s in signet reference; do
      say "side by side, rep $rep/$reps: GET $w on $s ($conns conns, $warmup + $duration)"
      get "$s" "${url[$s]}" "$w" "$rep"
    done
  done
  for s in signet reference; do
    say "side by side, rep $rep/$reps: publish on $s ($pub_workers workers, $pub_duration)"
    publish "$s" "${url[$s]}" "$rep" "$pub_workers" "$pub_duration"
  done
done
# The reference is not needed any more: give its CPU back.
kill "$ref_pid" 2>/dev/null || true
wait "$ref_pid" 2>/dev/null || true

# ---- 2. replicas: 1..3 signet-server processes on the one database, round-robin in the load generator
for n in $replica_counts; do
  while ((${#signet_urls[@]} < n)); do start_signet $((${#signet_urls[@]} + 1)); done
done
for rep in $(seq 1 "$reps"); do
  for n in $replica_counts; do
    list=$(IFS=,; echo "${signet_urls[*]:0:$n}")
    for w in timestamp targets; do
      say "replicas, rep $rep/$reps: GET $w on $n replica(s)"
      get "replicas-$n" "$list" "$w" "$rep"
    done
    say "replicas, rep $rep/$reps: publish on $n replica(s) (each repository listed back through another replica)"
    publish "replicas-$n" "$list" "$rep" "$pub_workers" "$pub_duration"
  done
done
# Growth runs on the first replica alone.
for pid in "${signet_pids[@]:1}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done

# ---- 3. growth: many repositories (copies of $gun through signet's store), then one repository with many tags
notes=()
have=0
for n in $repo_sizes; do
  if ((n > have)); then
    say "growth: filling repositories $have..$((n - 1)) (copies of $gun through internal/store/sqlstore)"
    line=$("$bin/storefill" -db "$signet_db&synchronous_commit=off" -template "$gun" -fmt "$fill_fmt" \
      -from "$have" -to "$n" -c 8 -max 5m) || die "storefill failed"
    say "$line"
    secs=$(sed -E 's/.*"seconds":([0-9.]+).*/\1/' <<<"$line")
    have=$n
  fi
  size=$(psql "$signet_db" -tAc "select pg_size_pretty(pg_database_size(current_database()))")
  notes+=(-pg-note "repos-$n: $((have + 0)) filled repositories (+ the benchmark's own); the last fill step took ${secs:-0} s; database size $size")
  for w in timestamp targets; do
    say "growth: GET $w of a random one of $n repositories"
    get "repos-$n" "${signet_urls[0]}" "$w" 1 -spread "$n" -spread-fmt "$fill_fmt"
  done
  say "growth: GET timestamp of one repository among $n"
  get "one-$n" "${signet_urls[0]}" timestamp 1 -gun "$gun"
  say "growth: publishes of new repositories among $n"
  publish "repos-$n" "${signet_urls[0]}" 1 2 "$pub_duration"
done
for t in $tag_sizes; do
  tgun=example.com/tags/t$t
  say "growth: one publish of $tgun with $t tags"
  "$bin/notaryload" setup -url "${signet_urls[0]}" -ca "$ca" -gun "$tgun" -tags "$t" -trust-dir "$tmp/trust-tags-$t" \
    -label "tags-$t" >>"$results" || die "could not publish $tgun"
  tail -n 1 "$results" >&2
  for w in timestamp targets; do
    say "growth: GET $w of $tgun"
    get "tags-$t" "${signet_urls[0]}" "$w" 1 -gun "$tgun" -c 4
  done
  say "growth: 3 publishes of one more tag to $tgun"
  "$bin/notaryload" publish -url "${signet_urls[0]}" -ca "$ca" -gun "$tgun" -trust-dir "$tmp/trust-tags-$t" -n 3 \
    -label "tags-$t" >>"$results" || { say "publishing one more tag to $tgun failed"; failed=1; }
  tail -n 1 "$results" >&2
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report: only the PostgreSQL section of $out
if [[ -n ${BENCH_COMMIT:-} ]]; then
  commit=$BENCH_COMMIT
else
  commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo "none (no commits yet)")
  [[ -n $(git -C "$repo" status --porcelain 2>/dev/null) ]] && commit+=" + uncommitted changes"
fi
"$bin/benchreport" -only postgres -in "$results" -out "$out" \
  -date "$(date -u '+%Y-%m-%d %H:%M UTC')" -nproc "$(nproc)" \
  -cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" -commit "$commit" \
  -reference-version "$(dpkg-query -W -f='${Version}' notary 2>/dev/null || echo unknown)" \
  -pg-version "$pg_version" -pg-where "$pg_where" -pg-load "$load_start → $load_end" \
  -pg-conns "$conns" -pg-duration "$duration" -pg-warmup "$warmup" -pg-reps "$reps" \
  -publish-workers "$pub_workers" -publish-per-repo "$pub_per_repo" -publish-duration "$pub_duration" \
  "${notes[@]}" || die "could not write the report"
say "wrote the PostgreSQL section of $out"
[[ $failed == 0 ]] || die "some loads failed; figures were written, see the errors in $out"
