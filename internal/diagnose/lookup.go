package diagnose

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/internal/netview"
	"github.com/nsnet/nsnet/internal/observe"
	"github.com/nsnet/nsnet/types"
)

// routeTo is the kernel's choice among routes of the main table: the
// longest prefix that holds dst, then the lowest metric. (Policy rules and
// other tables are not followed.)
func routeTo(routes []netview.Route, dst netip.Addr) (netview.Route, bool) {
	best := -1
	for i, r := range routes {
		if !r.Dst.Contains(dst) {
			continue
		}
		b := best
		if b < 0 || r.Dst.Bits() > routes[b].Dst.Bits() || (r.Dst.Bits() == routes[b].Dst.Bits() && r.Priority < routes[b].Priority) {
			best = i
		}
	}
	if best < 0 {
		return netview.Route{}, false
	}
	return routes[best], true
}

// describeRoute is a route as ip route prints it.
func describeRoute(r netview.Route) string {
	dst := r.Dst.String()
	if r.Dst.Bits() == 0 {
		dst = "default"
	}
	if r.Type != "" && r.Type != "unicast" {
		return r.Type + " " + dst
	}
	s := dst
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	return s + " dev " + r.Dev
}

// localDevice returns the up device of ns that holds a, if any: the kernel
// delivers packets for a to the namespace itself.
func localDevice(ns *observe.Namespace, a netip.Addr) (netview.Device, netip.Prefix, bool) {
	if a.IsLoopback() {
		d, _ := ns.Device("lo")
		return d, netip.PrefixFrom(a, 8), true
	}
	for _, d := range ns.Devices {
		if !d.Up {
			continue
		}
		for _, p := range d.Addrs {
			if p.Addr() == a {
				return d, p, true
			}
		}
	}
	return netview.Device{}, netip.Prefix{}, false
}

// overlapping returns a device other than except with an address whose
// subnet overlaps p.
func overlapping(ns *observe.Namespace, p netip.Prefix, except string) (netview.Device, netip.Prefix, bool) {
	for _, d := range ns.Devices {
		if d.Name == except {
			continue
		}
		for _, a := range d.Addrs {
			if a.Masked().Overlaps(p) && !a.Addr().IsLoopback() {
				return d, a, true
			}
		}
	}
	return netview.Device{}, netip.Prefix{}, false
}

func hasAddr(d netview.Device, p netip.Prefix) bool { return slices.Contains(d.Addrs, p) }

// mtuOf is a network's MTU (nsnet's default when unset).
func mtuOf(n types.Network) int {
	if n.MTU == 0 {
		return 1500
	}
	return n.MTU
}

// ipIn is the iproute2 command for the sandbox's namespace.
func ipIn(sb types.Sandbox) string {
	if strings.HasPrefix(sb.NetNS, "/run/netns/") {
		return "ip -n " + strings.TrimPrefix(sb.NetNS, "/run/netns/")
	}
	return "nsenter --net=" + sb.NetNS + " ip"
}

func or(cmd, alt string) string { return fmt.Sprintf("%s (or: %s)", cmd, alt) }

// withGC offers nsnet gc, which repairs everything nsnet owns, beside a
// direct command.
func withGC(cmd string) string { return or(cmd, "nsnet gc") }

// hostAddresses lists the IPv4 addresses of the host's devices that are not
// nsnet's bridges, bridge ports or lo.
func hostAddresses(s *observe.Snapshot) []string {
	bridges := map[string]bool{}
	for _, n := range s.Networks {
		bridges[n.Bridge] = true
	}
	var out []string
	for _, d := range s.Host.Devices {
		if d.Name == "lo" || d.Master != "" || bridges[d.Name] || !d.Up {
			continue
		}
		for _, a := range d.Addrs {
			out = append(out, fmt.Sprintf("%s (%s)", a.Addr(), d.Name))
		}
	}
	return out
}

// uplinkAddr is the first address of the host device dev (the source
// masquerade gives).
func uplinkAddr(s *observe.Snapshot, dev string) netip.Addr {
	d, ok := s.Host.Device(dev)
	if !ok || len(d.Addrs) == 0 {
		return netip.Addr{}
	}
	return d.Addrs[0].Addr()
}

// defaultRoute is the host's (or a namespace's) default route.
func defaultRoute(ns *observe.Namespace) (netview.Route, bool) {
	for _, r := range ns.Routes {
		if r.Dst.Bits() == 0 {
			return r, true
		}
	}
	return netview.Route{}, false
}

// networkHolding returns the network of the snapshot whose subnet holds a.
func networkHolding(s *observe.Snapshot, a netip.Addr) (types.Network, bool) {
	for _, n := range s.Networks {
		if n.Subnet.Contains(a) {
			return n, true
		}
	}
	return types.Network{}, false
}

// sandboxAt returns the sandbox with address a on network n.
func sandboxAt(s *observe.Snapshot, n string, a netip.Addr) (types.Sandbox, types.Endpoint, bool) {
	for _, sb := range s.Sandboxes {
		for _, ep := range sb.Endpoints {
			if ep.Network == n && ep.Address.Addr() == a {
				return sb, ep, true
			}
		}
	}
	return types.Sandbox{}, types.Endpoint{}, false
}

// endpointOn returns sb's endpoint on network n.
func endpointOn(sb types.Sandbox, n string) (types.Endpoint, bool) {
	i := slices.IndexFunc(sb.Endpoints, func(ep types.Endpoint) bool { return ep.Network == n })
	if i < 0 {
		return types.Endpoint{}, false
	}
	return sb.Endpoints[i], true
}

// publishing is the endpoint a sandbox's published ports go to: the one
// with the default route.
func publishing(sb types.Sandbox) (types.Endpoint, bool) {
	i := slices.IndexFunc(sb.Endpoints, func(ep types.Endpoint) bool { return ep.Gateway.IsValid() })
	if i < 0 {
		return types.Endpoint{}, false
	}
	return sb.Endpoints[i], true
}

// hasRule reports whether nsnet's table has a rule with this comment in
// chain.
func hasRule(s *observe.Snapshot, chain, comment string) bool {
	return slices.ContainsFunc(s.Nsnet.Rules, func(r firewall.Rule) bool {
		return r.Chain == chain && r.Comment == comment
	})
}
