#!/usr/bin/env bash
# bench/antispoof.sh: the cost of anti-spoofing, measured side by side in one
# run. Two nsnet worlds, the same but for one setting: "on" (the default, every
# sandbox port guarded by the bridge table) and "off" (network create
# --antispoof=false, no element for any port, so frames pass the bridge
# table's one lookup of the port and nothing else). It measures
#   s2s:    iperf3 TCP throughput sandbox -> sandbox on one bridge network;
#   port:   iperf3 TCP throughput internet namespace -> published port -> sandbox;
#   create: nsnet sandbox create time (and sandbox rm time), N sandboxes a run;
# interleaved (on, off, then off, on, ...), and prints the medians, off/on
# ratios and whether "on" is within 5 % of "off", as a markdown table.
#
# Run as root from anywhere:  bench/antispoof.sh
# Environment:
#   REPS=8        iperf3 runs per path and world, and create/rm runs per world
#   TIME=2        seconds per iperf3 run (iperf3 -t), after OMIT=1 left out (-O)
#   N=20          sandboxes created (then removed) per create run
#   MAX_LOSS=5    the target, in percent
#   AFFINITY=0,1  iperf3 -A client,server (default with 2 CPUs or more; empty: unpinned)
#   PREFIX=asb    name prefix of the namespaces this script makes
#   NSNET=/path   use this nsnet binary instead of building ./cmd/nsnet
#
# Everything happens in throwaway network namespaces; the root namespace is
# never changed. The trap on EXIT stops the iperf3 servers, removes nsnet's
# sandboxes and networks through nsnet, and deletes every namespace it made.
set -euo pipefail
export LC_ALL=C

REPS=${REPS:-8}
TIME=${TIME:-2}
OMIT=${OMIT:-1}
N=${N:-20}
MAX_LOSS=${MAX_LOSS:-5}
PREFIX=${PREFIX:-asb}
AFFINITY=${AFFINITY-$( (($(nproc) >= 2)) && echo 0,1 || true)}
PORT=5201
SUBNET=10.62.0.0/24
SB1=10.62.0.2
SB2=10.62.0.3
HOSTIP=203.0.113.2
INETIP=203.0.113.1

die() {
	echo "antispoof.sh: $*" >&2
	exit 1
}
[[ $(id -u) == 0 ]] || die "must run as root"
for t in ip nsenter iperf3 ss awk findmnt; do command -v "$t" >/dev/null || die "needs $t"; done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
tmp=$(mktemp -d /tmp/asb-work.XXXXXX)
. "$repo/bench/states.sh"
res=$(mktemp -d /tmp/asb-results.XXXXXX)
made_ns=()
servers=()

nsnet_in() { # nsnet_in WORLD ARGS...: nsnet in WORLD's host namespace, with WORLD's root
	local w=$1
	shift
	nsenter --net="/run/netns/$PREFIX-$w-host" -- "$tmp/nsnet" --root "$tmp/root-$w" "$@"
}

cleanup() {
	local rc=$? p w m sb
	trap - EXIT INT TERM HUP
	for p in "${servers[@]}"; do kill "$p" 2>/dev/null || true; done
	for w in on off; do
		[[ -e /run/netns/$PREFIX-$w-host ]] || continue
		for sb in $(nsnet_in "$w" sandbox ls 2>/dev/null | awk 'NR > 1 { print $1 }'); do
			nsnet_in "$w" sandbox rm --force "$sb" >/dev/null 2>&1 || echo "WARNING: sandbox rm $sb failed" >&2
		done
		nsnet_in "$w" network rm dp >/dev/null 2>&1 || true
	done
	for ns in "${made_ns[@]}"; do ip netns delete "$ns" 2>/dev/null || true; done
	while read -r m; do
		if [[ $m == "$tmp"* ]]; then umount -l "$m" 2>/dev/null || true; fi
	done < <(findmnt -rn -o TARGET 2>/dev/null | sort -r)
	rm -rf "$tmp"
	remove_states "$tmp"
	echo "raw results: $res"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if [[ -n ${NSNET:-} ]]; then
	cp "$NSNET" "$tmp/nsnet"
else
	echo "building ./cmd/nsnet (static and stripped) ..."
	(cd "$repo" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags='-s -w' -o "$tmp/nsnet" ./cmd/nsnet) || die "go build failed"
fi

mkns() {
	made_ns+=("$1")
	if [[ -e /run/netns/$1 ]]; then ip netns delete "$1"; fi
	ip netns add "$1"
	ip -n "$1" link set lo up
}

# world W FLAGS...: host and internet namespaces, nsnet's network dp made
# with FLAGS, sandbox sb1 (an iperf3 server, published on 5201) and sb2.
world() {
	local w=$1 h=$PREFIX-$1-host i=$PREFIX-$1-inet
	shift
	mkns "$h"
	mkns "$i"
	ip -n "$h" link add eth0 type veth peer name wan0 netns "$i"
	ip -n "$h" addr add "$HOSTIP/24" dev eth0
	ip -n "$i" addr add "$INETIP/24" dev wan0
	ip -n "$h" link set eth0 up
	ip -n "$i" link set wan0 up
	ip -n "$h" route add default via "$INETIP"
	{
		nsnet_in "$w" network create --subnet "$SUBNET" --bridge "$PREFIX-br" "$@" dp &&
			nsnet_in "$w" sandbox create --network dp --ip "$SB1" -p "$PORT:$PORT" "$PREFIX-$w-sb1" &&
			nsnet_in "$w" sandbox create --network dp --ip "$SB2" "$PREFIX-$w-sb2"
	} >>"$res/nsnet.log" 2>&1 || die "nsnet failed to build world $w: $(tail -n 5 "$res/nsnet.log")"
	nsenter --net="/run/netns/$PREFIX-$w-sb1" -- iperf3 -s -p "$PORT" >"$res/server-$w.log" 2>&1 &
	servers+=($!)
	for ((k = 0; k < 100; k++)); do
		if nsenter --net="/run/netns/$PREFIX-$w-sb1" -- ss -Hltn "sport = :$PORT" | grep -q .; then return 0; fi
		sleep 0.05
	done
	die "iperf3 server in world $w did not start"
}

echo "creating the worlds (on: default, off: --antispoof=false) ..."
world on
world off --antispoof=false
for w in on off; do
	nsenter --net="/run/netns/$PREFIX-$w-host" -- nft list ruleset >"$res/ruleset-$w.nft"
done
grep -q "\" . $SB1 . " "$res/ruleset-on.nft" || die "world on: no guard element for $SB1 (see $res/ruleset-on.nft)"
! grep -q "\" . $SB1 . " "$res/ruleset-off.nft" || die "world off: a guard element for $SB1 (see $res/ruleset-off.nft)"

# iperf W PATH: one run; prints receiver Gbit/s.
iperf() {
	local ns target
	case $2 in
	s2s) ns=$PREFIX-$1-sb2 target=$SB1 ;;
	port) ns=$PREFIX-$1-inet target=$HOSTIP ;;
	esac
	nsenter --net="/run/netns/$ns" -- iperf3 -c "$target" -p "$PORT" -t "$3" -O "$4" ${AFFINITY:+-A "$AFFINITY"} -f m \
		--connect-timeout 3000 >"$res/iperf-$1-$2-$5.txt" 2>&1 || die "iperf3 $1 $2 failed: $(tail -n 3 "$res/iperf-$1-$2-$5.txt")"
	awk '/ Mbits\/sec/ && $NF == "receiver" { for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") g = $(i - 1) / 1000 }
		END { printf "%.3f\n", g }' "$res/iperf-$1-$2-$5.txt"
}

# creates W REP: N sandbox creates then N removes in W; prints the median
# create and rm times in ms.
creates() {
	local w=$1 rep=$2 k t0 t1 c="$res/create-$1-$2" r="$res/rm-$1-$2"
	: >"$c"
	: >"$r"
	for ((k = 1; k <= N; k++)); do
		t0=$(date +%s%N)
		nsnet_in "$w" sandbox create --network dp "$PREFIX-$w-x$k" >/dev/null
		t1=$(date +%s%N)
		echo $(((t1 - t0) / 1000)) >>"$c"
	done
	for ((k = 1; k <= N; k++)); do
		t0=$(date +%s%N)
		nsnet_in "$w" sandbox rm "$PREFIX-$w-x$k" >/dev/null
		t1=$(date +%s%N)
		echo $(((t1 - t0) / 1000)) >>"$r"
	done
	echo "$(median <"$c" | awk '{ printf "%.2f", $1 / 1000 }') $(median <"$r" | awk '{ printf "%.2f", $1 / 1000 }')"
}

median() { sort -g | awk '{ v[++n] = $1 } END { print (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'; }

for w in on off; do # warm-up, untimed: every path works
	iperf "$w" s2s 1 0 0 >/dev/null
	iperf "$w" port 1 0 0 >/dev/null
done

runs=$res/runs # metric world rep value
: >"$runs"
{
	echo "date: $(date -u +%FT%TZ); $(nproc) cpus, kernel $(uname -r); nsnet $(git -C "$repo" rev-parse --short HEAD 2>/dev/null)"
	echo "REPS=$REPS TIME=$TIME OMIT=$OMIT N=$N AFFINITY=$AFFINITY; load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$res/env"
printf '\n%-7s %-4s %4s %10s\n' metric on/off rep value
for ((rep = 1; rep <= REPS; rep++)); do
	order="on off"
	((rep % 2)) || order="off on"
	for p in s2s port; do
		for w in $order; do
			v=$(iperf "$w" "$p" "$TIME" "$OMIT" "$rep")
			echo "$p $w $rep $v" | tee -a "$runs"
		done
	done
	for w in $order; do
		read -r c r <<<"$(creates "$w" "$rep")"
		echo "create $w $rep $c" | tee -a "$runs"
		echo "rm $w $rep $r" | tee -a "$runs"
	done
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$res/env"

# The table: medians over reps, and the median of per-rep on/off ratios.
{
	echo
	echo "| metric | antispoof on, median (min–max) | off, median (min–max) | on/off, medians | on/off per rep, median (min–max) | within $MAX_LOSS % |"
	echo "|---|---|---|---|---|---|"
	for m in s2s port create rm; do
		awk -v m="$m" -v max="$MAX_LOSS" '
			$1 == m { v[$2, $3] = $4; vals[$2] = vals[$2] " " $4; reps[$3] = 1 }
			function med(s,  a, n, i, j, t) { n = split(s, a, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
				lo = a[1]; hi = a[n]; return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
			END {
				on = med(vals["on"]); onlo = lo; onhi = hi
				off = med(vals["off"]); offlo = lo; offhi = hi
				r = ""; for (k in reps) r = r " " v["on", k] / v["off", k]
				pr = med(r); prlo = lo; prhi = hi
				unit = (m == "create" || m == "rm") ? " ms" : " Gbit/s"
				# throughput: more is better; times: less is better
				ok = (m == "create" || m == "rm") ? (on / off <= 1 + max / 100) : (on / off >= 1 - max / 100)
				printf "| %s | %.3f%s (%.3f–%.3f) | %.3f%s (%.3f–%.3f) | %.3f | %.3f (%.3f–%.3f) | %s |\n",
					m, on, unit, onlo, onhi, off, unit, offlo, offhi, on / off, pr, prlo, prhi, ok ? "yes" : "**no**"
			}' "$runs"
	done
	echo
	echo "s2s, port: iperf3 TCP Gbit/s at the receiver (more is better). create, rm: median ms of one nsnet sandbox create / rm"
	echo "on a network with two sandboxes (less is better). Per rep: on over off of the same rep, run back to back."
} | tee "$res/table.md"
