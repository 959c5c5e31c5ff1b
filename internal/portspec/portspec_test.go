package portspec

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

var (
	lo   = netip.MustParseAddr("127.0.0.1")
	ip10 = netip.MustParseAddr("10.0.0.1")
	ip11 = netip.MustParseAddr("10.0.0.2")
)

func r(a, b uint16) Range { return Range{a, b} }

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Spec
	}{
		// container port only: host port chosen, all addresses, tcp
		{"80", Spec{CtrPort: r(80, 80), Proto: "tcp"}},
		{"80/tcp", Spec{CtrPort: r(80, 80), Proto: "tcp"}},
		{"53/udp", Spec{CtrPort: r(53, 53), Proto: "udp"}},
		{"9/sctp", Spec{CtrPort: r(9, 9), Proto: "sctp"}},
		{"1", Spec{CtrPort: r(1, 1), Proto: "tcp"}},
		{"65535", Spec{CtrPort: r(65535, 65535), Proto: "tcp"}},
		{"080", Spec{CtrPort: r(80, 80), Proto: "tcp"}},
		{"80-90", Spec{CtrPort: r(80, 90), Proto: "tcp"}},
		{"80-80", Spec{CtrPort: r(80, 80), Proto: "tcp"}},
		// host port : container port
		{"8080:80", Spec{HostPort: r(8080, 8080), CtrPort: r(80, 80), Proto: "tcp"}},
		{"8080:80/udp", Spec{HostPort: r(8080, 8080), CtrPort: r(80, 80), Proto: "udp"}},
		{":80", Spec{CtrPort: r(80, 80), Proto: "tcp"}}, // empty host port: chosen
		// host IP : host port : container port
		{"127.0.0.1:8080:80", Spec{HostIP: lo, HostPort: r(8080, 8080), CtrPort: r(80, 80), Proto: "tcp"}},
		{"127.0.0.1::80", Spec{HostIP: lo, CtrPort: r(80, 80), Proto: "tcp"}},
		{"127.0.0.1::80-82/sctp", Spec{HostIP: lo, CtrPort: r(80, 82), Proto: "sctp"}},
		{"0.0.0.0:8080:80", Spec{HostPort: r(8080, 8080), CtrPort: r(80, 80), Proto: "tcp"}}, // all addresses
		{"0.0.0.0::80", Spec{CtrPort: r(80, 80), Proto: "tcp"}},
		{":8080:80", Spec{HostPort: r(8080, 8080), CtrPort: r(80, 80), Proto: "tcp"}},
		{"::80", Spec{CtrPort: r(80, 80), Proto: "tcp"}}, // Docker splits this the same way
		// [IPv6 host IP] : host port : container port
		{"[::]:8080:80", Spec{HostIP: netip.IPv6Unspecified(), HostPort: r(8080, 8080), CtrPort: r(80, 80), Proto: "tcp"}},
		{"[2001:db8::2]:8080:80/udp", Spec{HostIP: netip.MustParseAddr("2001:db8::2"), HostPort: r(8080, 8080), CtrPort: r(80, 80), Proto: "udp"}},
		{"[::1]::80-81", Spec{HostIP: netip.IPv6Loopback(), CtrPort: r(80, 81), Proto: "tcp"}},
		// ranges
		{"8000-8010:80-90/udp", Spec{HostPort: r(8000, 8010), CtrPort: r(80, 90), Proto: "udp"}},
		{"8000-8010:80", Spec{HostPort: r(8000, 8010), CtrPort: r(80, 80), Proto: "tcp"}},
		{"8000-8000:80", Spec{HostPort: r(8000, 8000), CtrPort: r(80, 80), Proto: "tcp"}},
		{"10.0.0.1:8000-8002:80-82", Spec{HostIP: ip10, HostPort: r(8000, 8002), CtrPort: r(80, 82), Proto: "tcp"}},
		{"10.0.0.1:8000-8010:80", Spec{HostIP: ip10, HostPort: r(8000, 8010), CtrPort: r(80, 80), Proto: "tcp"}},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // substrings of the message, besides the quoted input
	}{
		{"", []string{"container port", "between 1 and 65535"}},
		{"0", []string{"container port", `"0"`, "between 1 and 65535"}},
		{"65536", []string{"container port", `"65536"`}},
		{"99999999999999999999", []string{"container port"}},
		{"abc", []string{"container port", `"abc"`}},
		{"-80", []string{"container port"}},
		{"+80", []string{"container port"}},
		{" 80", []string{"container port"}},
		{"0x50", []string{"container port"}},
		{"80-", []string{"container port"}},
		{"80-90-100", []string{"container port"}},
		{"90-80", []string{"container port", "90-80", "ends before it starts"}},
		{"0:80", []string{"host port", `"0"`}},
		{"65536:80", []string{"host port", `"65536"`}},
		{"8010-8000:80", []string{"host port", "ends before it starts"}},
		{"8080:0", []string{"container port"}},
		{"8000-8002:80-81", []string{"8000-8002", "80-81", "differ in length"}},
		{"8080:80-81", []string{"8080", "80-81", "differ in length"}},
		{"80/icmp", []string{`"icmp"`, "tcp, udp, sctp"}},
		{"80/", []string{"protocol"}},
		{"80/tcp/udp", []string{"protocol"}},
		{"a:b:c:d", []string{"expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT"}},
		{"1.2.3.4:8080:80:80", []string{"expected [HOST_IP:]"}},
		{"[fe80::1]:80:80", []string{"IPv6", `"fe80::1"`}},
		{"[ff02::1]::80/udp", []string{"IPv6"}},
		{"[::ffff:1.2.3.4]:80:80", []string{"IPv6"}},
		{"[1.2.3.4]:80:80", []string{"IPv6"}},
		{"[::]:80", []string{"expected [IPv6]:HOST_PORT:CONTAINER_PORT"}},
		{"[::]80:80", []string{"expected [IPv6]"}},
		{"[::]:80:80:80", []string{"expected [IPv6]"}},
		{"[::]:x:80", []string{"host port"}},
		{"::1:80:80", nil}, // checked below: format or IPv6 message
		{"::ffff:1.2.3.4:80:80", nil},
		{"::1:8080:80", nil},
		// two parts: the first is a HOST PORT, not a host IP
		{"1.2.3.4:80", []string{"host port", `"1.2.3.4"`}},
		{"localhost:80", []string{"host port"}},
		{"1.2.3.4:abc:80", []string{"host port", `"abc"`}},
		{"1.2.3:8080:80", []string{"host IP", "IPv4"}},
		{"01.2.3.4:8080:80", []string{"host IP"}},
		{"1.2.3.4%eth0:8080:80", []string{"host IP"}},
		{"localhost:8080:80", []string{"host IP", `"localhost"`}},
		{"1::80", []string{"host IP", `"1"`}},
	} {
		got, err := Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", tc.in, got)
			continue
		}
		if got != (Spec{}) {
			t.Errorf("Parse(%q) returned %+v alongside error %v", tc.in, got, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, fmt.Sprintf("%q", tc.in)) {
			t.Errorf("Parse(%q) error %q does not quote the input", tc.in, msg)
		}
		if !strings.HasPrefix(msg, "invalid port spec ") {
			t.Errorf("Parse(%q) error %q does not start with %q", tc.in, msg, "invalid port spec ")
		}
		want := tc.want
		if want == nil { // unbracketed IPv6: either message is clear enough
			if !strings.Contains(msg, "IPv6") && !strings.Contains(msg, "expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]") {
				t.Errorf("Parse(%q) error %q neither mentions IPv6 nor shows the expected syntax", tc.in, msg)
			}
		}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("Parse(%q) error %q does not mention %q", tc.in, msg, w)
			}
		}
	}
}

func TestSpecString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"80", "80/tcp"},
		{"080-090/udp", "80-90/udp"},
		{"8080:80", "8080:80/tcp"},
		{":80", "80/tcp"},
		{"127.0.0.1:8080:80/sctp", "127.0.0.1:8080:80/sctp"},
		{"127.0.0.1::80", "127.0.0.1::80/tcp"},
		{"0.0.0.0:8080:80", "8080:80/tcp"},
		{"0.0.0.0::80", "80/tcp"},
		{"8000-8010:80-90/udp", "8000-8010:80-90/udp"},
		{"8000-8010:80", "8000-8010:80/tcp"},
		{"8000-8000:80-80", "8000:80/tcp"},
		{"10.0.0.1:8000-8010:80", "10.0.0.1:8000-8010:80/tcp"},
	} {
		sp, err := Parse(tc.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.in, err)
		}
		if got := sp.String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
		again, err := Parse(sp.String())
		if err != nil {
			t.Errorf("Parse(%q) (from %q): %v", sp.String(), tc.in, err)
		} else if again != sp {
			t.Errorf("round trip of %q: %+v != %+v", tc.in, again, sp)
		}
	}
}

func TestRange(t *testing.T) {
	for _, tc := range []struct {
		r    Range
		len  int
		want string
	}{
		{r(80, 80), 1, "80"},
		{r(80, 90), 11, "80-90"},
		{r(1, 65535), 65535, "1-65535"},
	} {
		if got := tc.r.Len(); got != tc.len {
			t.Errorf("%+v.Len() = %d, want %d", tc.r, got, tc.len)
		}
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestMappingString(t *testing.T) {
	for _, tc := range []struct {
		m      Mapping
		want   string
		wantIP string
	}{
		{Mapping{Proto: "tcp", HostPort: 8080, CtrPort: 80}, "80/tcp -> 0.0.0.0:8080", "0.0.0.0"},
		{Mapping{Proto: "udp", HostIP: lo, HostPort: 5353, CtrPort: 53}, "53/udp -> 127.0.0.1:5353", "127.0.0.1"},
		{Mapping{Proto: "sctp", HostIP: ip10, HostPort: 1, CtrPort: 65535}, "65535/sctp -> 10.0.0.1:1", "10.0.0.1"},
	} {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.m, got, tc.want)
		}
		if got := tc.m.HostIPString(); got != tc.wantIP {
			t.Errorf("%+v.HostIPString() = %q, want %q", tc.m, got, tc.wantIP)
		}
	}
}

func TestOverlaps(t *testing.T) {
	all := netip.Addr{}
	m := func(proto string, ip netip.Addr, host, ctr uint16) Mapping {
		return Mapping{Proto: proto, HostIP: ip, HostPort: host, CtrPort: ctr}
	}
	for _, tc := range []struct {
		name string
		a, b Mapping
		want bool
	}{
		{"identical", m("tcp", all, 8080, 80), m("tcp", all, 8080, 80), true},
		{"different container port, same host port", m("tcp", all, 8080, 80), m("tcp", all, 8080, 81), true},
		{"same port different proto", m("tcp", all, 8080, 80), m("udp", all, 8080, 80), false},
		{"tcp vs sctp", m("tcp", lo, 8080, 80), m("sctp", lo, 8080, 80), false},
		{"different host port", m("tcp", all, 8080, 80), m("tcp", all, 8081, 80), false},
		{"all addresses vs specific", m("tcp", all, 8080, 80), m("tcp", lo, 8080, 80), true},
		{"specific vs all addresses", m("tcp", ip10, 8080, 80), m("tcp", all, 8080, 81), true},
		{"same specific IP", m("udp", ip10, 53, 53), m("udp", ip10, 53, 5353), true},
		{"two different specific IPs", m("tcp", ip10, 8080, 80), m("tcp", ip11, 8080, 80), false},
		{"loopback vs other specific", m("tcp", lo, 8080, 80), m("tcp", ip10, 8080, 80), false},
	} {
		if got := tc.a.Overlaps(tc.b); got != tc.want {
			t.Errorf("%s: %v.Overlaps(%v) = %v, want %v", tc.name, tc.a, tc.b, got, tc.want)
		}
		if got := tc.b.Overlaps(tc.a); got != tc.want {
			t.Errorf("%s (swapped): %v.Overlaps(%v) = %v, want %v", tc.name, tc.b, tc.a, got, tc.want)
		}
	}
}

var errTaken = errors.New("port is already allocated")

// rejecting returns a Free that rejects the given host ports (any address,
// any protocol) with errTaken and counts its calls.
func rejecting(calls *int, ports ...uint16) Free {
	bad := map[uint16]bool{}
	for _, p := range ports {
		bad[p] = true
	}
	return func(m Mapping) error {
		if calls != nil {
			*calls++
		}
		if bad[m.HostPort] {
			return fmt.Errorf("%s: %w", m, errTaken)
		}
		return nil
	}
}

func mustParse(t *testing.T, s string) Spec {
	t.Helper()
	sp, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return sp
}

func TestExpand(t *testing.T) {
	auto := r(32768, 32775)
	mp := func(proto string, ip netip.Addr, host, ctr uint16) Mapping {
		return Mapping{Proto: proto, HostIP: ip, HostPort: host, CtrPort: ctr}
	}
	for _, tc := range []struct {
		name   string
		spec   string
		auto   Range
		reject []uint16
		want   []Mapping
	}{
		{"fixed", "8080:80", auto, nil, []Mapping{mp("tcp", netip.Addr{}, 8080, 80)}},
		{"fixed with IP", "127.0.0.1:8080:80/udp", auto, nil, []Mapping{mp("udp", lo, 8080, 80)}},
		{"fixed ignores auto range rejections", "8080:80", auto, []uint16{32768}, []Mapping{mp("tcp", netip.Addr{}, 8080, 80)}},
		{"1:1 range", "8000-8002:80-82/udp", auto, nil, []Mapping{
			mp("udp", netip.Addr{}, 8000, 80), mp("udp", netip.Addr{}, 8001, 81), mp("udp", netip.Addr{}, 8002, 82),
		}},
		{"1:1 range with IP", "10.0.0.1:8000-8001:80-81", auto, nil, []Mapping{
			mp("tcp", ip10, 8000, 80), mp("tcp", ip10, 8001, 81),
		}},
		{"host range, one container port: first", "8000-8010:80", auto, nil, []Mapping{mp("tcp", netip.Addr{}, 8000, 80)}},
		{"host range, one container port: first free", "8000-8010:80", auto, []uint16{8000, 8001, 8003}, []Mapping{mp("tcp", netip.Addr{}, 8002, 80)}},
		{"host range, one container port: last free", "127.0.0.1:8000-8002:80/sctp", auto, []uint16{8000, 8001}, []Mapping{mp("sctp", lo, 8002, 80)}},
		{"auto", "80", auto, nil, []Mapping{mp("tcp", netip.Addr{}, 32768, 80)}},
		{"auto with IP", "127.0.0.1::80", auto, nil, []Mapping{mp("tcp", lo, 32768, 80)}},
		{"auto first free", "80", auto, []uint16{32768, 32769}, []Mapping{mp("tcp", netip.Addr{}, 32770, 80)}},
		{"auto range: distinct host ports", "80-83", auto, nil, []Mapping{
			mp("tcp", netip.Addr{}, 32768, 80), mp("tcp", netip.Addr{}, 32769, 81),
			mp("tcp", netip.Addr{}, 32770, 82), mp("tcp", netip.Addr{}, 32771, 83),
		}},
		{"auto range skips rejected", "127.0.0.1::80-82/udp", auto, []uint16{32768, 32770, 32771}, []Mapping{
			mp("udp", lo, 32769, 80), mp("udp", lo, 32772, 81), mp("udp", lo, 32773, 82),
		}},
		{"auto range exactly fits", "80-81", r(40000, 40001), nil, []Mapping{
			mp("tcp", netip.Addr{}, 40000, 80), mp("tcp", netip.Addr{}, 40001, 81),
		}},
		{"auto single-port range", "80", r(65535, 65535), nil, []Mapping{mp("tcp", netip.Addr{}, 65535, 80)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := mustParse(t, tc.spec)
			free := rejecting(nil, tc.reject...)
			got, err := Expand(sp, tc.auto, free)
			if err != nil {
				t.Fatalf("Expand(%s, %s): %v", sp, tc.auto, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Expand(%s, %s) =\n  %v\nwant\n  %v", sp, tc.auto, got, tc.want)
			}
			seen := map[uint16]bool{}
			for _, m := range got {
				if err := free(m); err != nil {
					t.Errorf("mapping %v is not free: %v", m, err)
				}
				if seen[m.HostPort] {
					t.Errorf("host port %d used twice in %v", m.HostPort, got)
				}
				seen[m.HostPort] = true
				if !sp.Matches(m) {
					t.Errorf("%s does not match its own mapping %v", sp, m)
				}
			}
		})
	}
}

func TestExpandErrors(t *testing.T) {
	auto := r(32768, 32770)
	for _, tc := range []struct {
		name     string
		spec     string
		auto     Range
		reject   []uint16
		wantErr  error
		wantMsgs []string
	}{
		{"auto exhausted", "80", auto, []uint16{32768, 32769, 32770}, ErrNoFreePort, []string{"32768-32770/tcp", "80/tcp"}},
		{"auto range exhausted midway", "80-83/udp", auto, nil, ErrNoFreePort, []string{"32768-32770/udp"}},
		{"auto range exhausted by rejections", "80-81", auto, []uint16{32768, 32770}, ErrNoFreePort, nil},
		{"auto range empty", "80", r(2, 1), nil, ErrNoFreePort, nil},
		{"host range exhausted", "127.0.0.1:8000-8002:80", auto, []uint16{8000, 8001, 8002}, ErrNoFreePort, []string{"8000-8002/tcp", "127.0.0.1:8000-8002:80/tcp"}},
		{"fixed port taken", "8080:80", auto, []uint16{8080}, errTaken, []string{"8080:80/tcp", "80/tcp -> 0.0.0.0:8080"}},
		{"1:1 range, one taken", "8000-8002:80-82/sctp", auto, []uint16{8001}, errTaken, []string{"81/sctp -> 0.0.0.0:8001"}},
		{"1:1 range, last taken", "10.0.0.1:8000-8002:80-82", auto, []uint16{8002}, errTaken, []string{"82/tcp -> 10.0.0.1:8002"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := mustParse(t, tc.spec)
			got, err := Expand(sp, tc.auto, rejecting(nil, tc.reject...))
			if err == nil {
				t.Fatalf("Expand(%s, %s) = %v, want an error", sp, tc.auto, got)
			}
			if got != nil {
				t.Errorf("Expand(%s, %s) returned %v alongside error %v", sp, tc.auto, got, err)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Expand(%s, %s) error %v does not wrap %v", sp, tc.auto, err, tc.wantErr)
			}
			if tc.wantErr == errTaken && errors.Is(err, ErrNoFreePort) {
				t.Errorf("Expand(%s, %s) error %v wraps ErrNoFreePort for a fixed port", sp, tc.auto, err)
			}
			for _, w := range tc.wantMsgs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Expand(%s, %s) error %q does not mention %q", sp, tc.auto, err, w)
				}
			}
		})
	}
}

// TestExpandFreeCalls checks that free is asked about the candidate mapping
// (protocol, address, ports) and that a fixed mapping is asked exactly once.
func TestExpandFreeCalls(t *testing.T) {
	var asked []Mapping
	free := func(m Mapping) error {
		asked = append(asked, m)
		if m.HostPort == 32768 {
			return errTaken
		}
		return nil
	}
	sp := mustParse(t, "127.0.0.1::53/udp")
	got, err := Expand(sp, r(32768, 32770), free)
	if err != nil {
		t.Fatal(err)
	}
	want := []Mapping{
		{Proto: "udp", HostIP: lo, HostPort: 32768, CtrPort: 53},
		{Proto: "udp", HostIP: lo, HostPort: 32769, CtrPort: 53},
	}
	if !reflect.DeepEqual(asked, want) {
		t.Errorf("free asked about %v, want %v", asked, want)
	}
	if !reflect.DeepEqual(got, want[1:]) {
		t.Errorf("Expand = %v, want %v", got, want[1:])
	}

	asked = nil
	if _, err := Expand(mustParse(t, "9000:90"), r(32768, 32770), free); err != nil {
		t.Fatal(err)
	}
	if want := []Mapping{{Proto: "tcp", HostPort: 9000, CtrPort: 90}}; !reflect.DeepEqual(asked, want) {
		t.Errorf("free asked about %v, want %v", asked, want)
	}
}

// TestExpandAutoRangeIncludingZero: the package promises every returned
// mapping has ports in 1..65535, but Expand trusts the auto range, so an auto
// range starting at 0 yields host port 0.
func TestExpandAutoRangeIncludingZero(t *testing.T) {
	got, err := Expand(mustParse(t, "80"), r(0, 10), rejecting(nil))
	for _, m := range got {
		if m.HostPort == 0 {
			t.Errorf("Expand with auto range 0-10 = %v (err %v): host port 0", got, err)
		}
	}
}

func TestMatches(t *testing.T) {
	all := netip.Addr{}
	m := func(proto string, ip netip.Addr, host, ctr uint16) Mapping {
		return Mapping{Proto: proto, HostIP: ip, HostPort: host, CtrPort: ctr}
	}
	for _, tc := range []struct {
		spec string
		m    Mapping
		want bool
	}{
		// container port only: every host port and address
		{"80", m("tcp", all, 32768, 80), true},
		{"80", m("tcp", all, 8080, 80), true},
		{"80", m("tcp", lo, 1, 80), true},
		{"80", m("tcp", all, 8080, 81), false},
		{"80", m("udp", all, 8080, 80), false},
		{"80/udp", m("udp", all, 8080, 80), true},
		{"80/sctp", m("tcp", all, 8080, 80), false},
		// with host port
		{"8080:80", m("tcp", all, 8080, 80), true},
		{"8080:80", m("tcp", lo, 8080, 80), true},
		{"8080:80", m("tcp", all, 8081, 80), false},
		{"8080:80", m("tcp", all, 8080, 81), false},
		{"8080:80/udp", m("tcp", all, 8080, 80), false},
		// with host IP
		{"127.0.0.1:8080:80", m("tcp", lo, 8080, 80), true},
		{"127.0.0.1:8080:80", m("tcp", all, 8080, 80), false},
		{"127.0.0.1:8080:80", m("tcp", ip10, 8080, 80), false},
		{"127.0.0.1::80", m("tcp", lo, 32768, 80), true},
		{"127.0.0.1::80", m("tcp", ip10, 32768, 80), false},
		{"0.0.0.0:8080:80", m("tcp", lo, 8080, 80), true}, // 0.0.0.0: any address
		// container range
		{"80-90", m("tcp", all, 32768, 80), true},
		{"80-90", m("tcp", all, 32768, 85), true},
		{"80-90", m("tcp", all, 32768, 90), true},
		{"80-90", m("tcp", all, 32768, 79), false},
		{"80-90", m("tcp", all, 32768, 91), false},
		// 1:1 ranges: host port must correspond
		{"8000-8010:80-90", m("tcp", all, 8000, 80), true},
		{"8000-8010:80-90", m("tcp", all, 8005, 85), true},
		{"8000-8010:80-90", m("tcp", all, 8010, 90), true},
		{"8000-8010:80-90", m("tcp", all, 8006, 85), false},
		{"8000-8010:80-90", m("tcp", all, 8000, 90), false},
		{"8000-8010:80-90", m("tcp", all, 7999, 79), false},
		{"8000-8010:80-90", m("tcp", all, 8011, 91), false},
		// host range for one container port: any host port in the range
		{"8000-8010:80", m("tcp", all, 8000, 80), true},
		{"8000-8010:80", m("tcp", all, 8007, 80), true},
		{"8000-8010:80", m("tcp", all, 8010, 80), true},
		{"8000-8010:80", m("tcp", all, 7999, 80), false},
		{"8000-8010:80", m("tcp", all, 8011, 80), false},
		{"8000-8010:80", m("tcp", all, 8005, 81), false},
		{"10.0.0.1:8000-8010:80", m("tcp", ip11, 8005, 80), false},
	} {
		sp := mustParse(t, tc.spec)
		if got := sp.Matches(tc.m); got != tc.want {
			t.Errorf("Parse(%q).Matches(%v) = %v, want %v", tc.spec, tc.m, got, tc.want)
		}
	}
}
