package diagnose

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/nsnet/nsnet/internal/observe"
	"github.com/nsnet/nsnet/types"
)

func ok(step, detail string) Hop { return Hop{Step: step, Verdict: OK, Detail: detail} }

func broken(step, detail, cause, fix string) Hop {
	return Hop{Step: step, Verdict: Broken, Detail: detail, Cause: cause, Fix: fix}
}

// namespaceHop: the sandbox's namespace is there, and is the one it was
// given.
func (w *walker) namespaceHop() Hop {
	return namespaceOf(w.sb, w.ns)
}

func namespaceOf(sb types.Sandbox, ns *observe.Namespace) Hop {
	step := "sandbox " + sb.Name
	recreate := fmt.Sprintf("nsnet gc (it forgets the sandbox), then nsnet sandbox create ... %s", sb.Name)
	switch {
	case ns == nil:
		return Hop{Step: step, Verdict: Unknown, Detail: "its namespace was not read"}
	case ns.Replaced:
		return broken(step, "namespace "+ns.Path, fmt.Sprintf("the namespace at %s is not sandbox %s's any more: it was deleted and made again by someone else, without nsnet's interfaces", ns.Path, sb.Name), recreate)
	case ns.Err != "":
		return broken(step, ns.Err, fmt.Sprintf("sandbox %s's namespace %s cannot be opened: it was deleted (ip netns del?)", sb.Name, ns.Path), recreate)
	}
	return ok(step, fmt.Sprintf("namespace %s, mode %s", ns.Path, sb.Mode))
}

// interfaceHop: the sandbox's end of its veth on ep's network is there, up,
// with carrier and its address.
func (w *walker) interfaceHop(sb types.Sandbox, ns *observe.Namespace, ep types.Endpoint) Hop {
	step := ep.IfName + " in " + sb.Name
	d, found := ns.Device(ep.IfName)
	host, hostFound := w.s.Host.Device(ep.HostVeth)
	switch {
	case !found:
		return broken(step, "missing", fmt.Sprintf("sandbox %s has no interface %s: its veth pair was deleted", sb.Name, ep.IfName), "nsnet gc (it makes the pair again)")
	case !d.Up:
		return broken(step, "down", fmt.Sprintf("%s in sandbox %s is down, so nothing leaves or enters it there", ep.IfName, sb.Name),
			withGC(fmt.Sprintf("%s link set %s up", ipIn(sb), ep.IfName)))
	case !hasAddr(d, ep.Address):
		return broken(step, fmt.Sprintf("up, addresses %v", d.Addrs), fmt.Sprintf("%s in sandbox %s lacks its address %s", ep.IfName, sb.Name, ep.Address),
			withGC(fmt.Sprintf("%s addr add %s dev %s", ipIn(sb), ep.Address, ep.IfName)))
	case !d.Carrier && hostFound && !host.Up:
		return broken(step, "up, no carrier", fmt.Sprintf("%s in sandbox %s has no carrier: its other end, %s on the host, is down", ep.IfName, sb.Name, ep.HostVeth),
			withGC("ip link set "+ep.HostVeth+" up"))
	case !d.Carrier && !hostFound:
		return broken(step, "up, no carrier", fmt.Sprintf("%s in sandbox %s has no carrier: its other end, %s on the host, is gone", ep.IfName, sb.Name, ep.HostVeth), "nsnet gc (it makes the pair again)")
	case !d.Carrier:
		return broken(step, "up, no carrier", fmt.Sprintf("%s in sandbox %s has no carrier: its other end is down or is not %s", ep.IfName, sb.Name, ep.HostVeth), "nsnet gc")
	case !strings.EqualFold(d.MAC, ep.MAC) && w.guarded(ep.Network):
		return broken(step, fmt.Sprintf("up, %s, mac %s", ep.Address, d.MAC),
			fmt.Sprintf("%s in sandbox %s has MAC %s, not its own %s: anti-spoofing on network %s drops what it sends", ep.IfName, sb.Name, d.MAC, ep.MAC, ep.Network),
			withGC(fmt.Sprintf("%s link set %s address %s", ipIn(sb), ep.IfName, ep.MAC)))
	}
	return ok(step, fmt.Sprintf("up, %s, mac %s, mtu %d", ep.Address, d.MAC, d.MTU))
}

// guarded reports whether the named network has anti-spoofing on: its
// sandboxes' ports forward only what comes from their own MAC and addresses.
func (w *walker) guarded(network string) bool {
	n, ok := w.s.Network(network)
	return ok && !n.NoAntiSpoof
}

// routeHop: the sandbox's routes send dst out by ep's interface.
func (w *walker) routeHop(ep types.Endpoint, n types.Network, dst netip.Addr) Hop {
	step := "route in " + w.sb.Name
	r, found := routeTo(w.ns.Routes, dst)
	gw := ep.Gateway
	if !gw.IsValid() {
		gw = n.Gateway
	}
	addDefault := withGC(fmt.Sprintf("%s route add default via %s dev %s", ipIn(w.sb), gw, ep.IfName))
	switch {
	case !found && !n.Subnet.Contains(dst):
		return broken(step, "no route to "+where(dst), fmt.Sprintf("sandbox %s has no route to %s: its default route via %s is gone", w.sb.Name, where(dst), gw), addDefault)
	case !found:
		return broken(step, "no route to "+dst.String(), fmt.Sprintf("sandbox %s has no route to its own network %s", w.sb.Name, n.Subnet),
			withGC(fmt.Sprintf("%s addr add %s dev %s", ipIn(w.sb), ep.Address, ep.IfName)))
	case r.Type != "unicast" && r.Type != "":
		return broken(step, describeRoute(r), fmt.Sprintf("sandbox %s's route to %s is a %s route: it drops the packet", w.sb.Name, where(dst), r.Type),
			fmt.Sprintf("%s route del %s", ipIn(w.sb), describeRoute(r)))
	case r.Dev != ep.IfName:
		return broken(step, describeRoute(r), fmt.Sprintf("sandbox %s routes %s via %s, not via %s on network %s", w.sb.Name, where(dst), r.Dev, ep.IfName, n.Name),
			withGC(fmt.Sprintf("%s route del %s", ipIn(w.sb), describeRoute(r))))
	case r.Gateway.IsValid() && r.Gateway != n.Gateway:
		return Hop{Step: step, Verdict: Warn, Detail: describeRoute(r),
			Cause: fmt.Sprintf("sandbox %s routes %s via %s, which is not network %s's gateway %s", w.sb.Name, where(dst), r.Gateway, n.Name, n.Gateway)}
	}
	return ok(step, fmt.Sprintf("%s: %s", where(dst), describeRoute(r)))
}

func where(a netip.Addr) string {
	if a.IsUnspecified() {
		return "addresses beyond its network"
	}
	return a.String()
}

// vethHop: the host end of the sandbox's veth is there, up, a port of the
// network's bridge, with hairpin mode on when hairpin asks for it.
func (w *walker) vethHop(sb types.Sandbox, ns *observe.Namespace, ep types.Endpoint, n types.Network, hairpin bool) Hop {
	v := ep.HostVeth
	step := "veth " + v + " (host)"
	d, found := w.s.Host.Device(v)
	switch {
	case !found:
		return broken(step, "missing", fmt.Sprintf("%s, the host end of sandbox %s's veth, is gone", v, sb.Name), "nsnet gc (it makes the pair again)")
	case !d.Up:
		return broken(step, "down", fmt.Sprintf("%s, the host end of sandbox %s's veth, is down", v, sb.Name), withGC("ip link set "+v+" up"))
	case d.Master == "":
		return broken(step, "up, on no bridge", fmt.Sprintf("%s, the host end of sandbox %s's veth, is not a port of bridge %s, so the bridge never sees the sandbox's frames", v, sb.Name, n.Bridge),
			withGC(fmt.Sprintf("ip link set %s master %s", v, n.Bridge)))
	case d.Master != n.Bridge:
		return broken(step, "up, port of "+d.Master, fmt.Sprintf("%s, the host end of sandbox %s's veth, is a port of %s, not of network %s's bridge %s", v, sb.Name, d.Master, n.Name, n.Bridge),
			withGC(fmt.Sprintf("ip link set %s master %s", v, n.Bridge)))
	case hairpin && d.Hairpin != nil && !*d.Hairpin:
		return broken(step, "up, port of "+n.Bridge+", hairpin off", fmt.Sprintf("hairpin mode is off on %s, so bridge %s does not send sandbox %s's packets back out of the port they came in by", v, n.Bridge, sb.Name),
			"bridge link set dev "+v+" hairpin on")
	}
	if peer, ok := ns.Device(ep.IfName); ok && d.PeerIndex != 0 && d.PeerIndex != peer.Index {
		return broken(step, fmt.Sprintf("up, port of %s, peer index %d", n.Bridge, d.PeerIndex),
			fmt.Sprintf("%s's other end is not %s in sandbox %s (index %d, not %d)", v, ep.IfName, sb.Name, d.PeerIndex, peer.Index), "nsnet gc")
	}
	detail := "up, port of " + n.Bridge
	if d.Hairpin != nil && *d.Hairpin {
		detail += ", hairpin on"
	}
	return ok(step, fmt.Sprintf("%s, mtu %d", detail, d.MTU))
}

// bridgeHop: the network's bridge is there, up, with its gateway address.
func (w *walker) bridgeHop(n types.Network) Hop {
	step := "bridge " + n.Bridge
	d, found := w.s.Host.Device(n.Bridge)
	gw := netip.PrefixFrom(n.Gateway, n.Subnet.Bits())
	switch {
	case !found:
		return broken(step, "missing", fmt.Sprintf("bridge %s of network %s is gone", n.Bridge, n.Name), "nsnet gc (it makes the bridge again, with its ports)")
	case !d.Up:
		return broken(step, "down", fmt.Sprintf("bridge %s of network %s is down, so it forwards nothing", n.Bridge, n.Name), withGC("ip link set "+n.Bridge+" up"))
	case !hasAddr(d, gw):
		return broken(step, fmt.Sprintf("up, addresses %v", d.Addrs), fmt.Sprintf("bridge %s lacks network %s's gateway address %s, so its sandboxes' packets for anywhere else find no gateway", n.Bridge, n.Name, gw),
			withGC(fmt.Sprintf("ip addr add %s dev %s", gw, n.Bridge)))
	}
	return ok(step, fmt.Sprintf("up, %s, mtu %d", gw, d.MTU))
}

// mtuHop: every device of the network's segment the packet crosses has the
// network's MTU; a bigger frame than the next device's MTU is dropped
// there, without an error the sender could learn from.
func (w *walker) mtuHop(n types.Network, ends ...segmentEnd) Hop {
	want := mtuOf(n)
	step := "MTU on " + n.Bridge
	var seen []string
	for _, e := range ends {
		for _, dev := range []struct {
			ns   *observe.Namespace
			name string
			fix  string
		}{{e.ns, e.ep.IfName, ipIn(e.sb)}, {&w.s.Host, e.ep.HostVeth, "ip"}} {
			d, found := dev.ns.Device(dev.name)
			if !found {
				continue
			}
			where := d.Name + " in " + e.sb.Name
			if dev.ns == &w.s.Host {
				where = d.Name
			}
			if d.MTU != want {
				if dev.ns == &w.s.Host {
					where += " on the host"
				}
				return broken(step, fmt.Sprintf("%s has %d", where, d.MTU),
					fmt.Sprintf("%s has MTU %d but network %s's is %d, so frames of more than %d bytes are dropped between the sandbox and the bridge", where, d.MTU, n.Name, want, min(d.MTU, want)),
					withGC(fmt.Sprintf("%s link set %s mtu %d", dev.fix, d.Name, want)))
			}
			seen = append(seen, where)
		}
	}
	if d, found := w.s.Host.Device(n.Bridge); found {
		if d.MTU != want {
			return broken(step, fmt.Sprintf("bridge %s has %d", n.Bridge, d.MTU),
				fmt.Sprintf("bridge %s has MTU %d but network %s's is %d, so frames of more than %d bytes are dropped at the bridge", n.Bridge, d.MTU, n.Name, want, min(d.MTU, want)),
				withGC(fmt.Sprintf("ip link set %s mtu %d", n.Bridge, want)))
		}
		seen = append(seen, d.Name)
	}
	return ok(step, fmt.Sprintf("%d on %s", want, strings.Join(seen, ", ")))
}

// segmentEnd is a sandbox's attachment whose devices mtuHop compares.
type segmentEnd struct {
	sb types.Sandbox
	ns *observe.Namespace
	ep types.Endpoint
}

// listenerHop: something in the sandbox listens on port/proto at its
// address (or every address).
func listenerHop(sb types.Sandbox, ns *observe.Namespace, addr netip.Addr, port uint16, proto string) Hop {
	step := fmt.Sprintf("port %d/%s in %s", port, proto, sb.Name)
	if proto == "icmp" || port == 0 {
		return ok(step, "")
	}
	var others []observe.Socket
	for _, s := range ns.Sockets {
		if s.Proto != proto || s.Port != port {
			continue
		}
		if s.Addr.IsUnspecified() || s.Addr == addr {
			return ok(step, fmt.Sprintf("%s listens on %s:%d", process(s), s.Addr, port))
		}
		others = append(others, s)
	}
	start := fmt.Sprintf("start the server in the sandbox on 0.0.0.0:%d (nsnet exec %s -- SERVER)", port, sb.Name)
	if len(others) > 0 {
		s := others[0]
		h := broken(step, fmt.Sprintf("%s listens on %s:%d only", process(s), s.Addr, port),
			fmt.Sprintf("%s listens on %s:%d only, in sandbox %s, so packets for %s:%d find no socket", process(s), s.Addr, port, sb.Name, addr, port),
			fmt.Sprintf("make it listen on 0.0.0.0:%d or %s:%d", port, addr, port))
		h.listener = true
		return h
	}
	verb := "listens on"
	if proto == "udp" {
		verb = "is bound to"
	}
	h := broken(step, "nothing "+verb+" it", fmt.Sprintf("nothing in sandbox %s %s port %d/%s, so the kernel refuses what reaches it", sb.Name, verb, port, proto), start)
	h.listener = true
	return h
}

func process(s observe.Socket) string {
	if s.Process == "" {
		return "a socket"
	}
	return fmt.Sprintf("%s (pid %d)", s.Process, s.PID)
}

// returnRouteHop: the sandbox at the other end has a route back to src by
// its interface on the network.
func returnRouteHop(sb types.Sandbox, ns *observe.Namespace, ep types.Endpoint, n types.Network, src netip.Addr) Hop {
	step := "route back in " + sb.Name
	r, found := routeTo(ns.Routes, src)
	switch {
	case !found && !n.Subnet.Contains(src):
		return broken(step, "no route to "+where(src), fmt.Sprintf("sandbox %s has no route to %s (no default route), so its replies cannot leave it", sb.Name, where(src)),
			withGC(fmt.Sprintf("%s route add default via %s dev %s", ipIn(sb), n.Gateway, ep.IfName)))
	case !found:
		return broken(step, "no route to "+src.String(), fmt.Sprintf("sandbox %s has no route to its own network %s", sb.Name, n.Subnet), "nsnet gc")
	case r.Dev != ep.IfName:
		return broken(step, describeRoute(r), fmt.Sprintf("sandbox %s sends its replies to %s via %s, not via %s on network %s", sb.Name, where(src), r.Dev, ep.IfName, n.Name), "nsnet gc")
	}
	return ok(step, fmt.Sprintf("%s: %s", where(src), describeRoute(r)))
}
