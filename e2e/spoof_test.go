package e2e

// Anti-spoofing: a sandbox that pretends to be its neighbour or the gateway.
// Each test makes two networks in one world, one guarded (the default) and
// one with --antispoof=false, runs the same attack on both, and sees it fail
// on the first and work on the second: the control that shows the test can
// see the attack.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/testenv"
)

// spoofNet is one network of a spoofing test: an attacker and a victim
// sandbox on it.
type spoofNet struct {
	name, bridge string
	guarded      bool
	gateway      netip.Addr
	attacker     spoofSandbox
	victim       spoofSandbox
}

type spoofSandbox struct {
	name string // also its namespace's name under /run/netns
	ip   netip.Addr
	mac  net.HardwareAddr
	veth string // the host end
}

func (s spoofSandbox) path() string { return testenv.NSPath(s.name) }

// spoofNets makes the guarded network 10.98.<n>.0/24 and the open one
// 10.98.<n+1>.0/24, each with an attacker (.10) and a victim (.11), and
// checks that the gateway and both sandboxes know each other's MACs.
func spoofNets(t *testing.T, w *testenv.World, n int) (guarded, open spoofNet) {
	t.Helper()
	return spoofNetwork(t, w, n, true), spoofNetwork(t, w, n+1, false)
}

func spoofNetwork(t *testing.T, w *testenv.World, third int, guarded bool) spoofNet {
	t.Helper()
	prefix := fmt.Sprintf("10.98.%d.", third)
	s := spoofNet{name: w.Name(fmt.Sprintf("n%d", third)), guarded: guarded, gateway: netip.MustParseAddr(prefix + "1")}
	args := []string{"network", "create", "--subnet", prefix + "0/24", s.name}
	if !guarded {
		args = append(args, "--antispoof=false")
	}
	w.MustNsnet(t, args...)
	s.bridge = inspectNetwork(t, w, s.name).Bridge
	s.attacker = spoofSandboxOn(t, w, s.name, w.Name(fmt.Sprintf("a%d", third)), prefix+"10")
	s.victim = spoofSandboxOn(t, w, s.name, w.Name(fmt.Sprintf("v%d", third)), prefix+"11")
	for _, sb := range []spoofSandbox{s.attacker, s.victim} {
		if err := testenv.Ping(sb.name, s.gateway.String()); err != nil {
			t.Fatalf("%s cannot reach its gateway %s: %v", sb.name, s.gateway, err)
		}
	}
	return s
}

// removeSpoofNets removes the sandboxes and networks and checks that the
// world is clean, the bridge table's elements gone with them.
func removeSpoofNets(t *testing.T, w *testenv.World, nets ...spoofNet) {
	t.Helper()
	for _, s := range nets {
		w.MustNsnet(t, "sandbox", "rm", s.attacker.name, s.victim.name)
		w.MustNsnet(t, "network", "rm", s.name)
	}
	w.AssertClean(t)
}

func spoofSandboxOn(t *testing.T, w *testenv.World, network, name, ip string) spoofSandbox {
	t.Helper()
	w.MustNsnet(t, "sandbox", "create", "--network", network, "--ip", ip, name)
	ep := inspectSandbox(t, w, name).Networks[network]
	mac, err := net.ParseMAC(ep.MAC)
	if err != nil {
		t.Fatal(err)
	}
	return spoofSandbox{name: name, ip: netip.MustParseAddr(ip), mac: mac, veth: ep.HostVeth}
}

// udpSink is a UDP server in a namespace that records the payloads it gets
// and, if echo, sends each back.
type udpSink struct {
	mu   sync.Mutex
	seen map[string]bool
}

func startUDPSink(t *testing.T, path, addr string, echo bool) *udpSink {
	t.Helper()
	return startUDPSinkNet(t, "udp4", path, addr, echo)
}

// startUDPSinkNet is startUDPSink on network (udp4 or udp6).
func startUDPSinkNet(t *testing.T, network, path, addr string, echo bool) *udpSink {
	t.Helper()
	var pc net.PacketConn
	if err := testenv.InNS(path, func() (err error) { pc, err = net.ListenPacket(network, addr); return }); err != nil {
		t.Fatal(err)
	}
	testenv.CloseAtEnd(t, pc) // before AssertClean: the socket holds the namespace
	s := &udpSink{seen: map[string]bool{}}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.seen[string(buf[:n])] = true
			s.mu.Unlock()
			if echo {
				pc.WriteTo(buf[:n], from)
			}
		}
	}()
	return s
}

func (s *udpSink) got(payload string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[payload]
}

// within polls check for up to d.
func within(d time.Duration, check func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if check() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// attackSeen reports, for the guarded and the open network, whether seen
// says the attack got through: the open network's must (within a few
// seconds), then the guarded one's, given as long and a moment more, must
// not.
func attackSeen(t *testing.T, what string, guarded, open spoofNet, seen func(spoofNet) bool) {
	t.Helper()
	if !within(5*time.Second, func() bool { return seen(open) }) {
		t.Errorf("%s on network %s with --antispoof=false: not seen, so this test cannot see the attack", what, open.name)
	}
	time.Sleep(500 * time.Millisecond)
	if seen(guarded) {
		t.Errorf("%s on guarded network %s: it got through", what, guarded.name)
	}
}

// sendFrom sends payload three times over UDP from the address and port
// from, which an interface of the namespace at nsPath holds, to to.
func sendFrom(nsPath string, from, to netip.AddrPort, payload []byte) error {
	return testenv.InNS(nsPath, func() error {
		c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(from), net.UDPAddrFromAddrPort(to))
		if err != nil {
			return err
		}
		defer c.Close()
		for range 3 {
			if _, err := c.Write(payload); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestSpoofIP: a sandbox that adds its neighbour's address and sends from
// it reaches neither the internet nor, with the internet's reply, its
// neighbour, unless the network has --antispoof=false.
func TestSpoofIP(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	guarded, open := spoofNets(t, w, 1)
	server := startUDPSink(t, w.InetPath(), "198.51.100.7:9999", true)
	victims := map[string]*udpSink{}
	for _, s := range []spoofNet{guarded, open} {
		victims[s.name] = startUDPSink(t, s.victim.path(), "0.0.0.0:5555", false)
		mustRun(t, s.attacker.name, "ip", "addr", "add", s.victim.ip.String()+"/32", "dev", "eth0")
		payload := []byte("spoofed source on " + s.name)
		err := sendFrom(s.attacker.path(), netip.AddrPortFrom(s.victim.ip, 5555), netip.MustParseAddrPort("198.51.100.7:9999"), payload)
		if err != nil {
			t.Fatalf("send from %s's address in %s: %v", s.victim.name, s.attacker.name, err)
		}
	}
	attackSeen(t, "the internet getting a datagram from the neighbour's address", guarded, open, func(s spoofNet) bool {
		return server.got("spoofed source on " + s.name)
	})
	attackSeen(t, "the neighbour getting the internet's reply to it", guarded, open, func(s spoofNet) bool {
		return victims[s.name].got("spoofed source on " + s.name)
	})
	// The guarded attacker still sends from its own address.
	if err := testenv.Ping(guarded.attacker.name, "198.51.100.7"); err != nil {
		t.Errorf("the guarded attacker cannot reach the internet from its own address: %v", err)
	}
	removeSpoofNets(t, w, guarded, open)
}

// fdbPort is the bridge port that bridge's forwarding database has learnt
// mac on ("" if none).
func fdbPort(t *testing.T, w *testenv.World, bridge string, mac net.HardwareAddr) string {
	t.Helper()
	out, err := testenv.RunIn(w.Host, "bridge", "-j", "fdb", "show", "br", bridge)
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		MAC    string `json:"mac"`
		IfName string `json:"ifname"`
		Flags  []string
	}
	decode(t, out, &entries)
	for _, e := range entries {
		if e.MAC == mac.String() && e.IfName != bridge {
			return e.IfName
		}
	}
	return ""
}

// TestSpoofMAC: a sandbox that takes its neighbour's MAC gets nothing
// through to the internet and does not steal the neighbour's traffic (the
// bridge keeps the MAC on the neighbour's port), unless the network has
// --antispoof=false.
func TestSpoofMAC(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	guarded, open := spoofNets(t, w, 3)
	server := startUDPSink(t, w.InetPath(), "198.51.100.7:9999", false)
	for _, s := range []spoofNet{guarded, open} {
		if port := fdbPort(t, w, s.bridge, s.victim.mac); port != s.victim.veth {
			t.Fatalf("bridge %s has the victim's MAC on %q before the attack, want %s", s.bridge, port, s.victim.veth)
		}
		mustRun(t, s.attacker.name, "ip", "link", "set", "dev", "eth0", "address", s.victim.mac.String())
		payload := "stolen MAC on " + s.name
		err := testenv.InNS(s.attacker.path(), func() error {
			c, err := net.Dial("udp4", "198.51.100.7:9999")
			if err != nil {
				return err
			}
			defer c.Close()
			for range 3 {
				if _, err := c.Write([]byte(payload)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("send with %s's MAC from %s: %v", s.victim.name, s.attacker.name, err)
		}
	}
	attackSeen(t, "the internet getting a datagram sent with the neighbour's MAC", guarded, open, func(s spoofNet) bool {
		return server.got("stolen MAC on " + s.name)
	})
	attackSeen(t, "the bridge moving the neighbour's MAC to the attacker's port", guarded, open, func(s spoofNet) bool {
		return fdbPort(t, w, s.bridge, s.victim.mac) == s.attacker.veth
	})
	removeSpoofNets(t, w, guarded, open)
}

// neighbourMAC is the MAC that ns's neighbour table has for ip ("" if none).
func neighbourMAC(t *testing.T, ns string, ip netip.Addr) string {
	t.Helper()
	out, err := testenv.RunIn(ns, "ip", "-j", "neigh", "show", "to", ip.String())
	if err != nil {
		t.Fatal(err)
	}
	var ns2 []testenv.Neigh
	if err := json.Unmarshal([]byte(out), &ns2); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	for _, n := range ns2 {
		if n.Dst == ip.String() {
			return n.LLAddr
		}
	}
	return ""
}

// TestSpoofARP: gratuitous ARP from a sandbox claiming its neighbour's
// address or the gateway's poisons neither the host's neighbour table nor
// the neighbour's, unless the network has --antispoof=false.
func TestSpoofARP(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	guarded, open := spoofNets(t, w, 5)
	for _, s := range []spoofNet{guarded, open} {
		if got := neighbourMAC(t, w.Host, s.victim.ip); got != s.victim.mac.String() {
			t.Fatalf("the host has %q for %s before the attack, want %s", got, s.victim.ip, s.victim.mac)
		}
		if got := neighbourMAC(t, s.victim.name, s.gateway); got == "" || got == s.attacker.mac.String() {
			t.Fatalf("the victim has %q for its gateway before the attack", got)
		}
	}
	poisoned := func(s spoofNet) bool {
		return neighbourMAC(t, w.Host, s.victim.ip) == s.attacker.mac.String() &&
			neighbourMAC(t, s.victim.name, s.gateway) == s.attacker.mac.String()
	}
	raws := map[string]*rawLink{}
	for _, s := range []spoofNet{guarded, open} {
		raws[s.name] = openRaw(t, s.attacker.path(), "eth0")
	}
	// The kernel takes a gratuitous ARP only as an update of an entry it
	// has; send a few, as an attacker would, until the open network's
	// tables are poisoned.
	within(5*time.Second, func() bool {
		for _, s := range []spoofNet{guarded, open} {
			raws[s.name].send(t, garp(s.attacker.mac, s.victim.ip))
			raws[s.name].send(t, garp(s.attacker.mac, s.gateway))
		}
		return poisoned(open)
	})
	attackSeen(t, "gratuitous ARP poisoning the host's entry for the neighbour and the neighbour's for the gateway", guarded, open, poisoned)
	if got := neighbourMAC(t, w.Host, guarded.victim.ip); got != guarded.victim.mac.String() {
		t.Errorf("guarded network: the host has %q for %s, want %s", got, guarded.victim.ip, guarded.victim.mac)
	}
	if err := testenv.Ping(guarded.victim.name, "198.51.100.7"); err != nil {
		t.Errorf("the guarded victim cannot reach the internet after the attack: %v", err)
	}
	removeSpoofNets(t, w, guarded, open)
}

// TestSpoofRouterAndDHCP: a sandbox's router advertisement and DHCP server
// reply reach its neighbour only on a network with --antispoof=false.
func TestSpoofRouterAndDHCP(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	guarded, open := spoofNets(t, w, 7)
	victims, attackers := map[string]*rawLink{}, map[string]*rawLink{}
	for _, s := range []spoofNet{guarded, open} {
		victims[s.name] = openRaw(t, s.victim.path(), "eth0")
		attackers[s.name] = openRaw(t, s.attacker.path(), "eth0")
	}
	attacks := []struct {
		what  string
		frame func(spoofSandbox) []byte
		match func([]byte) bool
	}{
		{"a router advertisement", func(a spoofSandbox) []byte { return routerAdvert(a.mac) }, isRouterAdvert},
		{"a DHCP server reply", func(a spoofSandbox) []byte {
			offer := udp4(a.ip, netip.MustParseAddr("255.255.255.255"), 67, 68, []byte("DHCPOFFER"))
			return ethernet(broadcastMAC, a.mac, 0x0800, offer)
		}, func(f []byte) bool { return isUDPFromPort(f, 67) }},
	}
	for _, a := range attacks {
		seen := map[string]bool{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, s := range []spoofNet{guarded, open} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got := victims[s.name].seen(3*time.Second, func(f []byte) bool { return fromMAC(f, s.attacker.mac) && a.match(f) })
				mu.Lock()
				seen[s.name] = got
				mu.Unlock()
			}()
		}
		time.Sleep(200 * time.Millisecond)
		for _, s := range []spoofNet{guarded, open} {
			for range 3 {
				attackers[s.name].send(t, a.frame(s.attacker))
			}
		}
		wg.Wait()
		if !seen[open.name] {
			t.Errorf("%s on network %s with --antispoof=false: the victim did not see it, so this test cannot see the attack", a.what, open.name)
		}
		if seen[guarded.name] {
			t.Errorf("%s on guarded network %s: it reached the victim", a.what, guarded.name)
		}
	}
	removeSpoofNets(t, w, guarded, open)
}

// guardSet is `nft list set bridge <table> set` in the world's host.
func guardSet(t *testing.T, w *testenv.World, set string) string {
	t.Helper()
	out, err := testenv.RunIn(w.Host, "nft", "list", "set", "bridge", w.Table(), set)
	if err != nil {
		t.Fatalf("nft list set %s: %v\n%s", set, err, out)
	}
	return out
}

// guardsOf checks that set holds the element of each sandbox port in in,
// and of none in out.
func guardsOf(t *testing.T, w *testenv.World, when string, in, out []spoofSandbox) {
	t.Helper()
	ips, macs := lastingElements(guardSet(t, w, "guard-ipv4")), lastingElements(guardSet(t, w, "guard-mac"))
	for _, sb := range in {
		if !strings.Contains(ips, fmt.Sprintf("%q . %s", sb.veth, sb.ip)) || !strings.Contains(macs, fmt.Sprintf("%q . %s", sb.veth, sb.mac)) {
			t.Errorf("%s: the bridge table does not guard %s's port %s:\n%s%s", when, sb.name, sb.veth, ips, macs)
		}
	}
	for _, sb := range out {
		if strings.Contains(ips+macs, fmt.Sprintf("%q", sb.veth)) {
			t.Errorf("%s: the bridge table guards %s's port %s:\n%s%s", when, sb.name, sb.veth, ips, macs)
		}
	}
}

// lastingElements are the elements of a set's listing that do not expire:
// the elements of a port that went expire (in a second) rather than being
// deleted.
func lastingElements(list string) string {
	var keep []string
	for _, e := range strings.Split(list, ",") {
		if !strings.Contains(e, "expires") {
			keep = append(keep, e)
		}
	}
	return strings.Join(keep, ",")
}

// guardsExpire waits until no element of sbs's ports is left, expiring or
// not.
func guardsExpire(t *testing.T, w *testenv.World, sbs ...spoofSandbox) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		sets := guardSet(t, w, "guard-ipv4") + guardSet(t, w, "guard-mac")
		left := slices.ContainsFunc(sbs, func(sb spoofSandbox) bool { return strings.Contains(sets, fmt.Sprintf("%q", sb.veth)) })
		if !left {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("elements of removed sandboxes' ports are still there after 5 s:\n%s", sets)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSpoofElements: attaching a sandbox to a guarded network adds its
// port's elements and detaching lets them expire (gone within a second), a network with
// --antispoof=false adds none; gc puts back a missing element and removes a
// stranger's, firewall reload rebuilds the table after a flush.
func TestSpoofElements(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	g, o := w.Name("g"), w.Name("o")
	w.MustNsnet(t, "network", "create", "--subnet", "10.98.9.0/24", g)
	w.MustNsnet(t, "network", "create", "--subnet", "10.98.10.0/24", "--antispoof=false", o)
	if n := inspectOne[map[string]any](t, w, "network", o); n["antispoof"] != false {
		t.Errorf("network inspect %s: antispoof %v, want false", o, n["antispoof"])
	}
	s1 := spoofSandboxOn(t, w, g, w.Name("s1"), "10.98.9.10")
	s2 := spoofSandboxOn(t, w, o, w.Name("s2"), "10.98.10.10")
	guardsOf(t, w, "after sandbox create", []spoofSandbox{s1}, []spoofSandbox{s2})

	w.MustNsnet(t, "network", "connect", "--ip", "10.98.9.20", g, s2.name)
	ep := inspectSandbox(t, w, s2.name).Networks[g]
	mac, _ := net.ParseMAC(ep.MAC)
	s2g := spoofSandbox{name: s2.name, ip: netip.MustParseAddr("10.98.9.20"), mac: mac, veth: ep.HostVeth}
	guardsOf(t, w, "after network connect", []spoofSandbox{s1, s2g}, []spoofSandbox{s2})
	w.MustNsnet(t, "network", "disconnect", g, s2.name)
	guardsOf(t, w, "after network disconnect", []spoofSandbox{s1}, []spoofSandbox{s2, s2g})

	mustRun(t, w.Host, "nft", "delete", "element", "bridge", w.Table(), "guard-mac", fmt.Sprintf("{ %q . %s }", s1.veth, s1.mac))
	gcPending(t, w, "set guard-mac: 1 elements missing")
	w.MustNsnet(t, "gc")
	guardsOf(t, w, "after gc put a deleted element back", []spoofSandbox{s1}, nil)
	gcClean(t, w, "after gc")

	mustRun(t, w.Host, "nft", "add", "element", "bridge", w.Table(), "guard-ipv4", `{ "vethdead" . 10.98.9.99 }`)
	gcPending(t, w, "set guard-ipv4: 0 elements missing, 1 not nsnet's")
	w.MustNsnet(t, "gc")
	if set := guardSet(t, w, "guard-ipv4"); strings.Contains(set, "vethdead") {
		t.Errorf("gc left a stranger's element:\n%s", set)
	}

	mustRun(t, w.Host, "nft", "flush", "ruleset")
	w.MustNsnet(t, "firewall", "reload")
	guardsOf(t, w, "after nft flush ruleset and firewall reload", []spoofSandbox{s1}, []spoofSandbox{s2})
	gcClean(t, w, "after firewall reload")

	w.MustNsnet(t, "sandbox", "rm", s1.name, s2.name)
	guardsOf(t, w, "after sandbox rm", nil, []spoofSandbox{s1, s2})
	guardsExpire(t, w, s1, s2, s2g)
	w.MustNsnet(t, "network", "rm", g, o)
	w.AssertClean(t)
}

// TestReleasedPortSendsNothing: a removed sandbox's veth, released with its
// namespace, stays up on its bridge until the kernel destroys the namespace
// (here an open descriptor holds it, as something may). After its MAC and
// addresses have expired from the bridge table, its port stays guarded:
// whatever is still sent from the namespace, even from the sandbox's own
// address, goes nowhere, unless the network has --antispoof=false; so after
// an outside nft flush ruleset and nsnet firewall reload too.
func TestReleasedPortSendsNothing(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	guarded, open := spoofNets(t, w, 9)
	sinks, held, files := map[string]*udpSink{}, map[string]string{}, []*os.File{}
	for _, s := range []spoofNet{guarded, open} {
		sinks[s.name] = startUDPSink(t, s.victim.path(), "0.0.0.0:5555", false)
		f, err := os.Open(s.attacker.path())
		if err != nil {
			t.Fatal(err)
		}
		testenv.CloseAtEnd(t, f)
		files = append(files, f)
		held[s.name] = fmt.Sprintf("/proc/self/fd/%d", f.Fd())
		w.MustNsnet(t, "sandbox", "rm", s.attacker.name)
		if l := mustLink(t, w.Host, s.attacker.veth); !l.IsUp() {
			t.Fatalf("the released veth %s is down (flags %v): this test needs it up", s.attacker.veth, l.Flags)
		}
	}
	time.Sleep(2 * time.Second) // the removed sandbox's MAC and addresses expire after a second
	attack := func(when string) {
		t.Helper()
		for _, s := range []spoofNet{guarded, open} {
			payload := []byte("from the released port on " + s.name + " " + when)
			if err := sendFrom(held[s.name], netip.AddrPortFrom(s.attacker.ip, 5555), netip.AddrPortFrom(s.victim.ip, 5555), payload); err != nil {
				t.Fatalf("send from the held namespace of %s: %v", s.attacker.name, err)
			}
		}
		attackSeen(t, "a datagram from a removed sandbox's namespace, still held, "+when, guarded, open, func(s spoofNet) bool {
			return sinks[s.name].got("from the released port on " + s.name + " " + when)
		})
	}
	attack("after its removal")
	// An outside nft flush ruleset, and the firewall rebuilt from the store.
	mustRun(t, w.Host, "nft", "flush", "ruleset")
	w.MustNsnet(t, "firewall", "reload")
	attack("after a flush and a reload")
	for _, f := range files {
		f.Close() // the kernel destroys the namespaces, and the released veths with them
	}
	for _, s := range []spoofNet{guarded, open} {
		w.MustNsnet(t, "sandbox", "rm", s.victim.name)
		w.MustNsnet(t, "network", "rm", s.name)
	}
	w.AssertClean(t)
}
