package store

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/nsnet/nsnet/internal/portspec"
)

// TestSharers finds exactly the container-mode sandboxes of the named one,
// with their ports, among sandboxes of every mode, including one whose path
// holds the text of the field the search skips records by.
func TestSharers(t *testing.T) {
	s, _ := openTest(t)
	owner := testSandbox("web")
	decoy := testSandbox("decoy")
	decoy.NetNS = `/run/x/"container":web`
	mine := &Sandbox{ID: "id-a", Name: "a", Mode: ModeContainer, Container: "web", NetNS: "/run/netns/a", Created: created}
	other := &Sandbox{ID: "id-b", Name: "b", Mode: ModeContainer, Container: "decoy", NetNS: "/run/netns/b", Created: created}
	mine2 := &Sandbox{ID: "id-c", Name: "c", Mode: ModeContainer, Container: "web", NetNS: "/run/netns/c", Created: created}
	mustUpdate(t, s, func(tx *Tx) error {
		for _, sb := range []*Sandbox{owner, decoy, mine, other, mine2} {
			if err := tx.PutSandbox(sb); err != nil {
				return err
			}
		}
		return tx.PutPort(portspec.Mapping{Proto: "tcp", HostPort: 8080, CtrPort: 80}, "c")
	})
	mustView(t, s, func(tx *Tx) error {
		got, err := tx.Sharers("web")
		if err != nil {
			return err
		}
		var names []string
		for _, sb := range got {
			names = append(names, sb.Name)
		}
		if !reflect.DeepEqual(names, []string{"a", "c"}) {
			t.Errorf("Sharers(web) = %v, want [a c]", names)
		}
		if len(got) == 2 && len(got[1].Ports) != 1 {
			t.Errorf("sharer c has ports %v, want its one mapping", got[1].Ports)
		}
		if none, err := tx.Sharers("a"); err != nil || len(none) != 0 {
			t.Errorf("Sharers(a) = %v, %v; want none", none, err)
		}
		return nil
	})
}

// TestLeased agrees with LeaseHolder for addresses asked in ascending order,
// and still when asked out of order.
func TestLeased(t *testing.T) {
	s, _ := openTest(t)
	held := []string{"10.0.0.2", "10.0.0.3", "10.0.0.7", "10.0.1.0"}
	mustUpdate(t, s, func(tx *Tx) error {
		for _, a := range held {
			if err := tx.PutLease("n", netip.MustParseAddr(a), "sb-"+a); err != nil {
				return err
			}
		}
		return nil
	})
	var asks []netip.Addr
	for a := netip.MustParseAddr("10.0.0.1"); a.Less(netip.MustParseAddr("10.0.1.3")); a = a.Next() {
		asks = append(asks, a)
	}
	asks = append(asks, netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.4"), netip.MustParseAddr("10.0.1.0"))
	mustView(t, s, func(tx *Tx) error {
		leased := tx.Leased("n")
		for _, a := range asks {
			if got, want := leased(a), tx.LeaseHolder("n", a) != ""; got != want {
				t.Errorf("Leased(%s) = %v, want %v", a, got, want)
			}
		}
		if tx.Leased("other")(netip.MustParseAddr("10.0.0.2")) {
			t.Error("an address is leased on a network with no leases")
		}
		return nil
	})
}
