#!/usr/bin/env bash
# bench/ports.sh: what a published port costs with nsnet's nftables maps and
# with the iptables way (one DNAT rule per mapping in a chain, as Docker's
# iptables backend and CNI's portmap do), at 1, 1,000 and 10,000 mappings:
# the time to add one more mapping (one process, as a user or a runtime runs
# it) and the TCP connect latency through the last-added mapping. Prints one
# table and the iptables/nsnet ratios. See bench/README.md.
#
# Run as root from anywhere:  bench/ports.sh
# Environment:
#   SIZES="1 1000 10000"  mappings installed when one more is timed (1..10001)
#   K=20                  timed adds per method and size (the median is reported; 1..999)
#   M=1000                timed connects per method and size (p50/p99 reported)
#   WARMUP=100            untimed connects before them
#   METHODS="nsnet iptables-nft iptables-legacy"
#                         iptables-legacy is skipped (with a note) if it does not work here
#   CHUNK=1000            mappings per `nsnet port add` when filling (see README: at most 1820)
#   PREFIX=nspb           name prefix of the namespaces this script makes
#   RESULTS=DIR           where raw results go (default: a new /tmp/nspb-results.XXXXXX, kept)
#   NSNET=/path/nsnet     use this nsnet binary instead of building ./cmd/nsnet
#
# Everything happens in throwaway network namespaces, one world per method:
# $PREFIX-host-METHOD (nsnet's network and the mappings), $PREFIX-cli-METHOD
# (the client, 203.0.113.1) and the sandbox $PREFIX-sb-METHOD (10.60.0.2, a
# TCP server on port 80). The root network namespace is never changed; the
# trap on EXIT deletes every namespace this script made.
set -euo pipefail
export LC_ALL=C

# --- the timed driver ------------------------------------------------------------
# The script runs itself as the driver inside a host namespace (one nsenter per
# run: bash ports.sh __driver PHASE ...), so only the tool itself is timed:
# fork+exec+run+wait, by $EPOCHREALTIME in microseconds.
#   run:   fill SIZE-1 mappings (host ports 20000.., timed as a whole), then K
#          times add one mapping 3000k:80 (timed) and, but for the last,
#          remove it again (timed): each add goes from SIZE-1 to SIZE mappings.
#          Writes OUT.fill, OUT.add, OUT.rm (microseconds).
#   clear: remove every mapping again.
# After each phase it checks how many mappings the kernel holds.
driver() {
	local phase=$1 method=$2 bin=$3 root=$4 sb=$5 size=$6 k=$7 out=$8 chunk=$9 br=${10} ctr=${11}
	local log=$out.log fill p i s t0 t1 a=() r=() specs=() rule=()
	: >>"$log"
	fail() {
		{
			echo "--- last output ($log, without the lines listing mappings):"
			grep -v -e "->" "$log" | tail -n 10
			echo "FAILED: $method size $size: $*"
		} >&2
		exit 1
	}
	nsnet() { "$bin/nsnet" --root "$root" "$@"; }
	ipt() { "$method" -w 5 -t nat "$@"; }
	# count: mappings the kernel holds; for nsnet also the store, which must agree.
	count() {
		local kern st
		kern=$(nft list map inet nsnet ports-any-ip 2>>"$log" | grep -o "tcp \. [0-9]*" | wc -l)
		if [[ $method == nsnet ]]; then
			st=$(nsnet port ls "$sb" 2>>"$log" | tail -n +2 | wc -l)
			[[ $st == "$kern" ]] || fail "nsnet's store has $st mappings, its nftables map $kern"
			echo "$kern"
		else
			[[ $kern == 0 ]] || fail "nsnet's map holds $kern elements in the $method world"
			ipt -S DOCKER 2>>"$log" | grep -c -- "-j DNAT" || true
		fi
	}
	expect() {
		local got
		got=$(count) || exit 1
		[[ $got == "$1" ]] || fail "$2: want $1 mappings in the kernel, found $got"
	}
	# chunks: the fill as nsnet specs of at most $chunk ports each.
	chunks() {
		local s e last=$((20000 + size - 2))
		for ((s = 20000; s <= last; s += chunk)); do
			e=$((s + chunk - 1))
			((e <= last)) || e=$last
			if ((s == e)); then echo "$s:$s"; else echo "$s-$e:$s-$e"; fi
		done
	}
	# dnat P CTRPORT: Docker's DNAT rule for host port P, in the array rule.
	dnat() { rule=(! -i "$br" -p tcp -m tcp --dport "$1" -j DNAT --to-destination "$ctr:$2"); }
	mapfile -t specs < <(chunks)
	case $phase in
	run)
		fill=$((size - 1))
		if [[ $method != nsnet ]]; then
			{
				echo "*nat"
				for ((p = 20000; p < 20000 + fill; p++)); do
					dnat "$p" "$p"
					echo "-A DOCKER ${rule[*]}"
				done
				echo "COMMIT"
			} >"$out.restore"
		fi
		t0=$EPOCHREALTIME
		if ((fill > 0)); then
			if [[ $method == nsnet ]]; then
				for s in "${specs[@]}"; do
					nsnet port add "$sb" "$s" >>"$log" 2>&1 || fail "nsnet port add $sb $s"
				done
			else
				"$method-restore" -w 5 --noflush <"$out.restore" >>"$log" 2>&1 || fail "$method-restore of $fill rules"
			fi
		fi
		t1=$EPOCHREALTIME
		echo $((${t1/./} - ${t0/./})) >"$out.fill"
		expect "$fill" "after the fill"
		for ((i = 1; i <= k; i++)); do
			p=$((30000 + i))
			dnat "$p" 80
			if [[ $method == nsnet ]]; then
				t0=$EPOCHREALTIME
				nsnet port add "$sb" "$p:80" >>"$log" 2>&1 || fail "nsnet port add $sb $p:80"
				t1=$EPOCHREALTIME
			else
				t0=$EPOCHREALTIME
				ipt -A DOCKER "${rule[@]}" >>"$log" 2>&1 || fail "$method -t nat -A DOCKER ${rule[*]}"
				t1=$EPOCHREALTIME
			fi
			a+=($((${t1/./} - ${t0/./})))
			((i < k)) || break
			if [[ $method == nsnet ]]; then
				t0=$EPOCHREALTIME
				nsnet port rm "$sb" "$p:80" >>"$log" 2>&1 || fail "nsnet port rm $sb $p:80"
				t1=$EPOCHREALTIME
			else
				t0=$EPOCHREALTIME
				ipt -D DOCKER "${rule[@]}" >>"$log" 2>&1 || fail "$method -t nat -D DOCKER ${rule[*]}"
				t1=$EPOCHREALTIME
			fi
			r+=($((${t1/./} - ${t0/./})))
		done
		printf "%s\n" "${a[@]}" >"$out.add"
		printf "%s\n" "${r[@]}" >"$out.rm"
		expect "$size" "after the timed adds"
		;;
	clear)
		if [[ $method == nsnet ]]; then
			nsnet port rm "$sb" "$((30000 + k)):80" >>"$log" 2>&1 || fail "nsnet port rm $sb $((30000 + k)):80"
			for s in "${specs[@]}"; do
				nsnet port rm "$sb" "$s" >>"$log" 2>&1 || fail "nsnet port rm $sb $s"
			done
		else
			{ ipt -F DOCKER && ipt -A DOCKER -i "$br" -j RETURN; } >>"$log" 2>&1 || fail "flush DOCKER"
		fi
		expect 0 "after clearing"
		;;
	esac
}

if [[ ${1:-} == __driver ]]; then
	shift
	set +e +o pipefail
	driver "$@"
	exit
fi

SIZES=${SIZES:-"1 1000 10000"}
K=${K:-20}
M=${M:-1000}
WARMUP=${WARMUP:-100}
METHODS=${METHODS:-"nsnet iptables-nft iptables-legacy"}
CHUNK=${CHUNK:-1000}
PREFIX=${PREFIX:-nspb}

die() {
	echo "ports.sh: $*" >&2
	exit 1
}
# inrange V LO HI: V is a decimal integer in LO..HI.
inrange() { [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 >= $2 && 10#$1 <= $3)); }

[[ $(id -u) == 0 ]] || die "must run as root"
for n in $SIZES; do
	inrange "$n" 1 10001 || die "SIZES: '$n' is not in 1..10001 (fill ports are 20000..29999)"
done
inrange "$K" 1 999 || die "K: want 1..999 (timed ports are 30001..30999)"
inrange "$M" 1 10000000 || die "M: want a positive integer"
inrange "$WARMUP" 0 10000000 || die "WARMUP: want a non-negative integer"
inrange "$CHUNK" 1 100000 || die "CHUNK: want a positive integer"
for m in $METHODS; do
	case $m in nsnet | iptables-nft | iptables-legacy) ;; *) die "unknown method '$m' in METHODS" ;; esac
done
for t in ip nsenter nft awk; do
	command -v "$t" >/dev/null || die "needs $t"
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self=$repo/bench/$(basename "${BASH_SOURCE[0]}")
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
tmp=$(mktemp -d /tmp/nspb-work.XXXXXX)
. "$repo/bench/states.sh"
res=${RESULTS:-$(mktemp -d /tmp/nspb-results.XXXXXX)}
mkdir -p "$res"
made_ns=()
servers=()
worlds=()

cleanup() {
	local rc=$? ns m p
	trap - EXIT INT TERM HUP
	for p in "${servers[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	# Let nsnet undo its own state (the sandbox's marker in /run/nsnet too).
	for m in "${worlds[@]}"; do
		if [[ -e /run/netns/$PREFIX-host-$m ]]; then
			{ nsnet_in "$m" sandbox rm "$PREFIX-sb-$m" && nsnet_in "$m" network rm pn; } >/dev/null 2>&1 ||
				echo "WARNING: nsnet could not remove the $m world itself; deleting its namespaces" >&2
		fi
	done
	# Deleting a host namespace removes its bridge, veths (and with them the
	# peers in the sandbox and client namespaces) and all nft/iptables rules.
	for ns in "${made_ns[@]}"; do
		ip netns delete "$ns" 2>/dev/null || true
	done
	# nsnet may have bind-mounted namespaces under its state dir.
	while read -r m; do
		if [[ $m == "$tmp"* ]]; then umount -l "$m" 2>/dev/null || true; fi
	done < <(findmnt -rn -o TARGET 2>/dev/null | sort -r)
	# A marker that nsnet could not remove names a root of ours, now gone.
	for m in /run/nsnet/netns/"$PREFIX"-sb-*; do
		if [[ -f $m ]] && grep -qF "\"root\":\"$tmp/" "$m"; then rm -f "$m"; fi
	done
	rm -rf "$tmp"
	remove_states "$tmp"
	left=$(ip netns list | awk '{print $1}' | grep "^$PREFIX-" | tr '\n' ' ' || true)
	[[ -z $left ]] || echo "WARNING: namespaces left in /run/netns: $left" >&2
	echo "raw results: $res"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- build -------------------------------------------------------------------
echo "building in $repo (static, CGO_ENABLED=0) ..."
(cd "$repo" && CGO_ENABLED=0 "$GO" build -o "$tmp/portsbench" ./bench/portsbench)
if [[ -n ${NSNET:-} ]]; then
	cp "$NSNET" "$tmp/nsnet"
elif ! (cd "$repo" && CGO_ENABLED=0 "$GO" build -o "$tmp/nsnet" ./cmd/nsnet) >"$tmp/build.log" 2>&1; then
	cat "$tmp/build.log" >&2
	die "go build ./cmd/nsnet failed"
fi

mkns() {
	# A leftover of an aborted run with our own name is ours to replace.
	made_ns+=("$1")
	if [[ -e /run/netns/$1 ]]; then ip netns delete "$1"; fi
	ip netns add "$1"
}

# iptables-legacy needs the kernel's legacy x_tables, which a kernel may lack.
methods=()
for m in $METHODS; do
	if [[ $m == iptables-* ]]; then
		if ! command -v "$m" >/dev/null || ! command -v "$m-restore" >/dev/null; then
			echo "note: $m is not installed (apt-get install -y iptables); skipping it"
			continue
		fi
		mkns "$PREFIX-probe"
		if ! ip netns exec "$PREFIX-probe" "$m" -w 5 -t nat -S >"$tmp/probe.log" 2>&1; then
			echo "note: $m does not work in a network namespace here; skipping it: $(head -n 1 "$tmp/probe.log")"
			ip netns delete "$PREFIX-probe"
			continue
		fi
		ip netns delete "$PREFIX-probe"
	fi
	methods+=("$m")
done
((${#methods[@]} > 0)) || die "no method left to run"

{
	echo "date: $(date -u +%FT%TZ)"
	echo "kernel: $(uname -r)  cpus: $(nproc)"
	echo "nsnet: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD -- . 2>/dev/null || echo ' (dirty tree)')"
	echo "nft: $(nft --version)"
	for m in "${methods[@]}"; do [[ $m == nsnet ]] || echo "$m: $("$m" --version)"; done
	echo "SIZES=$SIZES K=$K M=$M WARMUP=$WARMUP CHUNK=$CHUNK methods=${methods[*]}"
} | tee "$res/env"

# --- worlds --------------------------------------------------------------------
BR=$PREFIX-br
CTR=10.60.0.2
HOSTIP=203.0.113.2
nsnet_in() { # nsnet_in METHOD ARGS...: nsnet in that method's host namespace
	local m=$1
	shift
	nsenter --net="/run/netns/$PREFIX-host-$m" -- "$tmp/nsnet" --root "$tmp/root-$m" "$@"
}

mkworld() {
	local m=$1 h=$PREFIX-host-$1 c=$PREFIX-cli-$1 sb=$PREFIX-sb-$1 ipt i
	mkns "$h"
	mkns "$c"
	made_ns+=("$sb")
	if [[ -e /run/netns/$sb ]]; then ip netns delete "$sb"; fi
	ip -n "$h" link set lo up
	ip -n "$c" link set lo up
	ip -n "$h" link add eth0 type veth peer name eth0 netns "$c"
	ip -n "$h" addr add "$HOSTIP/24" dev eth0
	ip -n "$c" addr add 203.0.113.1/24 dev eth0
	ip -n "$h" link set eth0 up
	ip -n "$c" link set eth0 up
	worlds+=("$m")
	nsnet_in "$m" network create --subnet 10.60.0.0/16 --bridge "$BR" pn >/dev/null
	nsnet_in "$m" sandbox create --network pn --ip "$CTR" "$sb" >/dev/null
	if [[ $m == iptables-* ]]; then
		# Docker's nat layout: PREROUTING and OUTPUT jump to DOCKER for local
		# destinations; DOCKER returns traffic from the bridge itself, then
		# holds one DNAT rule per mapping.
		ipt=(nsenter --net="/run/netns/$h" -- "$m" -w 5 -t nat)
		"${ipt[@]}" -N DOCKER
		"${ipt[@]}" -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
		"${ipt[@]}" -A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
		"${ipt[@]}" -A DOCKER -i "$BR" -j RETURN
	fi
	nsenter --net="/run/netns/$sb" -- "$tmp/portsbench" serve ":80" >"$tmp/server-$m.log" 2>&1 &
	servers+=($!)
	for ((i = 0; i < 100; i++)); do
		[[ ! -s $tmp/server-$m.log ]] || break
		sleep 0.05
	done
	grep -q ready "$tmp/server-$m.log" || die "server in $sb did not start: $(cat "$tmp/server-$m.log")"
}

# q FILE Q: the Q-quantile (nearest rank) of the microsecond values in FILE,
# in milliseconds.
q() {
	sort -n "$1" | awk -v q="$2" 'NF { v[++n] = $1 }
		END { if (n == 0) { print "nan"; exit }
		      k = int(q * n); if (k < q * n) k++; if (k < 1) k = 1
		      printf "%.2f\n", v[k] / 1000 }'
}
field() { grep -o "$2=[0-9.]*" "$1" | cut -d= -f2; } # field FILE KEY: KEY=VALUE of a connect line

echo "creating one world per method: ${methods[*]} ..."
for m in "${methods[@]}"; do mkworld "$m"; done
# Warm the page cache so the first timed exec does not read binaries from disk.
for m in "${methods[@]}"; do
	nsnet_in "$m" port ls >/dev/null
	[[ $m == nsnet ]] || nsenter --net="/run/netns/$PREFIX-host-$m" -- "$m" -w 5 -t nat -S DOCKER >/dev/null
done

declare -A failed=()
table=$res/table # method size fill_ms add_med_ms add_max_ms rm_med_ms conn_p50_us conn_p99_us load1
echo "# method size fill_ms add_med_ms add_max_ms rm_med_ms conn_p50_us conn_p99_us load1" >"$table"
hdr='%-16s %6s %9s %11s %11s %10s %12s %12s %6s\n'
printf "\nK=%s adds per cell (median, max), M=%s connects (p50, p99); fill = installing size-1 mappings before them\n" "$K" "$M"
# shellcheck disable=SC2059
printf "$hdr" method size fill_ms add_med_ms add_max_ms rm_med_ms conn_p50_us conn_p99_us load1
for n in $SIZES; do
	for m in "${methods[@]}"; do
		[[ -z ${failed[$m]:-} ]] || continue
		out=$res/$m.$n
		h=/run/netns/$PREFIX-host-$m
		args=("$m" "$tmp" "$tmp/root-$m" "$PREFIX-sb-$m" "$n" "$K" "$out" "$CHUNK" "$BR" "$CTR")
		if ! nsenter --net="$h" -- bash "$self" __driver run "${args[@]}"; then
			failed[$m]=1
			echo "$m failed at size $n (error above); not running it again"
			continue
		fi
		port=$((30000 + K))
		if ! nsenter --net="/run/netns/$PREFIX-cli-$m" -- "$tmp/portsbench" connect -n "$M" -warmup "$WARMUP" \
			-raw "$out.connect.raw" "$HOSTIP:$port" >"$out.connect" 2>"$out.connect.err"; then
			failed[$m]=1
			echo "$m: connect to $HOSTIP:$port failed: $(cat "$out.connect.err")"
			continue
		fi
		if ! nsenter --net="$h" -- bash "$self" __driver clear "${args[@]}"; then
			failed[$m]=1
			echo "$m failed clearing size $n (error above); not running it again"
			continue
		fi
		fill=$(awk '{ printf "%.1f", $1 / 1000 }' "$out.fill")
		line="$m $n $fill $(q "$out.add" 0.5) $(q "$out.add" 1) $(q "$out.rm" 0.5) $(field "$out.connect" p50_us) $(field "$out.connect" p99_us) $(cut -d' ' -f1 /proc/loadavg)"
		echo "$line" >>"$table"
		# shellcheck disable=SC2059,SC2086
		printf "$hdr" $line
	done
done

# --- ratios --------------------------------------------------------------------
lo=$(tr ' ' '\n' <<<"$SIZES" | grep . | sort -n | head -n 1)
hi=$(tr ' ' '\n' <<<"$SIZES" | grep . | sort -n | tail -n 1)
awk -v lo="$lo" -v hi="$hi" '
	/^#/ { next }
	{
		if (!($1 in seen)) order[++n] = $1
		seen[$1] = 1; add[$1, $2] = $4; rm[$1, $2] = $6; p50[$1, $2] = $7; p99[$1, $2] = $8
	}
	function num(x) { return x ~ /^[0-9]+(\.[0-9]+)?$/ }
	function r(a, b) { return (!num(a) || !num(b) || b + 0 == 0) ? "n/a" : sprintf("%.1fx", a / b) }
	# ratios A SA B SB: method A at size SA over method B at size SB
	function ratios(a, sa, b, sb) {
		printf "  %-16s add %-7s rm %-7s connect p50 %-7s p99 %s\n", a, r(add[a, sa], add[b, sb]),
			r(rm[a, sa], rm[b, sb]), r(p50[a, sa], p50[b, sb]), r(p99[a, sa], p99[b, sb])
	}
	END {
		if (lo != hi) {
			printf "\ngrowth from %s to %s mappings (the value at %s / at %s):\n", lo, hi, hi, lo
			for (i = 1; i <= n; i++) ratios(order[i], hi, order[i], lo)
		}
		if (!("nsnet" in seen) || n < 2) exit
		printf "\niptables / nsnet at %s mappings:\n", hi
		for (i = 1; i <= n; i++) if (order[i] != "nsnet") ratios(order[i], hi, "nsnet", hi)
	}' "$table" | tee "$res/ratios"

if ((${#failed[@]} > 0)); then
	exit 1
fi
