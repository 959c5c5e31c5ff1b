#!/usr/bin/env bash
# Runs every go-fuzz target in the module for FUZZTIME each (default 3s).
#   scripts/fuzz.sh                  # briefly, as CI does
#   FUZZTIME=10m scripts/fuzz.sh     # longer
#   scripts/fuzz.sh ./internal/ipam  # one package
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-3s}
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
for pkg in $(go list -f '{{.Dir}}' "${pkgs[@]}"); do
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$pkg"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz $target in ${pkg#$PWD/} for $fuzztime"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" >/tmp/fuzz.$$ 2>&1 || { cat /tmp/fuzz.$$; rm -f /tmp/fuzz.$$; exit 1; }
  done
done
rm -f /tmp/fuzz.$$
echo "fuzz: all targets passed"
