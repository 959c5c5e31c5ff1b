# Sourced by scripts/podman-cni.sh and bench/podman.sh: a real Podman 4.3.1
# (CNI backend) whose networks include one of nsnet's, in the throwaway
# harness of ../shared/podman (see its README: Podman runs inside the network
# namespace pm-host and a private mount namespace, from extracted packages),
# plus an "internet" namespace behind pm-host for egress, as in
# shared/TESTING.md. Nothing here touches the machine's own network.
#
# pm_setup builds nsnet, writes the conflists (nsnet's "nsn" on 10.89.5.0/24,
# with its resolver, and the harness's reference "pm-ref": bridge + host-local + portmap +
# firewall + tuning) and starts the harness; pm_teardown removes all of it.
# Afterwards: $PM (the podman wrapper), $NSNET (nsnet, run inside the harness
# with its state root), $INET (the internet namespace: 203.0.113.1 on its
# uplink, a web server at 198.51.100.7 whose /cgi-bin/ip prints the client's
# address), pm-host's uplink address 203.0.113.2.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=${PODMAN_HARNESS:-$REPO/../shared/podman}
WORK=$(mktemp -d /tmp/nsnet-podman.XXXXXX)
PM=$HARNESS/pm
NS=${PM_NETNS:-pm-host}
INET=$NS-inet
WEB_PID=

# nsnet runs inside the harness, where the plugin runs.
nsnet() { PM_NSEXEC=1 "$PM" "$WORK/plugins/nsnet" --root "$WORK/root" "$@"; }
# inside runs a command in pm-host (and the harness's mount namespace).
inside() { PM_NSEXEC=1 "$PM" "$@"; }

pm_setup() {
  [ -x "$HARNESS/start.sh" ] || { echo "no Podman harness at $HARNESS (set PODMAN_HARNESS)" >&2; return 1; }
  [ -x /usr/lib/cni/bridge ] || { echo "the reference plugins are missing: apt-get install containernetworking-plugins" >&2; return 1; }
  mkdir -p "$WORK/plugins" "$WORK/net.d" "$WORK/www/cgi-bin"
  mkdir -m 700 "$WORK/root"
  (cd "$REPO" && CGO_ENABLED=0 go build -ldflags='-s -w' -o "$WORK/plugins/nsnet" ./cmd/nsnet) || return 1
  # Names the network's resolver does not know go to pm-host's own address,
  # where nothing answers: never to the machine's resolvers.
  echo "nameserver 192.0.2.1" > "$WORK/resolv.conf"
  cat > "$WORK/net.d/nsn.conflist" <<EOF
{ "cniVersion": "1.0.0", "name": "nsn",
  "plugins": [ { "type": "nsnet", "network": "nsn", "subnet": "10.89.5.0/24", "root": "$WORK/root",
                 "resolver": true, "resolvConf": "$WORK/resolv.conf",
                 "capabilities": { "portMappings": true, "ips": true, "mac": true, "aliases": true } } ] }
EOF
  # The harness's reference network; its state goes where start.sh puts the harness's.
  sed "s#@STATE@#${PA:-/tmp/podman-anchor}/state#g" "$HARNESS/conflists/pm-ref.conflist" > "$WORK/net.d/pm-ref.conflist"
  PM_CONFLIST_DIR=$WORK/net.d PM_PLUGIN_DIRS=$WORK/plugins:/usr/lib/cni bash "$HARNESS/start.sh" > "$WORK/start.log" 2>&1 ||
    { cat "$WORK/start.log"; return 1; }
  internet
}

# internet adds the world's "internet" behind pm-host: replies to a container
# come back only if pm-host masquerades.
internet() {
  ip netns add "$INET"
  ip -n "$INET" link add wan0 type veth peer name up0 netns "$NS"
  ip -n "$INET" addr add 203.0.113.1/24 dev wan0
  ip -n "$INET" addr add 198.51.100.7/32 dev lo
  ip -n "$INET" link set lo up
  ip -n "$INET" link set wan0 up
  ip -n "$NS" addr add 203.0.113.2/24 dev up0
  ip -n "$NS" link set up0 up
  ip -n "$NS" route add default via 203.0.113.1
  printf '#!/bin/busybox sh\necho "Content-Type: text/plain"\necho\necho "$REMOTE_ADDR"\n' > "$WORK/www/cgi-bin/ip"
  chmod +x "$WORK/www/cgi-bin/ip"
  ip netns exec "$INET" busybox httpd -f -p 198.51.100.7:80 -h "$WORK/www" &
  WEB_PID=$!
}

pm_teardown() {
  if [ -n "$WEB_PID" ] && [ "$WEB_PID" -gt 0 ]; then kill "$WEB_PID" 2>/dev/null; wait "$WEB_PID" 2>/dev/null; fi
  if [ -x "$PM" ] && "$PM" ps -aq >/dev/null 2>&1; then
    "$PM" rm -af -t 0 >/dev/null 2>&1
    nsnet network rm nsn >/dev/null 2>&1
  fi
  bash "$HARNESS/stop.sh" > "$WORK/stop.log" 2>&1 || cat "$WORK/stop.log"
  ip netns del "$INET" 2>/dev/null
  for f in /run/nsnet/state/*/root; do # the state file nsnet keeps for $WORK/root
    [ "$(cat "$f" 2>/dev/null)" = "$WORK/root" ] && rm -rf "$(dirname "$f")"
  done
  rm -rf "$WORK"
}
