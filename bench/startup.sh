#!/usr/bin/env bash
# bench/startup.sh: what starting the nsnet binary costs, next to programs
# that differ from it by one thing, timed interleaved in one run
# (bench/startbench): from fork to exit, each doing nothing but start.
#
#   empty        a Go program that does nothing (the runtime's own start)
#   floor        bench/floor with no arguments (bench/sandbox.sh's floor: it
#                prints its usage and exits)
#   deps         a program that links every package nsnet links but its own
#                and does nothing: their initialisation, not their code
#   deps-no-dns  the same without miekg/dns and what only it brings (the
#                crypto/tls stack): what the resolver's library costs each
#                command, though only the resident serves names
#   nsnet        nsnet version (the whole binary: its size and its own
#                packages' initialisation, and printing four lines)
#
# All are built as a release is (static, stripped). Needs Go only, not root:
#   bench/startup.sh            ROUNDS=1000 bench/startup.sh
set -euo pipefail
export LC_ALL=C
ROUNDS=${ROUNDS:-500}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
tmp=$(mktemp -d /tmp/nsnet-startup.XXXXXX)
trap 'rm -rf "$tmp" "$repo"/bench/.startup-*' EXIT
cd "$repo"
build() { CGO_ENABLED=0 "$GO" build -trimpath -ldflags='-s -w' -o "$tmp/$1" "$2"; }

# blank PROGRAM PACKAGE...: a program that imports the packages and does nothing.
blank() {
	local name=$1 dir=$repo/bench/.startup-$1
	shift
	mkdir -p "$dir"
	{
		echo "package main"
		if (($#)); then printf 'import _ "%s"\n' "$@"; fi
		echo "func main() {}"
	} >"$dir/main.go"
	build "$name" "./bench/.startup-$name"
}

# The packages nsnet links, but its own and those no other package may import.
importable() { grep -v -e '^github.com/nsnet/nsnet' -e '^internal/' -e '/internal/' -e '/internal$' -e '^vendor/' -e '^runtime' -e '^unsafe$'; }
mapfile -t deps < <("$GO" list -deps ./cmd/nsnet | importable)
# Without miekg/dns: what nsnet's packages import other than it, and all that needs.
mapfile -t own < <("$GO" list -deps ./cmd/nsnet | grep '^github.com/nsnet/nsnet')
mapfile -t direct < <("$GO" list -f '{{join .Imports "\n"}}' "${own[@]}" | sort -u | grep -v -x github.com/miekg/dns | grep -v '^github.com/nsnet/nsnet')
mapfile -t nodns < <("$GO" list -deps "${direct[@]}" | importable)

echo "building (static, stripped) ..."
blank empty
build floor ./bench/floor
blank deps "${deps[@]}"
blank deps-no-dns "${nodns[@]}"
build nsnet ./cmd/nsnet
build startbench ./bench/startbench
ls -l "$tmp" | awk 'NR > 1 && $NF != "startbench" { printf "  %-12s %6.1f MB\n", $NF, $5 / 1e6 }'

"$tmp/startbench" -n "$ROUNDS" empty="$tmp/empty" -- floor="$tmp/floor" -- deps-no-dns="$tmp/deps-no-dns" -- \
	deps="$tmp/deps" -- nsnet="$tmp/nsnet" version
