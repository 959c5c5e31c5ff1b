package e2e

// Docker's bridge driver options (network create -o), each by its effect on
// traffic, beside a network without it.

import (
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/testenv"
)

const (
	optICC         = "com.docker.network.bridge.enable_icc"
	optMasquerade  = "com.docker.network.bridge.enable_ip_masquerade"
	optHostBinding = "com.docker.network.bridge.host_binding_ipv4"
	optBridgeName  = "com.docker.network.bridge.name"
	optMTU         = "com.docker.network.driver.mtu"
)

// ping checks that ns reaches addr by ICMP (want) or does not.
func ping(t *testing.T, ns, addr string, want bool, why string) {
	t.Helper()
	err := testenv.Ping(ns, addr)
	switch {
	case want && err != nil:
		t.Errorf("%s: ping %s -> %s failed: %v", why, ns, addr, err)
	case !want && err == nil:
		t.Errorf("%s: ping %s -> %s answered, want no answer", why, ns, addr)
	}
}

// TestICCOff: on a network made with enable_icc=false two sandboxes reach
// neither each other's address (TCP, ICMP) nor, but through a published
// port, each other at all, while they reach the gateway, a host service and
// the internet; on a network without the option they reach each other (the
// control). An outside nft flush ruleset lets them through (the rules are
// what stops them), gc sees and restores the table, and they are stopped
// again. With bridge filtering turned off they reach each other too: then
// such a network is refused and gc warns about the one there is.
func TestICCOff(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	a1, a2, b1, b2 := w.Name("a1"), w.Name("a2"), w.Name("b1"), w.Name("b2")
	w.MustNsnet(t, "network", "create", "--subnet", "10.60.0.0/24", "-o", optICC+"=false", "iso")
	w.MustNsnet(t, "network", "create", "--subnet", "10.61.0.0/24", "open")
	w.MustNsnet(t, "sandbox", "create", "--network", "iso", "--ip", "10.60.0.11", a1)
	w.MustNsnet(t, "sandbox", "create", "--network", "iso", "--ip", "10.60.0.12", "-p", "8080:80", a2)
	w.MustNsnet(t, "sandbox", "create", "--network", "open", "--ip", "10.61.0.11", b1)
	w.MustNsnet(t, "sandbox", "create", "--network", "open", "--ip", "10.61.0.12", b2)
	testenv.StartTCPEcho(t, a2, "0.0.0.0:80")
	testenv.StartTCPEcho(t, b2, "0.0.0.0:80")
	testenv.StartTCPEcho(t, w.Host, "0.0.0.0:2222")
	testenv.StartTCPEcho(t, w.Inet, testenv.PublicIP+":80")
	if n := inspectNetworkJSON(t, w, "iso"); n["icc"] != false || n["masquerade"] != true {
		t.Errorf("network inspect iso: icc %v, masquerade %v; want false, true", n["icc"], n["masquerade"])
	}

	reach(t, b1, "10.61.0.12:80", true, "control: a network without the option, sandbox to sandbox")
	ping(t, b1, "10.61.0.12", true, "control: a network without the option, sandbox to sandbox")

	reach(t, a1, "10.60.0.12:80", false, "icc off, sandbox to sandbox")
	ping(t, a1, "10.60.0.12", false, "icc off, sandbox to sandbox")
	ping(t, a1, "10.60.0.1", true, "icc off, to the gateway")
	reach(t, a1, "10.60.0.1:2222", true, "icc off, a host service at the gateway")
	if got := reach(t, a1, testenv.PublicIP+":80", true, "icc off, to the internet"); got != "from "+testenv.UplinkIP {
		t.Errorf("icc off: the internet saw %q, want the host's address (masquerade)", got)
	}
	reach(t, a1, testenv.UplinkIP+":8080", true, "icc off, to a neighbour's published port, through the host")

	mustRun(t, w.Host, "nft", "flush", "ruleset")
	reach(t, a1, "10.60.0.12:80", true, "control: icc off, but the table flushed from outside")
	gcPending(t, w, "rewrite nftables table")
	w.MustNsnet(t, "gc")
	gcClean(t, w, "after gc")
	reach(t, a1, "10.60.0.12:80", false, "icc off, after gc restored the table")
	ping(t, a1, "10.60.0.12", false, "icc off, after gc restored the table")
	reach(t, b1, "10.61.0.12:80", true, "control: without the option, after gc")

	// Without bridge filtering (in the world's host namespace only) traffic
	// between a bridge's ports never meets the rules: nsnet refuses a new
	// network without icc, and gc warns about the one it has.
	const bridgeNF = "net.bridge.bridge-nf-call-iptables"
	if got := testenv.Sysctl(t, w.Host, bridgeNF); got != "1" {
		t.Fatalf("%s is %s in a new namespace, want 1", bridgeNF, got)
	}
	mustRun(t, w.Host, "sysctl", "-qw", bridgeNF+"=0")
	reach(t, a1, "10.60.0.12:80", true, "control: icc off, but bridged traffic does not pass nftables")
	before := w.MustNsnet(t, "network", "ls", "-q")
	expectFail(t, w, 1, []string{"network iso2: -o " + optICC + "=false needs bridged traffic to pass nftables",
		bridgeNF + " is 0", "modprobe br_netfilter"}, "network", "create", "--subnet", "10.68.0.0/24", "-o", optICC+"=false", "iso2")
	if after := w.MustNsnet(t, "network", "ls", "-q"); after != before {
		t.Errorf("a refused network create changed network ls -q: %q -> %q", before, after)
	}
	if r := w.Nsnet("gc", "--dry-run"); !strings.Contains(r.Stderr, "network iso has -o "+optICC+"=false, but "+bridgeNF+" is 0") {
		t.Errorf("gc --dry-run does not warn that iso's sandboxes reach each other: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	mustRun(t, w.Host, "sysctl", "-qw", bridgeNF+"=1")
	reach(t, a1, "10.60.0.12:80", false, "icc off, bridge filtering on again")
	w.MustNsnet(t, "network", "create", "--subnet", "10.68.0.0/24", "-o", optICC+"=false", "iso2") // the control: now it is made

	w.MustNsnet(t, "sandbox", "rm", a1, a2, b1, b2)
	w.MustNsnet(t, "network", "rm", "iso", "iso2", "open")
	w.AssertClean(t)
}

// TestMasqueradeOff: a sandbox of a network made with
// enable_ip_masquerade=false reaches the internet with its own address (the
// internet routes the subnet back to the host), where one of a network
// without it is seen as the host's address (the control). Routed is not
// open: from outside, the sandbox's own ports stay closed, its published
// port answers, where, with nsnet's rules flushed, the same path is open (the
// control).
func TestMasqueradeOff(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	r, n := w.Name("r"), w.Name("n")
	mustRun(t, w.Inet, "ip", "route", "add", "10.62.0.0/24", "via", testenv.UplinkIP)
	mustRun(t, w.Inet, "ip", "route", "add", "10.63.0.0/24", "via", testenv.UplinkIP)
	w.MustNsnet(t, "network", "create", "--subnet", "10.62.0.0/24", "-o", optMasquerade+"=false", "routed")
	w.MustNsnet(t, "network", "create", "--subnet", "10.63.0.0/24", "nat")
	w.MustNsnet(t, "sandbox", "create", "--network", "routed", "--ip", "10.62.0.10", "-p", "8080:80", r)
	w.MustNsnet(t, "sandbox", "create", "--network", "nat", "--ip", "10.63.0.10", n)
	testenv.StartTCPEcho(t, w.Inet, testenv.PublicIP+":80")
	testenv.StartTCPEcho(t, r, "0.0.0.0:80")
	testenv.StartTCPEcho(t, r, "0.0.0.0:81")

	if got := reach(t, n, testenv.PublicIP+":80", true, "control: masquerade"); got != "from "+testenv.UplinkIP {
		t.Errorf("control: the internet saw %q from a masqueraded network, want the host's address", got)
	}
	if got := reach(t, r, testenv.PublicIP+":80", true, "masquerade off"); got != "from 10.62.0.10" {
		t.Errorf("masquerade off: the internet saw %q, want the sandbox's own address", got)
	}
	ping(t, r, testenv.PublicIP, true, "masquerade off, ICMP")
	reach(t, w.Inet, testenv.UplinkIP+":8080", true, "masquerade off, a published port from outside")
	reach(t, w.Inet, "10.62.0.10:81", false, "masquerade off, the sandbox's own port from outside")
	mustRun(t, w.Host, "nft", "flush", "ruleset")
	reach(t, w.Inet, "10.62.0.10:81", true, "control: the same path without nsnet's rules")
	w.MustNsnet(t, "gc")
	reach(t, w.Inet, "10.62.0.10:81", false, "masquerade off, the sandbox's own port from outside, after gc")
	if n := inspectNetworkJSON(t, w, "routed"); n["masquerade"] != false || n["icc"] != true {
		t.Errorf("network inspect routed: masquerade %v, icc %v; want false, true", n["masquerade"], n["icc"])
	}

	w.MustNsnet(t, "sandbox", "rm", r, n)
	w.MustNsnet(t, "network", "rm", "routed", "nat")
	w.AssertClean(t)
}

// TestHostBindingIPv4: on a network made with host_binding_ipv4=ADDR,
// -p 8080:80 publishes on ADDR only (answered there, not at the host's
// other address), as port add does; an address in -p wins. On a network
// without the option, -p answers at both (the control).
func TestHostBindingIPv4(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s1, s2 := w.Name("s1"), w.Name("s2")
	const other = "192.0.2.9" // a second host address
	mustRun(t, w.Host, "ip", "addr", "add", other+"/32", "dev", "lo")
	mustRun(t, w.Inet, "ip", "route", "add", other+"/32", "via", testenv.UplinkIP)
	w.MustNsnet(t, "network", "create", "--subnet", "10.64.0.0/24", "-o", optHostBinding+"="+other, "bound")
	w.MustNsnet(t, "network", "create", "--subnet", "10.65.0.0/24", "plain")
	out := w.MustNsnet(t, "sandbox", "create", "--network", "bound", "-p", "8080:80", "-p", testenv.UplinkIP+":8082:80", s1)
	if !strings.Contains(out, "80/tcp -> "+other+":8080") {
		t.Errorf("sandbox create printed %q, want the mapping on %s", out, other)
	}
	w.MustNsnet(t, "port", "add", s1, "8083:80")
	w.MustNsnet(t, "sandbox", "create", "--network", "plain", "-p", "8081:80", s2)
	testenv.StartTCPEcho(t, s1, "0.0.0.0:80")
	testenv.StartTCPEcho(t, s2, "0.0.0.0:80")
	up := testenv.UplinkIP

	reach(t, w.Inet, other+":8081", true, "control: no option, at the other address")
	reach(t, w.Inet, up+":8081", true, "control: no option, at the uplink")
	reach(t, w.Inet, other+":8080", true, "host_binding_ipv4, at its address")
	reach(t, w.Inet, up+":8080", false, "host_binding_ipv4, at another address")
	reach(t, w.Host, other+":8080", true, "host_binding_ipv4, from the host at its address")
	reach(t, w.Inet, other+":8083", true, "host_binding_ipv4, port add, at its address")
	reach(t, w.Inet, up+":8083", false, "host_binding_ipv4, port add, at another address")
	reach(t, w.Inet, up+":8082", true, "host_binding_ipv4, an address given in -p")
	reach(t, w.Inet, other+":8082", false, "host_binding_ipv4, an address given in -p, at the option's")
	if got := w.MustNsnet(t, "port", "ls", "-q", s1); got != other+":8080:80/tcp\n"+other+":8083:80/tcp\n"+up+":8082:80/tcp\n" {
		t.Errorf("port ls -q %s: %q", s1, got)
	}

	w.MustNsnet(t, "sandbox", "rm", s1, s2)
	w.MustNsnet(t, "network", "rm", "bound", "plain")
	mustRun(t, w.Host, "ip", "addr", "del", other+"/32", "dev", "lo")
	w.AssertClean(t)
}

// TestBridgeNameAndMTUOptions: -o com.docker.network.bridge.name names the
// bridge (and a sandbox on it reaches the gateway), and
// com.docker.network.driver.mtu sets the MTU of the path: a packet that
// does not fit it and may not be fragmented does not get through, where it
// does on a network of the default MTU (the control).
func TestBridgeNameAndMTUOptions(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	small, big := w.Name("small"), w.Name("big")
	w.MustNsnet(t, "network", "create", "--subnet", "10.66.0.0/24", "-o", optBridgeName+"=br-opt", "-o", optMTU+"=1280", "tight")
	w.MustNsnet(t, "network", "create", "--subnet", "10.67.0.0/24", "wide")
	w.MustNsnet(t, "sandbox", "create", "--network", "tight", small)
	w.MustNsnet(t, "sandbox", "create", "--network", "wide", big)
	if l := mustLink(t, w.Host, "br-opt"); l.MTU != 1280 || l.Kind() != "bridge" {
		t.Errorf("bridge br-opt: kind %s, MTU %d; want a bridge of MTU 1280", l.Kind(), l.MTU)
	}
	if l := mustLink(t, small, "eth0"); l.MTU != 1280 {
		t.Errorf("eth0 of a sandbox of the network: MTU %d, want 1280", l.MTU)
	}
	// 1300 bytes of payload make a 1328-byte packet: over 1280, under 1500.
	df := func(ns, addr, size string) error {
		_, err := testenv.RunIn(ns, "ping", "-c", "1", "-W", "2", "-M", "do", "-s", size, addr)
		return err
	}
	if err := df(big, "10.67.0.1", "1300"); err != nil {
		t.Errorf("control: 1328 bytes on a network of MTU 1500: %v", err)
	}
	if err := df(small, "10.66.0.1", "1200"); err != nil {
		t.Errorf("1228 bytes on a network of MTU 1280: %v", err)
	}
	if err := df(small, "10.66.0.1", "1300"); err == nil {
		t.Errorf("1328 bytes, not to be fragmented, went through a network of MTU 1280")
	}
	w.MustNsnet(t, "sandbox", "rm", small, big)
	w.MustNsnet(t, "network", "rm", "tight", "wide")
	w.AssertClean(t)
}

// inspectNetworkJSON is network inspect's one object, as generic JSON.
func inspectNetworkJSON(t *testing.T, w *testenv.World, name string) map[string]any {
	t.Helper()
	return inspectOne[map[string]any](t, w, "network", name)
}
