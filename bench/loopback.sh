#!/usr/bin/env bash
# bench/loopback.sh: what it costs the host to reach a published port at
# 127.0.0.1, which nsnet's resident process proxies (as docker-proxy does), against
# the host's own address, which the kernel translates (DNAT in the output
# chain). Prints connect latencies for both. See bench/README.md.
#
# Run as root from anywhere:  bench/loopback.sh
# Environment:
#   M=2000           timed connects per path and measure (p50/p99 reported)
#   WARMUP=200       untimed connects before them
#   PREFIX=nslb      name prefix of the namespaces this script makes
#   NSNET=/path      use this nsnet binary instead of building ./cmd/nsnet
#
# Everything happens in throwaway network namespaces: $PREFIX-host (lo and
# eth0, a veth, with 203.0.113.2/24; nsnet's network lb, 10.62.0.0/24) and the
# sandbox $PREFIX-sb that nsnet creates (10.62.0.2, a TCP server on port 80
# that accepts and closes, published as 8080). The root network namespace is
# never changed; the trap on EXIT deletes every namespace this script made.
set -euo pipefail
export LC_ALL=C

M=${M:-2000}
WARMUP=${WARMUP:-200}
PREFIX=${PREFIX:-nslb}
die() {
	echo "loopback.sh: $*" >&2
	exit 1
}
[[ $(id -u) == 0 ]] || die "must run as root"
[[ $M =~ ^[1-9][0-9]*$ && $WARMUP =~ ^[0-9]+$ ]] || die "M and WARMUP must be numbers (M > 0)"
for t in ip nsenter; do
	command -v "$t" >/dev/null || die "needs $t"
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
tmp=$(mktemp -d /tmp/nslb-work.XXXXXX)
. "$repo/bench/states.sh"
host=$PREFIX-host
sb=$PREFIX-sb
server=0

nsnet_in() { nsenter --net="/run/netns/$host" -- "$tmp/nsnet" --root "$tmp/root" "$@"; }

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if ((server > 0)); then # never signal a pid that is not ours
		kill "$server" 2>/dev/null || true
		wait "$server" 2>/dev/null || true
	fi
	if [[ -e /run/netns/$host ]]; then
		{ nsnet_in sandbox rm "$sb" && nsnet_in network rm lb; } >/dev/null 2>&1 ||
			echo "WARNING: nsnet could not remove its sandbox and network; deleting the namespaces" >&2
		ip netns delete "$host" 2>/dev/null || true
	fi
	[[ ! -e /run/netns/$sb ]] || ip netns delete "$sb" 2>/dev/null || true
	rm -rf "$tmp"
	remove_states "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

echo "building in $repo (static, CGO_ENABLED=0) ..."
(cd "$repo" && CGO_ENABLED=0 "$GO" build -o "$tmp/portsbench" ./bench/portsbench)
if [[ -n ${NSNET:-} ]]; then
	cp "$NSNET" "$tmp/nsnet"
else
	(cd "$repo" && CGO_ENABLED=0 "$GO" build -o "$tmp/nsnet" ./cmd/nsnet)
fi

for ns in "$host" "$sb"; do
	[[ ! -e /run/netns/$ns ]] || die "namespace $ns exists: remove it or choose another PREFIX"
done
ip netns add "$host"
ip -n "$host" link set lo up
ip -n "$host" link add eth0 type veth peer name eth0p # no dummy module everywhere
ip -n "$host" link set eth0p up
ip -n "$host" addr add 203.0.113.2/24 dev eth0
ip -n "$host" link set eth0 up
mkdir -m 700 "$tmp/root"
nsnet_in network create --subnet 10.62.0.0/24 lb >/dev/null
nsnet_in sandbox create --network lb --ip 10.62.0.2 -p 8080:80 "$sb" >/dev/null
nsenter --net="/run/netns/$sb" -- "$tmp/portsbench" serve ":80" >"$tmp/server.log" 2>&1 &
server=$!
for _ in $(seq 50); do
	grep -q ready "$tmp/server.log" && break
	sleep 0.1
done
grep -q ready "$tmp/server.log" || die "the server in the sandbox did not start: $(cat "$tmp/server.log")"

field() { grep -o "$2=[0-9.]*" "$1" | cut -d= -f2; }
printf "load %s, M=%s connects per cell, from the host namespace to the sandbox's port 80\n\n" "$(cut -d' ' -f1 /proc/loadavg)" "$M"
printf "%-34s %-12s %10s %10s\n" "path" "measure" "p50_us" "p99_us"
for path in "127.0.0.1:8080 resident (proxy)" "203.0.113.2:8080 kernel DNAT"; do
	addr=${path%% *}
	for measure in connect until-eof; do
		flag=()
		[[ $measure == until-eof ]] && flag=(-until-eof)
		out=$tmp/$addr.$measure
		nsenter --net="/run/netns/$host" -- "$tmp/portsbench" connect -n "$M" -warmup "$WARMUP" "${flag[@]}" "$addr" >"$out"
		printf "%-34s %-12s %10s %10s\n" "$path" "$measure" "$(field "$out" p50_us)" "$(field "$out" p99_us)"
	done
done
cat <<'EOF'

connect:   connect(2) alone; through the proxy the resident's listening socket answers the SYN itself.
until-eof: until the server's close arrives, the whole way to the server and back.
EOF
