package e2e

// Anti-spoofing over IPv6, on dual-stack networks: as spoof_test.go, a
// guarded network beside one with --antispoof=false, the same attack on both.

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/nsnet/nsnet/internal/testenv"
)

// spoofNetwork6 makes the dual-stack network 10.98.<n>.0/24 and
// fd00:98:<n>::/64, guarded or not, with an attacker (.10, ::10) and a victim
// (.11, ::11), and checks that each reaches its IPv6 gateway from its own
// address (so each end knows the other's MAC before the attack).
func spoofNetwork6(t *testing.T, w *testenv.World, third int, guarded bool) (s spoofNet, ip6 map[string]netip.Addr) {
	t.Helper()
	prefix, prefix6 := fmt.Sprintf("10.98.%d.", third), fmt.Sprintf("fd00:98:%d::", third)
	s = spoofNet{name: w.Name(fmt.Sprintf("n%d", third)), guarded: guarded, gateway: netip.MustParseAddr(prefix + "1")}
	args := []string{"network", "create", "--ipv6", "--subnet", prefix + "0/24", "--subnet", prefix6 + "/64", s.name}
	if !guarded {
		args = append(args, "--antispoof=false")
	}
	w.MustNsnet(t, args...)
	s.bridge = inspectNetwork(t, w, s.name).Bridge
	ip6 = map[string]netip.Addr{}
	sandbox := func(role, host string) spoofSandbox {
		name := w.Name(fmt.Sprintf("%s%d", role, third))
		w.MustNsnet(t, "sandbox", "create", "--network", s.name, "--ip", prefix+host, "--ip6", prefix6+host, name)
		ep := inspectSandbox(t, w, name).Networks[s.name]
		mac, err := net.ParseMAC(ep.MAC)
		if err != nil {
			t.Fatal(err)
		}
		ip6[name] = netip.MustParseAddr(prefix6 + host)
		return spoofSandbox{name: name, ip: netip.MustParseAddr(prefix + host), mac: mac, veth: ep.HostVeth}
	}
	s.attacker, s.victim = sandbox("a", "10"), sandbox("v", "11")
	return s, ip6
}

// TestSpoofIPv6: on a dual-stack network a sandbox sends from its own IPv6
// address, to the internet (NAT66) and to its neighbour; one that adds its
// neighbour's IPv6 address and sends from it reaches neither the internet
// nor, with the internet's reply, its neighbour, unless the network has
// --antispoof=false (the control, which also shows the reply path works).
func TestSpoofIPv6(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.EnableIPv6(t)
	guarded, ip6g := spoofNetwork6(t, w, 21, true)
	open, ip6o := spoofNetwork6(t, w, 22, false)
	ip6 := map[string]netip.Addr{}
	for _, m := range []map[string]netip.Addr{ip6g, ip6o} {
		for k, v := range m {
			ip6[k] = v
		}
	}
	gateway6 := func(s spoofNet) string { return fmt.Sprintf("fd00:98:%d::1", s.gateway.As4()[2]) }

	// Own addresses work, on both networks, before any spoofing: to the
	// gateway, to the neighbour, to the internet.
	for _, s := range []spoofNet{guarded, open} {
		for _, sb := range []spoofSandbox{s.attacker, s.victim} {
			if err := testenv.Ping(sb.name, gateway6(s)); err != nil {
				t.Errorf("%s (guarded %t) cannot reach its IPv6 gateway from its own address: %v", sb.name, s.guarded, err)
			}
		}
		if err := testenv.Ping(s.attacker.name, ip6[s.victim.name].String()); err != nil {
			t.Errorf("%s (guarded %t) cannot reach its neighbour's IPv6 address from its own: %v", s.attacker.name, s.guarded, err)
		}
		if err := testenv.Ping(s.attacker.name, testenv.PublicIP6); err != nil {
			t.Errorf("%s (guarded %t) cannot reach the internet over IPv6 from its own address: %v", s.attacker.name, s.guarded, err)
		}
	}

	const port = "9999"
	server := startUDPSink6(t, w.InetPath(), "["+testenv.PublicIP6+"]:"+port, true)
	victims := map[string]*udpSink{}
	for _, s := range []spoofNet{guarded, open} {
		victim := ip6[s.victim.name]
		victims[s.name] = startUDPSink6(t, s.victim.path(), "[::]:5555", false)
		mustRun(t, s.attacker.name, "ip", "-6", "addr", "add", victim.String()+"/128", "dev", "eth0", "nodad")
		payload := []byte("spoofed IPv6 source on " + s.name)
		err := sendFrom(s.attacker.path(), netip.AddrPortFrom(victim, 5555), netip.MustParseAddrPort("["+testenv.PublicIP6+"]:"+port), payload)
		if err != nil {
			t.Fatalf("send from %s's IPv6 address in %s: %v", s.victim.name, s.attacker.name, err)
		}
	}
	attackSeen(t, "the internet getting a datagram from the neighbour's IPv6 address", guarded, open, func(s spoofNet) bool {
		return server.got("spoofed IPv6 source on " + s.name)
	})
	attackSeen(t, "the neighbour getting the internet's reply to its IPv6 address", guarded, open, func(s spoofNet) bool {
		return victims[s.name].got("spoofed IPv6 source on " + s.name)
	})
	// The guarded attacker still sends from its own IPv6 address (named:
	// the neighbour's, on eth0 too now, might be chosen).
	if _, err := testenv.RunIn(guarded.attacker.name, "ping", "-c", "1", "-W", "2", "-I", ip6[guarded.attacker.name].String(), testenv.PublicIP6); err != nil {
		t.Errorf("the guarded attacker cannot reach the internet from its own IPv6 address after the attack: %v", err)
	}
	removeSpoofNets(t, w, guarded, open)
}

// startUDPSink6 is startUDPSink on an IPv6 address.
func startUDPSink6(t *testing.T, path, addr string, echo bool) *udpSink {
	t.Helper()
	return startUDPSinkNet(t, "udp6", path, addr, echo)
}
