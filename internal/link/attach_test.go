package link

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/testenv"
)

// ipLink is what TestAttachVeth reads of a link with ip -j -d, beside
// testenv.Link.
type ipLink struct {
	testenv.Link
	Group  string `json:"group"`
	TxQLen *int   `json:"txqlen"`
}

func showLink(t *testing.T, ns, dev string) (ipLink, bool) {
	t.Helper()
	out, err := testenv.RunIn(ns, "ip", "-j", "-d", "link", "show", "dev", dev)
	if err != nil {
		if strings.Contains(out, "does not exist") {
			return ipLink{}, false
		}
		t.Fatalf("ip link show %s in %s: %v\n%s", dev, ns, err, out)
	}
	var links []ipLink
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip link show %s in %s: %v\n%s", dev, ns, err, out)
	}
	return links[0], true
}

// TestAttachVeth makes a pair with AttachVeth and checks every attribute it
// promises with ip as the oracle: the host end on its bridge, marked, with
// its MTU, device group and hairpin mode; the peer in the sandbox with its
// name, MTU, MAC, a queue length of 0, its address and default route, up,
// with lo. It also checks the refusals (no bridge, a bridge that is not the
// caller's, a name taken) and that a failure after the pair exists leaves
// no pair.
func TestAttachVeth(t *testing.T) {
	w := testenv.New(t)
	sb := w.Name("attach")
	for _, args := range [][]string{
		{"link", "add", "br-mine", "type", "bridge"},
		{"link", "set", "br-mine", "alias", "mine", "group", "7", "up"},
		{"addr", "add", "192.0.2.1/24", "dev", "br-mine"},
		{"link", "add", "br-theirs", "type", "bridge"},
		{"netns", "add", sb},
	} {
		if out, err := testenv.RunIn(w.Host, "ip", args...); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	ns, err := os.Open(testenv.NSPath(sb))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	mac := net.HardwareAddr{0x02, 0x42, 0xc0, 0x00, 0x02, 0x0a}
	veth := func(host, bridge string) Veth {
		return Veth{
			HostName: host, Bridge: bridge,
			BridgeOwned: func(alias string, group uint32) bool { return alias == "mine" && group == 7 },
			MTU:         1400, Alias: "nsnet:test " + host, Group: 7,
			NetNS: ns, PeerName: "eth0", PeerMAC: mac,
			Address: netip.MustParsePrefix("192.0.2.10/24"), Gateway: netip.MustParseAddr("192.0.2.1"),
		}
	}
	var attachErrs []error
	err = testenv.InNS(w.HostPath(), func() error {
		h, err := OpenHost()
		if err != nil {
			return err
		}
		defer h.Close()
		if err := h.AttachVeth(veth("vt-a", "br-mine")); err != nil {
			return err
		}
		failing := veth("vt-b", "br-mine")
		failing.PeerName = "eth1"
		failing.BeforeUp = func() error { return errors.New("injected") }
		for _, v := range []Veth{veth("vt-c", "br-none"), veth("vt-d", "br-theirs"), veth("vt-a", "br-mine"), veth("vt-e", "br-mine"), failing} {
			attachErrs = append(attachErrs, h.AttachVeth(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	host, _ := showLink(t, w.Host, "vt-a")
	if host.Master != "br-mine" || host.MTU != 1400 || host.IfAlias != "nsnet:test vt-a" || host.Group != "7" || !host.IsUp() {
		t.Errorf("host end: master %q, MTU %d, alias %q, group %q, flags %v; want br-mine, 1400, %q, 7, UP", host.Master, host.MTU, host.IfAlias, host.Group, host.Flags, "nsnet:test vt-a")
	}
	var port struct {
		Hairpin bool `json:"hairpin"`
	}
	if host.LinkInfo == nil || json.Unmarshal(host.LinkInfo.InfoSlaveData, &port) != nil || !port.Hairpin {
		t.Errorf("host end: not a bridge port in hairpin mode: %s", slaveData(host.LinkInfo))
	}
	// ip leaves out a queue length of 0: the host end's shows that it
	// reports one that is not.
	if host.TxQLen == nil || *host.TxQLen == 0 {
		t.Errorf("host end: txqlen %s; want the kernel's default", qlen(host.TxQLen))
	}
	peer, ok := showLink(t, sb, "eth0")
	if !ok {
		t.Fatal("no eth0 in the sandbox")
	}
	if peer.IfIndex != host.LinkIndex || peer.MTU != 1400 || peer.Address != mac.String() || (peer.TxQLen != nil && *peer.TxQLen != 0) || !peer.IsUp() {
		t.Errorf("peer: index %d (host end's link %d), MTU %d, MAC %s, txqlen %s, flags %v; want 1400, %s, 0, UP", peer.IfIndex, host.LinkIndex, peer.MTU, peer.Address, qlen(peer.TxQLen), peer.Flags, mac)
	}
	if a, _ := testenv.FindLink(testenv.Addrs(t, sb), "eth0"); strings.Join(a.IPs("inet"), ",") != "192.0.2.10/24" {
		t.Errorf("peer's addresses: %v; want 192.0.2.10/24", a.IPs("inet"))
	}
	if lo, _ := testenv.FindLink(testenv.Links(t, sb), "lo"); !lo.IsUp() {
		t.Error("lo is not up in the sandbox")
	}
	routes := testenv.Routes(t, sb)
	if !hasRoute(routes, "default", "192.0.2.1", "eth0") {
		t.Errorf("no default route via 192.0.2.1 on eth0: %+v", routes)
	}
	if out, err := testenv.RunIn(sb, "ping", "-c1", "-W2", "192.0.2.1"); err != nil {
		t.Errorf("the sandbox cannot reach the gateway: %v\n%s", err, out)
	}

	for i, want := range []string{"bridge does not exist", "bridge is not ours", "already has an interface named eth0", "already has an interface named eth0", "injected"} {
		if err := attachErrs[i]; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %d: %v; want an error saying %q", i, err, want)
		}
	}
	if !errors.Is(attachErrs[0], ErrNoBridge) || !errors.Is(attachErrs[1], ErrForeignBridge) {
		t.Errorf("errors %v and %v are not ErrNoBridge and ErrForeignBridge", attachErrs[0], attachErrs[1])
	}
	for _, name := range []string{"vt-c", "vt-d", "vt-e", "vt-b"} {
		if _, ok := showLink(t, w.Host, name); ok {
			t.Errorf("%s is left on the host after a failed attach", name)
		}
	}
	if _, ok := showLink(t, sb, "eth1"); ok {
		t.Error("eth1 is left in the sandbox after a failed attach")
	}
}

func hasRoute(routes []testenv.Route, dst, gw, dev string) bool {
	for _, r := range routes {
		if r.Dst == dst && r.Gateway == gw && r.Dev == dev {
			return true
		}
	}
	return false
}

func qlen(n *int) string {
	if n == nil {
		return "(none)"
	}
	return strconv.Itoa(*n)
}

func slaveData(l *testenv.LinkInfo) string {
	if l == nil {
		return "(no linkinfo)"
	}
	return string(l.InfoSlaveData)
}
