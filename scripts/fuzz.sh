#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a bounded budget each:
# a duration (10s) or an iteration count (2000x). CI uses a count: a
# duration budget on a loaded machine can end in a spurious "context
# deadline exceeded" from the fuzzing coordinator, which is no finding.
# Seed corpora live in each package's testdata/fuzz/ and also run as plain
# tests in `go test ./...`. Every target runs; failures are listed at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
budget=${1:-10s}
failed=()
n=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    n=$((n+1))
    echo "fuzz: $pkg $target ($budget)"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$budget" -fuzzminimizetime 2s "$pkg"; then
      failed+=("$pkg $target")
    fi
  done
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} of $n targets failed:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "fuzz: $n targets, no failures"
