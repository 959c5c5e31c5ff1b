#!/usr/bin/env bash
# bench/sandbox.sh: time N sandbox creates and removes on one network through
# the nsnet binary, next to a floor measured in the same run (bench/floor: the
# same kernel objects made with plain netlink calls, one process per
# operation, no state). Prints p50/p99 per create and per remove and the
# nsnet/floor ratio for create. See bench/README.md.
#
# Run as root from anywhere:  bench/sandbox.sh
# Environment:
#   N=100               sandboxes per run
#   REPS=2              runs per tool; tools are interleaved (floor, nsnet, floor, nsnet)
#   TOOLS="floor nsnet" which tools to run (TOOLS=floor runs the floor alone)
#   PREFIX=nsb          name prefix of the namespaces and links this script makes
#   MAX_RATIO=3         the target for nsnet create / floor create (reported, not enforced)
#   NSNET=/path/nsnet   use this nsnet binary instead of building ./cmd/nsnet
#
# Everything happens in throwaway network namespaces ($PREFIX-host and
# $PREFIX-sb-1..N); the root network namespace is never changed. The trap on
# EXIT deletes every namespace this script made.
set -euo pipefail
export LC_ALL=C

N=${N:-100}
REPS=${REPS:-2}
TOOLS=${TOOLS:-"floor nsnet"}
PREFIX=${PREFIX:-nsb}
MAX_RATIO=${MAX_RATIO:-3}
HOST=$PREFIX-host

if [[ $(id -u) != 0 ]]; then
	echo "sandbox.sh: must run as root" >&2
	exit 1
fi
for t in $TOOLS; do
	case $t in floor | nsnet) ;; *)
		echo "sandbox.sh: unknown tool '$t' in TOOLS (want floor and/or nsnet)" >&2
		exit 1
		;;
	esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
tmp=$(mktemp -d /tmp/nsb-bench.XXXXXX)
made_ns=()

cleanup() {
	local rc=$? ns m
	trap - EXIT INT TERM HUP
	# nsnet names each sandbox under /run/netns ($PREFIX-boxI, a bind mount
	# of $PREFIX-sb-I); an interrupted run may leave some.
	for ns in /run/netns/"$PREFIX"-box*; do
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
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

warn() { echo "WARNING: $*"; }

# --- build -------------------------------------------------------------------
echo "building in $repo (static, CGO_ENABLED=0, as the README recommends) ..."
(cd "$repo" && CGO_ENABLED=0 "$GO" build -o "$tmp/floor" ./bench/floor)
if [[ -n ${NSNET:-} ]]; then
	cp "$NSNET" "$tmp/nsnet"
elif [[ " $TOOLS " == *" nsnet "* ]]; then
	if ! (cd "$repo" && CGO_ENABLED=0 "$GO" build -o "$tmp/nsnet" ./cmd/nsnet) >"$tmp/build.log" 2>&1; then
		echo "sandbox.sh: go build ./cmd/nsnet failed:" >&2
		cat "$tmp/build.log" >&2
		exit 1
	fi
fi

# --- namespaces --------------------------------------------------------------
mkns() {
	# A leftover of an aborted run with our own name is ours to replace.
	if [[ -e /run/netns/$1 ]]; then
		ip netns delete "$1"
	fi
	ip netns add "$1"
	made_ns+=("$1")
}

echo "creating $HOST and $N sandbox namespaces ..."
mkns "$HOST"
ip -n "$HOST" link set lo up
for ((i = 1; i <= N; i++)); do
	mkns "$PREFIX-sb-$i"
done

# Before each run: every sandbox namespace back to its just-made state (only
# lo, down), so each run does the same work. Recreating the namespaces
# instead would leave the kernel's asynchronous netns cleanup (which takes
# the RTNL lock) running into the next timed run.
reset_sandboxes() {
	local i
	for ((i = 1; i <= N; i++)); do
		[[ -e /run/netns/$PREFIX-sb-$i ]] || {
			warn "/run/netns/$PREFIX-sb-$i disappeared; recreating it"
			ip netns add "$PREFIX-sb-$i"
		}
		ip -n "$PREFIX-sb-$i" link set lo down
	done
}

# After each run: nothing may be left in the host namespace but lo, and
# nothing but lo in the sandboxes. Whatever is left is reported, then removed
# (these are our throwaway namespaces) so that it cannot leak into the next run
# or be blamed on the next tool.
others() { ip -n "$1" -o link show | awk -F': ' '$2 != "lo" { sub(/@.*/, "", $2); print $2 }'; }
check_leftovers() {
	local tool=$1 i l links rules extra
	links=$(others "$HOST" | tr '\n' ' ')
	if [[ -n $links ]]; then
		warn "$tool left links in $HOST: $links"
		for l in $links; do ip -n "$HOST" link delete "$l" 2>/dev/null || true; done
	fi
	if command -v nft >/dev/null; then
		rules=$(nsenter --net="/run/netns/$HOST" -- nft list ruleset 2>/dev/null | grep -E '^table' | tr '\n' ' ' || true)
		if [[ -n $rules ]]; then
			warn "$tool left nft tables in $HOST: $rules"
			nsenter --net="/run/netns/$HOST" -- nft flush ruleset || true
		fi
	fi
	for ((i = 1; i <= N; i++)); do
		links=$(others "$PREFIX-sb-$i" | tr '\n' ' ')
		if [[ -n $links ]]; then
			warn "$tool left links in $PREFIX-sb-$i: $links"
			for l in $links; do ip -n "$PREFIX-sb-$i" link delete "$l" 2>/dev/null || true; done
		fi
	done
	# Only names with our prefix: other people's tests may come and go in
	# /run/netns meanwhile.
	extra=$(ip netns list | awk '{print $1}' | grep "^$PREFIX" |
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
# Writes OUT.create and OUT.remove (one duration per line, microseconds).
# shellcheck disable=SC2016
DRIVER='
set -u
export LC_ALL=C
tool=$1 bin=$2 n=$3 out=$4 prefix=$5 root=${6:-}
log=$out.log
: >"$log"
c=() r=() made=0 status=0
fail() {
	echo "FAILED: $tool $*" >&2
	echo "--- last output of $tool ($log):" >&2
	tail -n 20 "$log" >&2
	status=1
}
case $tool in
floor)
	br=${prefix}-fbr0
	"$bin" bridge-up "$br" 10.232.0.1/16 >>"$log" 2>&1 || { fail bridge-up; exit 1; }
	for ((i = 1; i <= n; i++)); do
		k=$((i + 1))
		ip=10.232.$((k >> 8)).$((k & 255))/16
		printf -v mac "02:42:0a:e8:%02x:%02x" $((k >> 8)) $((k & 255))
		t0=$EPOCHREALTIME
		"$bin" attach "$br" "/run/netns/$prefix-sb-$i" "$ip" 10.232.0.1 "$mac" "${prefix}f$i" >>"$log" 2>&1 ||
			{ fail "attach $i"; break; }
		t1=$EPOCHREALTIME
		c+=($((${t1/./} - ${t0/./})))
		made=$i
	done
	for ((i = 1; i <= made; i++)); do
		t0=$EPOCHREALTIME
		"$bin" detach "${prefix}f$i" >>"$log" 2>&1 || { fail "detach $i"; continue; }
		t1=$EPOCHREALTIME
		r+=($((${t1/./} - ${t0/./})))
	done
	"$bin" bridge-down "$br" >>"$log" 2>&1 || fail bridge-down
	;;
nsnet)
	ns=("$bin" --root "$root")
	"${ns[@]}" network create --subnet 10.231.0.0/16 --gateway 10.231.0.1 --bridge "${prefix}-br0" bench \
		>>"$log" 2>&1 || { fail "network create"; exit 1; }
	for ((i = 1; i <= n; i++)); do
		t0=$EPOCHREALTIME
		"${ns[@]}" sandbox create --network bench --netns "/run/netns/$prefix-sb-$i" "$prefix-box$i" >>"$log" 2>&1 ||
			{ fail "sandbox create $prefix-box$i"; break; }
		t1=$EPOCHREALTIME
		c+=($((${t1/./} - ${t0/./})))
		made=$i
	done
	for ((i = 1; i <= made; i++)); do
		t0=$EPOCHREALTIME
		"${ns[@]}" sandbox rm "$prefix-box$i" >>"$log" 2>&1 || { fail "sandbox rm $prefix-box$i"; continue; }
		t1=$EPOCHREALTIME
		r+=($((${t1/./} - ${t0/./})))
	done
	"${ns[@]}" network rm bench >>"$log" 2>&1 || fail "network rm bench"
	;;
esac
printf "%s\n" "${c[@]}" >"$out.create"
printf "%s\n" "${r[@]}" >"$out.remove"
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

declare -A failed=()
results=$tmp/results # lines: tool rep create_p50 create_p99 remove_p50 remove_p99
: >"$results"
printf '\nN=%s sandboxes per run, REPS=%s, times in ms\n' "$N" "$REPS"
printf '%-6s %4s %11s %11s %11s %11s %8s\n' tool rep create_p50 create_p99 remove_p50 remove_p99 load1
for ((rep = 1; rep <= REPS; rep++)); do
	for tool in $TOOLS; do
		[[ -z ${failed[$tool]:-} ]] || continue
		reset_sandboxes
		out=$tmp/$tool.$rep
		root=
		[[ $tool != nsnet ]] || root=$tmp/root.$rep
		if ! nsenter --net="/run/netns/$HOST" -- bash -c "$DRIVER" driver \
			"$tool" "$tmp/$tool" "$N" "$out" "$PREFIX" "$root"; then
			failed[$tool]=1
			echo "$tool run $rep failed (error text above); not running $tool again"
			check_leftovers "$tool"
			continue
		fi
		check_leftovers "$tool"
		line="$tool $rep $(pct "$out.create" 0.5) $(pct "$out.create" 0.99) $(pct "$out.remove" 0.5) $(pct "$out.remove" 0.99)"
		echo "$line" >>"$results"
		# shellcheck disable=SC2086
		printf '%-6s %4s %11s %11s %11s %11s %8s\n' $line "$(cut -d' ' -f1 /proc/loadavg)"
	done
done

# Median over the runs of each tool, per column.
summary=$(awk '
	{ n[$1]++; for (c = 3; c <= 6; c++) v[$1, c, n[$1]] = $c }
	END {
		for (t in n) {
			printf "%s", t
			for (c = 3; c <= 6; c++) {
				m = n[t]
				for (i = 1; i <= m; i++) a[i] = v[t, c, i]
				for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { x = a[j]; a[j] = a[j-1]; a[j-1] = x }
				med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
				printf " %.2f", med
			}
			printf "\n"
		}
	}' "$results")

printf '\nmedian of %s run(s) per tool, N=%s, ms\n' "$REPS" "$N"
printf '%-6s %11s %11s %11s %11s\n' tool create_p50 create_p99 remove_p50 remove_p99
for tool in $TOOLS; do
	l=$(grep "^$tool " <<<"$summary" || true)
	if [[ -n $l ]]; then
		# shellcheck disable=SC2086
		printf '%-6s %11s %11s %11s %11s\n' $l
	else
		printf '%-6s %11s\n' "$tool" "(failed)"
	fi
done
f=$(grep '^floor ' <<<"$summary" || true)
s=$(grep '^nsnet ' <<<"$summary" || true)
if [[ -n $f && -n $s ]]; then
	awk -v max="$MAX_RATIO" -v f="$f" -v s="$s" 'BEGIN {
		split(f, F, " "); split(s, S, " ")
		r50 = S[2] / F[2]; r99 = S[3] / F[3]
		printf "\nnsnet/floor create: p50 %.2fx  p99 %.2fx  (target <= %sx: %s)\n", r50, r99, max,
			(r50 <= max && r99 <= max) ? "met" : "NOT met"
		printf "nsnet/floor remove: p50 %.2fx  p99 %.2fx\n", S[4] / F[4], S[5] / F[5]
	}'
fi
if ((${#failed[@]} > 0)); then
	exit 1
fi
