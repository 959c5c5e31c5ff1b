// Package ipam chooses subnets and addresses for nsnet networks.
//
// It is pure code over net/netip: no kernel calls and no storage. Callers pass
// in what is already taken (other subnets, host routes, held addresses) and
// persist the result themselves.
//
// Invariants: an address handed out by Allocate or accepted by CheckStatic lies
// inside its subnet and is never the network address, the broadcast address or
// the gateway, and never one the caller reported as held. PickSubnet never
// returns a subnet overlapping a taken prefix. ParseSubnet and ParsePool refuse
// subnets and pools that overlap a Reserved range, ParseSubnet6 (and ParsePool
// for IPv6 bases) a Reserved6 one. IPv6 subnets follow the same rules: the
// subnet-router anycast (network) address, the last address and the gateway
// are never handed out.
package ipam

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/nsnet/nsnet/types"
)

// MinPrefixLen and MaxPrefixLen bound the subnets nsnet accepts: at most a /8,
// and at least a /30 (a gateway plus one sandbox).
const (
	MinPrefixLen = 8
	MaxPrefixLen = 30
)

// ErrExhausted is returned when a subnet or a pool has nothing left to give.
var ErrExhausted = errors.New("no free addresses")

// Pool is a range that subnets of Size bits are carved from (see package
// types).
type Pool = types.AddressPool

// DefaultPools are Docker's default address pools: 172.17.0.0/16 to
// 172.31.0.0/16, then 192.168.0.0/16 in /20s.
var DefaultPools = []Pool{
	{Base: netip.MustParsePrefix("172.17.0.0/16"), Size: 16},
	{Base: netip.MustParsePrefix("172.18.0.0/15"), Size: 16},
	{Base: netip.MustParsePrefix("172.20.0.0/14"), Size: 16},
	{Base: netip.MustParsePrefix("172.24.0.0/13"), Size: 16},
	{Base: netip.MustParsePrefix("192.168.0.0/16"), Size: 20},
}

// ParsePool parses dockerd's pool syntax, "base=CIDR,size=N"; the base may
// be IPv4 or IPv6.
func ParsePool(s string) (Pool, error) {
	var p Pool
	var haveBase, haveSize bool
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "base":
			parse := ParseSubnet
			if strings.Contains(v, ":") {
				parse = ParseSubnet6
			}
			pfx, err := parse(v)
			if err != nil {
				return Pool{}, fmt.Errorf("address pool %q: %w", s, err)
			}
			p.Base, haveBase = pfx, true
		case "size":
			n, err := strconv.Atoi(v)
			if err != nil {
				return Pool{}, fmt.Errorf("address pool %q: size %q is not a number", s, v)
			}
			p.Size, haveSize = n, true
		default:
			return Pool{}, fmt.Errorf("address pool %q: unknown key %q (expected base=CIDR,size=N)", s, k)
		}
	}
	if !haveBase || !haveSize {
		return Pool{}, fmt.Errorf("address pool %q: expected base=CIDR,size=N", s)
	}
	most := MaxPrefixLen
	if p.Base.Addr().Is6() {
		most = MaxPrefixLen6
	}
	if p.Size < p.Base.Bits() || p.Size > most {
		return Pool{}, fmt.Errorf("address pool %q: size must be between %d and %d", s, p.Base.Bits(), most)
	}
	return p, nil
}

// ParseSubnet parses an IPv4 CIDR whose host bits are zero, whose length is
// between MinPrefixLen and MaxPrefixLen, and which overlaps no Reserved range.
func ParseSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid subnet %q: expected CIDR notation like 192.168.88.0/24", s)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("subnet %q is not IPv4: give the IPv4 subnet here, and an IPv6 one with --ipv6", s)
	}
	if p.Bits() < MinPrefixLen || p.Bits() > MaxPrefixLen {
		return netip.Prefix{}, fmt.Errorf("subnet %q: prefix length must be between /%d and /%d", s, MinPrefixLen, MaxPrefixLen)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("invalid subnet %q: host bits are set; did you mean %s?", s, p.Masked())
	}
	if r, bad := Unusable(p); bad {
		how := "is in"
		if p.Bits() < r.Prefix.Bits() {
			how = "overlaps"
		}
		return netip.Prefix{}, fmt.Errorf("subnet %q %s %s (%s), which a network cannot use: choose a private range such as 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16", s, how, r.Prefix, r.Use)
	}
	return p, nil
}

// ReservedRange is an IPv4 range whose addresses a bridge network cannot use.
type ReservedRange struct {
	Prefix netip.Prefix
	Use    string
}

// Reserved are the ranges no subnet may overlap: their addresses are never
// routed to a bridge as unicast (RFC 1122, RFC 3927, RFC 5771, RFC 1112).
var Reserved = []ReservedRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network range, only ever a source address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved class E, with the limited broadcast 255.255.255.255"},
}

// Unusable reports the reserved range that p overlaps, if any.
func Unusable(p netip.Prefix) (ReservedRange, bool) {
	for _, r := range Reserved {
		if r.Prefix.Overlaps(p) {
			return r, true
		}
	}
	return ReservedRange{}, false
}

// DefaultGateway is the first host address of the subnet, as Docker uses.
func DefaultGateway(subnet netip.Prefix) netip.Addr {
	return subnet.Addr().Next()
}

// Broadcast is the last address of the subnet (IPv4 or IPv6).
func Broadcast(subnet netip.Prefix) netip.Addr {
	b := subnet.Masked().Addr().AsSlice()
	for i := subnet.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// lastName names the last address of subnet: IPv6 has no broadcast, but
// nsnet leaves its last address unused all the same.
func lastName(subnet netip.Prefix) string {
	if subnet.Addr().Is6() {
		return "last address"
	}
	return "broadcast address"
}

// CheckGateway reports whether gw can be the gateway of subnet.
func CheckGateway(subnet netip.Prefix, gw netip.Addr) error {
	if !subnet.Contains(gw) {
		return fmt.Errorf("gateway %s is outside subnet %s: choose a gateway inside it", gw, subnet)
	}
	if gw == subnet.Addr() || gw == Broadcast(subnet) {
		return fmt.Errorf("gateway %s is the network or %s of %s: pick a host address", gw, lastName(subnet), subnet)
	}
	return nil
}

// Held reports whether an address is already leased.
type Held func(netip.Addr) bool

// CheckStatic reports whether ip may be leased in subnet.
func CheckStatic(subnet netip.Prefix, gw, ip netip.Addr, held Held) error {
	switch {
	case !subnet.Contains(ip):
		return fmt.Errorf("address %s is outside the network's subnet %s", ip, subnet)
	case ip == subnet.Addr():
		return fmt.Errorf("address %s is the network address of %s", ip, subnet)
	case ip == Broadcast(subnet):
		return fmt.Errorf("address %s is the %s of %s", ip, lastName(subnet), subnet)
	case ip == gw:
		return fmt.Errorf("address %s is the network's gateway", ip)
	case held(ip):
		return fmt.Errorf("address %s is already in use: choose another --ip, or leave it out to get a free one", ip)
	}
	return nil
}

// Allocate returns the lowest free host address of subnet: not the network,
// broadcast or gateway address, and not held. It asks held about addresses
// in ascending order, each once.
func Allocate(subnet netip.Prefix, gw netip.Addr, held Held) (netip.Addr, error) {
	return AllocateAfter(subnet, gw, netip.Addr{}, held)
}

// AllocateAfter returns the first free host address of subnet after prev,
// going round to the lowest past the end, as CNI's host-local plugin and
// Podman hand addresses out: an address just released is given again only
// once every other has been (prev invalid or outside subnet: the lowest
// free). It asks held about addresses in ascending order from prev, then in
// ascending order up to prev, each once.
func AllocateAfter(subnet netip.Prefix, gw, prev netip.Addr, held Held) (netip.Addr, error) {
	first, last := subnet.Addr().Next(), Broadcast(subnet)
	start := first
	if subnet.Contains(prev) && prev.Next().Less(last) && first.Less(prev.Next()) {
		start = prev.Next()
	}
	free := func(from, to netip.Addr) (netip.Addr, bool) { // from <= a < to
		for a := from; a.Less(to); a = a.Next() {
			if a != gw && !held(a) {
				return a, true
			}
		}
		return netip.Addr{}, false
	}
	if a, ok := free(start, last); ok {
		return a, nil
	}
	if a, ok := free(first, start); ok {
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("subnet %s is full: %w", subnet, ErrExhausted)
}

// PickSubnet returns the first subnet from pools that overlaps none of taken.
func PickSubnet(pools []Pool, taken []netip.Prefix) (netip.Prefix, error) {
	for _, p := range pools {
		if s, ok := pickFrom(p, taken); ok {
			return s, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("every subnet of the address pools %v overlaps an existing network or host route: %w; pass --subnet", pools, ErrExhausted)
}

func pickFrom(p Pool, taken []netip.Prefix) (netip.Prefix, bool) {
	cand := netip.PrefixFrom(p.Base.Addr(), p.Size)
	for p.Base.Contains(cand.Addr()) {
		blocker, overlaps := firstOverlap(cand, taken)
		if !overlaps {
			return cand, true
		}
		next, ok := after(cand, blocker)
		if !ok {
			return netip.Prefix{}, false
		}
		cand = next
	}
	return netip.Prefix{}, false
}

// after returns the first candidate of cand's size past both cand and blocker.
func after(cand, blocker netip.Prefix) (netip.Prefix, bool) {
	end := Broadcast(cand)
	if b := Broadcast(blocker.Masked()); end.Less(b) {
		end = b
	}
	next := end.Next()
	if !next.IsValid() || next.IsUnspecified() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(next, cand.Bits()).Masked(), true
}

func firstOverlap(p netip.Prefix, taken []netip.Prefix) (netip.Prefix, bool) {
	for _, t := range taken {
		if t.Overlaps(p) {
			return t, true
		}
	}
	return netip.Prefix{}, false
}

// MACFromIP derives a stable, locally administered unicast MAC from an IPv4
// address the way Docker does: 02:42 followed by the four address bytes.
func MACFromIP(ip netip.Addr) net.HardwareAddr {
	a := ip.As4()
	return net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}
}
