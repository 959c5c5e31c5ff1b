// Package sysctl reads and writes the kernel's per-namespace network settings
// (/proc/sys/net/...), which nsnet owns for its bridges and sandboxes:
// IPv4 and IPv6 forwarding, route_localnet, IPv6 on interfaces of IPv4-only
// networks, and duplicate address detection on those of dual-stack ones.
//
// /proc/sys/net follows the network namespace of the thread that opens the
// file, so Get and Set act on the namespace nsnet runs in, and SetIn enters
// another namespace on a locked thread (netns.DoIn) to write there.
//
// Invariants: only keys under /proc/sys/net are touched; a key that does not
// exist because the kernel has no IPv6 is reported as ErrNoIPv6.
package sysctl

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nsnet/nsnet/internal/netns"
)

// ErrNoIPv6 is returned for IPv6 keys on a kernel booted without IPv6: there
// is nothing to disable.
var ErrNoIPv6 = errors.New("the kernel has no IPv6")

// IPv4Forward is net.ipv4.ip_forward.
const IPv4Forward = "net/ipv4/ip_forward"

// IPv6Forward is net.ipv6.conf.all.forwarding.
const IPv6Forward = "net/ipv6/conf/all/forwarding"

// AcceptDAD is net.ipv6.conf.DEV.accept_dad.
func AcceptDAD(dev string) string { return "net/ipv6/conf/" + dev + "/accept_dad" }

// BridgeNFCallIPTables is net.bridge.bridge-nf-call-iptables: whether
// traffic between ports of a bridge passes the IPv4 netfilter hooks (module
// br_netfilter). nsnet only reads it.
const BridgeNFCallIPTables = "net/bridge/bridge-nf-call-iptables"

// BridgeNFCallIP6Tables is net.bridge.bridge-nf-call-ip6tables, the same
// for IPv6. nsnet only reads it.
const BridgeNFCallIP6Tables = "net/bridge/bridge-nf-call-ip6tables"

// RouteLocalnet is net.ipv4.conf.DEV.route_localnet.
func RouteLocalnet(dev string) string { return "net/ipv4/conf/" + dev + "/route_localnet" }

// DisableIPv6 is net.ipv6.conf.DEV.disable_ipv6.
func DisableIPv6(dev string) string { return "net/ipv6/conf/" + dev + "/disable_ipv6" }

func path(key string) string { return "/proc/sys/" + key }

// Get returns the value of key in the current namespace, without spaces.
func Get(key string) (string, error) {
	raw, err := os.ReadFile(path(key))
	if err != nil {
		return "", wrap("read", key, err)
	}
	return strings.TrimSpace(string(raw)), nil
}

// Set writes val to key in the current namespace unless it has that value
// already, and reports whether it changed.
func Set(key, val string) (changed bool, err error) {
	cur, err := Get(key)
	if err != nil {
		return false, err
	}
	if cur == val {
		return false, nil
	}
	if err := os.WriteFile(path(key), []byte(val+"\n"), 0o644); err != nil {
		return false, wrap("write", key, err)
	}
	return true, nil
}

// SetIn writes val to key in the network namespace ns.
func SetIn(ns *os.File, key, val string) error {
	return netns.DoIn(ns, func() error {
		_, err := Set(key, val)
		return err
	})
}

// GetIn returns the value of key in the network namespace ns.
func GetIn(ns *os.File, key string) (string, error) {
	var v string
	err := netns.DoIn(ns, func() (err error) {
		v, err = Get(key)
		return err
	})
	return v, err
}

func wrap(op, key string, err error) error {
	if errors.Is(err, os.ErrNotExist) && strings.HasPrefix(key, "net/ipv6/") {
		if _, serr := os.Stat("/proc/sys/net/ipv6"); serr != nil {
			return ErrNoIPv6
		}
	}
	return fmt.Errorf("%s %s (sysctl %s): %w", op, path(key), strings.ReplaceAll(key, "/", "."), err)
}
