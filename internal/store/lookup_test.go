package store

import (
	"net/netip"
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"

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

// TestSharersIndex keeps the sharers index exact through puts and deletes,
// and builds it for a state file older than it.
func TestSharersIndex(t *testing.T) {
	s, _ := openTest(t)
	sharer := func(name, of string) *Sandbox {
		return &Sandbox{ID: "id-" + name, Name: name, Mode: ModeContainer, Container: of, NetNS: "/run/netns/" + of, Created: created}
	}
	names := func(tx *Tx, of string) []string {
		got, err := tx.Sharers(of)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, sb := range got {
			out = append(out, sb.Name)
		}
		return out
	}
	mustUpdate(t, s, func(tx *Tx) error {
		for _, sb := range []*Sandbox{testSandbox("web"), testSandbox("web2"), sharer("a", "web"), sharer("b", "web2"), sharer("c", "web")} {
			if err := tx.PutSandbox(sb); err != nil {
				return err
			}
		}
		return tx.DeleteSandbox("a")
	})
	mustView(t, s, func(tx *Tx) error {
		if got := names(tx, "web"); !reflect.DeepEqual(got, []string{"c"}) {
			t.Errorf("sharers of web after a is deleted: %v, want [c]", got)
		}
		return nil
	})
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketSharers) }); err != nil {
		t.Fatal(err)
	}
	mustView(t, s, func(tx *Tx) error {
		if got := names(tx, "web2"); !reflect.DeepEqual(got, []string{"b"}) {
			t.Errorf("sharers of web2 in an older file, read-only: %v, want [b]", got)
		}
		return nil
	})
	mustUpdate(t, s, func(tx *Tx) error {
		if got := names(tx, "web"); !reflect.DeepEqual(got, []string{"c"}) {
			t.Errorf("sharers of web once the index is built: %v, want [c]", got)
		}
		if tx.tx.Bucket(bucketSharers) == nil {
			t.Error("the first write did not build the sharers index")
		}
		return nil
	})
}
