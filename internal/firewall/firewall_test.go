package firewall

import (
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/testenv"
)

// world returns a table in a throwaway world's host namespace.
func world(t *testing.T) (*testenv.World, Table) {
	t.Helper()
	w := testenv.New(t)
	f, err := os.Open(w.HostPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return w, Table{Name: "nsnet-test", NetNS: int(f.Fd())}
}

var (
	testNets = []Network{
		{Name: "n1", Bridge: "br-n1", Subnet: netip.MustParsePrefix("10.96.0.0/24"), Gateway: netip.MustParseAddr("10.96.0.1")},
		{Name: "in", Bridge: "br-in", Subnet: netip.MustParsePrefix("10.97.0.0/24"), Gateway: netip.MustParseAddr("10.97.0.1"), Internal: true},
		{Name: "iso", Bridge: "br-iso", Subnet: netip.MustParsePrefix("10.98.0.0/24"), Gateway: netip.MustParseAddr("10.98.0.1"),
			NoMasquerade: true, NoICC: true},
	}
	testPorts = []Port{
		{Proto: "tcp", HostPort: 8080, CtrIP: netip.MustParseAddr("10.96.0.10"), CtrPort: 80},
		{Proto: "udp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 5353, CtrIP: netip.MustParseAddr("10.96.0.10"), CtrPort: 53},
	}
	testGuards = []Guard{
		{Port: "ve-a", MAC: net.HardwareAddr{0x02, 0x42, 0x0a, 0x60, 0, 0x0a}, Addrs: []netip.Addr{netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("2001:db8:96::10")}},
		{Port: "ve-b", MAC: net.HardwareAddr{0x02, 0x42, 0x0a, 0x60, 0, 0x0b}, Addrs: []netip.Addr{netip.MustParseAddr("10.96.0.11")}},
	}
)

func mustDiff(t *testing.T, tab Table, nets []Network, ports []Port) []string {
	t.Helper()
	d, err := tab.Diff(nets, ports, testGuards)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func nft(t *testing.T, w *testenv.World, args ...string) {
	t.Helper()
	if out, err := testenv.RunIn(w.Host, "nft", args...); err != nil {
		t.Fatalf("nft %v: %v\n%s", args, err, out)
	}
}

// TestDiffSeesEveryDrift writes the table, then changes it from outside in
// each way and checks that Diff reports it and Sync repairs it.
func TestDiffSeesEveryDrift(t *testing.T) {
	t.Parallel()
	w, tab := world(t)
	if d := mustDiff(t, tab, nil, nil); len(d) != 0 {
		t.Fatalf("no networks and no table: diff %v", d)
	}
	if err := tab.Sync(testNets, testPorts, testGuards); err != nil {
		t.Fatal(err)
	}
	if d := mustDiff(t, tab, testNets, testPorts); len(d) != 0 {
		t.Fatalf("right after Sync: diff %v", d)
	}
	// n1 has both rules (the control); iso, without icc and routed, neither.
	ruleset, err := testenv.RunIn(w.Host, "nft", "list", "table", "inet", tab.Name)
	if err != nil {
		t.Fatalf("nft list table: %v\n%s", err, ruleset)
	}
	for rule, want := range map[string]bool{
		"nsnet network n1: within the network": true, "nsnet network n1: masquerade": true,
		"nsnet network iso: within the network": false, "nsnet network iso: masquerade": false,
	} {
		if got := strings.Contains(ruleset, `"`+rule+`"`); got != want {
			t.Errorf("rule %q in the table: %t, want %t\n%s", rule, got, want, ruleset)
		}
	}
	drifts := []struct {
		name, want string
		args       []string
	}{
		{"rule body", "chain postrouting rule 1", []string{"replace", "rule", "inet", tab.Name, "postrouting", "handle", "HANDLE", "ip", "saddr", "10.96.0.0/16", "masquerade", "comment", `"nsnet network n1: masquerade"`}},
		{"extra rule", "chain forward has", []string{"insert", "rule", "inet", tab.Name, "forward", "accept"}},
		{"policy", "chain forward has another", []string{"add", "chain", "inet", tab.Name, "forward", "{ policy drop; }"}},
		{"map element", "set ports-any-ip", []string{"add", "element", "inet", tab.Name, "ports-any-ip", "{ tcp . 9999 : 10.96.0.99 . 80 }"}},
		{"set element", "set bridges", []string{"delete", "element", "inet", tab.Name, "bridges", `{ "br-n1" }`}},
		{"guard rule", "chain from-sandbox-ip has", []string{"insert", "rule", "bridge", tab.Name, "from-sandbox-ip", "accept"}},
		{"guard chain", "chain from-sandbox-arp has 0 rules", []string{"flush", "chain", "bridge", tab.Name, "from-sandbox-arp"}},
		{"guard element", "set guard-ipv4: 1 elements missing", []string{"delete", "element", "bridge", tab.Name, "guard-ipv4", `{ "ve-b" . 10.96.0.11 }`}},
		{"stranger guard element", "set guard-mac: 0 elements missing, 1 not", []string{"add", "element", "bridge", tab.Name, "guard-mac", `{ "ve-c" . 02:42:0a:60:00:0c }`}},
		{"bridge table", "table bridge nsnet-test is missing", []string{"delete", "table", "bridge", tab.Name}},
		{"traffic within a network without icc", "chain forward has", []string{"insert", "rule", "inet", tab.Name, "forward",
			"iifname", `"br-iso"`, "oifname", `"br-iso"`, "accept"}},
		{"masquerade of a routed network", "chain postrouting has", []string{"add", "rule", "inet", tab.Name, "postrouting",
			"ip", "saddr", "10.98.0.0/24", "masquerade"}},
		{"flush", "table inet nsnet-test is missing", []string{"flush", "ruleset"}},
	}
	for _, d := range drifts {
		args := d.args
		if args[len(args)-1] == `"nsnet network n1: masquerade"` {
			args = withHandle(t, w, tab.Name, "postrouting", args)
		}
		nft(t, w, args...)
		got := mustDiff(t, tab, testNets, testPorts)
		if !strings.Contains(strings.Join(got, "\n"), d.want) {
			t.Errorf("%s: diff %q, want one containing %q", d.name, got, d.want)
		}
		if err := tab.Sync(testNets, testPorts, testGuards); err != nil {
			t.Fatal(err)
		}
		if got := mustDiff(t, tab, testNets, testPorts); len(got) != 0 {
			t.Errorf("%s: after Sync still %v", d.name, got)
		}
	}
	if err := tab.Sync(nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if ok, err := tab.Exists(); ok || err != nil {
		t.Errorf("Sync with no networks left the table (%v)", err)
	}
	if tables := testenv.NftTables(t, w.Host); len(tables) != 0 {
		t.Errorf("Sync with no networks left tables %v", tables)
	}
}

// withHandle puts the handle of the chain's first rule in place of HANDLE.
func withHandle(t *testing.T, w *testenv.World, table, chain string, args []string) []string {
	t.Helper()
	out, err := testenv.RunIn(w.Host, "nft", "-a", "list", "chain", "inet", table, chain)
	if err != nil {
		t.Fatal(err)
	}
	h := ""
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "# handle "); i >= 0 && strings.Contains(line, "comment") && h == "" {
			h = strings.TrimSpace(line[i+len("# handle "):])
		}
	}
	if h == "" {
		t.Fatalf("no rule handle in %s", out)
	}
	res := append([]string(nil), args...)
	for k, a := range res {
		if a == "HANDLE" {
			res[k] = h
		}
	}
	return res
}

// TestDiffDualStack: a table written for a dual-stack network and IPv6
// ports reads back as written (the kernel reports some registers under
// other numbers: the rules must be built with those), and Diff sees an IPv6
// port element taken away; a table without dual-stack networks has no IPv6
// maps. Not parallel: google/nftables numbers new sets with a package-level
// counter that it increments without a lock, so two Syncs at once in one
// process race (as TestDiffSeesEveryDrift runs one).
func TestDiffDualStack(t *testing.T) {
	w, tab := world(t)
	nets := append([]Network{{Name: "n6", Bridge: "br-n6", Subnet: netip.MustParsePrefix("10.98.0.0/24"), Gateway: netip.MustParseAddr("10.98.0.1"),
		Subnet6: netip.MustParsePrefix("fd00:98::/64"), Gateway6: netip.MustParseAddr("fd00:98::1")}}, testNets...)
	nets[2].Subnet6, nets[2].Gateway6 = netip.MustParsePrefix("fd00:97::/64"), netip.MustParseAddr("fd00:97::1") // internal, dual-stack
	ports := append([]Port{
		{Proto: "tcp", HostPort: 8080, CtrIP: netip.MustParseAddr("fd00:98::10"), CtrPort: 80},
		{Proto: "tcp", HostIP: netip.IPv6Unspecified(), HostPort: 8081, CtrIP: netip.MustParseAddr("fd00:98::10"), CtrPort: 81},
		{Proto: "udp", HostIP: netip.MustParseAddr("2001:db8::2"), HostPort: 5353, CtrIP: netip.MustParseAddr("fd00:98::10"), CtrPort: 53},
	}, testPorts...)
	if err := tab.Sync(nets, ports, testGuards); err != nil {
		t.Fatal(err)
	}
	if d := mustDiff(t, tab, nets, ports); len(d) != 0 {
		t.Errorf("diff right after Sync: %v", d)
	}
	nft(t, w, "delete", "element", "inet", tab.Name, "ports6-by-ip", "{ 2001:db8::2 . udp . 5353 }")
	if d := mustDiff(t, tab, nets, ports); len(d) != 1 || !strings.Contains(d[0], "ports6-by-ip") {
		t.Errorf("diff after an IPv6 element went: %v", d)
	}
	if err := tab.Sync(testNets, testPorts, testGuards); err != nil {
		t.Fatal(err)
	}
	out, err := testenv.RunIn(w.Host, "nft", "list", "table", "inet", tab.Name)
	if err != nil || strings.Contains(out, "ports6") || strings.Contains(out, "ip6") {
		t.Errorf("an IPv4-only table has IPv6 maps or rules (%v):\n%s", err, out)
	}
	if err := tab.Sync(nil, nil, nil); err != nil {
		t.Fatal(err)
	}
}

// TestReleasedGuardsBlock checks, with nft as the oracle, that BlockGuards
// lets a port's MAC and addresses expire (expireAfter) but keeps the port in
// the guarded set for blockFor, so that a veth released up sends nothing;
// Diff does not count its elements.
func TestReleasedGuardsBlock(t *testing.T) {
	w, tab := world(t)
	if err := tab.Sync(testNets, testPorts, testGuards); err != nil {
		t.Fatal(err)
	}
	a, b := testGuards[:1], testGuards[1:]
	if err := tab.BlockGuards(a); err != nil {
		t.Fatal(err)
	}
	if d, err := tab.Diff(testNets, testPorts, b); err != nil || len(d) != 0 {
		t.Errorf("Diff without ve-a while it is blocked = %v, %v; want no difference", d, err)
	}
	time.Sleep(expireAfter + 500*time.Millisecond)
	for _, set := range []string{setGuarded, setMACs, setIPv4, setARP, setIPv6} {
		out, err := testenv.RunIn(w.Host, "nft", "list", "set", "bridge", tab.Name, set)
		if err != nil {
			t.Fatalf("nft list set %s: %v\n%s", set, err, out)
		}
		got := string(out)
		if set == setGuarded && !strings.Contains(got, `"ve-a" timeout 10m expires 9m`) {
			t.Errorf("set %s: ve-a should stay guarded, expiring in about %s, got\n%s", set, blockFor, got)
		}
		if set != setGuarded && strings.Contains(got, `"ve-a"`) {
			t.Errorf("set %s: ve-a's elements should have expired, got\n%s", set, got)
		}
	}
}

// TestSyncBlocksReleasedPorts: a table written with a blocked guard (a veth
// released up, from the store) has its port in the guarded set only,
// expiring after blockFor; Diff does not count it.
func TestSyncBlocksReleasedPorts(t *testing.T) {
	w, tab := world(t)
	guards := append(slices.Clone(testGuards), Guard{Port: "ve-gone", Blocked: true})
	if err := tab.Sync(testNets, testPorts, guards); err != nil {
		t.Fatal(err)
	}
	for _, set := range []string{setGuarded, setMACs, setIPv4, setARP, setIPv6} {
		out, err := testenv.RunIn(w.Host, "nft", "list", "set", "bridge", tab.Name, set)
		if err != nil {
			t.Fatalf("nft list set %s: %v\n%s", set, err, out)
		}
		if set == setGuarded && !strings.Contains(out, `"ve-gone" timeout 10m expires`) {
			t.Errorf("set %s: ve-gone should be guarded, expiring in about %s, got\n%s", set, blockFor, out)
		}
		if set != setGuarded && strings.Contains(out, `"ve-gone"`) {
			t.Errorf("set %s: ve-gone should have no elements, got\n%s", set, out)
		}
	}
	for _, want := range [][]Guard{guards, testGuards} {
		if d, err := tab.Diff(testNets, testPorts, want); err != nil || len(d) != 0 {
			t.Errorf("Diff = %v, %v; want no difference", d, err)
		}
	}
}

// TestDeletedGuardsExpire checks, with nft as the oracle, that ExpireGuards
// leaves a port's elements to expire (they are gone after expireAfter, and
// Diff does not count them meanwhile), and that guarding the same port again
// before they expire makes its elements lasting again: a port that comes
// back (network disconnect, then connect) keeps its guard.
func TestDeletedGuardsExpire(t *testing.T) {
	w, tab := world(t)
	if err := tab.Sync(testNets, testPorts, testGuards); err != nil {
		t.Fatal(err)
	}
	a, b := testGuards[:1], testGuards[1:]
	if err := tab.ExpireGuards(a); err != nil {
		t.Fatal(err)
	}
	elems := func(set string) string {
		out, err := testenv.RunIn(w.Host, "nft", "list", "set", "bridge", tab.Name, set)
		if err != nil {
			t.Fatalf("nft list set %s: %v\n%s", set, err, out)
		}
		return string(out)
	}
	for _, set := range []string{setGuarded, setMACs, setIPv4, setARP, setIPv6} {
		if got := elems(set); !strings.Contains(got, `"ve-a"`) || !strings.Contains(got, "expires") {
			t.Errorf("set %s right after ExpireGuards: want ve-a's elements expiring, got\n%s", set, got)
		}
	}
	if d, err := tab.Diff(testNets, testPorts, b); err != nil || len(d) != 0 {
		t.Errorf("Diff without ve-a while its elements expire = %v, %v; want no difference", d, err)
	}
	if err := tab.AddGuards(a); err != nil {
		t.Fatal(err)
	}
	if err := tab.ExpireGuards(b); err != nil {
		t.Fatal(err)
	}
	time.Sleep(expireAfter + 500*time.Millisecond)
	for _, set := range []string{setGuarded, setMACs, setIPv4} {
		got := elems(set)
		if !strings.Contains(got, `"ve-a"`) || strings.Contains(got, "expires") {
			t.Errorf("set %s: ve-a, guarded again, should be there for good, got\n%s", set, got)
		}
		if strings.Contains(got, `"ve-b"`) {
			t.Errorf("set %s: ve-b's elements should have expired, got\n%s", set, got)
		}
	}
	d := mustDiff(t, tab, testNets, testPorts)
	if len(d) != 4 { // ve-b has no IPv6 address: guard-ipv6 lacks nothing
		t.Errorf("Diff with ve-b expired = %v; want its elements missing from 4 sets", d)
	}
	for _, line := range d {
		if !strings.Contains(line, "1 elements missing, 0 not nsnet's") {
			t.Errorf("Diff with ve-b expired: %s; want 1 element missing", line)
		}
	}
}
