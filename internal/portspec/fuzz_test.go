package portspec

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"80", "80/tcp", "53/udp", "9/sctp", "8080:80", "127.0.0.1:8080:80",
		"127.0.0.1::80", "0.0.0.0:8080:80", "0.0.0.0::80", ":80", "::80",
		"8000-8010:80-90/udp", "8000-8010:80", "10.0.0.1:8000-8002:80-82/sctp",
		"080", "65535", "1-65535", "",
		"0", "65536", "abc", "90-80", "8000-8002:80-81", "8080:80-81",
		"80/icmp", "80/", "80/TCP", "a:b:c:d", "[::1]:80:80", "::1:80:80",
		"1.2.3.4:80", "1.2.3.4%eth0:80:80", "::ffff:1.2.3.4::80", "80-", "-",
		"1.2.3.4:8080:80/tcp/udp",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := Parse(s)
		if err != nil {
			if sp != (Spec{}) {
				t.Fatalf("Parse(%q) returned %+v alongside error %v", s, sp, err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
				t.Fatalf("Parse(%q) error %q does not quote the input", s, err)
			}
			return
		}
		if !slices.Contains(Protocols, sp.Proto) {
			t.Fatalf("Parse(%q) = %+v: protocol not in %v", s, sp, Protocols)
		}
		if sp.CtrPort.Start == 0 || sp.CtrPort.End == 0 || sp.CtrPort.Start > sp.CtrPort.End {
			t.Fatalf("Parse(%q) = %+v: bad container range", s, sp)
		}
		if sp.HostPort != (Range{}) {
			if sp.HostPort.Start == 0 || sp.HostPort.End == 0 || sp.HostPort.Start > sp.HostPort.End {
				t.Fatalf("Parse(%q) = %+v: bad host range", s, sp)
			}
			if sp.HostPort.Len() != sp.CtrPort.Len() && sp.CtrPort.Len() != 1 {
				t.Fatalf("Parse(%q) = %+v: host and container ranges of incompatible lengths", s, sp)
			}
		}
		if sp.HostIP.IsValid() {
			v4ok := sp.HostIP.Is4() && !sp.HostIP.IsUnspecified()
			v6ok := sp.HostIP.Is6() && !sp.HostIP.Is4In6() && !sp.HostIP.IsLinkLocalUnicast() && !sp.HostIP.IsMulticast()
			if !(v4ok || v6ok) || sp.HostIP.Zone() != "" {
				t.Fatalf("Parse(%q) = %+v: host IP must be specific IPv4 or IPv6 (:: allowed), without zone", s, sp)
			}
		} else if sp.HostIP != (netip.Addr{}) {
			t.Fatalf("Parse(%q) = %+v: invalid host IP is not the zero Addr", s, sp)
		}
		str := sp.String()
		again, err := Parse(str)
		if err != nil {
			t.Fatalf("Parse(%q) = %+v, but Parse(%q) fails: %v", s, sp, str, err)
		}
		if again != sp {
			t.Fatalf("Parse(%q) = %+v, round trip through %q gives %+v", s, sp, str, again)
		}
		if again.String() != str {
			t.Fatalf("String not stable: %q then %q", str, again.String())
		}
	})
}

// FuzzExpand builds a valid spec from small fuzzed ranges, rejects the host
// ports whose bit is set in a fuzzed bitmap, and checks Expand against a
// simple model: auto and host-range picks take the first free ports in
// order, 1:1 ranges need every host port free.
func FuzzExpand(f *testing.F) {
	// mode: 0 auto, 1 fixed/1:1, 2 host range for one container port
	f.Add(uint8(0), uint16(80), uint8(0), uint16(0), uint8(0), uint16(32768), uint8(7), uint8(0), uint8(0), []byte{})
	f.Add(uint8(0), uint16(80), uint8(3), uint16(0), uint8(0), uint16(32768), uint8(7), uint8(0), uint8(0), []byte{0b1011})
	f.Add(uint8(0), uint16(80), uint8(3), uint16(0), uint8(0), uint16(32768), uint8(2), uint8(1), uint8(1), []byte{0xff})
	f.Add(uint8(1), uint16(80), uint8(2), uint16(8000), uint8(0), uint16(32768), uint8(7), uint8(0), uint8(2), []byte{0, 0b10})
	f.Add(uint8(1), uint16(65533), uint8(2), uint16(65533), uint8(0), uint16(1), uint8(0), uint8(2), uint8(0), []byte{})
	f.Add(uint8(2), uint16(80), uint8(0), uint16(8000), uint8(10), uint16(32768), uint8(7), uint8(0), uint8(1), []byte{0b111})
	f.Add(uint8(2), uint16(80), uint8(0), uint16(8000), uint8(2), uint16(32768), uint8(7), uint8(0), uint8(0), []byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, mode uint8, ctrStart uint16, ctrExtra uint8, hostStart uint16, hostExtra uint8,
		autoStart uint16, autoExtra uint8, protoIdx uint8, ipSel uint8, bitmap []byte) {
		const maxExtra = 40
		clamp := func(start uint16, extra uint8) Range {
			if start == 0 {
				start = 1
			}
			e := int(start) + int(extra)%maxExtra
			if e > 65535 {
				e = 65535
			}
			return Range{start, uint16(e)}
		}
		sp := Spec{Proto: Protocols[int(protoIdx)%len(Protocols)], CtrPort: clamp(ctrStart, ctrExtra)}
		switch ipSel % 3 {
		case 1:
			sp.HostIP = netip.MustParseAddr("127.0.0.1")
		case 2:
			sp.HostIP = netip.AddrFrom4([4]byte{10, 0, ipSel, 1})
		}
		switch mode % 3 {
		case 1: // fixed or 1:1
			h := clamp(hostStart, 0)
			if int(h.Start)+sp.CtrPort.Len()-1 > 65535 {
				h.Start = uint16(65536 - sp.CtrPort.Len())
			}
			h.End = h.Start + uint16(sp.CtrPort.Len()-1)
			sp.HostPort = h
		case 2: // host range for one container port
			sp.CtrPort.End = sp.CtrPort.Start
			sp.HostPort = clamp(hostStart, hostExtra)
		}
		if p, err := Parse(sp.String()); err != nil || p != sp {
			t.Fatalf("test built an invalid spec %+v (%q): %v", sp, sp.String(), err)
		}
		auto := clamp(autoStart, autoExtra)

		rejected := func(p uint16) bool {
			if len(bitmap) == 0 {
				return false
			}
			i := int(p) % (len(bitmap) * 8)
			return bitmap[i/8]&(1<<(i%8)) != 0
		}
		errFree := errors.New("rejected by free")
		free := func(m Mapping) error {
			if m.Proto != sp.Proto || m.HostIP != sp.HostIP {
				t.Fatalf("free asked about %v, not of spec %s", m, sp)
			}
			if rejected(m.HostPort) {
				return errFree
			}
			return nil
		}
		freeIn := func(r Range) []uint16 {
			var ps []uint16
			for p := int(r.Start); p <= int(r.End); p++ {
				if !rejected(uint16(p)) {
					ps = append(ps, uint16(p))
				}
			}
			return ps
		}

		// the model
		var wantHost []uint16
		var wantErr error
		switch {
		case sp.HostPort == Range{}:
			wantHost = freeIn(auto)
			if len(wantHost) < sp.CtrPort.Len() {
				wantHost, wantErr = nil, ErrNoFreePort
			} else {
				wantHost = wantHost[:sp.CtrPort.Len()]
			}
		case sp.HostPort.Len() != sp.CtrPort.Len():
			wantHost = freeIn(sp.HostPort)
			if len(wantHost) == 0 {
				wantErr = ErrNoFreePort
			} else {
				wantHost = wantHost[:1]
			}
		default:
			wantHost = freeIn(sp.HostPort)
			if len(wantHost) != sp.HostPort.Len() {
				wantHost, wantErr = nil, errFree
			}
		}

		got, err := Expand(sp, auto, free)
		if err != nil {
			if got != nil {
				t.Fatalf("Expand(%s, %s) returned %v alongside error %v", sp, auto, got, err)
			}
			if wantErr == nil {
				t.Fatalf("Expand(%s, %s): unexpected error %v", sp, auto, err)
			}
			if !errors.Is(err, wantErr) {
				t.Fatalf("Expand(%s, %s) error %v does not wrap %v", sp, auto, err, wantErr)
			}
			return
		}
		if wantErr != nil {
			t.Fatalf("Expand(%s, %s) = %v, want an error wrapping %v", sp, auto, got, wantErr)
		}
		if len(got) != len(wantHost) {
			t.Fatalf("Expand(%s, %s) = %v: %d mappings, want %d", sp, auto, got, len(got), len(wantHost))
		}
		seen := map[uint16]bool{}
		for i, m := range got {
			if err := free(m); err != nil {
				t.Fatalf("Expand(%s, %s) = %v: %v is not free", sp, auto, got, m)
			}
			if seen[m.HostPort] {
				t.Fatalf("Expand(%s, %s) = %v: host port %d twice", sp, auto, got, m.HostPort)
			}
			seen[m.HostPort] = true
			if m.CtrPort != sp.CtrPort.Start+uint16(i) || m.CtrPort > sp.CtrPort.End {
				t.Fatalf("Expand(%s, %s) = %v: mapping %d has container port %d", sp, auto, got, i, m.CtrPort)
			}
			if m.HostPort != wantHost[i] || m.HostPort == 0 {
				t.Fatalf("Expand(%s, %s) = %v: mapping %d has host port %d, want %d", sp, auto, got, i, m.HostPort, wantHost[i])
			}
			if m.Proto != sp.Proto || m.HostIP != sp.HostIP {
				t.Fatalf("Expand(%s, %s) = %v: mapping %v lost protocol or address", sp, auto, got, m)
			}
			if !sp.Matches(m) {
				t.Fatalf("%s does not match its own mapping %v", sp, m)
			}
		}
	})
}
