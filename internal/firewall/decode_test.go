package firewall

import (
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables/expr"

	"github.com/nsnet/nsnet/internal/testenv"
)

// TestDecodeRule decodes rules as nsnet's own helpers build them (no root):
// the conditions diagnose can follow, and what it cannot.
func TestDecodeRule(t *testing.T) {
	tests := []struct {
		name  string
		exprs []expr.Any
		want  string
	}{
		{"names and addresses",
			cat(ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, "br0"), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, "br0"),
				saddrIn(netip.MustParsePrefix("10.1.0.0/16")), daddrIn(netip.MustParsePrefix("192.0.2.7/32")), drop()),
			"iifname br0 oifname != br0 saddr 10.1.0.0/16 daddr 192.0.2.7/32 drop"},
		{"conntrack", cat(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), accept()), "ct state { established, related } accept"},
		{"dnat status", cat(ctStatusDNAT(), accept()), "ct status dnat accept"},
		{"a wildcard name", cat([]expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Register: 1, Data: []byte("veth")}}, accept()),
			"iifname veth* accept"},
		{"protocol and port", []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Register: 1, Data: []byte{6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}, &expr.Cmp{Register: 1, Data: []byte{0, 80}},
			&expr.Reject{}}, "l4proto tcp dport 80 reject"},
		{"jump", []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictJump, Chain: "DOCKER-USER"}}, "jump DOCKER-USER"},
		{"not followed", []expr.Any{&expr.Match{Name: "conntrack"}, &expr.Verdict{Kind: expr.VerdictAccept}}, "iptables match conntrack accept"},
		{"a set nsnet cannot read", cat(lookupIfname(expr.MetaKeyOIFNAME, "bridges"), drop()), "oifname in set @bridges drop"},
		{"a verdict map", []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: "vm"}}, "a lookup in map @vm maybe"},
		{"counts only", []expr.Any{&expr.Counter{}}, ""},
	}
	for _, tt := range tests {
		if got := decodeRule(tt.exprs, nil).String(); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestDecodePort reads back the elements nsnet writes for published ports.
func TestDecodePort(t *testing.T) {
	for _, p := range testPorts {
		e, set := element(p)
		got, ok := decodePort(set, *e)
		if !ok || got != p {
			t.Errorf("decode %+v from %s: got %+v, %v", p, set, got, ok)
		}
	}
}

// TestChainsReadsOtherTables writes other tables with nft itself (the
// oracle) and checks what Chains decodes of them: base chains with hook,
// priority and policy, the chains they jump to, rules with names,
// addresses, ports, conntrack states and sets; nsnet's own table is left
// out.
func TestChainsReadsOtherTables(t *testing.T) {
	w, tab := world(t)
	if err := tab.Sync(testNets, testPorts, nil); err != nil {
		t.Fatal(err)
	}
	rules := `table ip filter {
	set up { type ifname; elements = { "eth0", "eth1" } }
	chain FORWARD { type filter hook forward priority 0; policy drop;
		iifname "br0" oifname != "eth*" ip saddr 10.0.0.0/8 tcp dport 80 ct state established,related accept
		oifname @up accept
		jump USER
	}
	chain USER {
		ip daddr 192.0.2.0/24 counter drop
		return
	}
}
table bridge nat {
	chain pre { type filter hook prerouting priority -300; }
}
`
	if out, err := testenv.RunIn(w.Host, "nft", "-f", writeTemp(t, rules)); err != nil {
		t.Fatalf("nft -f: %v\n%s", err, out)
	}
	chains, err := tab.Chains()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range chains {
		line := c.Family + " " + c.Table + " " + c.Name + " hook=" + c.Hook + " policy=" + c.Policy
		for _, r := range c.Rules {
			line += " | " + r.String()
		}
		got = append(got, line)
	}
	slices.Sort(got)
	want := []string{
		"bridge nat pre hook=prerouting policy=accept",
		"ip filter FORWARD hook=forward policy=drop | iifname br0 oifname != eth* saddr 10.0.0.0/8 l4proto tcp dport 80 ct state { established, related } accept" +
			" | oifname { eth0, eth1 } accept | jump USER",
		"ip filter USER hook= policy= | daddr 192.0.2.0/24 drop | return",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("chains:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	view, err := tab.Observe()
	if err != nil || !view.Exists || len(view.Ports) != len(testPorts) {
		t.Fatalf("Observe: %+v, %v", view, err)
	}
	for _, p := range testPorts {
		if !slices.Contains(view.Ports, p) {
			t.Errorf("Observe lacks port %+v: %+v", p, view.Ports)
		}
	}
	if err := tab.Sync(nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if view, err := tab.Observe(); err != nil || view.Exists {
		t.Errorf("Observe after the table is gone: %+v, %v", view, err)
	}
	testenv.RunIn(w.Host, "nft", "flush", "ruleset")
}

func writeTemp(t *testing.T, s string) string {
	t.Helper()
	p := t.TempDir() + "/rules.nft"
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
