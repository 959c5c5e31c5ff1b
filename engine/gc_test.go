package engine

import (
	"net/netip"
	"testing"

	"github.com/nsnet/nsnet/internal/holder"
)

// TestMisdirected counts the ports a holder sends elsewhere than the
// sandbox's container port on its publishing address, as a holder of an
// older nsnet (without targets) does.
func TestMisdirected(t *testing.T) {
	sb := &Sandbox{
		Endpoints: []Endpoint{{Network: "n1", Address: netip.MustParsePrefix("10.1.0.5/24"), Gateway: netip.MustParseAddr("10.1.0.1")}},
		Ports:     []Mapping{{Proto: "tcp", HostPort: 8080, CtrPort: 80}, {Proto: "udp", HostPort: 5353, CtrPort: 53}},
	}
	k1, k2 := sb.Ports[0].Key(), sb.Ports[1].Key()
	for _, c := range []struct {
		name string
		st   holder.Status
		want int
	}{
		{"right", holder.Status{Keys: []string{k1, k2}, Targets: []string{"10.1.0.5:80", "10.1.0.5:53"}}, 0},
		{"old holder, no targets", holder.Status{Keys: []string{k1, k2}}, 2},
		{"another address", holder.Status{Keys: []string{k1}, Targets: []string{"10.1.0.6:80"}}, 1},
		{"a key it should not hold is gc's other business", holder.Status{Keys: []string{"tcp/0.0.0.0/09999"}, Targets: []string{"10.1.0.5:1"}}, 0},
	} {
		if got := misdirected(sb, c.st); got != c.want {
			t.Errorf("%s: misdirected = %d, want %d", c.name, got, c.want)
		}
	}
}
