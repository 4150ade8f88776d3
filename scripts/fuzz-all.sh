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

failed=()
for entry in "${targets[@]}"; do
  dir=${entry% *} name=${entry#* }
  echo "fuzz: $dir $name ($duration)"
  if ! "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$duration" "$dir"; then
    failed+=("$dir $name")
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: FAILED:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
