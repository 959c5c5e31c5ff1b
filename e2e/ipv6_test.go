package e2e

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/nsnet/nsnet/internal/testenv"
)

// v6addr is "[a]:port".
func v6addr(a, port string) string { return "[" + a + "]:" + port }

// ipv6Addrs are the global IPv6 addresses of dev in ns, as ip -j shows them,
// with "tentative" appended to one that is still in duplicate address
// detection.
func ipv6Addrs(t *testing.T, ns, dev string) []string {
	t.Helper()
	var out []string
	for _, l := range testenv.Addrs(t, ns) {
		if l.IfName != dev {
			continue
		}
		for _, a := range l.AddrInfo {
			if a.Family != "inet6" || strings.HasPrefix(a.Local, "fe80:") {
				continue
			}
			s := a.Local
			if a.Tentative {
				s += " tentative"
			}
			out = append(out, s)
		}
	}
	return out
}

// defaultGateway6 is the gateway of ns's IPv6 default route, or "".
func defaultGateway6(t *testing.T, ns string) string {
	t.Helper()
	out, err := testenv.RunIn(ns, "ip", "-6", "route", "show", "default")
	if err != nil {
		t.Fatalf("ip -6 route in %s: %v", ns, err)
	}
	f := strings.Fields(out)
	for i := range f {
		if f[i] == "via" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// TestIPv6DualStack makes a dual-stack network with a unique local subnet
// and checks, with ip, ping and real TCP servers: each sandbox has its IPv6
// address at once (not tentative) and a default route via the IPv6 gateway
// on the bridge; the sandboxes reach each other over IPv6; a sandbox
// reaches the internet's IPv6 server, which sees the host's address (NAT66);
// forwarding is on for IPv6. A sandbox of an IPv4-only network beside it
// keeps IPv6 off (the control that the IPv6 seen is the network's doing).
// After removal, nothing is left.
func TestIPv6DualStack(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.EnableIPv6(t)
	a, b, old := w.Name("a"), w.Name("b"), w.Name("old")
	w.MustNsnet(t, "network", "create", "--ipv6", "--subnet", "10.60.0.0/24", "--subnet", "fd00:60::/64", "n6")
	w.MustNsnet(t, "network", "create", "--subnet", "10.61.0.0/24", "n4")
	w.MustNsnet(t, "sandbox", "create", "--network", "n6", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "n6", "--ip6", "fd00:60::99", b)
	w.MustNsnet(t, "sandbox", "create", "--network", "n4", old)

	n := inspectNetwork(t, w, "n6")
	if n.Subnet6 != "fd00:60::/64" || n.Gateway6 != "fd00:60::1" {
		t.Errorf("inspect n6: subnet6 %q gateway6 %q, want fd00:60::/64 and fd00:60::1", n.Subnet6, n.Gateway6)
	}
	if got := ipv6Addrs(t, w.Host, n.Bridge); !contains(got, "fd00:60::1") {
		t.Errorf("bridge %s IPv6 addresses %v, want fd00:60::1", n.Bridge, got)
	}
	if got := ipv6Addrs(t, a, "eth0"); len(got) != 1 || got[0] != "fd00:60::2" {
		t.Errorf("%s eth0 IPv6 addresses %v, want fd00:60::2 (not tentative)", a, got)
	}
	if got := ipv6Addrs(t, b, "eth0"); len(got) != 1 || got[0] != "fd00:60::99" {
		t.Errorf("%s eth0 IPv6 addresses %v, want the static fd00:60::99 (not tentative)", b, got)
	}
	if ep := inspectSandbox(t, w, a).Networks["n6"]; ep.Address6 != "fd00:60::2/64" || ep.Gateway6 != "fd00:60::1" {
		t.Errorf("inspect %s: address6 %q gateway6 %q", a, ep.Address6, ep.Gateway6)
	}
	for _, sb := range []string{a, b} {
		if gw := defaultGateway6(t, sb); gw != "fd00:60::1" {
			t.Errorf("%s: IPv6 default route via %q, want fd00:60::1", sb, gw)
		}
	}
	if got := testenv.Sysctl(t, w.Host, "net.ipv6.conf.all.forwarding"); got != "1" {
		t.Errorf("host net.ipv6.conf.all.forwarding = %s, want 1", got)
	}
	if got := testenv.Sysctl(t, old, "net.ipv6.conf.eth0.disable_ipv6"); got != "1" {
		t.Errorf("%s on the IPv4-only network: eth0 disable_ipv6 = %s, want 1", old, got)
	}
	if got := testenv.Sysctl(t, a, "net.ipv6.conf.eth0.disable_ipv6"); got != "0" {
		t.Errorf("%s on the dual-stack network: eth0 disable_ipv6 = %s, want 0", a, got)
	}

	testenv.StartTCPEcho(t, b, v6addr("::", "80"))
	srv := testenv.StartTCPEcho(t, w.Inet, v6addr(testenv.PublicIP6, "80"))
	if err := testenv.Ping(a, "fd00:60::99"); err != nil {
		t.Errorf("ping %s -> fd00:60::99: %v", a, err)
	}
	if got := reach(t, a, v6addr("fd00:60::99", "80"), true, "sandbox to sandbox over IPv6"); got != "" && !strings.Contains(got, "fd00:60::2") {
		t.Errorf("the server in %s saw %q, want fd00:60::2", b, got)
	}
	reach(t, a, "10.60.0.3:80", true, "sandbox to sandbox over IPv4, on the same network")
	if got := reach(t, a, v6addr(testenv.PublicIP6, "80"), true, "sandbox to the internet over IPv6"); got != "" && !strings.Contains(got, testenv.UplinkIP6) {
		t.Errorf("the internet's server saw %q (all: %v), want the host's %s (NAT66)", got, srv.Seen(), testenv.UplinkIP6)
	}
	reach(t, old, v6addr(testenv.PublicIP6, "80"), false, "a sandbox of the IPv4-only network over IPv6")

	w.MustNsnet(t, "sandbox", "rm", a, b, old)
	w.MustNsnet(t, "network", "rm", "n6", "n4")
	w.AssertClean(t)
}

// TestIPv6Isolation: over IPv6 as over IPv4, a sandbox reaches no sandbox of
// another network, and a neighbour on the uplink that routes a dual-stack
// subnet via the host reaches no sandbox in it. Each is seen to work without
// nsnet's forward rules (the control), and to fail again after firewall
// reload.
func TestIPv6Isolation(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.EnableIPv6(t)
	a, b, a2 := w.Name("a"), w.Name("b"), w.Name("a2")
	w.MustNsnet(t, "network", "create", "--ipv6", "--subnet", "fd00:61::/64", "n1")
	w.MustNsnet(t, "network", "create", "--ipv6", "--subnet", "fd00:62::/64", "n2")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip6", "fd00:61::10", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip6", "fd00:61::11", a2)
	w.MustNsnet(t, "sandbox", "create", "--network", "n2", "--ip6", "fd00:62::10", b)
	testenv.StartTCPEcho(t, a, v6addr("::", "80"))
	testenv.StartTCPEcho(t, b, v6addr("::", "80"))
	mustRun(t, w.Inet, "ip", "-6", "route", "add", "fd00:61::/64", "via", testenv.UplinkIP6)

	reach(t, a2, v6addr("fd00:61::10", "80"), true, "control: same network over IPv6")
	reach(t, a, v6addr("fd00:62::10", "80"), false, "another network over IPv6")
	reach(t, b, v6addr("fd00:61::10", "80"), false, "another network over IPv6, the other way")
	reach(t, w.Inet, v6addr("fd00:61::10", "80"), false, "the neighbour, routed straight to the sandbox over IPv6")

	mustRun(t, w.Host, "nft", "flush", "chain", "inet", w.Table(), "forward")
	reach(t, a, v6addr("fd00:62::10", "80"), true, "control: another network without the forward rules")
	reach(t, w.Inet, v6addr("fd00:61::10", "80"), true, "control: the neighbour without the forward rules")
	w.MustNsnet(t, "firewall", "reload")
	reach(t, a, v6addr("fd00:62::10", "80"), false, "another network after firewall reload")
	reach(t, w.Inet, v6addr("fd00:61::10", "80"), false, "the neighbour after firewall reload")

	w.MustNsnet(t, "sandbox", "rm", a, a2, b)
	w.MustNsnet(t, "network", "rm", "n1", "n2")
	w.AssertClean(t)
}

// TestIPv6Internal gives a sandbox of an internal dual-stack network an IPv6
// default route via its gateway, as a sandbox that wants out would: over
// IPv6 it reaches the host only at its gateway (and its link-local address
// only with ICMPv6), and neither the internet nor a sandbox of another
// network nor the host at its uplink address. Without
// nsnet's rules (the control) all of them answer. An internal network does
// not turn IPv6 forwarding on.
func TestIPv6Internal(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.EnableIPv6(t)
	in, out := w.Name("in"), w.Name("out")
	w.MustNsnet(t, "network", "create", "--ipv6", "--internal", "--subnet", "fd00:63::/64", "inside")
	if got := testenv.Sysctl(t, w.Host, "net.ipv6.conf.all.forwarding"); got != "0" {
		t.Errorf("an internal network turned IPv6 forwarding on (%s)", got)
	}
	mustRun(t, w.Host, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1") // as another network would
	w.MustNsnet(t, "network", "create", "--ipv6", "--subnet", "fd00:64::/64", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "inside", "--ip6", "fd00:63::10", in)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip6", "fd00:64::10", out)
	if gw := defaultGateway6(t, in); gw != "" {
		t.Errorf("a sandbox of an internal network has an IPv6 default route via %s", gw)
	}
	mustRun(t, in, "ip", "-6", "route", "add", "default", "via", "fd00:63::1")
	testenv.StartTCPEcho(t, out, v6addr("::", "80"))
	testenv.StartTCPEcho(t, w.Host, v6addr("::", "2222")) // a host service
	testenv.StartTCPEcho(t, w.Inet, v6addr(testenv.PublicIP6, "80"))

	reach(t, in, v6addr("fd00:63::1", "2222"), true, "internal network, host service at its own IPv6 gateway")
	reach(t, out, v6addr(testenv.PublicIP6, "80"), true, "control: ordinary network to the internet over IPv6")
	reach(t, in, v6addr(testenv.UplinkIP6, "2222"), false, "internal network, host service at the uplink over IPv6")
	reach(t, in, v6addr(testenv.PublicIP6, "80"), false, "internal network to the internet over IPv6")
	reach(t, in, v6addr("fd00:64::10", "80"), false, "internal network to another network over IPv6")
	// The zone by index: Go caches interface names process-wide, and eth0
	// has another index in each namespace of the test process.
	linkLocal := bridgeLinkLocal(t, w, "inside") + "%" + strconv.Itoa(mustLink(t, in, "eth0").IfIndex)
	reach(t, in, v6addr(linkLocal, "2222"), false, "internal network, host service at the bridge's link-local address")
	if err := testenv.Ping(in, linkLocal); err != nil {
		t.Errorf("internal network: ping (ICMPv6) to the bridge's link-local address: %v", err)
	}

	mustRun(t, w.Host, "nft", "flush", "chain", "inet", w.Table(), "forward")
	mustRun(t, w.Host, "nft", "flush", "chain", "inet", w.Table(), "input")
	reach(t, in, v6addr(linkLocal, "2222"), true, "control: without the rules, host service at the bridge's link-local address")
	reach(t, in, v6addr(testenv.UplinkIP6, "2222"), true, "control: without the rules, host service at the uplink")
	reach(t, in, v6addr("fd00:64::10", "80"), true, "control: without the rules, another network")
	w.MustNsnet(t, "firewall", "reload")
	reach(t, in, v6addr(testenv.UplinkIP6, "2222"), false, "after firewall reload, host service at the uplink")
	reach(t, in, v6addr("fd00:64::10", "80"), false, "after firewall reload, another network")
	reach(t, in, v6addr(linkLocal, "2222"), false, "after firewall reload, the bridge's link-local address")

	w.MustNsnet(t, "sandbox", "rm", in, out)
	w.MustNsnet(t, "network", "rm", "inside", "n1")
	w.AssertClean(t)
}

// bridgeLinkLocal is the link-local address of network n's bridge.
func bridgeLinkLocal(t *testing.T, w *testenv.World, n string) string {
	t.Helper()
	br := inspectNetwork(t, w, n).Bridge
	for _, l := range testenv.Addrs(t, w.Host) {
		for _, a := range l.AddrInfo {
			if l.IfName == br && strings.HasPrefix(a.Local, "fe80:") {
				return a.Local
			}
		}
	}
	t.Fatalf("bridge %s has no link-local address", br)
	return ""
}

// TestIPv6Routed: with masquerade off, a sandbox of a dual-stack network
// whose subnet the internet routes to the host reaches the internet's server
// with its own address (and with the host's on a network with masquerade,
// the control); the neighbour still reaches nothing in it unasked.
func TestIPv6Routed(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.EnableIPv6(t)
	r, m := w.Name("r"), w.Name("m")
	w.MustNsnet(t, "network", "create", "--ipv6", "--subnet", "10.65.0.0/24", "--subnet", "2001:db8:65::/64",
		"-o", "com.docker.network.bridge.enable_ip_masquerade=false", "routed")
	w.MustNsnet(t, "network", "create", "--ipv6", "--subnet", "fd00:66::/64", "masq")
	w.MustNsnet(t, "sandbox", "create", "--network", "routed", "--ip6", "2001:db8:65::10", r)
	w.MustNsnet(t, "sandbox", "create", "--network", "masq", m)
	mustRun(t, w.Inet, "ip", "-6", "route", "add", "2001:db8:65::/64", "via", testenv.UplinkIP6)
	testenv.StartTCPEcho(t, w.Inet, v6addr(testenv.PublicIP6, "80"))
	testenv.StartTCPEcho(t, r, v6addr("::", "80"))

	if got := reach(t, r, v6addr(testenv.PublicIP6, "80"), true, "routed network to the internet"); got != "" && !strings.Contains(got, "2001:db8:65::10") {
		t.Errorf("the internet saw %q from the routed network, want the sandbox's own 2001:db8:65::10", got)
	}
	if got := reach(t, m, v6addr(testenv.PublicIP6, "80"), true, "control: masqueraded network to the internet"); got != "" && !strings.Contains(got, testenv.UplinkIP6) {
		t.Errorf("the internet saw %q from the masqueraded network, want the host's %s", got, testenv.UplinkIP6)
	}
	reach(t, w.Inet, v6addr("2001:db8:65::10", "80"), false, "the internet to a routed sandbox, unpublished")
	if n := inspectNetwork(t, w, "routed"); n.Masquerade {
		t.Errorf("inspect routed: masquerade true")
	}

	w.MustNsnet(t, "sandbox", "rm", r, m)
	w.MustNsnet(t, "network", "rm", "routed", "masq")
	w.AssertClean(t)
}

// TestIPv6PublishedPorts publishes ports of a sandbox on a dual-stack
// network and checks, with real servers and clients, where each answers:
// -p 8080:80 on the host's IPv4 and IPv6 addresses, from the internet, from
// the host (also at ::1, through the resident's dual-stack socket) and from
// a sandbox of the same network (hairpin); -p [::]:8081:81 only over IPv6
// (the IPv4 address is the control that the test can see a refusal); -p
// [2001:db8:1::2]:8082:82 on that address. The host ports are held over
// IPv6 too, port ls shows them as Docker does, and an IPv6 host address is
// refused for a sandbox whose ports go to an IPv4-only network.
func TestIPv6PublishedPorts(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.EnableIPv6(t)
	web, peer, old := w.Name("web"), w.Name("peer"), w.Name("old")
	up, up6 := testenv.UplinkIP, testenv.UplinkIP6
	w.MustNsnet(t, "network", "create", "--ipv6", "--subnet", "10.70.0.0/24", "--subnet", "fd00:70::/64", "n1")
	w.MustNsnet(t, "network", "create", "--subnet", "10.71.0.0/24", "n4")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip6", "fd00:70::10",
		"-p", "8080:80", "-p", "[::]:8081:81", "-p", "["+up6+"]:8082:82", web)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", peer)
	for _, port := range []string{"80", "81", "82"} {
		testenv.StartTCPEcho(t, web, v6addr("::", port))
	}

	if got := reach(t, w.Inet, v6addr(up6, "8080"), true, "-p 8080:80 from the internet over IPv6"); got != "" && !strings.Contains(got, testenv.RouterIP6) {
		t.Errorf("the sandbox saw %q, want the internet's %s (no source translation)", got, testenv.RouterIP6)
	}
	reach(t, w.Inet, up+":8080", true, "-p 8080:80 from the internet over IPv4")
	reach(t, w.Host, v6addr(up6, "8080"), true, "-p 8080:80 from the host at its IPv6 address")
	reach(t, w.Host, v6addr("::1", "8080"), true, "-p 8080:80 from the host at ::1 (the resident's socket)")
	if got := reach(t, peer, v6addr(up6, "8080"), true, "-p 8080:80 by hairpin over IPv6"); got != "" && !strings.Contains(got, "fd00:70::1") {
		t.Errorf("hairpin: the sandbox saw %q, want the gateway fd00:70::1 (masqueraded)", got)
	}
	reach(t, w.Inet, v6addr(up6, "8081"), true, "-p [::]:8081:81 over IPv6")
	reach(t, w.Inet, up+":8081", false, "-p [::]:8081:81 over IPv4")
	reach(t, w.Inet, v6addr(up6, "8082"), true, "-p [2001:db8:1::2]:8082:82 at that address")
	reach(t, w.Inet, up+":8082", false, "-p [2001:db8:1::2]:8082:82 over IPv4")

	canListen(t, w, "tcp6", "[::]:8080", false)
	canListen(t, w, "tcp4", "0.0.0.0:8080", false)
	canListen(t, w, "tcp6", "[::]:8081", false)
	canListen(t, w, "tcp6", v6addr(up6, "8082"), false)
	canListen(t, w, "tcp6", "[::]:8083", true)

	out := w.MustNsnet(t, "port", "ls")
	for _, want := range []string{"0.0.0.0:8080", "[::]:8081", "[" + up6 + "]:8082"} {
		if !strings.Contains(out, want) {
			t.Errorf("port ls lacks %s:\n%s", want, out)
		}
	}
	// port ls -q, and completion for port rm, give each mapping as -p and
	// port rm take it (an IPv6 host address in brackets); port rm takes it.
	specs := []string{"0.0.0.0:8080:80/tcp", "[::]:8081:81/tcp", "[" + up6 + "]:8082:82/tcp"}
	quiet := w.MustNsnet(t, "port", "ls", "-q", web)
	completion := w.MustNsnet(t, "__complete", "port", "rm", web, "")
	for _, spec := range specs {
		if !strings.Contains(quiet, spec+"\n") || !strings.Contains(completion, spec+"\n") {
			t.Errorf("port ls -q or completion lacks %s:\n%s\n%s", spec, quiet, completion)
		}
	}
	w.MustNsnet(t, "port", "rm", web, specs[2])
	reach(t, w.Inet, v6addr(up6, "8082"), false, "-p [2001:db8:1::2]:8082:82 after port rm of port ls -q's line")
	w.MustNsnet(t, "port", "add", web, specs[2])
	reach(t, w.Inet, v6addr(up6, "8082"), true, "-p [2001:db8:1::2]:8082:82 after port add of port ls -q's line")

	r := w.Nsnet("sandbox", "create", "--network", "n4", "-p", "[::]:8090:80", old)
	if r.Code != 1 || !strings.Contains(r.Stderr, "IPv4 only") {
		t.Errorf("-p [::]:8090:80 on an IPv4-only network: exit %d, stderr %s", r.Code, r.Stderr)
	}

	w.MustNsnet(t, "sandbox", "rm", web, peer)
	canListen(t, w, "tcp6", "[::]:8080", true)
	w.MustNsnet(t, "network", "rm", "n1", "n4")
	w.AssertClean(t)
}

// TestIPv6Names: the resolver of a dual-stack network answers AAAA with a
// sandbox's IPv6 address and A with its IPv4 one (dig in the sandbox, at the
// gateway), and PTR for the IPv6 address; a sandbox that joins by network
// connect (with --ip6) is found over IPv6 at once (and was not before: the
// control), and is gone after disconnect.
func TestIPv6Names(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.EnableIPv6(t)
	startUpstreamDNS(t, w, testenv.PublicIP, nil)
	a, b, c := w.Name("a"), w.Name("b"), w.Name("c")
	w.MustNsnet(t, "network", "create", "--ipv6", "--subnet", "10.72.0.0/24", "--subnet", "fd00:72::/64", "n6")
	w.MustNsnet(t, "network", "create", "--subnet", "10.73.0.0/24", "n4")
	w.MustNsnet(t, "sandbox", "create", "--network", "n6", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "n6", "--ip", "10.72.0.20", "--ip6", "fd00:72::20", "--alias", "web", b)
	w.MustNsnet(t, "sandbox", "create", "--network", "n4", c)

	expectAnswer(t, "AAAA of b", dig(t, a, "10.72.0.1", b, "AAAA"), "NOERROR", "fd00:72::20")
	expectAnswer(t, "AAAA of b's alias", dig(t, a, "10.72.0.1", "web", "AAAA"), "NOERROR", "fd00:72::20")
	expectAnswer(t, "A of b (the control)", dig(t, a, "10.72.0.1", b, "A"), "NOERROR", "10.72.0.20")
	rev, _ := dns.ReverseAddr("fd00:72::20")
	expectAnswer(t, "PTR of b's IPv6 address", dig(t, a, "10.72.0.1", rev, "PTR"), "NOERROR", b+".")

	expectAnswer(t, "AAAA of c before connect", dig(t, a, "10.72.0.1", c, "AAAA"), "NXDOMAIN")
	w.MustNsnet(t, "network", "connect", "--ip6", "fd00:72::30", "n6", c)
	expectAnswer(t, "AAAA of c after connect", dig(t, a, "10.72.0.1", c, "AAAA"), "NOERROR", "fd00:72::30")
	if got := ipv6Addrs(t, c, "eth1"); len(got) != 1 || got[0] != "fd00:72::30" {
		t.Errorf("%s eth1 after connect: IPv6 addresses %v, want fd00:72::30", c, got)
	}
	if got := testenv.Sysctl(t, c, "net.ipv6.conf.eth0.disable_ipv6"); got != "1" {
		t.Errorf("%s eth0 on the IPv4-only network: disable_ipv6 %s, want 1", c, got)
	}
	w.MustNsnet(t, "network", "disconnect", "n6", c)
	expectAnswer(t, "AAAA of c after disconnect", dig(t, a, "10.72.0.1", c, "AAAA"), "NXDOMAIN")

	w.MustNsnet(t, "sandbox", "rm", a, b, c)
	w.MustNsnet(t, "network", "rm", "n6", "n4")
	w.AssertClean(t)
}

// TestIPv6GCRepairsDrift changes a dual-stack network's kernel state behind
// nsnet's back (the bridge's IPv6 gateway address, IPv6 forwarding, a
// sandbox's IPv6 address, IPv6 turned off on another's interface), sees
// that it breaks IPv6 (the control), and that gc --dry-run names each
// change, gc repairs them, and IPv6 works again.
func TestIPv6GCRepairsDrift(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.EnableIPv6(t)
	a, b := w.Name("a"), w.Name("b")
	w.MustNsnet(t, "network", "create", "--ipv6", "--subnet", "10.74.0.0/24", "--subnet", "fd00:74::/64", "--bridge", "br-d6", "n6")
	w.MustNsnet(t, "sandbox", "create", "--network", "n6", "--ip6", "fd00:74::10", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "n6", "--ip6", "fd00:74::11", b)
	testenv.StartTCPEcho(t, w.Inet, v6addr(testenv.PublicIP6, "80"))
	gcClean(t, w, "before any drift")

	for _, cmd := range [][]string{
		{w.Host, "ip", "addr", "del", "fd00:74::1/64", "dev", "br-d6"},
		{w.Host, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=0"},
		{a, "ip", "addr", "del", "fd00:74::10/64", "dev", "eth0"},
		{b, "sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1"},
	} {
		mustRun(t, cmd[0], cmd[1], cmd[2:]...)
	}
	gcPending(t, w, "repair bridge br-d6 of network n6", "lacks address fd00:74::1/64",
		"turn IPv6 forwarding back on", "eth0 in the sandbox lacks address fd00:74::10/64",
		"eth0 in the sandbox has disable_ipv6 1, not 0")
	if err := testenv.Ping(b, "fd00:74::10"); err == nil {
		t.Errorf("the drift did not break IPv6: the test would not see a repair")
	}

	w.MustNsnet(t, "gc")
	gcClean(t, w, "after gc")
	if err := eventually(func() error { return testenv.Ping(b, "fd00:74::10") }); err != nil {
		t.Errorf("after gc, b cannot reach a over IPv6: %v", err)
	}
	reach(t, a, v6addr(testenv.PublicIP6, "80"), true, "after gc, a to the internet over IPv6")
	if gw := defaultGateway6(t, b); gw != "fd00:74::1" {
		t.Errorf("after gc, b's IPv6 default route is via %q", gw)
	}

	w.MustNsnet(t, "sandbox", "rm", a, b)
	w.MustNsnet(t, "network", "rm", "n6")
	w.AssertClean(t)
}

// TestIPv6DefaultPool: without an IPv6 --subnet, networks get /64s of the
// host's unique local /48, one after the other; --default-address-pool
// with an IPv6 base is used instead when given.
func TestIPv6DefaultPool(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.MustNsnet(t, "network", "create", "--ipv6", "p1")
	w.MustNsnet(t, "network", "create", "--ipv6", "p2")
	w.MustNsnet(t, "--default-address-pool", "base=2001:db8:a::/48,size=64", "network", "create", "--ipv6", "p3")
	p1, p2, p3 := inspectNetwork(t, w, "p1"), inspectNetwork(t, w, "p2"), inspectNetwork(t, w, "p3")
	a1, err1 := netip.ParsePrefix(p1.Subnet6)
	a2, err2 := netip.ParsePrefix(p2.Subnet6)
	ula := netip.MustParsePrefix("fd00::/8")
	if err1 != nil || err2 != nil || a1.Bits() != 64 || a2.Bits() != 64 || !ula.Contains(a1.Addr()) || a1 == a2 ||
		netip.PrefixFrom(a1.Addr(), 48).Masked() != netip.PrefixFrom(a2.Addr(), 48).Masked() {
		t.Errorf("default IPv6 subnets %q and %q: want two /64s of one unique local /48", p1.Subnet6, p2.Subnet6)
	}
	if p1.Gateway6 != a1.Addr().Next().String() {
		t.Errorf("p1's IPv6 gateway %s, want the subnet's first address", p1.Gateway6)
	}
	if p3.Subnet6 != "2001:db8:a::/64" || p3.Subnet == "" {
		t.Errorf("with an IPv6 pool: subnet6 %q (want 2001:db8:a::/64), subnet %q (from the IPv4 defaults)", p3.Subnet6, p3.Subnet)
	}
	if got := ipv6Addrs(t, w.Host, p3.Bridge); len(got) != 1 || got[0] != "2001:db8:a::1" {
		t.Errorf("bridge of p3: IPv6 addresses %v, want 2001:db8:a::1 (not tentative)", got)
	}
	w.MustNsnet(t, "network", "rm", "p1", "p2", "p3")
	w.AssertClean(t)
}

// TestIPv6CNI attaches two containers through libcni to a network made from
// a conflist with ipv6 and subnet6: each result gives the container's IPv6
// address and default route, the containers have them (usable at once) and
// reach each other and the internet over IPv6 (masqueraded), CHECK passes,
// and DEL leaves nothing.
func TestIPv6CNI(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.EnableIPv6(t)
	r := newRuntime(t, w)
	list := r.conflist(t, "1.0.0", "podnet6", map[string]any{"network": "cnet6", "subnet": "10.75.0.0/24", "ipv6": true, "subnet6": "fd00:75::/64"})
	idA, nsA := r.container(t, "a")
	idB, nsB := r.container(t, "b")
	rtA, rtB := r.rt(idA, nsA, "eth0", nil, nil), r.rt(idB, nsB, "eth0", nil, nil)
	resA := r.mustAdd(t, list, rtA)
	r.mustAdd(t, list, rtB)

	var ips, routes []string
	for _, ip := range resA.IPs {
		ips = append(ips, ip.Address.String()+" via "+ip.Gateway.String())
	}
	for _, rt := range resA.Routes {
		routes = append(routes, rt.Dst.String()+" via "+rt.GW.String())
	}
	if want := []string{"10.75.0.2/24 via 10.75.0.1", "fd00:75::2/64 via fd00:75::1"}; strings.Join(ips, ", ") != strings.Join(want, ", ") {
		t.Errorf("result of a: ips %v, want %v", ips, want)
	}
	if want := []string{"0.0.0.0/0 via 10.75.0.1", "::/0 via fd00:75::1"}; strings.Join(routes, ", ") != strings.Join(want, ", ") {
		t.Errorf("result of a: routes %v, want %v", routes, want)
	}
	if got := ipv6Addrs(t, nsA, "eth0"); len(got) != 1 || got[0] != "fd00:75::2" {
		t.Errorf("a's eth0 IPv6 addresses %v, want fd00:75::2 (not tentative)", got)
	}
	testenv.StartTCPEcho(t, nsB, v6addr("::", "80"))
	testenv.StartTCPEcho(t, w.Inet, v6addr(testenv.PublicIP6, "80"))
	reach(t, nsA, v6addr("fd00:75::3", "80"), true, "container to container over IPv6")
	if got := reach(t, nsA, v6addr(testenv.PublicIP6, "80"), true, "container to the internet over IPv6"); got != "" && !strings.Contains(got, testenv.UplinkIP6) {
		t.Errorf("the internet saw %q, want the host's %s", got, testenv.UplinkIP6)
	}
	if err := r.check(list, rtA); err != nil {
		t.Errorf("CHECK of a: %v", err)
	}

	r.mustDel(t, list, rtA)
	r.mustDel(t, list, rtB)
	r.removeContainer(t, "a")
	r.removeContainer(t, "b")
	w.MustNsnet(t, "network", "rm", "cnet6")
	w.AssertClean(t)
}

// TestICCOffIPv6: on a dual-stack network made with enable_icc=false two
// sandboxes reach each other over neither IPv4 nor IPv6, while they reach
// the IPv6 gateway and the internet over IPv6; on a dual-stack network
// without the option they reach each other over IPv6 (the control). With
// IPv6 bridge filtering off (bridge-nf-call-ip6tables=0, IPv4's left on)
// they reach each other over IPv6 (the rules are what stopped them): then a
// new dual-stack network without icc is refused and gc warns about the one
// there is; an IPv4-only one is still made.
func TestICCOffIPv6(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.EnableIPv6(t)
	a1, a2, b1, b2 := w.Name("a1"), w.Name("a2"), w.Name("b1"), w.Name("b2")
	w.MustNsnet(t, "network", "create", "--ipv6", "--subnet", "10.62.0.0/24", "--subnet", "fd00:62::/64", "-o", optICC+"=false", "iso")
	w.MustNsnet(t, "network", "create", "--ipv6", "--subnet", "10.63.0.0/24", "--subnet", "fd00:63::/64", "open")
	w.MustNsnet(t, "sandbox", "create", "--network", "iso", "--ip6", "fd00:62::11", a1)
	w.MustNsnet(t, "sandbox", "create", "--network", "iso", "--ip", "10.62.0.12", "--ip6", "fd00:62::12", a2)
	w.MustNsnet(t, "sandbox", "create", "--network", "open", "--ip6", "fd00:63::11", b1)
	w.MustNsnet(t, "sandbox", "create", "--network", "open", "--ip6", "fd00:63::12", b2)
	testenv.StartTCPEcho(t, a2, v6addr("::", "80"))
	testenv.StartTCPEcho(t, b2, v6addr("::", "80"))
	testenv.StartTCPEcho(t, w.Inet, v6addr(testenv.PublicIP6, "80"))

	reach(t, b1, v6addr("fd00:63::12", "80"), true, "control: a dual-stack network without the option, over IPv6")
	reach(t, a1, v6addr("fd00:62::12", "80"), false, "icc off, sandbox to sandbox over IPv6")
	reach(t, a1, "10.62.0.12:80", false, "icc off, sandbox to sandbox over IPv4")
	ping(t, a1, "fd00:62::1", true, "icc off, to the IPv6 gateway")
	reach(t, a1, v6addr(testenv.PublicIP6, "80"), true, "icc off, to the internet over IPv6")

	const bridgeNF6 = "net.bridge.bridge-nf-call-ip6tables"
	if got := testenv.Sysctl(t, w.Host, bridgeNF6); got != "1" {
		t.Fatalf("%s is %s in a new namespace, want 1", bridgeNF6, got)
	}
	mustRun(t, w.Host, "sysctl", "-qw", bridgeNF6+"=0")
	reach(t, a1, v6addr("fd00:62::12", "80"), true, "control: icc off, but bridged IPv6 does not pass nftables")
	expectFail(t, w, 1, []string{"network iso2: -o " + optICC + "=false needs bridged traffic to pass nftables",
		bridgeNF6 + " is 0", "sysctl -w " + bridgeNF6 + "=1"},
		"network", "create", "--ipv6", "--subnet", "10.64.0.0/24", "-o", optICC+"=false", "iso2")
	if r := w.Nsnet("gc", "--dry-run"); !strings.Contains(r.Stderr, "network iso has -o "+optICC+"=false, but "+bridgeNF6+" is 0") {
		t.Errorf("gc --dry-run does not warn that iso's sandboxes reach each other over IPv6: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	w.MustNsnet(t, "network", "create", "--subnet", "10.65.0.0/24", "-o", optICC+"=false", "iso4") // IPv4 only: its filtering is on
	mustRun(t, w.Host, "sysctl", "-qw", bridgeNF6+"=1")
	reach(t, a1, v6addr("fd00:62::12", "80"), false, "icc off, IPv6 bridge filtering on again")

	w.MustNsnet(t, "sandbox", "rm", a1, a2, b1, b2)
	w.MustNsnet(t, "network", "rm", "iso", "iso4", "open")
	w.AssertClean(t)
}

// TestDiagnoseDualStack: on a dual-stack network diagnose follows the IPv4
// path (to the internet, to a neighbour's port, from outside to a published
// port, beside one on IPv6 host addresses only) and says it works, and its
// probe agrees; a sandbox that publishes on IPv6 host addresses only is
// unknown from outside, not broken; an IPv6 --to is refused as IPv6, not
// misread as a port. topology draws the network with each interface's IPv4
// addresses, as ip -j shows them, and the IPv6 mapping in brackets.
func TestDiagnoseDualStack(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.EnableIPv6(t)
	a, b, c := w.Name("a"), w.Name("b"), w.Name("c")
	w.MustNsnet(t, "network", "create", "--ipv6", "--subnet", "10.66.0.0/24", "--subnet", "fd00:66::/64", "n6")
	w.MustNsnet(t, "sandbox", "create", "--network", "n6", "-p", "8080:80", "-p", "[::]:8081:80", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "n6", b)
	w.MustNsnet(t, "sandbox", "create", "--network", "n6", "-p", "[::]:8083:80", c)
	testenv.StartTCPEcho(t, a, v6addr("::", "80"))
	testenv.StartTCPEcho(t, b, v6addr("::", "80"))

	for _, args := range [][]string{{a, "--to", testenv.PublicIP}, {a, "--to", b + ":80"}, {a, "--from-outside"}} {
		r := diagnose(t, w, args...)
		if r.Verdict != "ok" && r.Verdict != "warn" {
			t.Errorf("diagnose %v on a dual-stack network: verdict %q, first %+v; want the path to work", args, r.Verdict, r.First)
		}
		checkProbeAgrees(t, r)
	}
	if r := diagnose(t, w, c, "--from-outside"); r.Verdict != "unknown" {
		t.Errorf("diagnose %s --from-outside, published on [::] only: verdict %q, first %+v; want unknown", c, r.Verdict, r.First)
	}
	for _, to := range []string{testenv.PublicIP6, v6addr(testenv.PublicIP6, "80")} {
		if r := w.Nsnet("diagnose", a, "--to", to); r.Code == 0 || !strings.Contains(r.Stderr, "only IPv4 addresses") {
			t.Errorf("diagnose --to %s: exit %d, stderr %q; want a refusal that says only IPv4 addresses", to, r.Code, r.Stderr)
		}
	}

	var g struct {
		Networks []struct {
			Name   string
			Bridge struct {
				Name  string
				Addrs []string
			}
			Sandboxes []struct {
				Sandbox string
				Inside  struct {
					Name  string
					Addrs []string
				}
				Ports []string
			}
		}
	}
	if err := json.Unmarshal([]byte(w.MustNsnet(t, "topology", "--format", "json")), &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Networks) != 1 || g.Networks[0].Name != "n6" || len(g.Networks[0].Sandboxes) != 3 {
		t.Fatalf("topology of one dual-stack network with three sandboxes: %+v", g)
	}
	n := g.Networks[0]
	br, _ := testenv.FindLink(testenv.Addrs(t, w.Host), n.Bridge.Name)
	if want := strings.Join(br.IPs("inet"), ","); strings.Join(n.Bridge.Addrs, ",") != want || want == "" {
		t.Errorf("topology: bridge %s addresses %v, ip -j shows IPv4 %q", n.Bridge.Name, n.Bridge.Addrs, want)
	}
	for _, s := range n.Sandboxes {
		in, _ := testenv.FindLink(testenv.Addrs(t, s.Sandbox), s.Inside.Name)
		if want := strings.Join(in.IPs("inet"), ","); strings.Join(s.Inside.Addrs, ",") != want || want == "" {
			t.Errorf("topology: sandbox %s addresses %v, ip -j shows IPv4 %q", s.Sandbox, s.Inside.Addrs, want)
		}
		if s.Sandbox == a && !slices.Equal(s.Ports, []string{"0.0.0.0:8080->80/tcp", "[::]:8081->80/tcp"}) {
			t.Errorf("topology: sandbox %s ports %q", a, s.Ports)
		}
	}
	for _, format := range []string{"text", "dot"} {
		if out := w.MustNsnet(t, "topology", "--format", format); !strings.Contains(out, a) || !strings.Contains(out, b) {
			t.Errorf("topology --format %s does not name both sandboxes:\n%s", format, out)
		}
	}

	w.MustNsnet(t, "sandbox", "rm", a, b, c)
	w.MustNsnet(t, "network", "rm", "n6")
	w.AssertClean(t)
}
