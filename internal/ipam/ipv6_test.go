package ipam

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseSubnet6(t *testing.T) {
	tests := []struct {
		in      string
		wantErr []string
	}{
		{in: "fd00:1::/64"},
		{in: "2001:db8:5::/48"},
		{in: "fd00:1::/126"},
		{in: "2001::/16"},

		{in: "fd00:1::", wantErr: []string{"expected CIDR notation"}},
		{in: "10.0.0.0/24", wantErr: []string{"not IPv6"}},
		{in: "fd00:1::1/64", wantErr: []string{"host bits", "did you mean fd00:1::/64?"}},
		{in: "fd00:1::/127", wantErr: []string{"between /16 and /126"}},
		{in: "fd00:1::/128", wantErr: []string{"between /16 and /126"}},
		{in: "fd00::/15", wantErr: []string{"between /16 and /126"}},
		{in: "ff00::/16", wantErr: []string{"multicast"}},
		{in: "fe80::/64", wantErr: []string{"link-local"}},
		{in: "::1/128", wantErr: []string{"loopback"}},
		{in: "::/64", wantErr: []string{"unspecified"}},
		{in: "::ffff:10.0.0.0/120", wantErr: []string{"IPv4-mapped"}},
		{in: "::/0", wantErr: []string{"overlaps"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSubnet6(tt.in)
			if tt.wantErr == nil {
				if err != nil || got.String() != tt.in {
					t.Fatalf("ParseSubnet6(%q) = %v, %v", tt.in, got, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseSubnet6(%q) = %v, want an error", tt.in, got)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseSubnet6(%q) error %q does not contain %q", tt.in, err, w)
				}
			}
		})
	}
}

// TestULAPool: the default IPv6 pool is a unique local /48 (fd00::/8),
// carved into /64s, the same for one host ID and another for another.
func TestULAPool(t *testing.T) {
	a, b := ULAPool("host-a"), ULAPool("host-b")
	if a != ULAPool("host-a") {
		t.Errorf("ULAPool is not stable: %v, then %v", a, ULAPool("host-a"))
	}
	if a == b {
		t.Errorf("two hosts share the pool %v", a)
	}
	ula := netip.MustParsePrefix("fd00::/8")
	for _, p := range []Pool{a, b} {
		if !ula.Contains(p.Base.Addr()) || p.Base.Bits() != 48 || p.Size != 64 || p.Base.Masked() != p.Base {
			t.Errorf("pool %v: want a /48 in fd00::/8 carved into /64s", p)
		}
	}
	mine := Pool{Base: pfx("2001:db8:5::/48"), Size: 64}
	if got := Pools6([]Pool{DefaultPools[0], mine}, "host-a"); len(got) != 1 || got[0] != mine {
		t.Errorf("Pools6 with an IPv6 pool given = %v, want only it", got)
	}
	if got := Pools6(DefaultPools, "host-a"); len(got) != 1 || got[0] != a {
		t.Errorf("Pools6 with IPv4 pools only = %v, want the ULA pool %v", got, a)
	}
	if got := Pools4([]Pool{DefaultPools[0], mine}); len(got) != 1 || got[0] != DefaultPools[0] {
		t.Errorf("Pools4 = %v", got)
	}
}

// TestPickSubnet6 carves /64s from an IPv6 pool past taken subnets and
// host routes, and says when the pool is used up.
func TestPickSubnet6(t *testing.T) {
	pool := []Pool{{Base: pfx("fd12:3456:789a::/48"), Size: 64}}
	taken := []netip.Prefix{pfx("fd12:3456:789a::/64"), pfx("fd12:3456:789a:1::/64"), pfx("fd12:3456:789a:2::/63"), pfx("10.0.0.0/8")}
	got, err := PickSubnet(pool, taken)
	if err != nil || got != pfx("fd12:3456:789a:4::/64") {
		t.Errorf("PickSubnet6 = %v, %v; want fd12:3456:789a:4::/64", got, err)
	}
	small := []Pool{{Base: pfx("fd00:1::/63"), Size: 64}}
	if _, err := PickSubnet(small, []netip.Prefix{pfx("fd00:1::/64"), pfx("fd00:1:0:1::/64")}); err == nil || !strings.Contains(err.Error(), "no free addresses") {
		t.Errorf("PickSubnet on a used-up IPv6 pool: %v, want exhausted", err)
	}
	if _, err := PickSubnet([]Pool{{Base: pfx("ffff:ffff:ffff:ffff::/64"), Size: 64}}, []netip.Prefix{pfx("ffff:ffff:ffff:ffff::/64")}); err == nil {
		t.Error("PickSubnet past the last IPv6 address found a subnet")
	}
}

// TestAllocate6: the first sandbox address of an IPv6 subnet follows the
// gateway; the subnet-router anycast address, the gateway and the last
// address are never handed out, nor accepted as static.
func TestAllocate6(t *testing.T) {
	s := pfx("fd00:1::/64")
	gw := DefaultGateway(s)
	if gw != netip.MustParseAddr("fd00:1::1") {
		t.Errorf("DefaultGateway(%v) = %v", s, gw)
	}
	if got := Broadcast(s); got != netip.MustParseAddr("fd00:1::ffff:ffff:ffff:ffff") {
		t.Errorf("last address of %v = %v", s, got)
	}
	held := func(a netip.Addr) bool { return a == netip.MustParseAddr("fd00:1::2") }
	if got, err := Allocate(s, gw, held); err != nil || got != netip.MustParseAddr("fd00:1::3") {
		t.Errorf("Allocate = %v, %v; want fd00:1::3", got, err)
	}
	tiny := pfx("fd00:1::/126")
	if got, err := Allocate(tiny, DefaultGateway(tiny), func(netip.Addr) bool { return false }); err != nil || got != netip.MustParseAddr("fd00:1::2") {
		t.Errorf("Allocate in a /126 = %v, %v; want fd00:1::2", got, err)
	}
	if _, err := Allocate(tiny, DefaultGateway(tiny), func(a netip.Addr) bool { return true }); err == nil {
		t.Error("Allocate in a full /126 found an address")
	}
	none := func(netip.Addr) bool { return false }
	for ip, want := range map[string]string{
		"fd00:1::":                    "network address",
		"fd00:1::1":                   "gateway",
		"fd00:1::ffff:ffff:ffff:ffff": "last address",
		"fd00:2::5":                   "outside",
	} {
		if err := CheckStatic(s, gw, netip.MustParseAddr(ip), none); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckStatic(%s) = %v, want %q", ip, err, want)
		}
	}
	if err := CheckGateway(s, netip.MustParseAddr("fd00:1::ffff:ffff:ffff:ffff")); err == nil || !strings.Contains(err.Error(), "last address") {
		t.Errorf("CheckGateway(last address) = %v", err)
	}
}
