package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/testenv"
)

// TestSeedScenario rebuilds the article's bridge network and checks each of
// its points with iproute2, nft, ping and TCP.
func TestSeedScenario(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	ns01, ns02 := w.Name("ns01"), w.Name("ns02")
	w.MustNsnet(t, "network", "create", "--subnet", "192.168.88.0/24", "--gateway", "192.168.88.1", "--bridge", "br01", "br01")
	w.MustNsnet(t, "sandbox", "create", "--network", "br01", "--ip", "192.168.88.11", ns01)
	w.MustNsnet(t, "sandbox", "create", "--network", "br01", "--ip", "192.168.88.12", ns02)

	t.Run("bridge", func(t *testing.T) { checkBridge(t, w) })
	t.Run("sandbox", func(t *testing.T) {
		checkSandbox(t, w, ns01, "192.168.88.11", "02:42:c0:a8:58:0b")
		checkSandbox(t, w, ns02, "192.168.88.12", "02:42:c0:a8:58:0c")
	})
	t.Run("ports", func(t *testing.T) { checkPorts(t, w, ns01, ns02) })
	t.Run("arp", func(t *testing.T) { checkARP(t, ns01, ns02) })
	t.Run("masquerade", func(t *testing.T) { checkMasquerade(t, w, ns02) })
	t.Run("inspect", func(t *testing.T) { checkInspect(t, w, ns01) })

	w.MustNsnet(t, "sandbox", "rm", ns01, ns02)
	w.MustNsnet(t, "network", "rm", "br01")
	w.AssertClean(t)
	if got := w.MustNsnet(t, "network", "ls", "--format", "json"); strings.TrimSpace(got) != "[]" {
		t.Errorf("network ls after removal: %s", got)
	}
}

func checkBridge(t *testing.T, w *testenv.World) {
	br := mustLink(t, w.Host, "br01")
	if br.Kind() != "bridge" || !br.IsUp() {
		t.Errorf("br01: kind %q up %t, want an up bridge", br.Kind(), br.IsUp())
	}
	if ips := br.IPs("inet"); len(ips) != 1 || ips[0] != "192.168.88.1/24" {
		t.Errorf("br01 addresses %v, want [192.168.88.1/24]", ips)
	}
	if got := testenv.Sysctl(t, w.Host, "net/ipv4/ip_forward"); got != "1" {
		t.Errorf("host ip_forward = %q, want 1", got)
	}
}

func checkSandbox(t *testing.T, w *testenv.World, ns, ip, mac string) {
	eth0 := mustLink(t, ns, "eth0")
	if eth0.Kind() != "veth" || !eth0.IsUp() {
		t.Errorf("%s eth0: kind %q up %t", ns, eth0.Kind(), eth0.IsUp())
	}
	if ips := eth0.IPs("inet"); len(ips) != 1 || ips[0] != ip+"/24" {
		t.Errorf("%s eth0 addresses %v, want %s/24", ns, ips, ip)
	}
	if eth0.Address != mac {
		t.Errorf("%s eth0 MAC %s, want %s (derived from the IP)", ns, eth0.Address, mac)
	}
	if lo := mustLink(t, ns, "lo"); !lo.IsUp() {
		t.Errorf("%s lo is down", ns)
	}
	if gw := defaultGateway(t, ns); gw != "192.168.88.1" {
		t.Errorf("%s default gateway %q, want 192.168.88.1", ns, gw)
	}
	if !contains(testenv.NamespaceNames(t), ns) {
		t.Errorf("ip netns list lacks %s", ns)
	}
}

func checkPorts(t *testing.T, w *testenv.World, sandboxes ...string) {
	var ports []testenv.Link
	for _, l := range testenv.Links(t, w.Host) {
		if l.Master == "br01" {
			ports = append(ports, l)
		}
	}
	if len(ports) != len(sandboxes) {
		t.Fatalf("br01 has %d ports, want %d", len(ports), len(sandboxes))
	}
	for i, p := range ports {
		if p.Kind() != "veth" || !p.IsUp() {
			t.Errorf("port %s: kind %q up %t", p.IfName, p.Kind(), p.IsUp())
		}
		_ = i
	}
	for _, sb := range sandboxes {
		veth := inspectSandbox(t, w, sb).Networks["br01"].HostVeth
		if l, ok := testenv.FindLink(ports, veth); !ok || l.Master != "br01" {
			t.Errorf("sandbox %s host veth %q is not a port of br01", sb, veth)
		}
	}
}

func checkARP(t *testing.T, ns01, ns02 string) {
	if err := testenv.Ping(ns01, "192.168.88.12"); err != nil {
		t.Fatalf("ns01 -> ns02: %v", err)
	}
	if err := testenv.Ping(ns01, "192.168.88.1"); err != nil {
		t.Fatalf("ns01 -> gateway: %v", err)
	}
	want := mustLink(t, ns02, "eth0").Address
	for _, n := range testenv.Neighbours(t, ns01) {
		if n.Dst == "192.168.88.12" {
			if n.LLAddr != want {
				t.Errorf("ns01 neighbour 192.168.88.12 at %s, want ns02's MAC %s", n.LLAddr, want)
			}
			return
		}
	}
	t.Errorf("ns01 has no neighbour entry for 192.168.88.12")
}

func checkMasquerade(t *testing.T, w *testenv.World, ns string) {
	srv := testenv.StartTCPEcho(t, w.Inet, testenv.PublicIP+":7777")
	got, err := testenv.TCPHello(ns, testenv.PublicIP+":7777", 3*time.Second)
	if err != nil {
		t.Fatalf("sandbox -> internet: %v", err)
	}
	if got != "from "+testenv.UplinkIP {
		t.Errorf("internet server saw %q, want the host's uplink %s", got, testenv.UplinkIP)
	}
	if err := testenv.Ping(ns, testenv.PublicIP); err != nil {
		t.Errorf("ping internet: %v", err)
	}
	if seen := srv.Seen(); len(seen) != 1 || seen[0] != testenv.UplinkIP {
		t.Errorf("server saw %v", seen)
	}
	nft := testenv.Nft(t, w.Host)
	for _, s := range []string{`"masquerade"`, `"192.168.88.0"`, `"br01"`, `"` + w.Table() + `"`} {
		if !strings.Contains(nft, s) {
			t.Errorf("nft ruleset lacks %s:\n%s", s, nft)
		}
	}
}

func checkInspect(t *testing.T, w *testenv.World, ns01 string) {
	n := inspectNetwork(t, w, "br01")
	if n.Bridge != "br01" || n.Subnet != "192.168.88.0/24" || n.Gateway != "192.168.88.1" || n.MTU != 1500 || n.Internal {
		t.Errorf("network inspect: %+v", n)
	}
	if len(n.Sandboxes) != 2 {
		t.Errorf("network inspect lists %d sandboxes, want 2", len(n.Sandboxes))
	}
	s := inspectSandbox(t, w, ns01)
	ep := s.Networks["br01"]
	if s.Mode != "bridge" || s.NetNS != "/run/netns/"+ns01 || ep.Interface != "eth0" ||
		ep.Address != "192.168.88.11/24" || ep.MAC != "02:42:c0:a8:58:0b" || ep.Gateway != "192.168.88.1" {
		t.Errorf("sandbox inspect: %+v", s)
	}
}

// TestInternalNetwork checks that an --internal network gets no masquerade and
// its sandboxes reach each other but nothing beyond the bridge, even with a
// route they add themselves.
func TestInternalNetwork(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	a, b := w.Name("a"), w.Name("b")
	w.MustNsnet(t, "network", "create", "--internal", "--subnet", "10.50.0.0/24", "in1")
	w.MustNsnet(t, "network", "create", "--subnet", "10.51.0.0/24", "out1")
	w.MustNsnet(t, "sandbox", "create", "--network", "in1", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "in1", b)
	if err := testenv.Ping(a, "10.50.0.3"); err != nil {
		t.Errorf("internal sandboxes cannot reach each other: %v", err)
	}
	if gw := defaultGateway(t, a); gw != "" {
		t.Errorf("internal sandbox has a default route via %s", gw)
	}
	nft := testenv.Nft(t, w.Host)
	if strings.Contains(nft, `"10.50.0.0"`) {
		t.Errorf("internal network has a masquerade rule:\n%s", nft)
	}
	// Give the sandbox a route out and the internet a route back: only
	// nsnet's forward rules stand in the way now.
	srv := testenv.StartTCPEcho(t, w.Inet, testenv.PublicIP+":7777")
	mustRun(t, a, "ip", "route", "add", "default", "via", "10.50.0.1")
	mustRun(t, w.Inet, "ip", "route", "add", "10.50.0.0/24", "via", testenv.UplinkIP)
	if got, err := testenv.TCPHello(a, testenv.PublicIP+":7777", time.Second); err == nil {
		t.Errorf("internal sandbox reached the internet: %q", got)
	}
	if seen := srv.Seen(); len(seen) != 0 {
		t.Errorf("internet server saw %v from an internal network", seen)
	}
	// Control: without nsnet's table the same connection goes through, so
	// the check above tests the rules and not the world.
	mustRun(t, w.Host, "nft", "delete", "table", "inet", w.Table())
	if _, err := testenv.TCPHello(a, testenv.PublicIP+":7777", 3*time.Second); err != nil {
		t.Errorf("control: without nsnet's rules the connection should succeed: %v", err)
	}
	w.MustNsnet(t, "sandbox", "rm", a, b)
	w.MustNsnet(t, "network", "rm", "in1", "out1")
	w.AssertClean(t)
}
