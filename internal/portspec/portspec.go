// Package portspec parses Docker's port publishing syntax,
// [HOST_IP:][HOST_PORT[-END]:]CTR_PORT[-END][/tcp|/udp|/sctp], and expands a
// spec into concrete host-to-sandbox mappings.
//
// Invariants: it is pure (whether a host port is free is asked of the
// caller); every Mapping it returns has a protocol, ports in 1..65535 and an
// IPv4, IPv6 (:: for every IPv6 address) or invalid (every address) host
// IP; an expansion either yields all
// of a spec's mappings or an error.
package portspec

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/nsnet/nsnet/types"
)

// Protocols nsnet can publish.
var Protocols = []string{"tcp", "udp", "sctp"}

// Range is an inclusive port range; a single port has Start == End.
type Range struct{ Start, End uint16 }

// Len is the number of ports in the range.
func (r Range) Len() int { return int(r.End) - int(r.Start) + 1 }

func (r Range) String() string {
	if r.Start == r.End {
		return strconv.Itoa(int(r.Start))
	}
	return fmt.Sprintf("%d-%d", r.Start, r.End)
}

// Spec is one parsed -p argument.
type Spec struct {
	HostIP   netip.Addr // invalid: every host address
	HostPort Range      // zero: chosen by nsnet
	CtrPort  Range
	Proto    string
}

// Parse parses one -p value. An IPv6 host address is given in brackets:
// [::]:8080:80, [2001:db8::2]::80.
func Parse(s string) (Spec, error) {
	sp := Spec{Proto: "tcp"}
	rest, proto, hasProto := strings.Cut(s, "/")
	proto = strings.ToLower(proto) // Docker accepts 80/TCP
	if hasProto {
		if !validProto(proto) {
			return Spec{}, fmt.Errorf("invalid port spec %q: protocol %q is not one of tcp, udp, sctp", s, proto)
		}
		sp.Proto = proto
	}
	if strings.HasPrefix(rest, "[") {
		return parseBracketed(s, rest, sp)
	}
	parts := strings.Split(rest, ":")
	if len(parts) > 3 {
		return Spec{}, fmt.Errorf("invalid port spec %q: expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]", s)
	}
	var err error
	if sp.CtrPort, err = parseRange(parts[len(parts)-1]); err != nil {
		return Spec{}, fmt.Errorf("invalid port spec %q: container port: %w", s, err)
	}
	if len(parts) >= 2 && parts[len(parts)-2] != "" {
		if sp.HostPort, err = parseRange(parts[len(parts)-2]); err != nil {
			return Spec{}, fmt.Errorf("invalid port spec %q: host port: %w", s, err)
		}
	}
	if len(parts) == 3 {
		if sp.HostIP, err = parseHostIP(parts[0]); err != nil {
			return Spec{}, fmt.Errorf("invalid port spec %q: %w", s, err)
		}
	}
	return checkLengths(s, sp)
}

func checkLengths(s string, sp Spec) (Spec, error) {
	if sp.HostPort != (Range{}) && sp.HostPort.Len() != sp.CtrPort.Len() && sp.CtrPort.Len() != 1 {
		return Spec{}, fmt.Errorf("invalid port spec %q: host range %s and container range %s differ in length", s, sp.HostPort, sp.CtrPort)
	}
	return sp, nil
}

// parseBracketed parses rest, "[IPv6]:[HOST_PORT]:CTR_PORT", into sp.
func parseBracketed(s, rest string, sp Spec) (Spec, error) {
	host, ports, ok := strings.Cut(rest[1:], "]:")
	if !ok {
		return Spec{}, fmt.Errorf("invalid port spec %q: expected [IPv6]:HOST_PORT:CONTAINER_PORT", s)
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" || a.IsMulticast() || a.IsLinkLocalUnicast() {
		return Spec{}, fmt.Errorf("invalid port spec %q: host IP %q is not an IPv6 address a port can be published on", s, host)
	}
	sp.HostIP = a
	hostPort, ctrPort, ok := strings.Cut(ports, ":")
	if !ok || strings.Contains(ctrPort, ":") {
		return Spec{}, fmt.Errorf("invalid port spec %q: expected [IPv6]:HOST_PORT:CONTAINER_PORT", s)
	}
	if sp.CtrPort, err = parseRange(ctrPort); err != nil {
		return Spec{}, fmt.Errorf("invalid port spec %q: container port: %w", s, err)
	}
	if hostPort != "" {
		if sp.HostPort, err = parseRange(hostPort); err != nil {
			return Spec{}, fmt.Errorf("invalid port spec %q: host port: %w", s, err)
		}
	}
	return checkLengths(s, sp)
}

func validProto(p string) bool {
	for _, q := range Protocols {
		if p == q {
			return true
		}
	}
	return false
}

func parseHostIP(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("host IP %q is not an IPv4 address", s)
	}
	if a.IsUnspecified() {
		return netip.Addr{}, nil // every address, IPv6 too on a dual-stack network
	}
	return a, nil
}

func parseRange(s string) (Range, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	start, err := parsePort(lo)
	if err != nil {
		return Range{}, err
	}
	end := start
	if isRange {
		if end, err = parsePort(hi); err != nil {
			return Range{}, err
		}
		if end < start {
			return Range{}, fmt.Errorf("range %s ends before it starts", s)
		}
	}
	return Range{start, end}, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port number between 1 and 65535", s)
	}
	return uint16(n), nil
}

// String formats the spec in the syntax Parse accepts.
func (sp Spec) String() string {
	var b strings.Builder
	switch {
	case sp.HostIP.Is6():
		b.WriteString("[" + sp.HostIP.String() + "]:")
	case sp.HostIP.IsValid():
		b.WriteString(sp.HostIP.String() + ":")
	}
	if sp.HostPort != (Range{}) {
		b.WriteString(sp.HostPort.String() + ":")
	} else if sp.HostIP.IsValid() {
		b.WriteString(":")
	}
	b.WriteString(sp.CtrPort.String() + "/" + sp.Proto)
	return b.String()
}

// Mapping is one published port (see package types).
type Mapping = types.Mapping

// Free reports whether a candidate mapping's host port may be used.
type Free func(Mapping) error

// ErrNoFreePort is wrapped when no host port in a range is free.
var ErrNoFreePort = errors.New("no free host port")

// Expand turns a spec into mappings. Host ports are taken from the spec, or
// chosen from auto (the first free one) when the spec leaves them out; free
// says whether a host port may be used and why not.
func Expand(sp Spec, auto Range, free Free) ([]Mapping, error) {
	base := Mapping{Proto: sp.Proto, HostIP: sp.HostIP}
	var out []Mapping
	switch {
	case sp.HostPort == Range{}:
		for p := int(sp.CtrPort.Start); p <= int(sp.CtrPort.End); p++ {
			m, err := pick(base, uint16(p), auto, free, out)
			if err != nil {
				return nil, fmt.Errorf("publish %s: %w", sp, err)
			}
			out = append(out, m)
		}
	case sp.HostPort.Len() != sp.CtrPort.Len(): // a host range for one container port
		m, err := pick(base, sp.CtrPort.Start, sp.HostPort, free, nil)
		if err != nil {
			return nil, fmt.Errorf("publish %s: %w", sp, err)
		}
		out = append(out, m)
	default:
		for i := 0; i < sp.CtrPort.Len(); i++ {
			m := base
			m.HostPort, m.CtrPort = sp.HostPort.Start+uint16(i), sp.CtrPort.Start+uint16(i)
			if err := free(m); err != nil {
				return nil, fmt.Errorf("publish %s: %w", sp, err)
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// pick returns base with ctr port and the first free host port of r that
// none of taken uses.
func pick(base Mapping, ctr uint16, r Range, free Free, taken []Mapping) (Mapping, error) {
	m := base
	m.CtrPort = ctr
	for p := max(int(r.Start), 1); p <= int(r.End); p++ {
		m.HostPort = uint16(p)
		if overlapsAny(m, taken) || free(m) != nil {
			continue
		}
		return m, nil
	}
	return Mapping{}, fmt.Errorf("%w in %s/%s", ErrNoFreePort, r, base.Proto)
}

func overlapsAny(m Mapping, ms []Mapping) bool {
	for _, o := range ms {
		if m.Overlaps(o) {
			return true
		}
	}
	return false
}

// Matches reports whether m is one of the mappings sp names, for removal:
// the container port and protocol must match, and the host address and port
// too where sp gives them.
func (sp Spec) Matches(m Mapping) bool {
	if m.Proto != sp.Proto || m.CtrPort < sp.CtrPort.Start || m.CtrPort > sp.CtrPort.End {
		return false
	}
	if sp.HostIP.IsValid() && m.HostIP != sp.HostIP {
		return false
	}
	if sp.HostPort == (Range{}) {
		return true
	}
	if sp.HostPort.Len() == sp.CtrPort.Len() {
		return m.HostPort == sp.HostPort.Start+(m.CtrPort-sp.CtrPort.Start)
	}
	return m.HostPort >= sp.HostPort.Start && m.HostPort <= sp.HostPort.End
}
