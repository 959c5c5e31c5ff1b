package testenv

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// IPv6 addresses of a world after EnableIPv6 (documentation prefix
// 2001:db8::/32 only).
const (
	RouterIP6 = "2001:db8:1::1"  // wan0 in the Inet namespace, /64
	UplinkIP6 = "2001:db8:1::2"  // the host's eth0, /64, default route via RouterIP6
	PublicIP6 = "2001:db8:ff::7" // a "public" server address on lo in the Inet namespace (/128)
)

// EnableIPv6 gives the world IPv6, for tests of dual-stack networks (a world
// has none unless a test asks): wan0 and eth0 get RouterIP6 and UplinkIP6
// without duplicate address detection, the Inet namespace PublicIP6 on lo,
// and the host a default route via RouterIP6. The Inet namespace has no route
// to any sandbox subnet, so a reply to a sandbox's IPv6 address only comes
// back if the host masquerades (NAT66). IPv6 forwarding is left off in both
// namespaces, as a new namespace has it. It returns once the uplink's
// link-local addresses are out of duplicate address detection.
func (w *World) EnableIPv6(t testing.TB) {
	t.Helper()
	h, i := w.Host, w.Inet
	var errs []error
	for _, ns := range []string{h, i} {
		errs = append(errs, writeSysctl(ns, "net/ipv6/conf/all/accept_dad", "0"),
			writeSysctl(ns, "net/ipv6/conf/default/accept_dad", "0"))
	}
	for _, args := range [][]string{
		{"-n", i, "addr", "add", RouterIP6 + "/64", "dev", "wan0", "nodad"},
		{"-n", i, "addr", "add", PublicIP6 + "/128", "dev", "lo"},
		{"-n", h, "addr", "add", UplinkIP6 + "/64", "dev", "eth0", "nodad"},
		{"-n", h, "-6", "route", "add", "default", "via", RouterIP6},
	} {
		_, err := ip(args...)
		errs = append(errs, err)
	}
	errs = append(errs, waitSettled(h, "eth0"), waitSettled(i, "wan0"))
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("testenv: IPv6 for world %s: %v", w.Prefix, err)
	}
}

// waitSettled waits (5 s at most) until dev in ns has no tentative IPv6
// address: the link-local addresses the uplink got when it came up, before
// the world had IPv6, go through duplicate address detection, and until
// they are done the two ends take seconds to find each other.
func waitSettled(ns, dev string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var links []Link
		err := ipJSON(ns, &links, "addr", "show", "dev", dev)
		if err == nil && !tentative(links) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s in %s still has tentative IPv6 addresses: %v %+v", dev, ns, err, links)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tentative(links []Link) bool {
	for _, l := range links {
		for _, a := range l.AddrInfo {
			if a.Tentative {
				return true
			}
		}
	}
	return false
}
