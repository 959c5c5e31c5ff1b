package engine

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/nsnet/nsnet/internal/sysctl"
)

// setting is one sysctl value nsnet owns.
type setting struct{ key, val string }

// bridgeSettings are the sysctls of n's bridge: no IPv6 on an IPv4-only
// network (so sandboxes cannot reach the host over link-local IPv6), and
// route_localnet off, so the kernel itself drops as martians the packets to
// 127.0.0.0/8 that arrive on the bridge, whatever the firewall's rules are
// (even after nft flush ruleset). No published port needs it: the host's
// traffic to 127.0.0.1 is proxied by the resident process, never routed to a
// bridge.
// A dual-stack network's bridge keeps IPv6 on, without duplicate address
// detection (nsnet allocates the gateway address, it does not guess it).
func bridgeSettings(n *Network) []setting {
	if n.IPv6() {
		return []setting{{sysctl.DisableIPv6(n.Bridge), "0"}, {sysctl.AcceptDAD(n.Bridge), "0"}, {sysctl.RouteLocalnet(n.Bridge), "0"}}
	}
	return []setting{{sysctl.DisableIPv6(n.Bridge), "1"}, {sysctl.RouteLocalnet(n.Bridge), "0"}}
}

// applySettings writes each setting in the host namespace.
func (e *Engine) applySettings(ss []setting) error {
	for _, s := range ss {
		if _, err := e.k.sys.Set(s.key, s.val); err != nil && !errors.Is(err, sysctl.ErrNoIPv6) {
			return err
		}
	}
	return nil
}

// enableForwarding turns IPv4 forwarding on for n, registering its undo if
// it was off.
func (e *Engine) enableForwarding(u *undo, n *Network) error {
	changed, err := e.k.sys.Set(sysctl.IPv4Forward, "1")
	if err != nil {
		return fmt.Errorf("network %s: enable IPv4 forwarding: %w", n.Name, err)
	}
	if changed {
		u.push(func() error { _, err := e.k.sys.Set(sysctl.IPv4Forward, "0"); return err })
	}
	return nil
}

// enableForwarding6 turns IPv6 forwarding (net.ipv6.conf.all.forwarding)
// on for a dual-stack n, registering its undo if it was off. Like Docker,
// nsnet leaves it on once a network needed it; with it on, the host itself
// no longer takes router advertisements on interfaces with accept_ra 1.
func (e *Engine) enableForwarding6(u *undo, n *Network) error {
	changed, err := e.k.sys.Set(sysctl.IPv6Forward, "1")
	if err != nil {
		return fmt.Errorf("network %s: enable IPv6 forwarding: %w", n.Name, err)
	}
	if changed {
		u.push(func() error { _, err := e.k.sys.Set(sysctl.IPv6Forward, "0"); return err })
	}
	return nil
}

// disableIPv6Here turns IPv6 off on the host end dev of a sandbox's veth,
// before it comes up: a bridge port needs no address of its own, and each
// one with IPv6 on adds routes to the host's IPv6 table, which the kernel
// walks whenever a link there goes down (so releasing a sandbox's veth would
// cost more with every sandbox).
func (e *Engine) disableIPv6Here(dev string) error {
	if _, err := e.k.sys.Set(sysctl.DisableIPv6(dev), "1"); err != nil && !errors.Is(err, sysctl.ErrNoIPv6) {
		return err
	}
	return nil
}

// disableIPv6In turns IPv6 off on interface dev inside the namespace ns, as
// Docker does for sandboxes of IPv4-only networks.
func (e *Engine) disableIPv6In(ns *os.File, dev string) error {
	err := e.k.sys.SetIn(ns, sysctl.DisableIPv6(dev), "1")
	if err != nil && !errors.Is(err, sysctl.ErrNoIPv6) {
		return err
	}
	return nil
}

// setIPv6In sets IPv6 on ep's interface inside the namespace ns before it
// comes up: off on an IPv4-only network; on a dual-stack one on, without
// duplicate address detection (its address is allocated, not guessed).
func (e *Engine) setIPv6In(ns *os.File, ep Endpoint) error {
	if !ep.Address6.IsValid() {
		return e.disableIPv6In(ns, ep.IfName)
	}
	for _, s := range sandboxSettings6(ep.IfName) {
		if err := e.k.sys.SetIn(ns, s.key, s.val); err != nil {
			return fmt.Errorf("%s in the sandbox: %w", ep.IfName, err)
		}
	}
	return nil
}

// sandboxSettings6 are the sysctls of a sandbox's interface dev on a
// dual-stack network.
func sandboxSettings6(dev string) []setting {
	return []setting{{sysctl.DisableIPv6(dev), "0"}, {sysctl.AcceptDAD(dev), "0"}}
}

// settingDiffs lists the settings whose value in the host namespace differs
// (a kernel without IPv6 has nothing to differ).
func (e *Engine) settingDiffs(ss []setting) ([]string, error) {
	var diffs []string
	for _, s := range ss {
		got, err := e.k.sys.Get(s.key)
		if errors.Is(err, sysctl.ErrNoIPv6) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if got != s.val {
			diffs = append(diffs, fmt.Sprintf("sysctl %s is %s, not %s", strings.ReplaceAll(s.key, "/", "."), got, s.val))
		}
	}
	return diffs, nil
}

// ipv6DiffIn reports a sandbox interface whose IPv6 is on, or, on a
// dual-stack network (dual), one whose IPv6 settings are not
// sandboxSettings6.
func (e *Engine) ipv6DiffIn(ns *os.File, dev string, dual bool) ([]string, error) {
	want := []setting{{sysctl.DisableIPv6(dev), "1"}}
	if dual {
		want = sandboxSettings6(dev)
	}
	var diffs []string
	for _, s := range want {
		got, err := e.k.sys.GetIn(ns, s.key)
		switch {
		case errors.Is(err, sysctl.ErrNoIPv6) && !dual:
			return nil, nil
		case err != nil:
			return nil, err
		case got != s.val && s.val == "1":
			diffs = append(diffs, dev+" in the sandbox has IPv6 on")
		case got != s.val:
			diffs = append(diffs, fmt.Sprintf("%s in the sandbox has %s %s, not %s", dev, path.Base(s.key), got, s.val))
		}
	}
	return diffs, nil
}

// needsForwarding6 reports whether any dual-stack network reaches beyond
// its bridge.
func needsForwarding6(nets []Network) bool {
	for _, n := range nets {
		if !n.Internal && n.IPv6() {
			return true
		}
	}
	return false
}

// needsForwarding reports whether any network reaches beyond its bridge.
func needsForwarding(nets []Network) bool {
	for _, n := range nets {
		if !n.Internal {
			return true
		}
	}
	return false
}

// warnLocalnet tells the user when route_localnet is on for every interface
// (net.ipv4.conf.all, which the kernel ORs into each one's): then the kernel
// no longer drops packets from outside addressed to 127.0.0.0/8, and only
// nsnet's guard rule, which `nft flush ruleset` removes, keeps sandboxes from
// the host's 127.0.0.1 services. nsnet needs it nowhere and leaves it alone.
func (e *Engine) warnLocalnet() {
	if v, err := e.k.sys.Get(sysctl.RouteLocalnet("all")); err == nil && v != "0" {
		e.opts.Warn("net.ipv4.conf.all.route_localnet is " + v + ": every interface accepts packets for 127.0.0.0/8 from outside, " +
			"so only nsnet's guard rule keeps sandboxes from the host's 127.0.0.1 services, and nft flush ruleset removes it; " +
			"nsnet does not need it: set it to 0 (sysctl -w net.ipv4.conf.all.route_localnet=0)")
	}
}

// checkBridgeFiltering refuses a network without inter-sandbox traffic (icc
// false) when the traffic between its bridge's ports would not pass
// nftables, for IPv4 or, on a dual-stack network, IPv6: its rules could not
// stop it. nsnet does not turn bridge filtering on itself: it would send
// every other bridge's traffic of the host through the host's firewall too.
func (e *Engine) checkBridgeFiltering(n *Network) error {
	if !n.NoICC {
		return nil
	}
	if why, key := e.bridgeFilteringOff(n); why != "" {
		return fmt.Errorf("network %s: -o %s=false needs bridged traffic to pass nftables, but %s: "+
			"load br_netfilter (modprobe br_netfilter) and turn it on (sysctl -w %s=1)", n.Name, OptICC, why, key)
	}
	return nil
}

// bridgeFilteringOff says why traffic between n's bridge's ports does not
// pass nftables in the host namespace ("" when it does), and the sysctl
// that would make it: bridge-nf-call-iptables, and on a dual-stack network
// bridge-nf-call-ip6tables too.
func (e *Engine) bridgeFilteringOff(n *Network) (why, key string) {
	keys := []string{sysctl.BridgeNFCallIPTables}
	if n.IPv6() {
		keys = append(keys, sysctl.BridgeNFCallIP6Tables)
	}
	for _, k := range keys {
		dotted := strings.ReplaceAll(k, "/", ".")
		v, err := e.k.sys.Get(k)
		switch {
		case err != nil:
			return fmt.Sprintf("%s cannot be read (%v)", dotted, err), dotted
		case v != "1":
			return dotted + " is " + v, dotted
		}
	}
	return "", ""
}

// warnBridgeFiltering tells the user when a network without inter-sandbox
// traffic has lost bridge filtering since it was made.
func (e *Engine) warnBridgeFiltering(nets []Network) {
	for i := range nets {
		n := &nets[i]
		if !n.NoICC {
			continue
		}
		if why, key := e.bridgeFilteringOff(n); why != "" {
			e.opts.Warn(fmt.Sprintf("network %s has -o %s=false, but %s, so its sandboxes reach each other: "+
				"load br_netfilter (modprobe br_netfilter) and turn it on (sysctl -w %s=1)", n.Name, OptICC, why, key))
		}
	}
}
