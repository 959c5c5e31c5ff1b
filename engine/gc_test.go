package engine

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/nsnet/nsnet/internal/resident"
)

// TestMisdirected finds the ports the resident sends elsewhere than the
// sandbox's container port on its publishing address (its address changed,
// or a resident of an older nsnet gave none).
func TestMisdirected(t *testing.T) {
	sb := &Sandbox{
		Endpoints: []Endpoint{{Network: "n1", Address: netip.MustParsePrefix("10.1.0.5/24"), Gateway: netip.MustParseAddr("10.1.0.1")}},
		Ports:     []Mapping{{Proto: "tcp", HostPort: 8080, CtrPort: 80}, {Proto: "udp", HostPort: 5353, CtrPort: 53}},
	}
	k1, k2 := sb.Ports[0].Key(), sb.Ports[1].Key()
	for _, c := range []struct {
		name string
		h    resident.Held
		want []string
	}{
		{"right", resident.Held{Keys: []string{k1, k2}, Targets: []string{"10.1.0.5:80", "10.1.0.5:53"}}, nil},
		{"no targets", resident.Held{Keys: []string{k1, k2}}, []string{k1, k2}},
		{"another address", resident.Held{Keys: []string{k1}, Targets: []string{"10.1.0.6:80"}}, []string{k1}},
		{"a key it should not hold is gc's other business", resident.Held{Keys: []string{"tcp/0.0.0.0/09999"}, Targets: []string{"10.1.0.5:1"}}, nil},
	} {
		if got := misdirected(sb, c.h); !slices.Equal(got, c.want) {
			t.Errorf("%s: misdirected = %v, want %v", c.name, got, c.want)
		}
	}
}
