package ipam

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
)

// IPv6 subnets: at most a /16 and at least a /126 (the subnet-router
// anycast address, a gateway, and one sandbox; the last address is never
// handed out, as in IPv4).
const (
	MinPrefixLen6 = 16
	MaxPrefixLen6 = 126
	// DefaultSize6 is the size of the subnets carved from an IPv6 pool.
	DefaultSize6 = 64
)

// Reserved6 are the IPv6 ranges no subnet may overlap: their addresses are
// never routed to a bridge as unicast (RFC 4291, RFC 4038).
var Reserved6 = []ReservedRange{
	{netip.MustParsePrefix("::/8"), "unspecified, loopback, IPv4-mapped and IPv4-compatible addresses: give IPv4 subnets as IPv4"},
	{netip.MustParsePrefix("fe80::/10"), "link-local, which every interface has already"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// ParseSubnet6 parses an IPv6 CIDR whose host bits are zero, whose length
// is between MinPrefixLen6 and MaxPrefixLen6, and which overlaps no
// Reserved6 range.
func ParseSubnet6(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid IPv6 subnet %q: expected CIDR notation like fd00:1::/64", s)
	}
	if !p.Addr().Is6() {
		return netip.Prefix{}, fmt.Errorf("subnet %q is not IPv6: give an IPv6 subnet such as fd00:1::/64", s)
	}
	if p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid IPv6 subnet %q: a subnet has no zone (%%%s)", s, p.Addr().Zone())
	}
	if r, bad := unusable6(p); bad {
		how := "is in"
		if p.Bits() < r.Prefix.Bits() {
			how = "overlaps"
		}
		return netip.Prefix{}, fmt.Errorf("subnet %q %s %s (%s), which a network cannot use: choose a unique local range such as fd00:1::/64, or a global one routed to this host", s, how, r.Prefix, r.Use)
	}
	if p.Bits() < MinPrefixLen6 || p.Bits() > MaxPrefixLen6 {
		return netip.Prefix{}, fmt.Errorf("IPv6 subnet %q: prefix length must be between /%d and /%d (a /64 is usual)", s, MinPrefixLen6, MaxPrefixLen6)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("invalid IPv6 subnet %q: host bits are set; did you mean %s?", s, p.Masked())
	}
	return p, nil
}

func unusable6(p netip.Prefix) (ReservedRange, bool) {
	for _, r := range Reserved6 {
		if r.Prefix.Overlaps(p) {
			return r, true
		}
	}
	return ReservedRange{}, false
}

// CheckAddr6 refuses an IPv6 address that cannot be a gateway or a
// sandbox's static address, whatever the subnet: what is unusable as a
// subnet, and addresses with a zone.
func CheckAddr6(a netip.Addr) error {
	if !a.Is6() || a.Is4In6() {
		return fmt.Errorf("%s is not an IPv6 address", a)
	}
	if a.Zone() != "" {
		return fmt.Errorf("IPv6 address %s has a zone: give it without %%%s", a, a.Zone())
	}
	if r, bad := unusable6(netip.PrefixFrom(a, 128)); bad {
		return fmt.Errorf("IPv6 address %s is in %s (%s)", a, r.Prefix, r.Use)
	}
	return nil
}

// ULAPool is the default IPv6 pool of a host, as Docker makes it: a unique
// local /48 (fd00::/8 and 40 bits of a hash of the host's ID, RFC 4193),
// carved into /64s.
func ULAPool(hostID string) Pool {
	h := sha256.Sum256([]byte(hostID))
	var a [16]byte
	a[0] = 0xfd
	copy(a[1:6], h[:5])
	return Pool{Base: netip.PrefixFrom(netip.AddrFrom16(a), 48), Size: DefaultSize6}
}

// Pools6 are the IPv6 ones of pools, or, if there are none, the host's
// ULAPool.
func Pools6(pools []Pool, hostID string) []Pool {
	var out []Pool
	for _, p := range pools {
		if p.Base.Addr().Is6() {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		out = []Pool{ULAPool(hostID)}
	}
	return out
}

// Pools4 are the IPv4 ones of pools.
func Pools4(pools []Pool) []Pool {
	var out []Pool
	for _, p := range pools {
		if p.Base.Addr().Is4() {
			out = append(out, p)
		}
	}
	return out
}
