#!/usr/bin/env bash
# bench/sandbox.sh: time N sandbox creates and removes on one network through
# the nsnet binary, next to floors measured in the same run (bench/floor: the
# same kernel objects made with plain netlink calls, one process per
# operation, no state). Prints p50/p99 per create and per remove, the total
# time of the N creates and of the N removes, nsnet/floor ratios, and nsnet's
# own cost (nsnet minus the floor) over the first and the last N/10 operations.
# See bench/README.md.
#
# Run as root from anywhere:  bench/sandbox.sh
#                             N=1000 REPS=1 bench/sandbox.sh   (1,000 sandboxes)
# Environment:
#   N=100             sandboxes per run
#   REPS=2            runs per tool; tools are interleaved, each rep starting with the next tool
#                     (floor-del floor-ns nsnet, floor-ns nsnet floor-del, ...)
#   MODE=own          own: each tool makes the sandbox's namespace (nsnet sandbox create NAME);
#                     adopt: the namespaces are made beforehand and adopted (nsnet sandbox create --netns)
#   TOOLS=...         which tools to run; own: "floor-del floor-ns nsnet", adopt: "floor nsnet"
#   WINDOW=N/10       operations at the start and at the end compared for nsnet's own cost
#   SETTLE=300        at most this many seconds to wait after a run for the kernel to finish
#                     destroying the namespaces it removed
#   NICE=0            run the timed driver (and so the tools) at this nice level; e.g. -10 on a
#                     machine busy with other work, which then disturbs both tools less
#   PREFIX=nsb        name prefix of the namespaces and links this script makes
#   NSNET=/path/nsnet use this nsnet binary instead of building ./cmd/nsnet
#   NSNET_BASE=/path  another nsnet binary (say, a build of an earlier commit), run as the tool
#                     nsnet-base beside nsnet (add it to TOOLS), to compare the two in one run
#   BUSY=0            1: a busy host, as one running a container in each sandbox: after each
#                     create (untimed) a sleep process is started in the sandbox's namespace, and
#                     killed just before its removal (untimed), so that the host has N more
#                     processes when the removals start (nsnet looks at every process's namespace
#                     before it removes one); the totals leave out starting and killing them
#
# The tools (see bench/floor for what the floor does):
#   own:   floor-del  floor create; floor delete (the host veth deleted, then the name unmounted)
#          floor-ns   floor create; floor unmount (only the name unmounted: the kernel destroys
#                     the namespace and its veth pair later, in its batched clean-up)
#          nsnet      nsnet sandbox create --network bench NAME; nsnet sandbox rm NAME
#          nsnet-base the same, through $NSNET_BASE
#          nsnet-engine the same two commands through bench/engineonly: the engine alone
#                     (engine.Open, CreateSandbox, RemoveSandbox) without nsnet's command line;
#                     nsnet minus this is what the command line, and the packages only other
#                     commands need, add
#          nsnet-warm the same creates and removes in one bench/engineonly process that stays
#                     running and times each itself, as a daemon embedding the engine does them:
#                     no process start, nothing done for the first time (BUSY does not apply)
#   adopt: floor      floor attach into /run/netns/$PREFIX-sb-I; floor detach (delete the host veth)
#          nsnet      nsnet sandbox create --network bench --netns /run/netns/$PREFIX-sb-I NAME; sandbox rm
#
# Everything happens in throwaway network namespaces ($PREFIX-host, and the
# sandboxes' $PREFIX-sb-I, $PREFIX-fsbI, $PREFIX-boxI); the root network
# namespace is never changed. The trap on EXIT deletes every namespace this
# script or the tools made.
set -euo pipefail
export LC_ALL=C

N=${N:-100}
REPS=${REPS:-2}
MODE=${MODE:-own}
PREFIX=${PREFIX:-nsb}
SETTLE=${SETTLE:-300}
NICE=${NICE:-0}
BUSY=${BUSY:-0}
export BUSY
WINDOW=${WINDOW:-$(((N + 9) / 10))}
HOST=$PREFIX-host
case $MODE in
own) TOOLS=${TOOLS:-"floor-del floor-ns nsnet"} REF=floor-ns ;;
adopt) TOOLS=${TOOLS:-"floor nsnet"} REF=floor ;;
*)
	echo "sandbox.sh: MODE must be own or adopt, not '$MODE'" >&2
	exit 1
	;;
esac

if [[ $(id -u) != 0 ]]; then
	echo "sandbox.sh: must run as root" >&2
	exit 1
fi
for t in $TOOLS; do
	case $MODE/$t in own/floor-del | own/floor-ns | adopt/floor | */nsnet | */nsnet-base | */nsnet-engine | own/nsnet-warm) ;; *)
		echo "sandbox.sh: unknown tool '$t' in TOOLS for MODE=$MODE" >&2
		exit 1
		;;
	esac
done
if [[ $BUSY != 0 && $BUSY != 1 ]]; then
	echo "sandbox.sh: BUSY must be 0 or 1" >&2
	exit 1
fi
if ((WINDOW < 1 || WINDOW > N)); then
	echo "sandbox.sh: WINDOW must be between 1 and N" >&2
	exit 1
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
tmp=$(mktemp -d /tmp/nsb-bench.XXXXXX)
. "$repo/bench/states.sh"
made_ns=()

cleanup() {
	local rc=$? ns m
	trap - EXIT INT TERM HUP
	# The sandboxes the tools name under /run/netns ($PREFIX-boxI: nsnet,
	# $PREFIX-fsbI: floor); an interrupted run may leave some.
	for ns in /run/netns/"$PREFIX"-box* /run/netns/"$PREFIX"-fsb*; do
		if [[ -e $ns ]]; then ip netns delete "${ns##*/}" 2>/dev/null || true; fi
	done
	# Deleting the host namespace removes the bridges, the host veth ends
	# (and with them the peers in the sandbox namespaces) and any nft rules.
	for ns in "${made_ns[@]}"; do
		ip netns delete "$ns" 2>/dev/null || true
	done
	# nsnet may have bind-mounted namespaces under its state dir.
	while read -r m; do
		if [[ $m == "$tmp"* ]]; then umount -l "$m" 2>/dev/null || true; fi
	done < <(findmnt -rn -o TARGET 2>/dev/null | sort -r)
	rm -rf "$tmp"
	remove_states "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

warn() { echo "WARNING: $*"; }

# --- build -------------------------------------------------------------------
# Both static and stripped, as a release is built (the README's advice):
# each process starts faster.
build=(build -trimpath -ldflags=-s\ -w)
echo "building in $repo (static and stripped: CGO_ENABLED=0, -ldflags='-s -w') ..."
(cd "$repo" && CGO_ENABLED=0 "$GO" "${build[@]}" -o "$tmp/floor" ./bench/floor)
if [[ -n ${NSNET:-} ]]; then
	cp "$NSNET" "$tmp/nsnet"
elif [[ " $TOOLS " == *" nsnet "* || " $TOOLS " == *" nsnet-engine "* || " $TOOLS " == *" nsnet-warm "* ]]; then
	if ! (cd "$repo" && CGO_ENABLED=0 "$GO" "${build[@]}" -o "$tmp/nsnet" ./cmd/nsnet) >"$tmp/build.log" 2>&1; then
		echo "sandbox.sh: go build ./cmd/nsnet failed:" >&2
		cat "$tmp/build.log" >&2
		exit 1
	fi
fi
if [[ " $TOOLS " == *" nsnet-base "* ]]; then
	if [[ -z ${NSNET_BASE:-} ]]; then
		echo "sandbox.sh: TOOLS has nsnet-base: give its binary as NSNET_BASE" >&2
		exit 1
	fi
	cp "$NSNET_BASE" "$tmp/nsnet-base"
fi
if [[ " $TOOLS " == *" nsnet-engine "* || " $TOOLS " == *" nsnet-warm "* ]]; then
	# It runs $tmp/nsnet, beside it, for the untimed network commands and as the resident.
	(cd "$repo" && CGO_ENABLED=0 "$GO" "${build[@]}" -o "$tmp/nsnet-engine" ./bench/engineonly)
	ln -s nsnet-engine "$tmp/nsnet-warm"
fi
ln -s floor "$tmp/floor-del" # both run the floor
ln -s floor "$tmp/floor-ns"

# --- namespaces --------------------------------------------------------------
mkns() {
	# A leftover of an aborted run with our own name is ours to replace.
	if [[ -e /run/netns/$1 ]]; then
		ip netns delete "$1"
	fi
	ip netns add "$1"
	made_ns+=("$1")
}

mkns "$HOST"
ip -n "$HOST" link set lo up
if [[ $MODE == adopt ]]; then
	echo "creating $N sandbox namespaces to adopt ..."
	for ((i = 1; i <= N; i++)); do
		mkns "$PREFIX-sb-$i"
	done
fi

# Before each adopt run: every sandbox namespace back to its just-made state
# (only lo, down), so each run does the same work. Recreating the namespaces
# instead would leave the kernel's asynchronous netns cleanup (which takes the
# RTNL lock) running into the next timed run.
reset_sandboxes() {
	local i
	[[ $MODE == adopt ]] || return 0
	for ((i = 1; i <= N; i++)); do
		[[ -e /run/netns/$PREFIX-sb-$i ]] || {
			warn "/run/netns/$PREFIX-sb-$i disappeared; recreating it"
			ip netns add "$PREFIX-sb-$i"
		}
		ip -n "$PREFIX-sb-$i" link set lo down
	done
}

others() { ip -n "$1" -o link show | awk -F': ' '$2 != "lo" { sub(/@.*/, "", $2); print $2 }'; }

# After each run, wait (up to SETTLE seconds) until the kernel has finished
# destroying the namespaces the run removed, so that its batched clean-up
# (which takes the RTNL lock) does not run into the next tool's timed run:
# first until the host namespace has nothing but lo (a removal that only
# unmounts a namespace leaves its veth pair to that clean-up), then until the
# kernel's count of network namespaces (net_namespace in /proc/slabinfo) is
# back to what it was before the run, or has stopped falling for a second
# (other programs on the machine make namespaces too). Prints how long it
# took, in seconds.
nscount() { awk '$1 == "net_namespace" { print $2 }' /proc/slabinfo 2>/dev/null || true; }
settle() {
	local base=$1 t0=$EPOCHREALTIME deadline=$((${EPOCHREALTIME%.*} + SETTLE)) last cur quiet
	while [[ -n $(others "$HOST") ]] && ((${EPOCHREALTIME%.*} < deadline)); do
		sleep 0.05
	done
	last=$(nscount)
	quiet=${EPOCHREALTIME%.*}
	while [[ -n $base && -n $last ]] && ((last > base && ${EPOCHREALTIME%.*} < deadline && ${EPOCHREALTIME%.*} - quiet < 2)); do
		sleep 0.1
		cur=$(nscount)
		if ((cur < last)); then quiet=${EPOCHREALTIME%.*}; fi
		last=$cur
	done
	awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f\n", b - a }'
}

# Then nothing may be left in the host namespace but lo, and nothing but lo in
# the sandboxes. Whatever is left is reported, then removed (these are our
# throwaway namespaces) so that it cannot leak into the next run or be blamed
# on the next tool.
check_leftovers() {
	local tool=$1 i l links rules extra
	links=$(others "$HOST" | tr '\n' ' ')
	if [[ -n $links ]]; then
		warn "$tool left links in $HOST (after waiting ${SETTLE}s for the kernel): $links"
		for l in $links; do ip -n "$HOST" link delete "$l" 2>/dev/null || true; done
	fi
	if command -v nft >/dev/null; then
		rules=$(nsenter --net="/run/netns/$HOST" -- nft list ruleset 2>/dev/null | grep -E '^table' | tr '\n' ' ' || true)
		if [[ -n $rules ]]; then
			warn "$tool left nft tables in $HOST: $rules"
			nsenter --net="/run/netns/$HOST" -- nft flush ruleset || true
		fi
	fi
	if [[ $MODE == adopt ]]; then
		for ((i = 1; i <= N; i++)); do
			links=$(others "$PREFIX-sb-$i" | tr '\n' ' ')
			if [[ -n $links ]]; then
				warn "$tool left links in $PREFIX-sb-$i: $links"
				for l in $links; do ip -n "$PREFIX-sb-$i" link delete "$l" 2>/dev/null || true; done
			fi
		done
	fi
	# Only names with our prefix: other people's tests may come and go in
	# /run/netns meanwhile.
	extra=$(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX" |
		grep -v -x -F -f <(printf '%s\n' "${made_ns[@]}") | tr '\n' ' ' || true)
	if [[ -n $extra ]]; then
		warn "$tool left entries in /run/netns: $extra"
		for l in $extra; do ip netns delete "$l" 2>/dev/null || true; done
	fi
	extra=$(findmnt -rn -o TARGET | grep -F "$tmp" | tr '\n' ' ' || true)
	[[ -z $extra ]] || warn "$tool left mounts: $extra"
}

# --- the timed driver ----------------------------------------------------------
# Runs inside the host namespace (one nsenter for the whole loop), so only the
# tool itself is timed: fork+exec+run+wait, by $EPOCHREALTIME in microseconds.
# Creates sandboxes 1..n, then removes them in the same order. Writes
# OUT.create and OUT.remove (one duration per line, in order, microseconds)
# and OUT.total (the wall time of the whole create loop and of the whole
# remove loop, microseconds).
# shellcheck disable=SC2016
DRIVER='
set -u
export LC_ALL=C
tool=$1 bin=$2 n=$3 out=$4 prefix=$5 mode=$6 root=${7:-}
log=$out.log
: >"$log"
c=() r=() made=0 status=0
fail() {
	echo "FAILED: $tool $*" >&2
	echo "--- last output of $tool ($log):" >&2
	tail -n 20 "$log" >&2
	status=1
}
br=${prefix}-fbr0
ns=("$bin" --root "$root")
busy=${BUSY:-0} skipc=0 skipr=0 sleeper=()
trap '"'"'[[ ${#sleeper[@]} == 0 ]] || kill "${sleeper[@]}" 2>/dev/null'"'"' EXIT
case $tool/$mode in
floor*/own) nspath() { echo "/run/netns/$prefix-fsb$1"; } ;;
nsnet*/own) nspath() { echo "/run/netns/$prefix-box$1"; } ;;
*/adopt) nspath() { echo "/run/netns/$prefix-sb-$1"; } ;;
esac
# occupy I: a process in sandbox I'"'"'s namespace, once it runs sleep (so that
# its start does not overlap the next timed operation); vacate I: it gone
# (reaped).
occupy() {
	local comm=
	nsenter --net="$(nspath "$1")" sleep 1000000 </dev/null >/dev/null 2>&1 &
	sleeper[$1]=$!
	until [[ $comm == sleep ]]; do read -r comm </proc/$!/comm || return; done
}
vacate() { [[ -z ${sleeper[$1]:-} ]] || { kill "${sleeper[$1]}"; wait "${sleeper[$1]}"; unset "sleeper[$1]"; } 2>/dev/null; }
case $tool/$mode in
floor*/own) mk() { "$bin" create "$br" "$prefix-fsb$1" "$ip" 10.232.0.1 "$mac" "${prefix}f$1"; } ;;
floor/adopt) mk() { "$bin" attach "$br" "/run/netns/$prefix-sb-$1" "$ip" 10.232.0.1 "$mac" "${prefix}f$1"; } ;;
nsnet*/own) mk() { "${ns[@]}" sandbox create --network bench "$prefix-box$1"; } ;;
nsnet*/adopt) mk() { "${ns[@]}" sandbox create --network bench --netns "/run/netns/$prefix-sb-$1" "$prefix-box$1"; } ;;
esac
case $tool in
floor-del) del() { "$bin" delete "${prefix}f$1" "$prefix-fsb$1"; } ;;
floor-ns) del() { "$bin" unmount "$prefix-fsb$1"; } ;;
floor) del() { "$bin" detach "${prefix}f$1"; } ;;
nsnet*) del() { "${ns[@]}" sandbox rm "$prefix-box$1"; } ;;
esac
case $tool in
floor*) "$bin" bridge-up "$br" 10.232.0.1/16 >>"$log" 2>&1 || { fail bridge-up; exit 1; } ;;
nsnet*) "${ns[@]}" network create --subnet 10.231.0.0/16 --gateway 10.231.0.1 --bridge "${prefix}-br0" bench \
		>>"$log" 2>&1 || { fail "network create"; exit 1; } ;;
esac
if [[ $tool == nsnet-warm ]]; then
	# One process makes and removes them all, timing each, and writes the files.
	"$bin" --root "$root" loop --network bench "$n" "$prefix-box" "$out" >>"$log" 2>&1 || { fail loop; exit 1; }
	"${ns[@]}" network rm bench >>"$log" 2>&1 || fail "network rm bench"
	exit $status
fi
ct0=$EPOCHREALTIME
for ((i = 1; i <= n; i++)); do
	k=$((i + 1))
	ip=10.232.$((k >> 8)).$((k & 255))/16
	printf -v mac "02:42:0a:e8:%02x:%02x" $((k >> 8)) $((k & 255))
	t0=$EPOCHREALTIME
	mk "$i" >>"$log" 2>&1 || { fail "create $i"; break; }
	t1=$EPOCHREALTIME
	c+=($((${t1/./} - ${t0/./})))
	made=$i
	if ((busy)); then
		occupy "$i"
		t2=$EPOCHREALTIME skipc=$((skipc + ${t2/./} - ${t1/./}))
	fi
done
ct1=$EPOCHREALTIME
for ((i = 1; i <= made; i++)); do
	if ((busy)); then
		t2=$EPOCHREALTIME
		vacate "$i"
		t0=$EPOCHREALTIME skipr=$((skipr + ${t0/./} - ${t2/./}))
	fi
	t0=$EPOCHREALTIME
	del "$i" >>"$log" 2>&1 || { fail "remove $i"; continue; }
	t1=$EPOCHREALTIME
	r+=($((${t1/./} - ${t0/./})))
done
rt1=$EPOCHREALTIME
case $tool in
floor*) "$bin" bridge-down "$br" >>"$log" 2>&1 || fail bridge-down ;;
nsnet*) "${ns[@]}" network rm bench >>"$log" 2>&1 || fail "network rm bench" ;;
esac
printf "%s\n" "${c[@]}" >"$out.create"
printf "%s\n" "${r[@]}" >"$out.remove"
echo "$((${ct1/./} - ${ct0/./} - skipc)) $((${rt1/./} - ${ct1/./} - skipr))" >"$out.total"
exit $status
'

# pct FILE Q: the Q-quantile (nearest rank) of the microsecond values in FILE,
# printed in milliseconds.
pct() {
	sort -n "$1" | awk -v q="$2" 'NF { v[++n] = $1 }
		END { if (n == 0) { print "nan"; exit }
		      k = int(q * n); if (k < q * n) k++; if (k < 1) k = 1
		      printf "%.2f\n", v[k] / 1000 }'
}

# Warm the page cache so the first timed exec does not pay for reading the
# binaries from disk.
"$tmp/floor" >/dev/null 2>&1 || true
[[ ! -x $tmp/nsnet ]] || "$tmp/nsnet" --help >/dev/null 2>&1 || true
[[ ! -x $tmp/nsnet-base ]] || "$tmp/nsnet-base" --help >/dev/null 2>&1 || true
[[ ! -x $tmp/nsnet-engine ]] || "$tmp/nsnet-engine" --help >/dev/null 2>&1 || true

declare -A failed=()
results=$tmp/results # lines: tool rep create_p50 create_p99 remove_p50 remove_p99 create_s remove_s
: >"$results"
printf '\nMODE=%s, N=%s sandboxes per run, REPS=%s, NICE=%s, BUSY=%s; per operation in ms, totals in s\n' "$MODE" "$N" "$REPS" "$NICE" "${BUSY:-0}"
printf '%-12s %3s %10s %10s %10s %10s %9s %9s %9s %6s\n' tool rep create_p50 create_p99 remove_p50 remove_p99 create_s remove_s settle_s load1
read -ra tools <<<"$TOOLS"
for ((rep = 1; rep <= REPS; rep++)); do
	# Each rep starts with the next tool, so that none always follows the
	# same one.
	for ((k = 0; k < ${#tools[@]}; k++)); do
		tool=${tools[$(((rep - 1 + k) % ${#tools[@]}))]}
		[[ -z ${failed[$tool]:-} ]] || continue
		reset_sandboxes
		out=$tmp/$tool.$rep
		root=
		[[ $tool != nsnet* ]] || root=$tmp/root.$tool.$rep
		base=$(nscount)
		if ! nice -n "$NICE" nsenter --net="/run/netns/$HOST" -- bash -c "$DRIVER" driver \
			"$tool" "$tmp/$tool" "$N" "$out" "$PREFIX" "$MODE" "$root"; then
			failed[$tool]=1
			echo "$tool run $rep failed (error text above); not running $tool again"
			settle "$base" >/dev/null
			check_leftovers "$tool"
			continue
		fi
		settled=$(settle "$base")
		check_leftovers "$tool"
		read -r ct rt <"$out.total"
		line="$tool $rep $(pct "$out.create" 0.5) $(pct "$out.create" 0.99) $(pct "$out.remove" 0.5) $(pct "$out.remove" 0.99)"
		line="$line $(awk -v c="$ct" -v r="$rt" 'BEGIN { printf "%.2f %.2f", c / 1e6, r / 1e6 }')"
		echo "$line" >>"$results"
		# shellcheck disable=SC2086
		printf '%-12s %3s %10s %10s %10s %10s %9s %9s %9s %6s\n' $line "$settled" "$(cut -d' ' -f1 /proc/loadavg)"
	done
done

# Median over the runs of each tool, per column.
summary=$(awk '
	{ n[$1]++; for (c = 3; c <= 8; c++) v[$1, c, n[$1]] = $c }
	END {
		for (t in n) {
			printf "%s", t
			for (c = 3; c <= 8; c++) {
				m = n[t]
				for (i = 1; i <= m; i++) a[i] = v[t, c, i]
				for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { x = a[j]; a[j] = a[j-1]; a[j-1] = x }
				med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
				printf " %.2f", med
			}
			printf "\n"
		}
	}' "$results")

printf '\nmedian of %s run(s) per tool, MODE=%s, N=%s; per operation in ms, totals in s\n' "$REPS" "$MODE" "$N"
printf '%-12s %10s %10s %10s %10s %9s %9s\n' tool create_p50 create_p99 remove_p50 remove_p99 create_s remove_s
for tool in $TOOLS; do
	l=$(grep "^$tool " <<<"$summary" || true)
	if [[ -n $l ]]; then
		# shellcheck disable=SC2086
		printf '%-12s %10s %10s %10s %10s %9s %9s\n' $l
	else
		printf '%-12s %10s\n' "$tool" "(failed)"
	fi
done

# window TOOL KIND head|tail: the p50 (ms) of the first or last WINDOW
# operations of that kind, over all runs of TOOL.
window() {
	local f=$tmp/window
	: >"$f"
	for ((rep = 1; rep <= REPS; rep++)); do
		[[ ! -s $tmp/$1.$rep.$2 ]] || "$3" -n "$WINDOW" "$tmp/$1.$rep.$2" >>"$f"
	done
	pct "$f" 0.5
}

f=$(grep "^$REF " <<<"$summary" || true)
s=$(grep '^nsnet ' <<<"$summary" || true)
d=$(grep '^floor-del ' <<<"$summary" || true)
if [[ -n $f && -n $s ]]; then
	printf '\nnsnet against %s (the floor) in this run:\n' "$REF"
	awk -v f="$f" -v s="$s" -v d="$d" -v mode="$MODE" -v n="$N" 'function v(r, t) { return (r <= t) ? "met" : "NOT met" }
	BEGIN {
		split(f, F, " "); split(s, S, " "); split(d, D, " ")
		r = S[2] / F[2]
		printf "  create p50 %.2fx, p99 %.2fx", r, S[3] / F[3]
		if (mode == "own") printf "  (target p50 <= 1.5x: %s)", v(r, 1.5)
		r = S[4] / F[4]
		printf "\n  remove p50 %.2fx, p99 %.2fx", r, S[5] / F[5]
		if (mode == "own") printf "  (target p50 <= 2x: %s)", v(r, 2)
		if (d != "") printf "\n  remove p50 against floor-del (the explicit veth deletion): %.2fx", S[4] / D[4]
		r = (S[6] + S[7]) / (F[6] + F[7])
		printf "\n  %s creates and removes one by one: %.2f s against %.2f s, %.2fx", n, S[6] + S[7], F[6] + F[7], r
		if (mode == "own") printf "  (target <= 1.5x: %s)", v(r, 1.5)
		printf "\n"
	}'
	printf "  nsnet's own cost (nsnet p50 - %s p50) over the first and the last %s operations, ms:\n" "$REF" "$WINDOW"
	for kind in create remove; do
		awk -v k="$kind" -v a="$(window nsnet "$kind" head)" -v b="$(window "$REF" "$kind" head)" \
			-v c="$(window nsnet "$kind" tail)" -v e="$(window "$REF" "$kind" tail)" -v w="$WINDOW" -v n="$N" 'BEGIN {
			when = (k == "create") ? sprintf("0 -> %d sandboxes there", w) : sprintf("%d -> %d there", n, n - w)
			then = (k == "create") ? sprintf("%d -> %d there", n - w, n) : sprintf("%d -> 0 there", w)
			printf "    %-6s first %s (%s): %.2f - %.2f = %.2f;  last: %.2f - %.2f = %.2f (%s)\n",
				k, w, when, a, b, a - b, c, e, c - e, then
		}'
	done
fi
# beside TOOL WHAT: TOOL's ratios to the floor, if both ran.
beside() {
	local t
	t=$(grep "^$1 " <<<"$summary" || true)
	[[ -n $f && -n $t ]] || return 0
	awk -v f="$f" -v t="$t" -v what="$1 ($2)" -v ref="$REF" -v n="$N" 'BEGIN {
		split(f, F, " "); split(t, T, " ")
		printf "\n%s against %s: create p50 %.2fx, remove p50 %.2fx, %s creates and removes %.2fx\n",
			what, ref, T[2] / F[2], T[4] / F[4], n, (T[6] + T[7]) / (F[6] + F[7])
	}'
}
beside nsnet-engine "the engine alone, no command line"
beside nsnet-warm "the engine in one process that stays running"
b=$(grep '^nsnet-base ' <<<"$summary" || true)
if [[ -n $s && -n $b ]]; then
	awk -v s="$s" -v b="$b" 'BEGIN {
		split(s, S, " "); split(b, B, " ")
		printf "\nnsnet against nsnet-base (%s) in this run: create p50 %.2f against %.2f ms (%+.2f), remove p50 %.2f against %.2f ms (%+.2f)\n",
			ENVIRON["NSNET_BASE"], S[2], B[2], S[2] - B[2], S[4], B[4], S[4] - B[4]
	}'
fi
if ((${#failed[@]} > 0)); then
	exit 1
fi
