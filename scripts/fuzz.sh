#!/usr/bin/env bash
# Runs every go-fuzz target in the module for FUZZTIME each (default 40000x:
# that many inputs, about 3 s each here). A count rather than a duration by
# default: with a duration, Go 1.26's fuzzing coordinator can fail a target
# with a bare "context deadline exceeded" when the time runs out
# (golang/go#75804, fixed in Go 1.27); a count sets no deadline.
#   scripts/fuzz.sh                  # briefly, as CI does
#   FUZZTIME=10m scripts/fuzz.sh     # longer
#   scripts/fuzz.sh ./internal/ipam  # one package
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-40000x}
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $(go list -f '{{.Dir}}' "${pkgs[@]}"); do
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$pkg"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz $target in ${pkg#$PWD/} for $fuzztime"
    for try in 1 2; do
      if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" >"$log" 2>&1; then break; fi
      cat "$log"
      # A finding is written to testdata/fuzz and fails at once; anything else
      # (the fuzzing engine itself failing on a loaded machine) gets one retry.
      if grep -q "Failing input written to" "$log" || [ "$try" = 2 ]; then exit 1; fi
      echo "fuzz $target: the run failed without a failing input; retrying once"
    done
  done
done
echo "fuzz: all targets passed"
