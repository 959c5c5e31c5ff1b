package store

import (
	"net/netip"
	"slices"
	"testing"
)

// TestReleased: released pairs are found by any of their addresses and their
// MAC, on their own network only, and forgotten one by one, by a prune, or
// with their network; the address last given is kept per family.
func TestReleased(t *testing.T) {
	s, _ := openTest(t)
	a4, a6 := netip.MustParseAddr("192.168.88.11"), netip.MustParseAddr("2001:db8::11")
	mustView(t, s, func(tx *Tx) error { // a file without the buckets yet
		if got := tx.ReleasedWith("front", []netip.Addr{a4}, "m1"); got != nil {
			t.Errorf("ReleasedWith on a new file = %v", got)
		}
		if got := tx.LastGiven("front", false); got.IsValid() {
			t.Errorf("LastGiven on a new file = %s", got)
		}
		return nil
	})
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.PutNetwork(testNetwork("front", "192.168.88.0/24", "192.168.88.1")); err != nil {
			return err
		}
		if err := tx.PutReleased("front", []netip.Addr{a4, a6}, "m1", "veth1"); err != nil {
			return err
		}
		if err := tx.PutReleased("front", []netip.Addr{netip.MustParseAddr("192.168.88.12"), {}}, "m2", "veth2"); err != nil {
			return err
		}
		if err := tx.PutLastGiven("front", a4); err != nil {
			return err
		}
		return tx.PutLastGiven("front", a6)
	})
	mustUpdate(t, s, func(tx *Tx) error {
		for _, c := range []struct {
			network string
			addrs   []netip.Addr
			mac     string
			want    []string
		}{
			{"front", []netip.Addr{a4}, "", []string{"veth1"}},
			{"front", []netip.Addr{a6}, "", []string{"veth1"}},
			{"front", nil, "m2", []string{"veth2"}},
			{"front", []netip.Addr{a4, a6}, "m2", []string{"veth1", "veth2"}},
			{"front", []netip.Addr{netip.MustParseAddr("192.168.88.13")}, "m3", nil},
			{"back", []netip.Addr{a4}, "m1", nil},
		} {
			if got := tx.ReleasedWith(c.network, c.addrs, c.mac); !slices.Equal(got, c.want) {
				t.Errorf("ReleasedWith(%s, %v, %q) = %v, want %v", c.network, c.addrs, c.mac, got, c.want)
			}
		}
		if got4, got6 := tx.LastGiven("front", false), tx.LastGiven("front", true); got4 != a4 || got6 != a6 {
			t.Errorf("LastGiven = %s and %s, want %s and %s", got4, got6, a4, a6)
		}
		if err := tx.ForgetReleased("front", "veth1"); err != nil {
			return err
		}
		if got := tx.ReleasedWith("front", []netip.Addr{a4, a6}, "m1"); got != nil {
			t.Errorf("after ForgetReleased(veth1): %v", got)
		}
		if err := tx.PruneReleased("front", func(v string) bool { return v == "veth2" }); err != nil {
			return err
		}
		if got := tx.ReleasedWith("front", nil, "m2"); got != nil {
			t.Errorf("after PruneReleased(veth2): %v", got)
		}
		if err := tx.PutReleased("front", []netip.Addr{a4}, "m1", "veth3"); err != nil {
			return err
		}
		return tx.DeleteNetwork("front")
	})
	mustView(t, s, func(tx *Tx) error {
		if got := tx.ReleasedWith("front", []netip.Addr{a4}, "m1"); got != nil {
			t.Errorf("after DeleteNetwork: %v", got)
		}
		if got := tx.LastGiven("front", false); got.IsValid() {
			t.Errorf("LastGiven after DeleteNetwork = %s", got)
		}
		return nil
	})
}
