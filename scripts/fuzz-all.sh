#!/usr/bin/env bash
# Run every fuzz target of the module for DURATION each (a go test -fuzztime
# value such as 5s or 1000x).  Fails if any target fails; prints nothing and
# succeeds if the module has no fuzz targets yet.
#   usage: scripts/fuzz-all.sh DURATION
set -euo pipefail
duration=${1:?usage: fuzz-all.sh DURATION}
cd "$(dirname "$0")/.."
GO=${GO:-go}

# "dir name" pairs, one per fuzz target, in a stable order.
mapfile -t targets < <(
  find . \( -name .git -o -name .tools -o -name testdata -o -name vendor \) -prune -o \
    -type f -name '*_test.go' -print |
  sort |
  while read -r f; do
    sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f" | while read -r name; do
      echo "$(dirname "$f") $name"
    done
  done
)

# Go 1.26's fuzz coordinator can report "context deadline exceeded" when
# -fuzztime runs out while a worker is mid-call (go.dev/issue/75804, fixed in
# Go 1.27): the target fails without any failing input.  A real failure always
# names its input (a new file under testdata/fuzz/<target>/, or a seed corpus
# entry), so a run that failed with only that message and wrote no input is run
# again, up to three times; every other failure fails the run at once.
failed=()
flaked=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT
corpus_listing() { find "$1/testdata/fuzz/$2" -type f 2>/dev/null | sort || true; }
for entry in "${targets[@]}"; do
  dir=${entry% *} name=${entry#* }
  for attempt in 1 2 3; do
    echo "fuzz: $dir $name ($duration)$( ((attempt > 1)) && echo ", attempt $attempt")"
    before=$(corpus_listing "$dir" "$name")
    if "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$duration" "$dir" 2>&1 | tee "$log"; test "${PIPESTATUS[0]}" -eq 0; then
      break
    fi
    after=$(corpus_listing "$dir" "$name")
    if [[ "$before" == "$after" ]] && grep -q '^    context deadline exceeded$' "$log" &&
      ! grep -qE 'Failing input written to|failure while testing seed corpus|panic:|--- FAIL: .*\(.*\)$' <(grep -v "^--- FAIL: ${name} (" "$log"); then
      echo "fuzz: $dir $name stopped with Go's fuzztime race and no failing input (go.dev/issue/75804); running it again" >&2
      if ((attempt == 3)); then flaked+=("$dir $name"); fi
      continue
    fi
    failed+=("$dir $name")
    break
  done
done

if ((${#flaked[@]})); then
  echo "fuzz: hit Go's fuzztime race three times and found no failing input:" >&2
  printf '  %s\n' "${flaked[@]}" >&2
fi
if ((${#failed[@]})); then
  echo "fuzz: FAILED:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
