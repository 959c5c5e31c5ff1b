package diagnose

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/nsnet/nsnet/internal/observe"
	"github.com/nsnet/nsnet/types"
)

// Target kinds.
const (
	KindAddress = "address" // an IPv4 address
	KindSandbox = "sandbox" // a sandbox of the state root
	KindName    = "name"    // a name the sandbox's resolver answers
	KindDefault = "default" // none given: the host's default gateway, beyond the host
)

// Target is what --to names: [HOST][:PORT][/tcp|udp|icmp].
type Target struct {
	Kind    string     `json:"kind"`
	Host    string     `json:"host,omitempty"` // as given
	Addr    netip.Addr `json:"addr,omitempty"` // KindAddress
	Sandbox string     `json:"sandbox,omitempty"`
	Port    uint16     `json:"port,omitempty"`
	Proto   string     `json:"proto"` // icmp, tcp or udp
}

// ParseTarget splits --to into its host, port and protocol. The host is an
// address (KindAddress) or left for the caller to resolve (KindName, which
// it turns into KindSandbox when a sandbox has that name); empty is
// KindDefault. Without a protocol a port means TCP and no port ICMP.
func ParseTarget(s string) (Target, error) {
	t := Target{Kind: KindDefault, Proto: "icmp"}
	rest, proto, hasProto := strings.Cut(s, "/")
	if hasProto {
		switch proto {
		case "tcp", "udp", "icmp":
			t.Proto = proto
		default:
			return Target{}, fmt.Errorf("--to %q: unknown protocol %q: use tcp, udp or icmp", s, proto)
		}
	}
	if strings.HasPrefix(rest, "[") || strings.Count(rest, ":") > 1 {
		return Target{}, errIPv6(s)
	}
	host, port, hasPort := strings.Cut(rest, ":")
	if hasPort {
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return Target{}, fmt.Errorf("--to %q: %q is not a port (1-65535)", s, port)
		}
		t.Port = uint16(p)
		if !hasProto {
			t.Proto = "tcp"
		}
	}
	if t.Proto == "icmp" && hasPort {
		return Target{}, fmt.Errorf("--to %q: ICMP has no port: give tcp or udp with a port", s)
	}
	if t.Proto != "icmp" && !hasPort {
		return Target{}, fmt.Errorf("--to %q: %s needs a port (HOST:PORT/%s)", s, t.Proto, t.Proto)
	}
	t.Host = host
	if host == "" {
		return t, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Is4() {
			return Target{}, errIPv6(s)
		}
		t.Kind, t.Addr = KindAddress, a
		return t, nil
	}
	t.Kind = KindName
	return t, nil
}

// errIPv6 refuses an IPv6 --to: the analysis follows IPv4 paths only, on
// dual-stack networks too.
func errIPv6(to string) error {
	return fmt.Errorf("--to %q: only IPv4 addresses: diagnose follows IPv4 paths only (on a dual-stack network too)", to)
}

// String is the target as the report names it.
func (t Target) String() string {
	var host string
	switch t.Kind {
	case KindDefault:
		host = "the host's default gateway"
	case KindAddress:
		host = t.Addr.String()
	case KindSandbox:
		host = "sandbox " + t.Sandbox
	default:
		host = t.Host
	}
	if t.Port != 0 {
		return fmt.Sprintf("%s port %d/%s", host, t.Port, t.Proto)
	}
	return fmt.Sprintf("%s (%s)", host, t.Proto)
}

// Query is what to diagnose.
type Query struct {
	Sandbox string
	Target  Target
	// FromOutside diagnoses the way in to the sandbox's published ports
	// (those Target's port and protocol select, if given; a Target address
	// selects those published on it).
	FromOutside bool
}

// Resolve makes a target that names sandbox (found by the caller, by name
// or ID) a sandbox target, reached at its address; but when the source
// sandbox src resolves that name (both are on a user network, whose
// resolver knows it), it stays a name, looked up first, as a program would.
func Resolve(nets []types.Network, sbs []types.Sandbox, src string, t Target, sandbox string) Target {
	s := &observe.Snapshot{Networks: nets, Sandboxes: sbs}
	from, ok1 := s.Sandbox(src)
	to, ok2 := s.Sandbox(sandbox)
	t.Sandbox = sandbox
	if ok1 && ok2 && matchesName(to, t.Host) {
		for _, ep := range from.Endpoints {
			if _, shared := endpointOn(to, ep.Network); shared && ep.Network != types.ModeBridge {
				t.Kind = KindName
				return t
			}
		}
	}
	t.Kind = KindSandbox
	return t
}
