#!/usr/bin/env bash
# bench/dataplane.sh: TCP throughput (iperf3) through nsnet's data plane next
# to the same path built by hand, measured side by side in one run:
#   s2s:  sandbox -> sandbox on one bridge network;
#   port: an "internet" namespace -> a published port on the host -> sandbox.
# The floor ("bare") is the same shape made with `ip` commands, with no
# nftables rules at all for s2s and one hand-written DNAT rule (plus
# masquerade) for port. Prints the median Gbit/s per path and tool, the
# nsnet/bare ratio and whether nsnet is within 5 % of bare, as a markdown
# table. See bench/README.md.
#
# Run as root from anywhere:  bench/dataplane.sh
# Environment:
#   REPS=8            iperf3 runs per path and tool (the median is reported); runs
#                     are interleaved bare, nsnet, bare, nsnet, ... (the order is
#                     swapped every other rep, so neither tool always goes first)
#   TIME=2            seconds measured per iperf3 run (iperf3 -t); short runs keep
#                     each bare/nsnet pair close in time, so load from elsewhere
#                     that comes and goes hits both alike
#   OMIT=1            seconds of slow start left out before them (iperf3 -O)
#   STREAMS=1         parallel TCP streams per run (iperf3 -P)
#   PATHS="s2s port"  which paths to measure
#   MAX_LOSS=5        the target: nsnet at most this many percent below bare
#   BRIDGE_NF=        set net.bridge.bridge-nf-call-iptables to 0 or 1 in the host
#                     namespaces (empty: leave the kernel's default for a new
#                     namespace, reported in the header)
#   PREFIX=dpb        name prefix of the namespaces this script makes
#   RESULTS=DIR       where raw results go (default: a new /tmp/dpb-results.XXXXXX, kept)
#   NSNET=/path/nsnet use this nsnet binary instead of building ./cmd/nsnet
#   AFFINITY=0,1      iperf3 -A: the client on CPU 0, the server on CPU 1, so the
#                     scheduler cannot put them on one CPU in some runs only
#                     (default when there are 2 CPUs or more; AFFINITY= unpins)
#   NICE=0            niceness of the iperf3 client and server (e.g. -10 on a busy machine)
#   INSTALL=1         apt-get install iperf3 if it is missing (INSTALL=0: fail instead)
#
# Everything happens in throwaway network namespaces; the root network
# namespace is never changed. The trap on EXIT stops the iperf3 servers,
# removes nsnet's sandboxes and network through nsnet (which stops the
# resident process), and deletes every namespace this script made.
set -euo pipefail
export LC_ALL=C

REPS=${REPS:-8}
TIME=${TIME:-2}
OMIT=${OMIT:-1}
STREAMS=${STREAMS:-1}
PATHS=${PATHS:-"s2s port"}
MAX_LOSS=${MAX_LOSS:-5}
BRIDGE_NF=${BRIDGE_NF:-}
PREFIX=${PREFIX:-dpb}
INSTALL=${INSTALL:-1}
NICE=${NICE:-0}
AFFINITY=${AFFINITY-$( (($(nproc) >= 2)) && echo 0,1 || true)}

die() {
	echo "dataplane.sh: $*" >&2
	exit 1
}
# inrange V LO HI: V is a decimal integer in LO..HI.
inrange() { [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 >= $2 && 10#$1 <= $3)); }

# --- the table -----------------------------------------------------------------------
# stats: "median min max p25 p75" of the numbers on stdin (quartiles by nearest rank).
stats() {
	sort -g | awk '
		function rank(q,  k) { k = int(q * n); if (k < q * n) k++; return k < 1 ? 1 : k }
		{ v[++n] = $1 }
		END { if (n == 0) { print "nan nan nan nan nan"; exit }
		      m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		      printf "%.4f %.4f %.4f %.4f %.4f\n", m, v[1], v[n], v[rank(0.25)], v[rank(0.75)] }'
}
label() {
	case $1 in
	s2s) echo "sandbox → sandbox, same bridge" ;;
	port) echo "internet → published port → sandbox" ;;
	*) echo "$1" ;;
	esac
}
# row RUNS PATH: one table row from the runs of PATH (lines: path tool rep gbit ...).
row() {
	local runs=$1 p=$2 bm blo bhi bq1 bq3 nm nlo nhi nq1 nq3 pm plo phi n
	n=$(awk -v p="$p" '$1 == p && $2 == "bare"' "$runs" | wc -l)
	read -r bm blo bhi bq1 bq3 <<<"$(awk -v p="$p" '$1 == p && $2 == "bare" { print $4 }' "$runs" | stats)"
	read -r nm nlo nhi nq1 nq3 <<<"$(awk -v p="$p" '$1 == p && $2 == "nsnet" { print $4 }' "$runs" | stats)"
	# per rep: nsnet / bare of the same rep, measured back to back, so a
	# load that comes and goes between reps cancels out.
	read -r pm plo phi _ <<<"$(awk -v p="$p" '$1 == p { g[$2, $3] = $4 }
		END { for (k in g) { split(k, a, SUBSEP); if (a[1] == "nsnet" && g["bare", a[2]] > 0) print g[k] / g["bare", a[2]] } }' "$runs" | stats)"
	awk -v l="$(label "$p")" -v bm="$bm" -v blo="$blo" -v bhi="$bhi" -v nm="$nm" -v nlo="$nlo" -v nhi="$nhi" \
		-v bq1="$bq1" -v bq3="$bq3" -v nq3="$nq3" -v pm="$pm" -v plo="$plo" -v phi="$phi" -v max="$MAX_LOSS" -v n="$n" 'BEGIN {
			r = nm / bm; spread = 100 * (bq3 - bq1) / bm
			printf "| %s | %.2f (%.2f–%.2f) | %.2f (%.2f–%.2f) | %.3f | %.3f (%.3f–%.3f) | %.3f | %.0f %% | %s |\n",
				l, bm, blo, bhi, nm, nlo, nhi, r, pm, plo, phi, nq3 / bq3, spread,
				((r >= 1 - max / 100) ? "yes" : "**no**") (n < 4 ? " (too few runs)" : spread > max ? " (noisy)" : "")
		}'
}
# table RUNS: the markdown table of a run, and what its columns mean.
table() {
	local runs=$1 p
	echo
	echo "| path | bare Gbit/s, median (min–max) | nsnet Gbit/s, median (min–max) | nsnet/bare, medians | nsnet/bare per rep, median (min–max) | nsnet/bare, upper quartiles | bare spread | within $MAX_LOSS % |"
	echo "|---|---|---|---|---|---|---|---|"
	for p in $(awk '!seen[$1]++ { print $1 }' "$runs"); do row "$runs" "$p"; done
	echo
	echo "Per rep: nsnet over bare of the same rep, run back to back. Upper quartiles: of each tool's runs (other load only"
	echo "ever slows a run down, so the faster runs are the less disturbed ones). Bare spread: interquartile range / median"
	echo "of the bare runs; \"(noisy)\" marks a spread above $MAX_LOSS %, where the machine's noise is as large as the target and"
	echo "the verdict means little. \"within $MAX_LOSS %\": nsnet/bare of the medians >= $(awk -v m="$MAX_LOSS" 'BEGIN { print 1 - m / 100 }')."
}

# bench/dataplane.sh --table DIR: print the table of an earlier run again.
if [[ ${1:-} == --table ]]; then
	[[ -f ${2:-}/runs ]] || die "--table DIR: want the raw results directory of a run (it holds 'runs')"
	cat "$2/env" 2>/dev/null || true
	table "$2/runs"
	exit
fi

[[ $(id -u) == 0 ]] || die "must run as root"
inrange "$REPS" 1 1000 || die "REPS: want a positive integer"
inrange "$TIME" 1 3600 || die "TIME: want seconds, 1..3600"
inrange "$OMIT" 0 60 || die "OMIT: want seconds, 0..60"
inrange "$STREAMS" 1 128 || die "STREAMS: want 1..128"
inrange "$MAX_LOSS" 0 100 || die "MAX_LOSS: want a percentage, 0..100"
[[ $NICE =~ ^-?[0-9]+$ ]] && ((NICE >= -20 && NICE <= 19)) || die "NICE: want -20..19"
[[ -z $AFFINITY || $AFFINITY =~ ^[0-9]+,[0-9]+$ ]] || die "AFFINITY: want CLIENT_CPU,SERVER_CPU or empty"
[[ -z $BRIDGE_NF || $BRIDGE_NF == [01] ]] || die "BRIDGE_NF: want 0, 1 or empty"
for p in $PATHS; do
	case $p in s2s | port) ;; *) die "unknown path '$p' in PATHS (want s2s and/or port)" ;; esac
done
for t in ip ss nsenter nft awk findmnt timeout; do
	command -v "$t" >/dev/null || die "needs $t"
done
if ! command -v iperf3 >/dev/null; then
	[[ $INSTALL == 1 ]] || die "needs iperf3 (apt-get install -y iperf3)"
	echo "installing iperf3 (apt-get install -y iperf3) ..."
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq iperf3 >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq iperf3 >/dev/null; } ||
		die "could not install iperf3: install it (apt-get install -y iperf3) and run again"
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
tmp=$(mktemp -d /tmp/dpb-work.XXXXXX)
. "$repo/bench/states.sh"
res=${RESULTS:-$(mktemp -d /tmp/dpb-results.XXXXXX)}
mkdir -p "$res"
made_ns=()
servers=()
nsnet_world=0

# The worlds. Every one has the same sandbox subnet, addresses and MACs
# (nsnet derives 02:42 + the address; bare sets the same), MTU 1500, and the
# same bridge name, each in its own host namespace:
#   bare:  $PREFIX-bare-host (bridge, ip_forward, no nftables at all),
#          sandboxes $PREFIX-bare-sb1, -sb2              -> path s2s
#   dnat:  $PREFIX-dnat-host (the same, plus eth0 203.0.113.2/24 to
#          $PREFIX-dnat-inet 203.0.113.1/24, and table ip bare: one DNAT
#          rule for 5201 and masquerade), sandbox $PREFIX-dnat-sb1 -> path port
#   nsnet: $PREFIX-nsnet-host (eth0 and $PREFIX-nsnet-inet as in dnat; nsnet's
#          network and sandboxes $PREFIX-nsnet-sb1 -p 5201:5201 and -sb2)
#                                                        -> paths s2s and port
# A bare world of its own for s2s keeps the DNAT table out of it: a table with
# nat chains turns connection tracking on in its namespace, and with
# bridge-nf-call-iptables=1 bridged packets then pass it too.
SUBNET=10.61.0.0/24
GW=10.61.0.1
SB1=10.61.0.2
SB2=10.61.0.3
BR=$PREFIX-br
HOSTIP=203.0.113.2
INETIP=203.0.113.1
PORT=5201

nsnet_in() { nsenter --net="/run/netns/$PREFIX-nsnet-host" -- "$tmp/nsnet" --root "$tmp/root" "$@"; }

cleanup() {
	local rc=$? ns m p cmd left
	trap - EXIT INT TERM HUP
	for p in "${servers[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	# Let nsnet undo its own state: sandbox rm stops the resident process and
	# removes the sandbox's marker in /run/nsnet.
	if ((nsnet_world)) && [[ -e /run/netns/$PREFIX-nsnet-host ]]; then
		for m in "$PREFIX-nsnet-sb1" "$PREFIX-nsnet-sb2"; do
			if nsnet_in sandbox inspect "$m" >/dev/null 2>&1; then
				nsnet_in sandbox rm "$m" >/dev/null 2>&1 || echo "WARNING: nsnet sandbox rm $m failed" >&2
			fi
		done
		if nsnet_in network inspect dp >/dev/null 2>&1; then
			nsnet_in network rm dp >/dev/null 2>&1 || echo "WARNING: nsnet network rm dp failed" >&2
		fi
	fi
	# A resident process of our state root that sandbox rm could not stop.
	for p in /proc/[0-9]*; do
		cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		if [[ $cmd == *"__resident --root $tmp/root "* ]]; then
			echo "WARNING: stopping a resident process left behind: pid ${p#/proc/}" >&2
			kill "${p#/proc/}" 2>/dev/null || true
		fi
	done
	# Deleting a host namespace removes its bridge, veths (and with them the
	# peers in the other namespaces) and its nftables rules.
	for ns in "${made_ns[@]}"; do
		ip netns delete "$ns" 2>/dev/null || true
	done
	while read -r m; do
		if [[ $m == "$tmp"* ]]; then umount -l "$m" 2>/dev/null || true; fi
	done < <(findmnt -rn -o TARGET 2>/dev/null | sort -r)
	# A marker that nsnet could not remove names a root of ours, now gone.
	for m in /run/nsnet/netns/"$PREFIX"-nsnet-sb*; do
		if [[ -f $m ]] && grep -qF "\"root\":\"$tmp/" "$m"; then rm -f "$m"; fi
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

# --- build -------------------------------------------------------------------
if [[ -n ${NSNET:-} ]]; then
	cp "$NSNET" "$tmp/nsnet"
else
	echo "building ./cmd/nsnet in $repo (static, CGO_ENABLED=0) ..."
	if ! (cd "$repo" && CGO_ENABLED=0 "$GO" build -o "$tmp/nsnet" ./cmd/nsnet) >"$tmp/build.log" 2>&1; then
		cat "$tmp/build.log" >&2
		die "go build ./cmd/nsnet failed"
	fi
fi

# --- worlds --------------------------------------------------------------------
mkns() {
	# A leftover of an aborted run with our own name is ours to replace.
	made_ns+=("$1")
	if [[ -e /run/netns/$1 ]]; then ip netns delete "$1"; fi
	ip netns add "$1"
	ip -n "$1" link set lo up
}
in_ns() { # in_ns NS CMD...: CMD in the network namespace NS only
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" -- "$@"
}
sysctl_in() { in_ns "$1" sh -c "echo $3 >/proc/sys/$2"; }

# host_ns W: the host namespace of world W, with its bridge-nf setting.
host_ns() {
	mkns "$PREFIX-$1-host"
	[[ -z $BRIDGE_NF ]] || sysctl_in "$PREFIX-$1-host" net/bridge/bridge-nf-call-iptables "$BRIDGE_NF"
}

# uplink W: eth0 203.0.113.2/24 in W's host namespace, to wan0 203.0.113.1/24
# in the namespace $PREFIX-W-inet, which plays the internet.
uplink() {
	local h=$PREFIX-$1-host i=$PREFIX-$1-inet
	mkns "$i"
	ip -n "$h" link add eth0 type veth peer name wan0 netns "$i"
	ip -n "$h" addr add "$HOSTIP/24" dev eth0
	ip -n "$i" addr add "$INETIP/24" dev wan0
	ip -n "$h" link set eth0 up
	ip -n "$i" link set wan0 up
	ip -n "$h" route add default via "$INETIP"
}

# bare_bridge W: the seed article's bridge network by hand in W's host namespace.
bare_bridge() {
	local h=$PREFIX-$1-host
	ip -n "$h" link add "$BR" type bridge
	ip -n "$h" addr add "$GW/24" dev "$BR"
	ip -n "$h" link set "$BR" up
	sysctl_in "$h" net/ipv4/ip_forward 1
}

# bare_sandbox W N IP: namespace $PREFIX-W-sbN on W's bridge, eth0 at IP.
bare_sandbox() {
	local h=$PREFIX-$1-host sb=$PREFIX-$1-sb$2 ip=$3 mac
	mkns "$sb"
	printf -v mac '02:42:%02x:%02x:%02x:%02x' ${ip//./ }
	ip -n "$h" link add "$PREFIX-v$2" type veth peer name eth0 netns "$sb"
	ip -n "$h" link set "$PREFIX-v$2" master "$BR"
	ip -n "$h" link set "$PREFIX-v$2" type bridge_slave hairpin on # as nsnet does
	ip -n "$h" link set "$PREFIX-v$2" up
	ip -n "$sb" link set eth0 address "$mac"
	ip -n "$sb" addr add "$ip/24" dev eth0
	ip -n "$sb" link set eth0 up
	ip -n "$sb" route add default via "$GW"
}

# server W: an iperf3 server in W's first sandbox.
server() {
	local sb=$PREFIX-$1-sb1 i
	# nsenter itself, not a shell function: $! must be the pid that becomes iperf3.
	nice -n "$NICE" nsenter --net="/run/netns/$sb" -- iperf3 -s -p "$PORT" >"$res/server-$1.log" 2>&1 &
	servers+=($!)
	for ((i = 0; i < 100; i++)); do
		if in_ns "$sb" ss -Hltn "sport = :$PORT" | grep -q .; then return 0; fi
		sleep 0.05
	done
	die "the iperf3 server in $sb did not start: $(cat "$res/server-$1.log")"
}

mkbare() {
	host_ns bare
	bare_bridge bare
	bare_sandbox bare 1 "$SB1"
	bare_sandbox bare 2 "$SB2"
	server bare
}

mkdnat() {
	host_ns dnat
	uplink dnat
	bare_bridge dnat
	bare_sandbox dnat 1 "$SB1"
	in_ns "$PREFIX-dnat-host" nft -f - <<-EOF
		table ip bare {
			chain prerouting {
				type nat hook prerouting priority dstnat; policy accept;
				ip daddr $HOSTIP tcp dport $PORT dnat to $SB1:$PORT
			}
			chain postrouting {
				type nat hook postrouting priority srcnat; policy accept;
				ip saddr $SUBNET oifname != "$BR" masquerade
			}
		}
	EOF
	server dnat
}

mknsnet() {
	host_ns nsnet
	uplink nsnet
	nsnet_world=1
	{
		nsnet_in network create --subnet "$SUBNET" --gateway "$GW" --bridge "$BR" dp &&
			nsnet_in sandbox create --network dp --ip "$SB1" -p "$PORT:$PORT" "$PREFIX-nsnet-sb1" &&
			nsnet_in sandbox create --network dp --ip "$SB2" "$PREFIX-nsnet-sb2"
	} >>"$res/nsnet.log" 2>&1 || die "nsnet failed to build its world: $(tail -n 5 "$res/nsnet.log")"
	server nsnet
}

# check_shape: the worlds differ only where they should; record what they hold.
check_shape() {
	local w mtu ruleset
	for w in bare dnat nsnet; do
		[[ -e /run/netns/$PREFIX-$w-sb1 ]] || continue
		mtu=$(ip -n "$PREFIX-$w-sb1" -o link show eth0 | grep -o 'mtu [0-9]*')
		[[ $mtu == "mtu 1500" ]] || die "$w world: sandbox eth0 has $mtu, want mtu 1500 like the others"
		in_ns "$PREFIX-$w-host" nft list ruleset >"$res/ruleset-$w.nft"
	done
	[[ ! -s $res/ruleset-bare.nft ]] || die "the bare world has nftables rules: $(head -n 3 "$res/ruleset-bare.nft")"
	grep -q "tcp \. $PORT : $SB1 \. $PORT" "$res/ruleset-nsnet.nft" ||
		die "nsnet's table does not publish $PORT to $SB1:$PORT (see $res/ruleset-nsnet.nft)"
}

# --- measuring ---------------------------------------------------------------------
# iperf OUT CLIENT_NS TARGET T O: one iperf3 client run; prints Gbit/s at the
# receiver and the sender's retransmits.
iperf() {
	local out=$1 ns=$2 target=$3 t=$4 o=$5
	if ! timeout $((t + o + 30)) nice -n "$NICE" nsenter --net="/run/netns/$ns" -- \
		iperf3 -c "$target" -p "$PORT" -t "$t" -O "$o" -P "$STREAMS" ${AFFINITY:+-A "$AFFINITY"} -f m --connect-timeout 3000 >"$out" 2>&1; then
		echo "iperf3 from $ns to $target:$PORT failed:" >&2
		tail -n 5 "$out" >&2
		return 1
	fi
	awk -v p="$STREAMS" '
		# with -P > 1 only the [SUM] lines count
		(p == 1 || /^\[SUM\]/) && / Mbits\/sec/ {
			for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") break
			if ($NF == "receiver") g = $(i - 1) / 1000
			if ($NF == "sender") r = $(i + 1)
		}
		END { if (g == "") exit 1; printf "%.2f %s\n", g, r }' "$out"
}

# client TOOL PATH: the namespace the client runs in and the address it calls.
client() {
	case $1/$2 in
	bare/s2s) echo "$PREFIX-bare-sb2 $SB1" ;;
	nsnet/s2s) echo "$PREFIX-nsnet-sb2 $SB1" ;;
	bare/port) echo "$PREFIX-dnat-inet $HOSTIP" ;;
	nsnet/port) echo "$PREFIX-nsnet-inet $HOSTIP" ;;
	esac
}

bnf() { in_ns "$1" cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo "n/a"; }

echo "creating the worlds (bare, dnat, nsnet) ..."
mkbare
mkdnat
mknsnet
check_shape

{
	echo "date: $(date -u +%FT%TZ)"
	echo "machine: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
	echo "nsnet: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD -- . 2>/dev/null || echo ' (dirty tree)')"
	echo "iperf3: $(iperf3 --version | head -n 1); nft: $(nft --version)"
	echo "bridge-nf-call-iptables in the host namespaces: bare $(bnf "$PREFIX-bare-host"), dnat $(bnf "$PREFIX-dnat-host"), nsnet $(bnf "$PREFIX-nsnet-host")"
	echo "REPS=$REPS TIME=$TIME OMIT=$OMIT STREAMS=$STREAMS AFFINITY=$AFFINITY NICE=$NICE PATHS=\"$PATHS\" MAX_LOSS=$MAX_LOSS"
	echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$res/env"

# One short untimed run per path and tool: it shows each path works before
# anything is timed, and warms caches and ARP.
for p in $PATHS; do
	for t in bare nsnet; do
		read -r ns target <<<"$(client "$t" "$p")"
		iperf "$res/warmup-$t-$p.txt" "$ns" "$target" 1 0 >/dev/null || die "$t $p: the path does not work"
	done
done

runs=$res/runs # path tool rep gbit retrans load1
: >"$runs"
printf '\n%-5s %-6s %4s %8s %8s %6s\n' path tool rep Gbit/s retrans load1
for ((rep = 1; rep <= REPS; rep++)); do
	order="bare nsnet"
	((rep % 2)) || order="nsnet bare"
	for p in $PATHS; do
		for t in $order; do
			read -r ns target <<<"$(client "$t" "$p")"
			r=$(iperf "$res/iperf-$p-$t-$rep.txt" "$ns" "$target" "$TIME" "$OMIT") || die "$t $p run $rep failed"
			line="$p $t $rep $r $(cut -d' ' -f1 /proc/loadavg)"
			echo "$line" >>"$runs"
			# shellcheck disable=SC2086
			printf '%-5s %-6s %4s %8s %8s %6s\n' $line
		done
	done
done

echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$res/env"
table "$runs" | tee "$res/table.md"
