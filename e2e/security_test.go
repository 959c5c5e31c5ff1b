package e2e

import (
	"testing"

	"github.com/nsnet/nsnet/internal/testenv"
)

// TestOutsideReachesOnlyPublished plays a neighbour on the host's uplink
// that routes a sandbox subnet (and another host address) via the host, as
// an attacker next door would: it reaches the sandbox's published ports at
// the host's addresses, and nothing at the sandbox's own address, nor ports
// published on 127.0.0.1 or on another host address. Sandboxes of the same
// network still reach each other on any port. Without nsnet's forward rules
// (the control) the neighbour does reach the sandbox directly.
func TestOutsideReachesOnlyPublished(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	web, peer := w.Name("web"), w.Name("peer")
	const other = "192.0.2.9" // a second host address
	mustRun(t, w.Host, "ip", "addr", "add", other+"/32", "dev", "lo")
	mustRun(t, w.Inet, "ip", "route", "add", "10.80.0.0/24", "via", testenv.UplinkIP)
	mustRun(t, w.Inet, "ip", "route", "add", other+"/32", "via", testenv.UplinkIP)
	w.MustNsnet(t, "network", "create", "--subnet", "10.80.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.80.0.10",
		"-p", "8080:80", "-p", "127.0.0.1:9090:81", "-p", other+":7070:82", web)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.80.0.11", peer)
	for _, port := range []string{"80", "81", "82", "83"} {
		testenv.StartTCPEcho(t, web, "0.0.0.0:"+port)
	}
	up := testenv.UplinkIP

	reach(t, w.Inet, up+":8080", true, "published on every host address")
	reach(t, w.Inet, other+":7070", true, "published on the other host address, there")
	reach(t, w.Host, "127.0.0.1:9090", true, "published on 127.0.0.1, from the host")
	for _, port := range []string{"80", "81", "82", "83"} {
		reach(t, peer, "10.80.0.10:"+port, true, "same network, port "+port)
	}

	reach(t, w.Inet, up+":7070", false, "published only on the other address, at the uplink")
	reach(t, w.Inet, up+":9090", false, "published only on 127.0.0.1, at the uplink")
	for _, port := range []string{"80", "81", "82", "83"} {
		reach(t, w.Inet, "10.80.0.10:"+port, false, "routed straight to the sandbox, port "+port)
	}

	// The neighbour routes 127.0.0.1 to the host too (CVE-2020-8558).
	testenv.StartTCPEcho(t, w.Host, "127.0.0.1:7777") // a host service on 127.0.0.1 only
	mustRun(t, w.Inet, "ip", "addr", "del", "127.0.0.1/8", "dev", "lo")
	mustRun(t, w.Inet, "sysctl", "-qw", "net.ipv4.conf.wan0.route_localnet=1")
	mustRun(t, w.Inet, "ip", "route", "add", "127.0.0.1/32", "via", up, "dev", "wan0")
	reach(t, w.Inet, "127.0.0.1:9090", false, "routed to the host's 127.0.0.1, port published there")
	reach(t, w.Inet, "127.0.0.1:7777", false, "routed to the host's 127.0.0.1, a host service")
	mustRun(t, w.Host, "nft", "flush", "chain", "inet", w.Table(), "prerouting-guard")
	mustRun(t, w.Host, "sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1")
	reach(t, w.Inet, "127.0.0.1:7777", true, "control: without the guard and with route_localnet on the uplink")
	mustRun(t, w.Host, "sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=0")
	reach(t, w.Inet, "127.0.0.1:7777", false, "route_localnet off again, still without the guard")
	w.MustNsnet(t, "firewall", "reload")

	// Control: without nsnet's forward chain the neighbour gets through.
	mustRun(t, w.Host, "nft", "flush", "chain", "inet", w.Table(), "forward")
	reach(t, w.Inet, "10.80.0.10:83", true, "control: without the forward rules")
	w.MustNsnet(t, "firewall", "reload")
	reach(t, w.Inet, "10.80.0.10:83", false, "after firewall reload")

	w.MustNsnet(t, "sandbox", "rm", web, peer)
	w.MustNsnet(t, "network", "rm", "n1")
	mustRun(t, w.Host, "ip", "addr", "del", other+"/32", "dev", "lo")
	w.AssertClean(t)
}

// TestInternalIsInternal gives a sandbox of an internal network a default
// route via its gateway, as a sandbox that wants out would: it reaches no
// published port of another network, neither at its gateway address nor at
// any other host address, and no host service beyond its gateway. A sandbox
// of an ordinary network reaches the same port (the control), and so does
// the internal one once nsnet's internal rules are gone.
func TestInternalIsInternal(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	web, in, out := w.Name("web"), w.Name("in"), w.Name("out")
	w.MustNsnet(t, "network", "create", "--subnet", "10.81.0.0/24", "n1")
	w.MustNsnet(t, "network", "create", "--internal", "--subnet", "10.82.0.0/24", "inside")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "-p", "8080:80", web)
	w.MustNsnet(t, "sandbox", "create", "--network", "inside", "--ip", "10.82.0.10", in)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", out)
	testenv.StartTCPEcho(t, web, "0.0.0.0:80")
	testenv.StartTCPEcho(t, w.Host, "0.0.0.0:2222") // a host service
	mustRun(t, in, "ip", "route", "add", "default", "via", "10.82.0.1")
	up := testenv.UplinkIP

	reach(t, out, "10.81.0.1:8080", true, "control: ordinary network, published port at its gateway")
	reach(t, out, up+":8080", true, "control: ordinary network, published port at the uplink")
	reach(t, in, "10.82.0.1:2222", true, "internal network, host service at its own gateway")

	reach(t, in, "10.82.0.1:8080", false, "internal network, published port at its own gateway")
	reach(t, in, up+":8080", false, "internal network, published port at the uplink")
	reach(t, in, "10.81.0.1:8080", false, "internal network, published port at another bridge")
	reach(t, in, up+":2222", false, "internal network, host service at the uplink")

	// Control: without nsnet's rules for internal networks it gets through.
	mustRun(t, w.Host, "nft", "flush", "chain", "inet", w.Table(), "forward")
	mustRun(t, w.Host, "nft", "flush", "chain", "inet", w.Table(), "input")
	reach(t, in, "10.82.0.1:8080", true, "control: without the rules, at its gateway")
	reach(t, in, up+":2222", true, "control: without the rules, host service at the uplink")
	w.MustNsnet(t, "firewall", "reload")
	reach(t, in, "10.82.0.1:8080", false, "after firewall reload")

	w.MustNsnet(t, "sandbox", "rm", web, in, out)
	w.MustNsnet(t, "network", "rm", "n1", "inside")
	w.AssertClean(t)
}
