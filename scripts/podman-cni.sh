#!/usr/bin/env bash
# nsnet as the CNI plugin of a real Podman (4.3.1, CNI backend), in the
# throwaway harness of ../shared/podman (scripts/podman-env.sh). As root:
#
#   scripts/podman-cni.sh
#
# A container on nsnet's network gets its address and egress (masqueraded:
# the internet sees pm-host's uplink address), two containers reach each
# other, by address and by name at the network's resolver, -p 8080:80 answers from the internet and from pm-host while Podman's
# conmon holds the port (also after podman network reload, which re-ADDs),
# --ip and --mac-address are honoured, nsnet sandbox ls shows the container
# and sandbox rm refuses it, and podman rm -f leaves nothing of nsnet behind
# (no sandbox, veth, namespace name, marker, file or published port, no
# resident process; nsnet gc finds nothing to do). Exits 1 if any check fails.
set -uo pipefail
. "$(dirname "$0")/podman-env.sh"
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }

failed=0
pass() { echo "PASS  $1"; }
fail() { echo "FAIL  $1"; failed=1; }
# expect DESCRIPTION PATTERN COMMAND...: the command succeeds and prints PATTERN (grep -E).
expect() {
  local what=$1 pat=$2 out; shift 2
  if out=$("$@" 2>&1) && grep -Eq -- "$pat" <<<"$out"; then pass "$what"; else fail "$what"; echo "$out" | sed 's/^/      /'; fi
}
# refuse DESCRIPTION PATTERN COMMAND...: the command fails and prints PATTERN.
refuse() {
  local what=$1 pat=$2 out; shift 2
  if ! out=$("$@" 2>&1) && grep -Eq -- "$pat" <<<"$out"; then pass "$what"; else fail "$what"; echo "$out" | sed 's/^/      /'; fi
}
ip_of() { "$PM" inspect -f '{{.NetworkSettings.Networks.nsn.IPAddress}}' "$1"; }

trap pm_teardown EXIT
pm_setup || exit 1
IMG=localhost/pm-bb

expect "podman sees the network, driver nsnet" '^[0-9a-f]+ +nsn +nsnet' "$PM" network ls
expect "run: eth0 has its address and a default route via the gateway" \
  'inet 10\.89\.5\.[0-9]+/24.*default via 10\.89\.5\.1 dev eth0' "$PM" run --rm --network nsn $IMG sh -c "{ ip -4 addr show eth0; ip route; } | tr '\\n' ' '"
expect "egress: the internet sees pm-host's uplink address (masquerade)" '^203\.0\.113\.2$' \
  "$PM" run --rm --network nsn $IMG timeout 5 wget -q -O- http://198.51.100.7/cgi-bin/ip

"$PM" run -d --name web1 --network nsn $IMG httpd -f -p 80 -h /www >/dev/null
"$PM" run -d --name web2 --network nsn -p 8080:80 $IMG httpd -f -p 80 -h /www >/dev/null
WEB1=$(ip_of web1)
expect "two containers reach each other (web1 at $WEB1)" 'pm-anchor' "$PM" exec web2 timeout 5 wget -q -O- "http://$WEB1/"
expect "the network's resolver (its gateway) answers web1's name" "Address:? *(1: )?$WEB1" "$PM" exec web2 timeout 5 nslookup web1 10.89.5.1
expect "-p 8080:80 answers from the internet" 'pm-anchor' ip netns exec "$INET" timeout 5 busybox wget -q -O- http://203.0.113.2:8080/
expect "-p 8080:80 answers from pm-host" 'pm-anchor' inside timeout 5 busybox wget -q -O- http://192.0.2.1:8080/
expect "conmon, not nsnet, holds host port 8080" '"conmon"' inside ss -Hltnp 'sport = :8080'
expect "podman network reload (DEL and ADD while conmon holds 8080) succeeds" '.' "$PM" network reload web2
expect "-p 8080:80 still answers after the reload" 'pm-anchor' ip netns exec "$INET" timeout 5 busybox wget -q -O- http://203.0.113.2:8080/
ID2=$("$PM" inspect -f '{{.Id}}' web2)
expect "nsnet sandbox ls shows web2 as cni-${ID2:0:12}" "^cni-${ID2:0:12} .*nsn" nsnet sandbox ls
refuse "nsnet sandbox rm refuses web2's sandbox without --force" "belongs to container $ID2" nsnet sandbox rm "cni-${ID2:0:12}"
expect "--ip and --mac-address are honoured" 'ether 02:00:0a:59:05:4d.*inet 10\.89\.5\.77/24' \
  "$PM" run --rm --network nsn --ip 10.89.5.77 --mac-address 02:00:0a:59:05:4d $IMG sh -c "{ ip link show eth0; ip -4 addr show eth0; } | tr '\\n' ' '"
"$PM" run -d --name static --network nsn --ip 10.89.5.78 --mac-address 02:00:0a:59:05:4e $IMG sleep 60 >/dev/null
expect "podman inspect has the static address and MAC" '^10\.89\.5\.78 02:00:0a:59:05:4e$' \
  "$PM" inspect -f '{{.NetworkSettings.Networks.nsn.IPAddress}} {{.NetworkSettings.Networks.nsn.MacAddress}}' static

"$PM" rm -f -t 0 web1 web2 static >/dev/null
expect "after podman rm -f: no sandbox" '^\[\]$' nsnet sandbox ls --format json
expect "after podman rm -f: no address leased on the network" '"sandboxes": \[\]' nsnet network inspect nsn
expect "after podman rm -f: no veth of nsnet's left in pm-host" '^0$' sh -c "ip -n $NS -o link show | grep -c ' veth[0-9a-f]\{8\}@' || true"
expect "after podman rm -f: no namespace name, marker or file of nsnet's" '^none$' \
  inside sh -c 'ls -d /run/netns/cni-* /run/nsnet/netns/cni-* /etc/netns/cni-* 2>/dev/null || echo none'
expect "after podman rm -f: no published port left in the rules" '^none$' \
  inside sh -c 'nft list ruleset | grep -q 8080 && echo left || echo none'
expect "after podman rm -f: nsnet's resident process has stopped" '^none$' sh -c "pgrep -f -- '[_]_resident --root $WORK/root' || echo none"
expect "after podman rm -f: nsnet gc has nothing to do" 'nothing to do' nsnet gc --dry-run

[ "$failed" = 0 ] && echo "all Podman checks passed" || echo "some Podman checks FAILED"
exit "$failed"
