#!/usr/bin/env bash
# bench/resident.sh: what the state root's resident process costs, and how
# soon what a command gives it answers. With N sandboxes on one user network,
# each publishing a TCP port (so the resident holds N ports and serves a zone
# of N names), it prints:
#   - the resident memory (VmRSS) of every nsnet helper process of the root
#     (the resident; `nsnet __... --root ROOT`), at 0, N/10 and N sandboxes;
#   - K times `nsnet port add` of a new port, then at once one TCP connection
#     to it from the client namespace (no retry): how many answered at the
#     first try, and how long that first connection took (by portsbench, so
#     without the time a process takes to start);
#   - K times `nsnet sandbox create` of a new sandbox on the network, then at
#     once one query for its name from another sandbox (dig +tries=1, no
#     retry): how many answered at the first try, and how long dig took
#     (including its own start, some milliseconds).
#
# Run as root from anywhere:  bench/resident.sh
# Environment:
#   N=1000      sandboxes, each publishing one port (1..1000)
#   K=20        timed port adds and sandbox creates (1..200)
#   PREFIX=nsrb name prefix of the namespaces this script makes
#   NSNET=/path/nsnet  use this nsnet binary instead of building ./cmd/nsnet
#
# Everything happens in throwaway network namespaces: $PREFIX-host (where
# nsnet runs: network rb, 10.62.0.0/21, gateway 10.62.0.1) and $PREFIX-cli
# (the client, 203.0.113.1, on a veth to the host's 203.0.113.2), and the
# sandboxes $PREFIX-sI. Nothing is ever asked of the machine's own
# resolvers: the network's upstream (--dns) is 198.51.100.9, an address
# nobody in these namespaces has, and only names of the network are asked.
# The trap on EXIT removes what nsnet made through nsnet, then deletes every
# namespace this script made.
set -euo pipefail
export LC_ALL=C

N=${N:-1000}
K=${K:-20}
PREFIX=${PREFIX:-nsrb}

die() {
	echo "resident.sh: $*" >&2
	exit 1
}
inrange() { [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 >= $2 && 10#$1 <= $3)); }

[[ $(id -u) == 0 ]] || die "must run as root"
inrange "$N" 1 1000 || die "N: want 1..1000"
inrange "$K" 1 200 || die "K: want 1..200"
for t in ip nsenter dig awk; do
	command -v "$t" >/dev/null || die "needs $t (dig: apt-get install dnsutils)"
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
tmp=$(mktemp -d /tmp/nsrb-work.XXXXXX)
. "$repo/bench/states.sh"
root=$tmp/root
host=$PREFIX-host cli=$PREFIX-cli
made_ns=()
server=

nsnet() { nsenter --net="/run/netns/$host" -- "$tmp/nsnet" --root "$root" "$@"; }

cleanup() {
	local rc=$? i p
	trap - EXIT INT TERM HUP
	if [[ -n $server ]]; then
		kill "$server" 2>/dev/null || true
		wait "$server" 2>/dev/null || true
	fi
	if [[ -e /run/netns/$host && -e $root/nsnet.db ]]; then
		echo "removing the sandboxes ..."
		for ((i = 0; i < N + K; i++)); do
			[[ -e /run/netns/$PREFIX-s$i ]] && nsnet sandbox rm "$PREFIX-s$i" >/dev/null 2>&1
		done
		nsnet network rm rb >/dev/null 2>&1 || echo "WARNING: nsnet could not remove network rb" >&2
	fi
	# A resident left (a failed removal): only a real pid of this root's.
	for p in $(pgrep -f -- "__resident --root $root\$" || true); do
		[[ $p =~ ^[0-9]+$ ]] && ((p > 1)) && kill "$p" 2>/dev/null || true
	done
	for ((i = 0; i < N + K; i++)); do
		[[ -e /run/netns/$PREFIX-s$i ]] && ip netns delete "$PREFIX-s$i" 2>/dev/null
		rm -f "/run/nsnet/netns/$PREFIX-s$i"
	done
	for p in "${made_ns[@]}"; do
		ip netns delete "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
	remove_states "$tmp"
	left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX-" | tr '\n' ' ' || true)
	[[ -z $left ]] || echo "WARNING: namespaces left in /run/netns: $left" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

echo "building in $repo (static, CGO_ENABLED=0) ..."
(cd "$repo" && CGO_ENABLED=0 "$GO" build -o "$tmp/portsbench" ./bench/portsbench)
if [[ -n ${NSNET:-} ]]; then
	cp "$NSNET" "$tmp/nsnet"
else
	(cd "$repo" && CGO_ENABLED=0 "$GO" build -ldflags='-s -w' -o "$tmp/nsnet" ./cmd/nsnet)
fi
mkdir -m 0700 "$root"

for ns in "$host" "$cli"; do
	[[ -e /run/netns/$ns ]] && ip netns delete "$ns"
	made_ns+=("$ns")
	ip netns add "$ns"
	ip -n "$ns" link set lo up
done
ip -n "$host" link add eth0 type veth peer name eth0 netns "$cli"
ip -n "$host" addr add 203.0.113.2/24 dev eth0
ip -n "$cli" addr add 203.0.113.1/24 dev eth0
ip -n "$host" link set eth0 up
ip -n "$cli" link set eth0 up

{
	echo "date: $(date -u +%FT%TZ)"
	echo "kernel: $(uname -r)  cpus: $(nproc)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "nsnet: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD -- . 2>/dev/null || echo ' (dirty tree)')"
	echo "N=$N K=$K"
}

# rss: the summed VmRSS (kB) of the root's helper processes, and how many.
rss() {
	local total=0 n=0 p kb
	for p in $(pgrep -f -- "--root $root\$" || true); do
		kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
		total=$((total + ${kb:-0}))
		n=$((n + 1))
	done
	echo "$total $n"
}
report_rss() { # report_rss WHAT
	local r
	read -r -a r < <(rss)
	printf "%-40s %6.1f MB in %d process(es)\n" "$1" "$(awk -v k="${r[0]}" 'BEGIN {print k / 1024}')" "${r[1]}"
}

nsnet network create --subnet 10.62.0.0/21 --gateway 10.62.0.1 --dns 198.51.100.9 rb >/dev/null
echo "creating $N sandboxes on network rb, each publishing one port ..."
t0=$EPOCHREALTIME
for ((i = 0; i < N; i++)); do
	nsnet sandbox create --network rb -p "$((20000 + i)):80" "$PREFIX-s$i" >/dev/null
	if ((i == 0)); then report_rss "resident, 1 sandbox:"; fi
	if ((i + 1 == N / 10 && N >= 10)); then report_rss "resident, $((N / 10)) sandboxes:"; fi
done
t1=$EPOCHREALTIME
echo "  ($(awk -v a="${t0/./}" -v b="${t1/./}" 'BEGIN {printf "%.1f", (b - a) / 1e6}') s)"
report_rss "all nsnet helpers, $N sandboxes:"
echo "  (the port holders this replaces: one process per sandbox, about 6 MB each)"

# A server in the first sandbox answers whatever port nsnet publishes to its 80.
nsenter --net="/run/netns/$PREFIX-s0" -- "$tmp/portsbench" serve :80 >"$tmp/server.out" &
server=$!
for ((i = 0; i < 100; i++)); do grep -q ready "$tmp/server.out" 2>/dev/null && break; sleep 0.05; done

# port add, then one connection at once, from outside (through the DNAT) and
# from the host to 127.0.0.1 (through the resident's proxy).
ok_out=0 ok_lo=0 us_out=() us_lo=()
for ((k = 1; k <= K; k++)); do
	p=$((30000 + k))
	nsnet port add "$PREFIX-s0" "$p:80" >/dev/null
	if out=$(nsenter --net="/run/netns/$cli" -- "$tmp/portsbench" connect -n 1 -warmup 0 -timeout 1s -until-eof "203.0.113.2:$p" 2>&1); then
		ok_out=$((ok_out + 1))
		us_out+=("$(sed -n 's/.*p50_us=\([0-9.]*\).*/\1/p' <<<"$out")")
	fi
	if out=$(nsenter --net="/run/netns/$host" -- "$tmp/portsbench" connect -n 1 -warmup 0 -timeout 1s -until-eof "127.0.0.1:$p" 2>&1); then
		ok_lo=$((ok_lo + 1))
		us_lo+=("$(sed -n 's/.*p50_us=\([0-9.]*\).*/\1/p' <<<"$out")")
	fi
	nsnet port rm "$PREFIX-s0" "$p:80" >/dev/null
done
median() { printf "%s\n" "$@" | sort -n | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]; else print "-"}'; }
maxof() { printf "%s\n" "$@" | sort -n | tail -n 1; }
echo "port add, then at once one connection (no retry), $K times, with $N ports held:"
echo "  from outside to 203.0.113.2:PORT: answered at the first try $ok_out/$K; that connection p50 $(median "${us_out[@]}") us, max $(maxof "${us_out[@]}") us"
echo "  from the host to 127.0.0.1:PORT:  answered at the first try $ok_lo/$K; that connection p50 $(median "${us_lo[@]}") us, max $(maxof "${us_lo[@]}") us"

# sandbox create, then at once one query for its name, from the first sandbox.
ok_dns=0 ms_dns=()
for ((k = 0; k < K; k++)); do
	name=$PREFIX-s$((N + k))
	nsnet sandbox create --network rb "$name" >/dev/null
	t0=$EPOCHREALTIME
	ans=$(nsenter --net="/run/netns/$PREFIX-s0" -- dig @10.62.0.1 "$name" A +short +tries=1 +time=1 2>&1 || true)
	t1=$EPOCHREALTIME
	if [[ $ans =~ ^10\.62\. ]]; then
		ok_dns=$((ok_dns + 1))
		ms_dns+=("$(awk -v a="${t0/./}" -v b="${t1/./}" 'BEGIN {printf "%.2f", (b - a) / 1000}')")
	fi
done
echo "sandbox create, then at once one query for its name (dig +tries=1), $K times, $N names in the zone:"
echo "  answered at the first try $ok_dns/$K; dig's whole run p50 $(median "${ms_dns[@]}") ms, max $(maxof "${ms_dns[@]}") ms"
report_rss "all nsnet helpers, at the end:"
