package types

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

// TestRecordsBeforeIPv6: a network and an endpoint stored before IPv6
// (without its fields) read back as IPv4-only, and an IPv4-only one is
// written without them, as before.
func TestRecordsBeforeIPv6(t *testing.T) {
	old := `{"id":"1","name":"n1","bridge":"br-1","subnet":"10.1.0.0/24","gateway":"10.1.0.1","internal":false,"mtu":1500,"bridge_mac":"02:42:0a:01:00:01","created":"2026-01-01T00:00:00Z"}`
	var n Network
	if err := json.Unmarshal([]byte(old), &n); err != nil {
		t.Fatal(err)
	}
	if n.IPv6() || n.Subnet6.IsValid() || n.Gateway6.IsValid() || n.NoMasquerade {
		t.Errorf("an old record reads as %+v", n)
	}
	raw, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"subnet6", "gateway6", "no_masquerade"} {
		if strings.Contains(string(raw), k) {
			t.Errorf("an IPv4-only network is written with %s: %s", k, raw)
		}
	}
	var ep Endpoint
	if err := json.Unmarshal([]byte(`{"network":"n1","ifname":"eth0","address":"10.1.0.2/24","mac":"02:42:0a:01:00:02","gateway":"10.1.0.1","host_veth":"veth1"}`), &ep); err != nil {
		t.Fatal(err)
	}
	if ep.Address6.IsValid() || ep.Gateway6.IsValid() {
		t.Errorf("an old endpoint reads as %+v", ep)
	}
	n.Subnet6, n.Gateway6 = netip.MustParsePrefix("fd00:1::/64"), netip.MustParseAddr("fd00:1::1")
	raw, _ = json.Marshal(n)
	var back Network
	if err := json.Unmarshal(raw, &back); err != nil || back.Subnet6 != n.Subnet6 || back.Gateway6 != n.Gateway6 || !back.IPv6() {
		t.Errorf("a dual-stack network round trip: %+v, %v", back, err)
	}
}

// TestMappingOverlapsIPv6: :: is every IPv6 host address; an unset host
// address is every address of both families.
func TestMappingOverlapsIPv6(t *testing.T) {
	m := func(ip string) Mapping {
		out := Mapping{Proto: "tcp", HostPort: 8080}
		if ip != "" {
			out.HostIP = netip.MustParseAddr(ip)
		}
		return out
	}
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"", "::", true}, {"", "2001:db8::2", true}, {"::", "2001:db8::2", true}, {"::", "127.0.0.1", false},
		{"2001:db8::2", "2001:db8::3", false}, {"2001:db8::2", "192.0.2.1", false}, {"::", "::", true},
	} {
		if got := m(c.a).Overlaps(m(c.b)); got != c.want {
			t.Errorf("%q overlaps %q: %v, want %v", c.a, c.b, got, c.want)
		}
	}
	if got := m("::").String(); got != "0/tcp -> [::]:8080" {
		t.Errorf("String of a [::] mapping: %q", got)
	}
}
