package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nsnet/nsnet/internal/link"
	"github.com/nsnet/nsnet/internal/sysctl"
)

// bridges recreates the bridges of stored networks that were deleted from
// outside, and repairs those that drifted from what the store describes.
func (g *gc) bridges() error {
	host, err := g.e.hostLinks()
	if err != nil {
		return err
	}
	nets, err := g.tx.Networks()
	if err != nil {
		return err
	}
	for i := range nets {
		n := &nets[i]
		if g.settled["network "+n.Name] {
			continue
		}
		ok, err := host.Exists(n.Bridge)
		if err != nil {
			return err
		}
		if !ok {
			g.do(fmt.Sprintf("recreate bridge %s of network %s", n.Bridge, n.Name), func() error { return g.e.restoreBridge(g.tx, host, n) })
			continue
		}
		if why, err := g.e.foreignLink(host, n.Bridge); err != nil {
			return err
		} else if why != "" {
			g.foreign[n.Name] = true
			g.errs = append(g.errs, foreignBridge(n, errors.New(why)))
			continue
		}
		if err := g.repairBridge(host, n); err != nil {
			return err
		}
	}
	return nil
}

func (g *gc) repairBridge(host links, n *Network) error {
	spec := g.e.bridgeSpec(n)
	diffs, err := host.CheckBridge(spec)
	if err != nil {
		return err
	}
	settings, err := g.e.settingDiffs(bridgeSettings(n))
	if err != nil {
		return err
	}
	if diffs = append(diffs, settings...); len(diffs) == 0 {
		return nil
	}
	g.do(fmt.Sprintf("repair bridge %s of network %s (%s)", n.Bridge, n.Name, strings.Join(diffs, "; ")), func() error {
		if err := g.e.applySettings(bridgeSettings(n)); err != nil {
			return err
		}
		return host.RepairBridge(spec)
	})
	return nil
}

// endpoints recreates the veths of stored sandboxes that were deleted from
// outside, and repairs those that drifted, on the host and in the sandbox.
func (g *gc) endpoints() error {
	host, err := g.e.hostLinks()
	if err != nil {
		return err
	}
	nets, err := g.tx.Networks()
	if err != nil {
		return err
	}
	byName := map[string]*Network{}
	for i := range nets {
		byName[nets[i].Name] = &nets[i]
	}
	sbs, err := g.tx.Sandboxes()
	if err != nil {
		return err
	}
	for i := range sbs {
		if sb := &sbs[i]; !g.gone[sb.Name] && len(sb.Endpoints) > 0 {
			if err := g.sandboxEndpoints(host, sb, byName); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *gc) sandboxEndpoints(host links, sb *Sandbox, nets map[string]*Network) error {
	ns, err := g.e.openOwnNamespace(sb)
	if err != nil {
		g.errs = append(g.errs, err)
		return nil
	}
	defer ns.Close()
	for _, ep := range sb.Endpoints {
		n := nets[ep.Network]
		if n == nil || g.settled["link "+ep.HostVeth] || g.foreign[n.Name] { // an interrupted connect or disconnect is settled
			continue
		}
		ok, err := host.Exists(ep.HostVeth)
		if err != nil {
			return err
		}
		if !ok {
			g.do(fmt.Sprintf("recreate veth %s of sandbox %s on network %s", ep.HostVeth, sb.Name, n.Name), func() error {
				// Its peer stays when the host end was moved into another namespace.
				if _, err := host.DeleteStrayPeer(g.e.vethSpec(ns, sb, n, ep, guardedAlready)); err != nil {
					return err
				}
				return g.e.attachEndpoint(host, ns, sb, n, ep, false, guardedAlready)
			})
			continue
		}
		if exists, err := host.Exists(n.Bridge); err != nil || !exists {
			continue // recreating the bridge puts its veths back on it
		}
		if why, err := g.e.foreignLink(host, ep.HostVeth); err != nil {
			return err
		} else if why != "" {
			g.errs = append(g.errs, fmt.Errorf("veth %s of sandbox %s is not this state root's (%s): someone else's interface has its name, and nsnet leaves it alone: "+
				"delete it (ip link del %s) and run nsnet gc to make the sandbox's veth again", ep.HostVeth, sb.Name, why, ep.HostVeth))
			continue
		}
		recreate := func() error { return g.e.attachEndpoint(host, ns, sb, n, ep, false, guardedAlready) }
		if err := g.repairVeth(host, g.e.vethSpec(ns, sb, n, ep, guardedAlready), sb, n, recreate); err != nil {
			return err
		}
	}
	return nil
}

// repairVeth repairs a veth pair in place, or, if its peer is missing from
// the sandbox under its name (renamed or moved there), deletes the pair and
// makes it anew (recreate).
func (g *gc) repairVeth(host links, spec link.Veth, sb *Sandbox, n *Network, recreate func() error) error {
	diffs, err := host.CheckVeth(spec)
	if err != nil {
		return err
	}
	if missing := link.MissingPeer(spec); slices.Contains(diffs, missing) {
		g.do(fmt.Sprintf("recreate veth %s of sandbox %s on network %s (%s)", spec.HostName, sb.Name, n.Name, missing), func() error {
			if err := host.DeleteLink(spec.HostName); err != nil { // the caller found it ours (foreignLink)
				return err
			}
			return recreate()
		})
		return nil
	}
	v6, err := g.e.ipv6DiffIn(spec.NetNS, spec.PeerName, spec.Address6.IsValid())
	if err != nil {
		return err
	}
	if diffs = append(diffs, v6...); len(diffs) == 0 {
		return nil
	}
	g.do(fmt.Sprintf("repair veth %s of sandbox %s on network %s (%s)", spec.HostName, sb.Name, n.Name, strings.Join(diffs, "; ")), func() error {
		if err := g.e.setIPv6In(spec.NetNS, Endpoint{IfName: spec.PeerName, Address6: spec.Address6}); err != nil {
			return err
		}
		return host.RepairVeth(spec)
	})
	return nil
}

// forwarding turns IPv4 (and IPv6) forwarding back on if a network needs
// it (not one whose interrupted removal is being finished).
func (g *gc) forwarding() error {
	nets, err := g.tx.Networks()
	nets = slices.DeleteFunc(nets, func(n Network) bool { return g.settled["network "+n.Name] })
	if err != nil {
		return err
	}
	if needsForwarding(nets) {
		if err := g.forwardingOn("IPv4", sysctl.IPv4Forward); err != nil {
			return err
		}
	}
	if needsForwarding6(nets) {
		return g.forwardingOn("IPv6", sysctl.IPv6Forward)
	}
	return nil
}

// forwardingOn turns the forwarding sysctl key of family back on.
func (g *gc) forwardingOn(family, key string) error {
	diffs, err := g.e.settingDiffs([]setting{{key, "1"}})
	if err != nil || len(diffs) == 0 {
		return err
	}
	g.do("turn "+family+" forwarding back on ("+diffs[0]+")", func() error { return g.e.applySettings([]setting{{key, "1"}}) })
	return nil
}
