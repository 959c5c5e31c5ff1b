#!/usr/bin/env bash
# bench/dns.sh: queries per second and p50/p99 latency of nsnet's resolver
# (internal/resolver, run by bench/dnsbench) against aardvark-dns 1.4.0
# (Debian's aardvark-dns, as netavark runs it), answering the same names
# from the same configuration on the same bridge, in one run, interleaved:
# local names (a sandbox's name) and forwarded ones (to an upstream resolver
# the script runs in a namespace of its own). See bench/README.md.
#
# nsnet's side is `dnsbench serve`, which runs internal/resolver as nsnet's
# resident process does, on a bridge this script makes by hand (one per
# gateway address for each resolver); it does not drive the resident itself,
# whose control socket no query touches. bench/resident.sh measures the
# resident: its memory, and a name's first lookup after `sandbox create`.
#
# Run as root from anywhere:  bench/dns.sh
# Environment:
#   T=5          timed seconds per run          WARMUP=1  untimed seconds before
#   C=16         concurrent clients             N=100     sandboxes (names) in the network
#   REPS=3       rounds; each round runs every (kind, tool) once, the order of
#                the tools alternating between rounds
#   KINDS="local fwd"  TOOLS="nsnet aardvark"
#   AARDVARK=/usr/lib/podman/aardvark-dns   (apt-get install aardvark-dns)
#   PREFIX=nsdb  name prefix of the namespaces this script makes
#   RESULTS=DIR  where raw results go (default: a new /tmp/nsdb-results.XXXXXX, kept)
#   SERVE_GOMAXPROCS=N        GOMAXPROCS of nsnet's resolver only
#   DNSBENCH_CPUPROFILE=FILE  a CPU profile of nsnet's resolver over the whole run
#
# Everything happens in throwaway network namespaces: $PREFIX-host (a bridge
# with 10.89.0.1/16, where aardvark-dns listens, and 10.89.0.2/16, where
# nsnet's resolver listens), $PREFIX-cli (the load generator, 10.89.0.10 on
# that bridge, a sandbox of the network for both resolvers) and $PREFIX-up
# (the upstream resolver, 198.51.100.53, on a veth to the host namespace,
# 198.51.100.1). No namespace has a way out: nothing is ever asked of the
# machine's own resolvers. The trap on EXIT stops the servers and deletes
# every namespace this script made.
set -euo pipefail
export LC_ALL=C

T=${T:-5}
WARMUP=${WARMUP:-1}
C=${C:-16}
N=${N:-100}
REPS=${REPS:-3}
KINDS=${KINDS:-"local fwd"}
TOOLS=${TOOLS:-"nsnet aardvark"}
AARDVARK=${AARDVARK:-/usr/lib/podman/aardvark-dns}
PREFIX=${PREFIX:-nsdb}

die() {
	echo "dns.sh: $*" >&2
	exit 1
}
inrange() { [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 >= $2 && 10#$1 <= $3)); }

[[ $(id -u) == 0 ]] || die "must run as root"
inrange "$T" 1 3600 || die "T: want 1..3600 seconds"
inrange "$WARMUP" 0 3600 || die "WARMUP: want 0..3600 seconds"
inrange "$C" 1 4096 || die "C: want 1..4096"
inrange "$N" 1 60000 || die "N: want 1..60000"
inrange "$REPS" 1 100 || die "REPS: want 1..100"
for k in $KINDS; do case $k in local | fwd) ;; *) die "unknown kind '$k' in KINDS" ;; esac; done
for t in $TOOLS; do case $t in nsnet | aardvark) ;; *) die "unknown tool '$t' in TOOLS" ;; esac; done
for t in ip nsenter awk sort; do command -v "$t" >/dev/null || die "needs $t"; done
if [[ " $TOOLS " == *" aardvark "* ]]; then
	[[ -x $AARDVARK ]] || die "no aardvark-dns at $AARDVARK (apt-get install aardvark-dns)"
	ver=$("$AARDVARK" --version 2>/dev/null | awk '{print $2}')
	[[ $ver == 1.4.0 ]] || echo "WARNING: aardvark-dns is $ver, not 1.4.0" >&2
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
tmp=$(mktemp -d /tmp/nsdb-work.XXXXXX)
. "$repo/bench/states.sh"
res=${RESULTS:-$(mktemp -d /tmp/nsdb-results.XXXXXX)}
mkdir -p "$res"
made_ns=()
pids=() # processes to stop: the nsnet resolver and the upstream (children of this script)
apid=   # aardvark-dns daemonizes; its pid comes from its pid file

host=$PREFIX-host cli=$PREFIX-cli up=$PREFIX-up
addr_aardvark=10.89.0.1 addr_nsnet=10.89.0.2 addr_cli=10.89.0.10
upstream=198.51.100.53

# stop PID: SIGTERM, then SIGKILL, only for a real pid (> 1).
stop() {
	local p=$1 i
	[[ $p =~ ^[0-9]+$ ]] && ((p > 1)) || return 0
	kill "$p" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$p" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -9 "$p" 2>/dev/null || true
}

cleanup() {
	local rc=$? p ns
	trap - EXIT INT TERM HUP
	stop "$apid"
	for p in "${pids[@]}"; do
		stop "$p"
		wait "$p" 2>/dev/null || true
	done
	for ns in "${made_ns[@]}"; do
		ip netns delete "$ns" 2>/dev/null || true
	done
	rm -rf "$tmp"
	remove_states "$tmp"
	left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX-" | tr '\n' ' ' || true)
	[[ -z $left ]] || echo "WARNING: namespaces left in /run/netns: $left" >&2
	echo "raw results: $res"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

for ns in $host $cli $up; do
	[[ ! -e /run/netns/$ns ]] || die "namespace $ns exists already (another run? PREFIX=...)"
done

echo "building bench/dnsbench in $repo ..."
(cd "$repo" && CGO_ENABLED=0 "$GO" build -o "$tmp/dnsbench" ./bench/dnsbench)

# --- the world ---------------------------------------------------------------
for ns in $host $cli $up; do
	ip netns add "$ns"
	made_ns+=("$ns")
	ip -n "$ns" link set lo up
done
ip -n "$host" link add br0 type bridge
ip -n "$host" addr add $addr_aardvark/16 dev br0
ip -n "$host" addr add $addr_nsnet/16 dev br0
ip -n "$host" link set br0 up
ip -n "$cli" link add eth0 type veth peer name vcli netns "$host"
ip -n "$host" link set vcli master br0 up
ip -n "$cli" addr add $addr_cli/16 dev eth0
ip -n "$cli" link set eth0 up
ip -n "$up" link add eth0 type veth peer name vup netns "$host"
ip -n "$host" addr add 198.51.100.1/24 dev vup
ip -n "$host" link set vup up
ip -n "$up" addr add $upstream/24 dev eth0
ip -n "$up" link set eth0 up

# --- the same network for both: aardvark-dns's format, one file per network ----
# Line 1: the gateway (where the resolver listens) and the network's upstream.
# Then one line per container: ID IPV4 IPV6 NAMES (name and short ID).
config() { # config DIR GATEWAY
	local dir=$1 gw=$2 i id
	mkdir -p "$dir"
	{
		echo "$gw $upstream"
		id=$(printf 'c1%062x' 0)
		echo "$id $addr_cli  client,${id:0:12}"
		for ((i = 0; i < N; i++)); do
			id=$(printf '%064x' $((i + 1)))
			echo "$id 10.89.$((1 + i / 250)).$((1 + i % 250))  ctr$i,${id:0:12}"
		done
	} >"$dir/bench"
}
config "$tmp/aardvark" $addr_aardvark
config "$tmp/nsnet" $addr_nsnet

# start_bg NS OUT CMD...: start CMD in NS in the background and wait for its "ready".
start_bg() {
	local ns=$1 out=$2 i
	shift 2
	nsenter --net=/run/netns/"$ns" -- "$@" >"$out" 2>&1 &
	pids+=($!)
	for i in $(seq 100); do
		grep -q '^ready' "$out" && return 0
		kill -0 "${pids[-1]}" 2>/dev/null || die "$* failed: $(cat "$out")"
		sleep 0.05
	done
	die "$* not ready after 5 s: $(cat "$out")"
}

start_bg "$up" "$tmp/upstream.log" "$tmp/dnsbench" upstream $upstream:53
if [[ " $TOOLS " == *" nsnet "* ]]; then
	start_bg "$host" "$tmp/nsnet.log" env ${SERVE_GOMAXPROCS:+GOMAXPROCS=$SERVE_GOMAXPROCS} DNSBENCH_CPUPROFILE="${DNSBENCH_CPUPROFILE:-}" "$tmp/dnsbench" serve "$tmp/nsnet"
	npid=${pids[-1]}
fi
if [[ " $TOOLS " == *" aardvark "* ]]; then
	# aardvark-dns forks; the parent returns once the child serves.
	nsenter --net=/run/netns/"$host" -- "$AARDVARK" --config "$tmp/aardvark" -p 53 run >"$tmp/aardvark.log" 2>&1 ||
		die "aardvark-dns failed: $(cat "$tmp/aardvark.log")"
	apid=$(cat "$tmp/aardvark/aardvark.pid" 2>/dev/null || true)
	[[ $apid =~ ^[0-9]+$ ]] && ((apid > 1)) || die "aardvark-dns wrote no pid file"
fi

server() { case $1 in nsnet) echo $addr_nsnet ;; aardvark) echo $addr_aardvark ;; esac; }
names() { case $1 in local) echo "ctr%d." ;; fwd) echo "host%d.fwd.test." ;; esac; }

# load TOOL KIND T WARMUP C: one run of the load generator in the client namespace.
load() {
	nsenter --net=/run/netns/"$cli" -- "$tmp/dnsbench" load -c "$5" -t "${3}s" -warmup "${4}s" \
		-names "$(names "$2")" -n "$N" "$(server "$1"):53"
}

# Both answer every kind before anything is timed.
for tool in $TOOLS; do
	for kind in $KINDS; do
		line=$(load "$tool" "$kind" 1 0 1)
		[[ $line =~ ok=[1-9][0-9]*\ bad=0\  ]] || die "$tool does not answer $kind names: $line"
	done
done

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo "?"; }
# cpu PID: user+system CPU time of the process (all its threads), in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pid_of() { case $1 in nsnet) echo "$npid" ;; aardvark) echo "$apid" ;; esac; }
hz=$(getconf CLK_TCK)

echo "T=${T}s WARMUP=${WARMUP}s C=$C N=$N REPS=$REPS on $(nproc) CPUs; aardvark-dns $("$AARDVARK" --version 2>/dev/null | awk '{print $2}')"
printf '%-4s %-6s %-9s %9s %8s %8s %8s %5s %5s %9s %6s\n' rep kind tool qps p50_us p99_us ok bad lost cpu_us/q load1
: >"$res/runs"
for ((rep = 1; rep <= REPS; rep++)); do
	order=$TOOLS
	((rep % 2 == 0)) && order=$(echo "$TOOLS" | awk '{for (i = NF; i > 0; i--) printf "%s%s", $i, (i > 1 ? " " : "")}')
	for kind in $KINDS; do
		for tool in $order; do
			pid=$(pid_of "$tool")
			c0=$(cpu "$pid")
			line=$(load "$tool" "$kind" "$T" "$WARMUP" "$C")
			c1=$(cpu "$pid")
			read -r qps p50 p99 ok bad lost replies < <(echo "$line" | sed 's/[a-z0-9_]*=//g')
			cpq=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v n="$replies" 'BEGIN {printf "%.1f", n ? d * 1e6 / hz / n : 0}')
			load1=$(cut -d' ' -f1 /proc/loadavg)
			printf '%-4s %-6s %-9s %9s %8s %8s %8s %5s %5s %9s %6s\n' "$rep" "$kind" "$tool" "$qps" "$p50" "$p99" "$ok" "$bad" "$lost" "$cpq" "$load1" |
				tee -a "$res/runs"
		done
	done
done

echo
echo "median over $REPS rounds:"
printf '%-6s %-9s %9s %8s %8s %9s\n' kind tool qps p50_us p99_us cpu_us/q
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
for kind in $KINDS; do
	for tool in $TOOLS; do
		sel() { awk -v k="$kind" -v t="$tool" -v c="$1" '$2 == k && $3 == t {print $c}' "$res/runs"; }
		printf '%-6s %-9s %9s %8s %8s %9s\n' "$kind" "$tool" "$(sel 4 | median)" "$(sel 5 | median)" "$(sel 6 | median)" "$(sel 10 | median)" | tee -a "$res/summary"
	done
done
echo
[[ -z ${npid:-} ]] || echo "resident memory: nsnet resolver $(rss "$npid") kB"
[[ -z $apid ]] || echo "resident memory: aardvark-dns $(rss "$apid") kB"
