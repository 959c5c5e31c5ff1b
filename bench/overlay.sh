#!/usr/bin/env bash
# bench/overlay.sh: an overlay network across two hosts (namespaces on one
# underlay bridge, etcd in a third), measured two ways:
#   reach: how soon a sandbox made on host 1 answers a sandbox on host 0,
#          from the moment `nsnet sandbox create` returns (bench/overlaybench);
#   tput:  iperf3 TCP throughput sandbox (host 0) -> sandbox (host 1) over the
#          overlay (VXLAN), against host 0 -> host 1 over the bare underlay,
#          interleaved run by run.
# Prints both as markdown. See bench/README.md.
#
# Run as root from the repository:  bench/overlay.sh
# Environment:
#   N=50          sandboxes made for the reach measure
#   REPS=8        iperf3 runs per path (the median is reported)
#   TIME=2        seconds per iperf3 run (-t), after OMIT=1 (-O)
#   PREFIX=ovb    name prefix of the namespaces this script makes
#   NSNET=path    use this nsnet binary (with nsnet-overlay next to it) instead of building ./cmd/nsnet and ./cmd/nsnet-overlay
#
# Everything happens in throwaway namespaces with documentation addresses
# (192.0.2.0/24 underlay, 10.200.0.0/16 overlay); the root namespace is never
# changed. The trap on EXIT stops etcd, the agents and iperf3, removes the
# sandboxes and the network through nsnet, and deletes the namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-50} REPS=${REPS:-8} TIME=${TIME:-2} OMIT=${OMIT:-1} P=${PREFIX:-ovb}
command -v etcd >/dev/null || { echo "needs etcd (apt-get install etcd-server)"; exit 1; }
command -v iperf3 >/dev/null || { echo "needs iperf3 (apt-get install iperf3)"; exit 1; }
work=$(mktemp -d /tmp/ovb.XXXXXX)
. bench/states.sh
if [ -z "${NSNET:-}" ]; then CGO_ENABLED=0 go build -o "$work/nsnet" ./cmd/nsnet; CGO_ENABLED=0 go build -o "$work/nsnet-overlay" ./cmd/nsnet-overlay; NSNET=$work/nsnet; fi
go build -o "$work/overlaybench" ./bench/overlaybench
STORE=etcd://192.0.2.2:2379
pids=()
cleanup() {
  set +e
  for h in 0 1; do
    for s in $(nsenter --net=/run/netns/$P-h$h "$NSNET" --root "$work/root$h" sandbox ls --format json 2>/dev/null | jq -r '.[].name'); do
      nsenter --net=/run/netns/$P-h$h "$NSNET" --root "$work/root$h" sandbox rm --force "$s" >/dev/null
    done
  done
  nsenter --net=/run/netns/$P-h0 "$NSNET" --root "$work/root0" network rm --store $STORE ov >/dev/null 2>&1
  sleep 1
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for ns in $P-h0 $P-h1 $P-etcd $P-ul; do ip netns del $ns 2>/dev/null; done
  rm -rf "$work"
  remove_states "$work"
}
trap cleanup EXIT
ip netns add $P-ul; ip -n $P-ul link add ul0 type bridge; ip -n $P-ul link set ul0 up
plug() { # ns port addr
  ip netns add "$1"; ip -n "$1" link set lo up
  ip -n $P-ul link add "$2" type veth peer name eth1 netns "$1"
  ip -n $P-ul link set "$2" master ul0 up
  ip -n "$1" addr add "$3/24" dev eth1; ip -n "$1" link set eth1 up
}
plug $P-etcd ue 192.0.2.2; plug $P-h0 u0 192.0.2.11; plug $P-h1 u1 192.0.2.12
nsenter --net=/run/netns/$P-etcd etcd --name b --data-dir "$work/etcd" --listen-client-urls http://192.0.2.2:2379 \
  --advertise-client-urls http://192.0.2.2:2379 --listen-peer-urls http://192.0.2.2:2380 \
  --initial-advertise-peer-urls http://192.0.2.2:2380 --initial-cluster b=http://192.0.2.2:2380 >"$work/etcd.log" 2>&1 &
pids+=($!)
sleep 2
for h in 0 1; do
  nsenter --net=/run/netns/$P-h$h "$NSNET" --root "$work/root$h" agent --store $STORE --advertise 192.0.2.1$((h+1)) >"$work/agent$h.log" 2>&1 &
  pids+=($!)
done
nsn() { local h=$1; shift; nsenter --net=/run/netns/$P-h$h "$NSNET" --root "$work/root$h" "$@"; }
nsn 0 network create --driver overlay --store $STORE --subnet 10.200.0.0/16 ov >/dev/null
for h in 0 1; do until nsn $h network inspect ov >/dev/null 2>&1; do sleep 0.1; done; done
nsn 0 sandbox create --network ov --ip 10.200.0.10 $P-s0 >/dev/null
nsn 1 sandbox create --network ov --ip 10.200.0.11 $P-s1 >/dev/null

echo "## reach (N=$N)"
"$work/overlaybench" -nsnet "$NSNET" -host /run/netns/$P-h1 -root "$work/root1" -from /run/netns/$P-s0 -network ov -prefix $P -n "$N"

echo "## throughput (REPS=$REPS, ${TIME}s each, Gbit/s)"
ip netns exec $P-s1 iperf3 -s -B 10.200.0.11 -D -I "$work/s1.pid"
ip netns exec $P-h1 iperf3 -s -B 192.0.2.12 -D -I "$work/h1.pid"
sleep 0.5
pids+=($(cat "$work/s1.pid") $(cat "$work/h1.pid"))
run() { ip netns exec "$1" iperf3 -c "$2" -t "$TIME" -O "$OMIT" -J | jq '.end.sum_received.bits_per_second / 1e9'; }
bare=() over=()
for r in $(seq "$REPS"); do
  bare+=($(run $P-h0 192.0.2.12)); over+=($(run $P-s0 10.200.0.11))
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
mb=$(median "${bare[@]}"); mo=$(median "${over[@]}")
echo "| path | Gbit/s median | runs |"
echo "|---|---|---|"
echo "| host 0 -> host 1, bare underlay | $mb | ${bare[*]} |"
echo "| sandbox -> sandbox, overlay (VXLAN) | $mo | ${over[*]} |"
awk -v o="$mo" -v b="$mb" 'BEGIN {printf "overlay/bare: %.3f\n", o/b}'
