#!/usr/bin/env bash
# bench/podman.sh: the time of `podman run --rm IMAGE true` on a real Podman
# 4.3.1 (CNI backend, ../shared/podman's harness: scripts/podman-env.sh) with
# nsnet's conflist (nsnet alone) against the harness's reference conflist
# pm-ref (bridge + host-local + portmap + firewall + tuning), interleaved run
# by run, without and with a published port (-p 8080:80).
#
# Run as root:  bench/podman.sh
#               N=40 bench/podman.sh
# Environment:
#   N=20   runs per network and case
#
# The whole podman run is timed (its VERSION calls to every plugin of every
# conflist, container start, ADD, the program, DEL, clean-up), by bash
# $EPOCHREALTIME around the client. See bench/README.md.
set -uo pipefail
export LC_ALL=C
N=${N:-20}
. "$(dirname "$0")/../scripts/podman-env.sh"
[[ $(id -u) == 0 ]] || { echo "podman.sh: must run as root" >&2; exit 1; }
trap pm_teardown EXIT
pm_setup || exit 1
IMG=localhost/pm-bb

# once NET [ARGS...]: one podman run --rm, its time in ms on stdout.
once() {
	local net=$1 t0 t1
	shift
	t0=$EPOCHREALTIME
	"$PM" run --rm --network "$net" "$@" $IMG true >/dev/null || { echo "podman run --network $net $* failed" >&2; exit 1; }
	t1=$EPOCHREALTIME
	echo "$t0 $t1" | awk '{ printf "%.1f\n", ($2 - $1) * 1000 }'
}

# stats: p50, p90 and mean of the numbers on stdin.
stats() {
	sort -n | awk '{ v[NR] = $1; s += $1 }
		function at(p,  i) { i = int(NR * p) + 1; return v[i > NR ? NR : i] }
		END { printf "p50 %7.1f  p90 %7.1f  mean %7.1f  (n=%d)", at(0.5), at(0.9), s / NR, NR }'
}

echo "# $(date -u +%FT%TZ) N=$N, kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for net in nsn pm-ref; do once "$net" >/dev/null; once "$net" -p 8080:80 >/dev/null; done # warm-up
for case in plain publish; do
	args=()
	[[ $case == publish ]] && args=(-p 8080:80)
	: > "$WORK/nsn.$case"
	: > "$WORK/pm-ref.$case"
	for i in $(seq 1 "$N"); do
		if ((i % 2)); then order="nsn pm-ref"; else order="pm-ref nsn"; fi
		for net in $order; do once "$net" "${args[@]}" >> "$WORK/$net.$case"; done
	done
	for net in nsn pm-ref; do
		printf '%-8s %-7s run --rm (ms): %s\n' "$net" "$case" "$(stats < "$WORK/$net.$case")"
	done
done
