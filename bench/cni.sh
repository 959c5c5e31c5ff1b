#!/usr/bin/env bash
# bench/cni.sh: CNI ADD and DEL latency through libcni (bench/cnibench), nsnet
# against the reference plugins of Debian's containernetworking-plugins 1.1.1
# (/usr/lib/cni), side by side in one run, interleaved:
#
#   nsnet           nsnet alone (its own IPAM, default route, masquerade)
#   bridge          bridge + host-local (isGateway, ipMasq, hairpinMode)
#   nsnet+ports     nsnet with the portMappings capability (one published port per container)
#   bridge+portmap  bridge + host-local + portmap, one published port per container
#
# Run as root:  bench/cni.sh
#               N=100 REPS=5 bench/cni.sh
# Environment:
#   N=50        containers per run (their namespaces made beforehand, untimed)
#   REPS=3      runs per list
#   PREFIX=cnib name prefix of the namespaces, bridges and networks this script makes
#
# Everything happens in throwaway namespaces ($PREFIX-host plays the host, the
# containers are $PREFIX-c1..N): the root network namespace is never changed.
# The trap on EXIT deletes them. See bench/README.md.
set -euo pipefail
export LC_ALL=C
N=${N:-50}
REPS=${REPS:-3}
PREFIX=${PREFIX:-cnib}
HOST=$PREFIX-host

[[ $(id -u) == 0 ]] || { echo "cni.sh: must run as root" >&2; exit 1; }
[[ -x /usr/lib/cni/bridge ]] || { echo "cni.sh: apt-get install containernetworking-plugins" >&2; exit 1; }
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
tmp=$(mktemp -d /tmp/cni-bench.XXXXXX)
. "$repo/bench/states.sh"

cleanup() {
	if [[ -e /run/netns/$HOST && -x $tmp/plugins/nsnet ]]; then # after a failure: nsnet's names, markers and files of the containers
		nsnet() { nsenter --net="/run/netns/$HOST" "$tmp/plugins/nsnet" --root "$tmp/root" "$@"; }
		for s in $(nsnet sandbox ls 2>/dev/null | awk 'NR > 1 { print $1 }'); do nsnet sandbox rm --force "$s" >/dev/null || true; done
	fi
	for i in $(seq 1 "$N"); do ip netns del "$PREFIX-c$i" 2>/dev/null || true; done
	ip netns del "$HOST" 2>/dev/null || true
	rm -rf "$tmp"
	remove_states "$tmp"
}
trap cleanup EXIT

(cd "$repo" && CGO_ENABLED=0 "$GO" build -ldflags='-s -w' -o "$tmp/plugins/nsnet" ./cmd/nsnet &&
	CGO_ENABLED=0 "$GO" build -o "$tmp/cnibench" ./bench/cnibench)
mkdir -m 700 "$tmp/root"

ip netns add "$HOST"
ip -n "$HOST" link set lo up
for i in $(seq 1 "$N"); do
	ip netns add "$PREFIX-c$i"
	ip -n "$PREFIX-c$i" link set lo up
done

nsnet_list() { # name, subnet, capabilities
	cat <<EOF
{"cniVersion":"1.0.0","name":"$1","plugins":[{"type":"nsnet","network":"$1","subnet":"$2","root":"$tmp/root","capabilities":{$3}}]}
EOF
}
bridge_list() { # name, bridge, subnet, more plugins
	cat <<EOF
{"cniVersion":"1.0.0","name":"$1","plugins":[{"type":"bridge","bridge":"$2","isGateway":true,"ipMasq":true,"hairpinMode":true,
 "ipam":{"type":"host-local","dataDir":"$tmp/ipam","ranges":[[{"subnet":"$3"}]],"routes":[{"dst":"0.0.0.0/0"}]}}$4]}
EOF
}
nsnet_list "$PREFIX-n" 10.232.0.0/16 '' > "$tmp/nsnet.conflist"
bridge_list "$PREFIX-b" "$PREFIX-br0" 10.233.0.0/16 '' > "$tmp/bridge.conflist"
nsnet_list "$PREFIX-np" 10.234.0.0/16 '"portMappings":true' > "$tmp/nsnet-ports.conflist"
bridge_list "$PREFIX-bp" "$PREFIX-br1" 10.235.0.0/16 ',{"type":"portmap","capabilities":{"portMappings":true}}' > "$tmp/bridge-portmap.conflist"

echo "# $(date -u +%FT%TZ) N=$N REPS=$REPS, kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
nsenter --net="/run/netns/$HOST" "$tmp/cnibench" -n "$N" -reps "$REPS" -path "$tmp/plugins:/usr/lib/cni" -cache "$tmp/cache" \
	-netns "$PREFIX-c" nsnet="$tmp/nsnet.conflist" bridge="$tmp/bridge.conflist" \
	nsnet+ports="$tmp/nsnet-ports.conflist" bridge+portmap="$tmp/bridge-portmap.conflist"
