package ipam

import (
	"errors"
	"net/netip"
	"testing"
)

func FuzzParseSubnet(f *testing.F) {
	for _, s := range []string{
		"192.168.88.0/24", "10.0.0.0/8", "192.168.88.1/24", "10.0.0.0/7",
		"192.168.88.0/31", "fd00::/64", "::ffff:10.0.0.0/104", "", "garbage",
		"1.2.3.4/", "/24", "0.0.0.0/0", "255.255.255.252/30", "10.0.0.0/08",
		"fe80::1%eth0/64", "1.2.3.4%eth0/24", "127.0.0.0/8", "169.0.0.0/8", "224.0.0.0/24",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseSubnet(s)
		if err != nil {
			if p != (netip.Prefix{}) {
				t.Fatalf("ParseSubnet(%q) returned %v alongside error %v", s, p, err)
			}
			return
		}
		if !p.IsValid() || !p.Addr().Is4() {
			t.Fatalf("ParseSubnet(%q) = %v: not a valid IPv4 prefix", s, p)
		}
		if p.Masked() != p {
			t.Fatalf("ParseSubnet(%q) = %v: host bits set", s, p)
		}
		if p.Bits() < MinPrefixLen || p.Bits() > MaxPrefixLen {
			t.Fatalf("ParseSubnet(%q) = %v: length outside [%d, %d]", s, p, MinPrefixLen, MaxPrefixLen)
		}
		for _, r := range Reserved {
			if r.Prefix.Overlaps(p) {
				t.Fatalf("ParseSubnet(%q) = %v, which overlaps reserved %s (%s)", s, p, r.Prefix, r.Use)
			}
		}
		q, err := ParseSubnet(p.String())
		if err != nil {
			t.Fatalf("ParseSubnet(%q) = %v, but ParseSubnet(%q) fails: %v", s, p, p.String(), err)
		}
		if q != p {
			t.Fatalf("ParseSubnet(%q) = %v, round trip gives %v", s, p, q)
		}
	})
}

func FuzzParsePool(f *testing.F) {
	for _, s := range []string{
		"base=172.17.0.0/16,size=16", "base=192.168.0.0/16,size=20",
		"size=24,base=10.0.0.0/8", "base=10.0.0.0/8", "size=24", "",
		"base=10.0.0.0/8,size=7", "base=10.0.0.0/8,size=31", "base=,size=",
		"base=10.0.0.0/8,size=99999999999999999999", "base=10.0.0.0/8,size=+24",
		"base=10.0.0.0/8,,size=24", "base=10.0.0.0/8=x,size=24",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePool(s)
		if err != nil {
			return
		}
		if !p.Base.IsValid() || !p.Base.Addr().Is4() || p.Base.Masked() != p.Base {
			t.Fatalf("ParsePool(%q) = %v: bad base", s, p)
		}
		if p.Size < p.Base.Bits() || p.Size > MaxPrefixLen {
			t.Fatalf("ParsePool(%q) = %v: size outside [%d, %d]", s, p, p.Base.Bits(), MaxPrefixLen)
		}
		q, err := ParsePool(p.String())
		if err != nil || q != p {
			t.Fatalf("ParsePool(%q) = %v, but ParsePool(String()) = %v, %v", s, p, q, err)
		}
	})
}

func addrFromUint32(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func uint32FromAddr(a netip.Addr) uint32 {
	x := a.As4()
	return uint32(x[0])<<24 | uint32(x[1])<<16 | uint32(x[2])<<8 | uint32(x[3])
}

// FuzzAllocate builds a subnet of /24 to /30 around a, a gateway at gwOff
// inside it, and holds host offset i when bit i of heldBits is set.
func FuzzAllocate(f *testing.F) {
	f.Add(uint8(0), uint32(0xc0a85800), uint8(0), []byte{})
	f.Add(uint8(6), uint32(0xc0a85800), uint8(0), []byte{0xff})
	f.Add(uint8(6), uint32(0xc0a85804), uint8(1), []byte{0x02})
	f.Add(uint8(5), uint32(0x0a000000), uint8(4), []byte{0xde})
	full := make([]byte, 32)
	for i := range full {
		full[i] = 0xff
	}
	f.Add(uint8(0), uint32(0xffffff00), uint8(253), full)
	f.Fuzz(func(t *testing.T, bits uint8, a uint32, gwOff uint8, heldBits []byte) {
		subnet, gw, isHeld, nth, size := fuzzSubnet(t, bits, a, gwOff, heldBits)
		network, bcast := subnet.Addr(), Broadcast(subnet)

		ip, err := Allocate(subnet, gw, isHeld)
		if err != nil {
			if !errors.Is(err, ErrExhausted) {
				t.Fatalf("Allocate(%s, %s) error %v does not wrap ErrExhausted", subnet, gw, err)
			}
			if ip.IsValid() {
				t.Fatalf("Allocate(%s, %s) returned %s alongside an error", subnet, gw, ip)
			}
			for off := 1; off < size-1; off++ {
				if h := nth(off); h != gw && !isHeld(h) {
					t.Fatalf("Allocate(%s, %s) = %v, but %s is free", subnet, gw, err, h)
				}
			}
			return
		}
		switch {
		case !subnet.Contains(ip):
			t.Fatalf("Allocate(%s) = %s: outside the subnet", subnet, ip)
		case ip == network:
			t.Fatalf("Allocate(%s) = %s: the network address", subnet, ip)
		case ip == bcast:
			t.Fatalf("Allocate(%s) = %s: the broadcast address", subnet, ip)
		case ip == gw:
			t.Fatalf("Allocate(%s) = %s: the gateway", subnet, ip)
		case isHeld(ip):
			t.Fatalf("Allocate(%s) = %s: held", subnet, ip)
		}
		if err := CheckStatic(subnet, gw, ip, isHeld); err != nil {
			t.Fatalf("Allocate(%s) = %s, which CheckStatic rejects: %v", subnet, ip, err)
		}
		for x := network.Next(); x.Less(ip); x = x.Next() {
			if x != gw && !isHeld(x) {
				t.Fatalf("Allocate(%s) = %s, but the lower %s is free", subnet, ip, x)
			}
		}
	})
}

// fuzzSubnet is a fuzzed subnet (a /24 to a /30 at a), its gateway and
// which of its addresses are held (bit n of heldBits: the nth address), and
// the nth address of the subnet and how many it has.
func fuzzSubnet(t *testing.T, bits uint8, a uint32, gwOff uint8, heldBits []byte) (subnet netip.Prefix, gw netip.Addr, isHeld Held, nth func(int) netip.Addr, size int) {
	t.Helper()
	b := 24 + int(bits)%7 // 24..30
	subnet = netip.PrefixFrom(addrFromUint32(a), b).Masked()
	size = 1 << (32 - b)
	base := uint32FromAddr(subnet.Addr())
	nth = func(off int) netip.Addr { return addrFromUint32(base + uint32(off)) }
	gw = nth(1 + int(gwOff)%(size-2))
	if err := CheckGateway(subnet, gw); err != nil {
		t.Fatalf("gateway %s of %s rejected: %v", gw, subnet, err)
	}
	isHeld = func(ip netip.Addr) bool {
		if !subnet.Contains(ip) {
			return false
		}
		off := int(uint32FromAddr(ip) - base) // < 256
		return off/8 < len(heldBits) && heldBits[off/8]&(1<<(off%8)) != 0
	}
	return subnet, gw, isHeld, nth, size
}

// FuzzAllocateAfter checks the round-robin allocator's invariants: what it
// gives is a free host address of the subnet, and every host address after
// prev and before it, going round past the end, is the gateway or held; it
// fails only when no host address is free.
func FuzzAllocateAfter(f *testing.F) {
	f.Add(uint8(0), uint32(0xc0a85800), uint8(0), uint8(7), []byte{})
	f.Add(uint8(6), uint32(0xc0a85800), uint8(0), uint8(2), []byte{0xff})
	f.Add(uint8(0), uint32(0xc0a85800), uint8(0), uint8(254), []byte{0x04})
	f.Add(uint8(5), uint32(0x0a000000), uint8(4), uint8(3), []byte{0xde})
	f.Fuzz(func(t *testing.T, bits uint8, a uint32, gwOff, prevOff uint8, heldBits []byte) {
		subnet, gw, isHeld, nth, size := fuzzSubnet(t, bits, a, gwOff, heldBits)
		prev := nth(int(prevOff) % size)
		ip, err := AllocateAfter(subnet, gw, prev, isHeld)
		free := func(off int) bool { h := nth(off); return h != gw && !isHeld(h) }
		if err != nil {
			for off := 1; off < size-1; off++ {
				if free(off) {
					t.Fatalf("AllocateAfter(%s, %s, %s) = %v, but %s is free", subnet, gw, prev, err, nth(off))
				}
			}
			return
		}
		if err := CheckStatic(subnet, gw, ip, isHeld); err != nil {
			t.Fatalf("AllocateAfter(%s, %s, %s) = %s, which CheckStatic rejects: %v", subnet, gw, prev, ip, err)
		}
		got := int(uint32FromAddr(ip) - uint32FromAddr(subnet.Addr()))
		for off := int(prevOff)%size + 1; ; off++ { // the host addresses after prev, round past the end
			if off >= size-1 {
				off = 1
			}
			if off == got {
				break
			}
			if free(off) {
				t.Fatalf("AllocateAfter(%s, %s, %s) = %s, but %s comes first and is free", subnet, gw, prev, ip, nth(off))
			}
		}
	})
}

// firstFree enumerates p's candidates in order and returns the first that
// overlaps none of taken and comes before stop (or any, if stop is invalid).
func firstFree(p Pool, taken []netip.Prefix, stop netip.Addr) (netip.Prefix, bool) {
	c := netip.PrefixFrom(p.Base.Addr(), p.Size)
	for p.Base.Contains(c.Addr()) && (!stop.IsValid() || c.Addr().Less(stop)) {
		free := true
		for _, tk := range taken {
			if tk.Overlaps(c) {
				free = false
				break
			}
		}
		if free {
			return c, true
		}
		n := Broadcast(c).Next()
		if !n.IsValid() {
			break
		}
		c = netip.PrefixFrom(n, p.Size)
	}
	return netip.Prefix{}, false
}

// FuzzPickSubnet picks from two pools built from the fuzzed values, with the
// taken prefixes encoded as 5-byte records (4 address bytes, then bits).
func FuzzPickSubnet(f *testing.F) {
	f.Add(uint32(0xac110000), uint8(8), uint8(0), uint32(0xc0a80000), uint8(8), uint8(4), []byte{172, 17, 0, 0, 16})
	f.Add(uint32(0x0a000000), uint8(14), uint8(2), uint32(0x0a000400), uint8(16), uint8(6), []byte{10, 0, 0, 1, 32, 10, 0, 1, 1, 32, 10, 0, 2, 0, 23})
	f.Add(uint32(0xffffff00), uint8(16), uint8(6), uint32(0), uint8(0), uint8(0), []byte{255, 0, 0, 0, 8, 0, 0, 0, 0, 1})
	f.Add(uint32(0xac100000), uint8(4), uint8(4), uint32(0xac100000), uint8(4), uint8(18), []byte{0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, a1 uint32, b1, s1 uint8, a2 uint32, b2, s2 uint8, takenRaw []byte) {
		mkPool := func(a uint32, b, s uint8) Pool {
			bits := MinPrefixLen + int(b)%(MaxPrefixLen-MinPrefixLen+1)
			size := bits + int(s)%(MaxPrefixLen-bits+1)
			return Pool{Base: netip.PrefixFrom(addrFromUint32(a), bits).Masked(), Size: size}
		}
		pools := []Pool{mkPool(a1, b1, s1), mkPool(a2, b2, s2)}
		for _, p := range pools {
			if _, bad := Unusable(p.Base); bad {
				return // ParsePool refuses it; nsnet never picks from it
			}
			if q, err := ParsePool(p.String()); err != nil || q != p {
				t.Fatalf("test built an invalid pool %v: %v", p, err)
			}
		}
		var taken []netip.Prefix
		for i := 0; i+5 <= len(takenRaw) && len(taken) < 64; i += 5 {
			a := addrFromUint32(uint32(takenRaw[i])<<24 | uint32(takenRaw[i+1])<<16 | uint32(takenRaw[i+2])<<8 | uint32(takenRaw[i+3]))
			taken = append(taken, netip.PrefixFrom(a, int(takenRaw[i+4])%33))
		}
		small := func(p Pool) bool { return p.Size-p.Base.Bits() <= 10 }

		got, err := PickSubnet(pools, taken)
		if err != nil {
			if !errors.Is(err, ErrExhausted) {
				t.Fatalf("PickSubnet error %v does not wrap ErrExhausted", err)
			}
			if got.IsValid() {
				t.Fatalf("PickSubnet returned %s alongside an error", got)
			}
			for _, p := range pools {
				if !small(p) {
					continue
				}
				if c, ok := firstFree(p, taken, netip.Addr{}); ok {
					t.Fatalf("PickSubnet(%v, %v) = %v, but %s is free", pools, taken, err, c)
				}
			}
			return
		}
		if !got.IsValid() || !got.Addr().Is4() || got.Masked() != got {
			t.Fatalf("PickSubnet = %v: not a masked IPv4 prefix", got)
		}
		for _, tk := range taken {
			if tk.Overlaps(got) {
				t.Fatalf("PickSubnet(%v, %v) = %s, which overlaps taken %s", pools, taken, got, tk)
			}
		}
		in := -1
		for i, p := range pools {
			if got.Bits() == p.Size && p.Base.Contains(got.Addr()) {
				in = i
				break
			}
		}
		if in < 0 {
			t.Fatalf("PickSubnet(%v, %v) = %s, which is in no pool", pools, taken, got)
		}
		if _, err := ParseSubnet(got.String()); err != nil {
			t.Fatalf("PickSubnet = %s, which ParseSubnet rejects: %v", got, err)
		}
		// It is the first free candidate: no earlier pool and nothing earlier
		// in its own pool was free (checked where cheap to enumerate).
		for i := 0; i <= in; i++ {
			p := pools[i]
			if !small(p) {
				continue
			}
			stop := netip.Addr{}
			if i == in {
				stop = got.Addr()
			}
			if c, ok := firstFree(p, taken, stop); ok {
				t.Fatalf("PickSubnet(%v, %v) = %s, but the earlier %s is free", pools, taken, got, c)
			}
		}
	})
}
