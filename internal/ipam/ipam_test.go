package ipam

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// heldSet returns a Held over the given addresses.
func heldSet(addrs ...string) Held {
	m := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		m[addr(a)] = true
	}
	return func(a netip.Addr) bool { return m[a] }
}

func noneHeld(netip.Addr) bool { return false }

func TestParseSubnet(t *testing.T) {
	tests := []struct {
		in      string
		want    string // expected prefix on success
		wantErr []string
	}{
		{in: "192.168.88.0/24", want: "192.168.88.0/24"},
		{in: "10.0.0.0/8", want: "10.0.0.0/8"},
		{in: "172.16.0.0/12", want: "172.16.0.0/12"},
		{in: "192.168.88.0/30", want: "192.168.88.0/30"},
		{in: "192.168.88.252/30", want: "192.168.88.252/30"},

		{in: "", wantErr: []string{"invalid subnet", "CIDR"}},
		{in: "garbage", wantErr: []string{`"garbage"`, "CIDR"}},
		{in: "192.168.88.0", wantErr: []string{`"192.168.88.0"`, "CIDR"}},
		{in: "192.168.88.0/", wantErr: []string{"CIDR"}},
		{in: "192.168.88.0/33", wantErr: []string{"CIDR"}},
		{in: "192.168.88.0/-1", wantErr: []string{"CIDR"}},
		{in: "192.168.888.0/24", wantErr: []string{"CIDR"}},
		{in: " 192.168.88.0/24", wantErr: []string{"CIDR"}},
		{in: "192.168.88.0/24 ", wantErr: []string{"CIDR"}},
		{in: "fd00::/64", wantErr: []string{`"fd00::/64"`, "not IPv4"}},
		{in: "::ffff:192.168.88.0/120", wantErr: []string{"not IPv4"}},
		{in: "192.168.88.1/24", wantErr: []string{"host bits", "did you mean 192.168.88.0/24?"}},
		{in: "10.1.2.3/8", wantErr: []string{"host bits", "did you mean 10.0.0.0/8?"}},
		{in: "192.168.88.5/30", wantErr: []string{"host bits", "did you mean 192.168.88.4/30?"}},
		{in: "10.0.0.0/7", wantErr: []string{`"10.0.0.0/7"`, "/8", "/30"}},
		{in: "0.0.0.0/0", wantErr: []string{"prefix length"}},
		{in: "192.168.88.0/31", wantErr: []string{`"192.168.88.0/31"`, "prefix length"}},
		{in: "192.168.88.1/32", wantErr: []string{"prefix length"}},
		{in: "127.0.0.0/8", wantErr: []string{`"127.0.0.0/8"`, "is in 127.0.0.0/8", "loopback", "private range"}},
		{in: "127.1.2.0/24", wantErr: []string{"is in 127.0.0.0/8", "loopback"}},
		{in: "0.0.0.0/8", wantErr: []string{"is in 0.0.0.0/8", "this-network"}},
		{in: "0.1.0.0/16", wantErr: []string{"is in 0.0.0.0/8"}},
		{in: "169.254.0.0/16", wantErr: []string{"is in 169.254.0.0/16", "link-local"}},
		{in: "169.254.10.0/24", wantErr: []string{"link-local"}},
		{in: "169.0.0.0/8", wantErr: []string{`"169.0.0.0/8" overlaps 169.254.0.0/16`, "link-local"}},
		{in: "224.0.0.0/8", wantErr: []string{"is in 224.0.0.0/4", "multicast"}},
		{in: "239.255.255.0/24", wantErr: []string{"multicast"}},
		{in: "240.0.0.0/8", wantErr: []string{"is in 240.0.0.0/4", "class E"}},
		{in: "255.255.255.252/30", wantErr: []string{"240.0.0.0/4", "limited broadcast"}},
		{in: "1.0.0.0/8", want: "1.0.0.0/8"},
		{in: "126.255.255.252/30", want: "126.255.255.252/30"},
		{in: "128.0.0.0/8", want: "128.0.0.0/8"},
		{in: "169.253.0.0/16", want: "169.253.0.0/16"},
		{in: "169.255.0.0/16", want: "169.255.0.0/16"},
		{in: "223.255.255.252/30", want: "223.255.255.252/30"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSubnet(tt.in)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("ParseSubnet(%q) = %v, want error", tt.in, got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("ParseSubnet(%q) error %q does not contain %q", tt.in, err, w)
					}
				}
				if got != (netip.Prefix{}) {
					t.Errorf("ParseSubnet(%q) returned %v alongside an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSubnet(%q): %v", tt.in, err)
			}
			if got != pfx(tt.want) {
				t.Errorf("ParseSubnet(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParsePool(t *testing.T) {
	tests := []struct {
		in      string
		want    Pool
		wantErr []string
	}{
		{in: "base=172.17.0.0/16,size=16", want: Pool{Base: pfx("172.17.0.0/16"), Size: 16}},
		{in: "base=10.0.0.0/8,size=24", want: Pool{Base: pfx("10.0.0.0/8"), Size: 24}},
		{in: "size=24,base=10.0.0.0/8", want: Pool{Base: pfx("10.0.0.0/8"), Size: 24}},
		{in: "base=10.0.0.0/8, size=30", want: Pool{Base: pfx("10.0.0.0/8"), Size: 30}},
		{in: "base=10.0.0.0/8,size=8", want: Pool{Base: pfx("10.0.0.0/8"), Size: 8}},

		{in: "", wantErr: []string{"unknown key"}},
		{in: "base=10.0.0.0/8", wantErr: []string{"expected base=CIDR,size=N"}},
		{in: "size=24", wantErr: []string{"expected base=CIDR,size=N"}},
		{in: "10.0.0.0/8", wantErr: []string{`unknown key "10.0.0.0/8"`}},
		{in: "base=10.0.0.0/8,size=x", wantErr: []string{`size "x" is not a number`}},
		{in: "base=10.0.0.0/8,size=", wantErr: []string{"not a number"}},
		{in: "base=10.0.0.1/8,size=24", wantErr: []string{"host bits", "did you mean 10.0.0.0/8?"}},
		{in: "base=fd00::/8,size=24", wantErr: []string{"between /16 and /126"}},
		{in: "base=fd00::/48,size=47", wantErr: []string{"between 48 and 126"}},
		{in: "base=fe80::/16,size=64", wantErr: []string{"link-local"}},
		{in: "base=10.0.0.0/8,size=7", wantErr: []string{"between 8 and 30"}},
		{in: "base=10.0.0.0/16,size=8", wantErr: []string{"between 16 and 30"}},
		{in: "base=10.0.0.0/8,size=31", wantErr: []string{"between 8 and 30"}},
		{in: "base=10.0.0.0/8,size=-1", wantErr: []string{"between"}},
		{in: "base=10.0.0.0/8,size=24,color=red", wantErr: []string{`unknown key "color"`}},
		{in: "base=127.0.0.0/8,size=24", wantErr: []string{"loopback"}},
		{in: "base=169.254.0.0/16,size=24", wantErr: []string{"link-local"}},
		{in: "base=169.0.0.0/8,size=24", wantErr: []string{"overlaps 169.254.0.0/16"}},
		{in: "base=224.0.0.0/8,size=24", wantErr: []string{"multicast"}},
		{in: "base=0.0.0.0/8,size=16", wantErr: []string{"0.0.0.0/8"}},
		{in: "base=240.0.0.0/8,size=16", wantErr: []string{"class E"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePool(tt.in)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("ParsePool(%q) = %v, want error", tt.in, got)
				}
				msg := err.Error()
				if !strings.Contains(msg, "address pool") {
					t.Errorf("ParsePool(%q) error %q does not say it is about an address pool", tt.in, msg)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(msg, w) {
						t.Errorf("ParsePool(%q) error %q does not contain %q", tt.in, msg, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePool(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParsePool(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestPoolString(t *testing.T) {
	p := Pool{Base: pfx("172.17.0.0/16"), Size: 16}
	if got, want := p.String(), "base=172.17.0.0/16,size=16"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	back, err := ParsePool(p.String())
	if err != nil || back != p {
		t.Fatalf("ParsePool(String()) = %v, %v; want %v", back, err, p)
	}
}

func TestDefaultPoolsValid(t *testing.T) {
	for _, p := range DefaultPools {
		q, err := ParsePool(p.String())
		if err != nil {
			t.Errorf("default pool %v does not parse: %v", p, err)
			continue
		}
		if q != p {
			t.Errorf("default pool %v parses back as %v", p, q)
		}
	}
}

func TestDefaultGatewayAndBroadcast(t *testing.T) {
	tests := []struct {
		subnet, gw, bcast string
	}{
		{"192.168.88.0/24", "192.168.88.1", "192.168.88.255"},
		{"10.0.0.0/8", "10.0.0.1", "10.255.255.255"},
		{"172.17.0.0/16", "172.17.0.1", "172.17.255.255"},
		{"192.168.0.0/20", "192.168.0.1", "192.168.15.255"},
		{"192.168.88.4/30", "192.168.88.5", "192.168.88.7"},
		{"192.168.88.0/31", "192.168.88.1", "192.168.88.1"},
		{"192.168.88.9/32", "192.168.88.10", "192.168.88.9"},
		{"255.255.255.0/24", "255.255.255.1", "255.255.255.255"},
		{"0.0.0.0/0", "0.0.0.1", "255.255.255.255"},
	}
	for _, tt := range tests {
		t.Run(tt.subnet, func(t *testing.T) {
			s := pfx(tt.subnet)
			if got := DefaultGateway(s); got != addr(tt.gw) {
				t.Errorf("DefaultGateway(%s) = %s, want %s", s, got, tt.gw)
			}
			if got := Broadcast(s); got != addr(tt.bcast) {
				t.Errorf("Broadcast(%s) = %s, want %s", s, got, tt.bcast)
			}
		})
	}
}

func TestCheckGateway(t *testing.T) {
	s := pfx("192.168.88.0/24")
	tests := []struct {
		gw      string
		wantErr []string
	}{
		{gw: "192.168.88.1"},
		{gw: "192.168.88.254"},
		{gw: "192.168.88.100"},
		{gw: "192.168.89.1", wantErr: []string{"192.168.89.1", "outside", "192.168.88.0/24"}},
		{gw: "10.0.0.1", wantErr: []string{"outside"}},
		{gw: "192.168.88.0", wantErr: []string{"192.168.88.0 is the network or broadcast"}},
		{gw: "192.168.88.255", wantErr: []string{"192.168.88.255 is the network or broadcast"}},
		{gw: "::ffff:192.168.88.1", wantErr: []string{"outside"}},
	}
	for _, tt := range tests {
		t.Run(tt.gw, func(t *testing.T) {
			err := CheckGateway(s, addr(tt.gw))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("CheckGateway(%s, %s): %v", s, tt.gw, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckGateway(%s, %s) = nil, want error", s, tt.gw)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if err := CheckGateway(s, netip.Addr{}); err == nil {
		t.Errorf("CheckGateway with the zero Addr = nil, want error")
	}
}

func TestCheckStatic(t *testing.T) {
	s := pfx("192.168.88.0/24")
	gw := addr("192.168.88.1")
	held := heldSet("192.168.88.10", "192.168.88.11")
	tests := []struct {
		name    string
		ip      string
		wantErr []string
	}{
		{"ok", "192.168.88.12", nil},
		{"ok last host", "192.168.88.254", nil},
		{"ok first after gateway", "192.168.88.2", nil},
		{"outside", "192.168.89.12", []string{"192.168.89.12", "outside", "192.168.88.0/24"}},
		{"outside far", "10.0.0.1", []string{"outside"}},
		{"network", "192.168.88.0", []string{"192.168.88.0", "network address"}},
		{"broadcast", "192.168.88.255", []string{"192.168.88.255", "broadcast address"}},
		{"gateway", "192.168.88.1", []string{"192.168.88.1", "gateway"}},
		{"held", "192.168.88.11", []string{"192.168.88.11", "already in use"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckStatic(s, gw, addr(tt.ip), held)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("CheckStatic(%s): %v", tt.ip, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckStatic(%s) = nil, want error", tt.ip)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	// A non-default gateway frees the first host address and takes its own.
	gw2 := addr("192.168.88.254")
	if err := CheckStatic(s, gw2, addr("192.168.88.1"), noneHeld); err != nil {
		t.Errorf("with gateway %s, 192.168.88.1 should be free: %v", gw2, err)
	}
	if err := CheckStatic(s, gw2, gw2, noneHeld); err == nil {
		t.Errorf("with gateway %s, the gateway itself was accepted", gw2)
	}
}

func TestAllocate(t *testing.T) {
	tests := []struct {
		name   string
		subnet string
		gw     string
		held   []string
		want   string
	}{
		{"empty /24", "192.168.88.0/24", "192.168.88.1", nil, "192.168.88.2"},
		{"empty /30", "192.168.88.0/30", "192.168.88.1", nil, "192.168.88.2"},
		{"gateway not first", "192.168.88.0/24", "192.168.88.254", nil, "192.168.88.1"},
		{"gateway second", "192.168.88.0/24", "192.168.88.2", []string{"192.168.88.1"}, "192.168.88.3"},
		{"gateway last host of /30", "192.168.88.0/30", "192.168.88.2", nil, "192.168.88.1"},
		{"skips held", "192.168.88.0/24", "192.168.88.1", []string{"192.168.88.2", "192.168.88.3"}, "192.168.88.4"},
		{"fills a hole", "192.168.88.0/24", "192.168.88.1", []string{"192.168.88.2", "192.168.88.4"}, "192.168.88.3"},
		{"last free host", "192.168.88.0/29", "192.168.88.1", []string{"192.168.88.2", "192.168.88.3", "192.168.88.4", "192.168.88.5"}, "192.168.88.6"},
		{"non-zero /30", "10.9.8.4/30", "10.9.8.5", nil, "10.9.8.6"},
		{"/16 crossing octet", "172.17.0.0/16", "172.17.0.1", rangeAddrs("172.17.0.2", "172.17.0.255"), "172.17.1.0"},
		{"gateway outside subnet is ignored", "192.168.88.0/24", "10.0.0.1", nil, "192.168.88.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Allocate(pfx(tt.subnet), addr(tt.gw), heldSet(tt.held...))
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			if got != addr(tt.want) {
				t.Errorf("Allocate(%s, gw %s) = %s, want %s", tt.subnet, tt.gw, got, tt.want)
			}
		})
	}
}

// TestAllocateAfter: round-robin, as CNI's host-local hands addresses out:
// the first free address after the last one given, round to the lowest past
// the end, and the released one last.
func TestAllocateAfter(t *testing.T) {
	tests := []struct {
		name, subnet, gw, prev string
		held                   []string
		want                   string
	}{
		{"none given yet", "192.168.88.0/24", "192.168.88.1", "", nil, "192.168.88.2"},
		{"the next one", "192.168.88.0/24", "192.168.88.1", "192.168.88.2", nil, "192.168.88.3"},
		{"not the one just released", "192.168.88.0/24", "192.168.88.1", "192.168.88.7", []string{"192.168.88.2"}, "192.168.88.8"},
		{"skips held", "192.168.88.0/24", "192.168.88.1", "192.168.88.2", []string{"192.168.88.3", "192.168.88.4"}, "192.168.88.5"},
		{"skips the gateway", "192.168.88.0/24", "192.168.88.3", "192.168.88.2", nil, "192.168.88.4"},
		{"round past the end", "192.168.88.0/24", "192.168.88.1", "192.168.88.254", []string{"192.168.88.2"}, "192.168.88.3"},
		{"round to the gateway's neighbour", "192.168.88.0/29", "192.168.88.1", "192.168.88.6", nil, "192.168.88.2"},
		{"only the last given is free", "192.168.88.0/29", "192.168.88.1", "192.168.88.4", []string{"192.168.88.2", "192.168.88.3", "192.168.88.5", "192.168.88.6"}, "192.168.88.4"},
		{"/30 gives its one address again", "192.168.88.0/30", "192.168.88.1", "192.168.88.2", nil, "192.168.88.2"},
		{"prev outside the subnet", "192.168.88.0/24", "192.168.88.1", "10.0.0.9", nil, "192.168.88.2"},
		{"prev the broadcast address", "192.168.88.0/24", "192.168.88.1", "192.168.88.255", nil, "192.168.88.2"},
		{"IPv6", "2001:db8::/64", "2001:db8::1", "2001:db8::9", []string{"2001:db8::a"}, "2001:db8::b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prev netip.Addr
			if tt.prev != "" {
				prev = addr(tt.prev)
			}
			got, err := AllocateAfter(pfx(tt.subnet), addr(tt.gw), prev, heldSet(tt.held...))
			if err != nil {
				t.Fatalf("AllocateAfter: %v", err)
			}
			if got != addr(tt.want) {
				t.Errorf("AllocateAfter(%s, gw %s, after %s) = %s, want %s", tt.subnet, tt.gw, tt.prev, got, tt.want)
			}
		})
	}
	full := append([]string{"192.168.88.2"}, rangeAddrs("192.168.88.4", "192.168.88.6")...)
	if got, err := AllocateAfter(pfx("192.168.88.0/29"), addr("192.168.88.1"), addr("192.168.88.3"), heldSet(append(full, "192.168.88.3")...)); !errors.Is(err, ErrExhausted) {
		t.Errorf("AllocateAfter on a full subnet = %s, %v; want ErrExhausted", got, err)
	}
}

// rangeAddrs lists the addresses from first to last inclusive.
func rangeAddrs(first, last string) []string {
	var out []string
	l := addr(last)
	for a := addr(first); ; a = a.Next() {
		out = append(out, a.String())
		if a == l {
			return out
		}
	}
}

func TestAllocateExhausted(t *testing.T) {
	tests := []struct {
		name   string
		subnet string
		gw     string
		held   []string
	}{
		{"full /30", "192.168.88.0/30", "192.168.88.1", []string{"192.168.88.2"}},
		{"full /30 gateway last", "192.168.88.0/30", "192.168.88.2", []string{"192.168.88.1"}},
		{"full /24", "192.168.88.0/24", "192.168.88.1", rangeAddrs("192.168.88.2", "192.168.88.254")},
		{"full /24 gateway in the middle", "192.168.88.0/24", "192.168.88.100", append(rangeAddrs("192.168.88.1", "192.168.88.99"), rangeAddrs("192.168.88.101", "192.168.88.254")...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Allocate(pfx(tt.subnet), addr(tt.gw), heldSet(tt.held...))
			if err == nil {
				t.Fatalf("Allocate = %s, want error", got)
			}
			if !errors.Is(err, ErrExhausted) {
				t.Errorf("error %q does not wrap ErrExhausted", err)
			}
			if !strings.Contains(err.Error(), tt.subnet) {
				t.Errorf("error %q does not name the subnet %s", err, tt.subnet)
			}
			if got.IsValid() {
				t.Errorf("Allocate returned %s alongside an error", got)
			}
		})
	}
}

func TestAllocateNeverAsksAboutNetworkOrBroadcast(t *testing.T) {
	s := pfx("192.168.88.0/29")
	var asked []netip.Addr
	_, err := Allocate(s, addr("192.168.88.1"), func(a netip.Addr) bool {
		asked = append(asked, a)
		return true
	})
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("Allocate with everything held: %v, want ErrExhausted", err)
	}
	for _, a := range asked {
		if a == s.Addr() || a == Broadcast(s) || a == addr("192.168.88.1") || !s.Contains(a) {
			t.Errorf("Allocate asked held(%s), which is never a candidate", a)
		}
	}
	if len(asked) != 5 {
		t.Errorf("Allocate asked about %d addresses (%v), want the 5 hosts .2-.6", len(asked), asked)
	}
}

func TestPickSubnet(t *testing.T) {
	pools := []Pool{
		{Base: pfx("172.17.0.0/16"), Size: 16},
		{Base: pfx("172.18.0.0/15"), Size: 16},
		{Base: pfx("192.168.0.0/16"), Size: 20},
	}
	tests := []struct {
		name  string
		pools []Pool
		taken []string
		want  string
	}{
		{"nothing taken", pools, nil, "172.17.0.0/16"},
		{"unrelated taken", pools, []string{"10.0.0.0/24", "192.168.88.0/24"}, "172.17.0.0/16"},
		{"equal", pools, []string{"172.17.0.0/16"}, "172.18.0.0/16"},
		{"host route inside", pools, []string{"172.17.3.4/32"}, "172.18.0.0/16"},
		{"smaller subnet inside", pools, []string{"172.17.200.0/24"}, "172.18.0.0/16"},
		{"unmasked taken", pools, []string{"172.17.9.9/16"}, "172.18.0.0/16"},
		{"/8 covering first pools", pools, []string{"172.0.0.0/8"}, "192.168.0.0/20"},
		{"/12 covering", pools, []string{"172.16.0.0/12"}, "192.168.0.0/20"},
		{"skips within pool", pools, []string{"172.17.0.0/16", "172.18.0.0/16"}, "172.19.0.0/16"},
		{"route inside second candidate", pools, []string{"172.17.0.0/16", "172.18.255.255/32"}, "172.19.0.0/16"},
		{"next pool", pools, []string{"172.17.0.0/16", "172.18.0.0/15"}, "192.168.0.0/20"},
		{"within /20 pool", pools, []string{"172.16.0.0/12", "192.168.0.0/20", "192.168.17.0/24"}, "192.168.32.0/20"},
		{"covering larger than candidate", pools, []string{"172.16.0.0/12", "192.168.0.0/19"}, "192.168.32.0/20"},
		{"ipv6 taken ignored", pools, []string{"::/0"}, "172.17.0.0/16"},
		{"default pools", DefaultPools, []string{"172.17.0.0/16", "172.18.0.0/16"}, "172.19.0.0/16"},
		{"default pools past 172", DefaultPools, []string{"172.16.0.0/12"}, "192.168.0.0/20"},
		{"pool at the top of the space", []Pool{{Base: pfx("255.255.255.0/24"), Size: 30}}, []string{"255.255.255.0/25"}, "255.255.255.128/30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var taken []netip.Prefix
			for _, s := range tt.taken {
				taken = append(taken, pfx(s))
			}
			got, err := PickSubnet(tt.pools, taken)
			if err != nil {
				t.Fatalf("PickSubnet: %v", err)
			}
			if got != pfx(tt.want) {
				t.Errorf("PickSubnet = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPickSubnetExhausted(t *testing.T) {
	pools := []Pool{
		{Base: pfx("172.17.0.0/16"), Size: 16},
		{Base: pfx("192.168.0.0/16"), Size: 20},
	}
	tests := []struct {
		name  string
		pools []Pool
		taken []string
	}{
		{"no pools", nil, nil},
		{"everything", pools, []string{"0.0.0.0/0"}},
		{"each pool covered", pools, []string{"172.17.0.0/16", "192.168.0.0/16"}},
		{"a route in every candidate", []Pool{{Base: pfx("10.0.0.0/22"), Size: 24}}, []string{"10.0.0.1/32", "10.0.1.1/32", "10.0.2.1/32", "10.0.3.255/32"}},
		{"top of the space", []Pool{{Base: pfx("255.255.255.0/24"), Size: 30}}, []string{"255.255.255.0/24"}},
		{"top of the space, covering", []Pool{{Base: pfx("255.255.255.0/24"), Size: 30}}, []string{"255.0.0.0/8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var taken []netip.Prefix
			for _, s := range tt.taken {
				taken = append(taken, pfx(s))
			}
			got, err := PickSubnet(tt.pools, taken)
			if err == nil {
				t.Fatalf("PickSubnet = %s, want error", got)
			}
			if !errors.Is(err, ErrExhausted) {
				t.Errorf("error %q does not wrap ErrExhausted", err)
			}
			if got.IsValid() {
				t.Errorf("PickSubnet returned %s alongside an error", got)
			}
		})
	}
}

func TestMACFromIP(t *testing.T) {
	tests := []struct{ ip, mac string }{
		{"192.168.88.11", "02:42:c0:a8:58:0b"},
		{"172.17.0.2", "02:42:ac:11:00:02"},
		{"0.0.0.0", "02:42:00:00:00:00"},
		{"255.255.255.255", "02:42:ff:ff:ff:ff"},
	}
	for _, tt := range tests {
		m := MACFromIP(addr(tt.ip))
		if m.String() != tt.mac {
			t.Errorf("MACFromIP(%s) = %s, want %s", tt.ip, m, tt.mac)
		}
		if m[0]&1 != 0 || m[0]&2 == 0 {
			t.Errorf("MACFromIP(%s) = %s is not a locally administered unicast address", tt.ip, m)
		}
	}
}
