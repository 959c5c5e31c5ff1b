package store

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nsnet/nsnet/internal/portspec"
)

// openTest opens a read-write store in a fresh directory and closes it when
// the test ends.
func openTest(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	s.db.NoSync = true // tests do not need durability
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func mustUpdate(t *testing.T, s *Store, fn func(*Tx) error) {
	t.Helper()
	if err := s.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func mustView(t *testing.T, s *Store, fn func(*Tx) error) {
	t.Helper()
	if err := s.View(fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// created is a timestamp that survives a JSON round trip unchanged.
var created = time.Date(2026, 11, 27, 16, 25, 47, 123456789, time.UTC)

func testNetwork(name, subnet, gw string) *Network {
	return &Network{
		ID:        "id-" + name,
		Name:      name,
		Bridge:    "br-" + name,
		Subnet:    mustPrefix(subnet),
		Gateway:   mustAddr(gw),
		Internal:  name == "internal",
		MTU:       1500,
		BridgeMAC: "02:42:c0:a8:58:01",
		Created:   created,
	}
}

func testSandbox(name string) *Sandbox {
	return &Sandbox{
		ID:        "id-" + name,
		Name:      name,
		Mode:      ModeBridge,
		NetNS:     "/run/nsnet/netns/" + name,
		OwnsNetNS: true,
		Mounted:   true,
		Endpoints: []Endpoint{
			{
				Network:  "front",
				IfName:   "eth0",
				Address:  mustPrefix("192.168.88.11/24"),
				MAC:      "02:42:c0:a8:58:0b",
				Gateway:  mustAddr("192.168.88.1"),
				HostVeth: "veth1a2b3c4",
			},
			{
				Network:  "back",
				IfName:   "eth1",
				Address:  mustPrefix("10.9.0.2/16"),
				MAC:      "02:42:0a:09:00:02",
				Gateway:  mustAddr("10.9.0.1"),
				HostVeth: "veth5d6e7f8",
			},
		},
		Created: created,
	}
}

func TestOpenCreatesFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "nsnet")
	s, err := Open(dir, Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	want := filepath.Join(dir, FileName)
	if s.Path() != want {
		t.Errorf("Path() = %q, want %q", s.Path(), want)
	}
	fi, err := os.Stat(want)
	if err != nil {
		t.Fatalf("state file not created: %v", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("state file mode %v is readable by others", fi.Mode().Perm())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm()&0o077 != 0 {
		t.Errorf("state directory mode %v is open to others", di.Mode().Perm())
	}
	// The buckets exist straight away, so a reader finds an empty store.
	mustView(t, s, func(tx *Tx) error {
		for _, b := range [][]byte{bucketNetworks, bucketSandboxes, bucketLeases} {
			if tx.tx.Bucket(b) == nil {
				t.Errorf("bucket %s missing after Open", b)
			}
		}
		nets, err := tx.Networks()
		if err != nil || len(nets) != 0 {
			t.Errorf("Networks() on a new store = %v, %v", nets, err)
		}
		sbs, err := tx.Sandboxes()
		if err != nil || len(sbs) != 0 {
			t.Errorf("Sandboxes() on a new store = %v, %v", sbs, err)
		}
		return nil
	})
}

func TestOpenReadOnlyNewDirFallsBackToReadWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s, err := Open(dir, Options{ReadOnly: true, LockTimeout: time.Second})
	if err != nil {
		t.Fatalf("Open read-only on a new dir: %v", err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Fatalf("state file not created: %v", err)
	}
	// It was opened read-write after all.
	if err := s.Update(func(tx *Tx) error { return tx.PutNetwork(testNetwork("n", "10.0.0.0/24", "10.0.0.1")) }); err != nil {
		t.Errorf("Update on a store created by a read-only Open: %v", err)
	}
}

func TestOpenNotADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(f, Options{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatalf("Open(%s) of a regular file succeeded", f)
	}
	if !strings.Contains(err.Error(), f) {
		t.Errorf("error %q does not name the path", err)
	}
}

func TestNetworkRoundTrip(t *testing.T) {
	s, dir := openTest(t)
	a := testNetwork("front", "192.168.88.0/24", "192.168.88.1")
	b := testNetwork("back", "10.9.0.0/16", "10.9.0.1")
	c := testNetwork("internal", "172.30.0.0/30", "172.30.0.2")
	c.MTU = 9000
	mustUpdate(t, s, func(tx *Tx) error {
		for _, n := range []*Network{a, b, c} {
			if err := tx.PutNetwork(n); err != nil {
				return err
			}
		}
		return nil
	})
	check := func(s *Store) {
		t.Helper()
		mustView(t, s, func(tx *Tx) error {
			for _, want := range []*Network{a, b, c} {
				got, err := tx.Network(want.Name)
				if err != nil {
					t.Errorf("Network(%q): %v", want.Name, err)
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Network(%q) = %+v, want %+v", want.Name, got, want)
				}
			}
			all, err := tx.Networks()
			if err != nil {
				t.Fatalf("Networks: %v", err)
			}
			if want := []Network{*b, *a, *c}; !reflect.DeepEqual(all, want) {
				t.Errorf("Networks() = %+v, want sorted by name %+v", all, want)
			}
			if _, err := tx.Network("missing"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Network(missing) error = %v, want ErrNotFound", err)
			}
			return nil
		})
	}
	check(s)

	// It survives a close and reopen.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	check(s2)

	// Overwrite, then delete.
	a2 := *a
	a2.MTU = 1400
	a2.Internal = true
	mustUpdate(t, s2, func(tx *Tx) error { return tx.PutNetwork(&a2) })
	mustUpdate(t, s2, func(tx *Tx) error { return tx.DeleteNetwork("back") })
	mustView(t, s2, func(tx *Tx) error {
		got, err := tx.Network("front")
		if err != nil || !reflect.DeepEqual(got, &a2) {
			t.Errorf("Network(front) after overwrite = %+v, %v; want %+v", got, err, a2)
		}
		if _, err := tx.Network("back"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Network(back) after delete: error = %v, want ErrNotFound", err)
		}
		all, err := tx.Networks()
		if err != nil || len(all) != 2 || all[0].Name != "front" || all[1].Name != "internal" {
			t.Errorf("Networks() after delete = %+v, %v", all, err)
		}
		return nil
	})
	// Deleting a missing network is not an error.
	mustUpdate(t, s2, func(tx *Tx) error { return tx.DeleteNetwork("never-existed") })
}

func TestNetworkZeroNetipFields(t *testing.T) {
	s, _ := openTest(t)
	n := &Network{Name: "bare"}
	mustUpdate(t, s, func(tx *Tx) error { return tx.PutNetwork(n) })
	mustView(t, s, func(tx *Tx) error {
		got, err := tx.Network("bare")
		if err != nil {
			t.Fatal(err)
		}
		if got.Subnet.IsValid() || got.Gateway.IsValid() || !got.Created.IsZero() {
			t.Errorf("zero fields did not round-trip: %+v", got)
		}
		if !reflect.DeepEqual(got, n) {
			t.Errorf("Network(bare) = %+v, want %+v", got, n)
		}
		return nil
	})
}

func TestSandboxRoundTrip(t *testing.T) {
	s, _ := openTest(t)
	web := testSandbox("web")
	host := &Sandbox{ID: "id-host", Name: "host1", Mode: ModeHost, NetNS: "/proc/1/ns/net", Created: created}
	none := &Sandbox{ID: "id-none", Name: "alone", Mode: ModeNone, NetNS: "/run/nsnet/netns/alone", OwnsNetNS: true, Mounted: true, Created: created}
	side := &Sandbox{ID: "id-side", Name: "sidecar", Mode: ModeContainer, Container: "web", NetNS: "/run/nsnet/netns/web", Created: created}
	all := []*Sandbox{web, host, none, side}
	mustUpdate(t, s, func(tx *Tx) error {
		for _, sb := range all {
			if err := tx.PutSandbox(sb); err != nil {
				return err
			}
		}
		return nil
	})
	mustView(t, s, func(tx *Tx) error {
		for _, want := range all {
			got, err := tx.Sandbox(want.Name)
			if err != nil {
				t.Errorf("Sandbox(%q): %v", want.Name, err)
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Sandbox(%q) = %+v, want %+v", want.Name, got, want)
			}
		}
		got, err := tx.Sandbox("web")
		if err == nil {
			// The netip fields keep the host part of the address.
			if a := got.Endpoints[0].Address; a.Addr() != mustAddr("192.168.88.11") || a.Bits() != 24 {
				t.Errorf("endpoint address = %v, want 192.168.88.11/24", a)
			}
		}
		list, err := tx.Sandboxes()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, sb := range list {
			names = append(names, sb.Name)
		}
		if want := []string{"alone", "host1", "sidecar", "web"}; !reflect.DeepEqual(names, want) {
			t.Errorf("Sandboxes() names = %v, want %v", names, want)
		}
		if _, err := tx.Sandbox("missing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Sandbox(missing) error = %v, want ErrNotFound", err)
		}
		return nil
	})

	// DeleteSandbox leaves leases alone.
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.PutLease("front", mustAddr("192.168.88.11"), "web"); err != nil {
			return err
		}
		return tx.DeleteSandbox("web")
	})
	mustView(t, s, func(tx *Tx) error {
		if _, err := tx.Sandbox("web"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Sandbox(web) after delete: error = %v, want ErrNotFound", err)
		}
		if h := tx.LeaseHolder("front", mustAddr("192.168.88.11")); h != "web" {
			t.Errorf("lease holder after DeleteSandbox = %q, want %q", h, "web")
		}
		return nil
	})
	// Deleting a missing sandbox is not an error.
	mustUpdate(t, s, func(tx *Tx) error { return tx.DeleteSandbox("never-existed") })
}

func TestLeases(t *testing.T) {
	s, _ := openTest(t)
	ips := []string{"192.168.88.200", "192.168.88.3", "192.168.88.20", "192.168.88.2", "192.168.88.100"}
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.PutNetwork(testNetwork("front", "192.168.88.0/24", "192.168.88.1")); err != nil {
			return err
		}
		for i, ip := range ips {
			if err := tx.PutLease("front", mustAddr(ip), "sb"+string(rune('a'+i))); err != nil {
				return err
			}
		}
		return tx.PutLease("other", mustAddr("192.168.88.2"), "elsewhere")
	})
	mustView(t, s, func(tx *Tx) error {
		got, err := tx.Leases("front")
		if err != nil {
			t.Fatal(err)
		}
		want := []Lease{
			{mustAddr("192.168.88.2"), "sbd"},
			{mustAddr("192.168.88.3"), "sbb"},
			{mustAddr("192.168.88.20"), "sbc"},
			{mustAddr("192.168.88.100"), "sbe"},
			{mustAddr("192.168.88.200"), "sba"},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Leases(front) = %v, want ascending %v", got, want)
		}
		if h := tx.LeaseHolder("front", mustAddr("192.168.88.20")); h != "sbc" {
			t.Errorf("LeaseHolder(front, .20) = %q, want sbc", h)
		}
		if h := tx.LeaseHolder("front", mustAddr("192.168.88.21")); h != "" {
			t.Errorf("LeaseHolder(front, .21) = %q, want empty", h)
		}
		if h := tx.LeaseHolder("other", mustAddr("192.168.88.2")); h != "elsewhere" {
			t.Errorf("LeaseHolder(other, .2) = %q, want elsewhere (leases are per network)", h)
		}
		if h := tx.LeaseHolder("nonet", mustAddr("192.168.88.2")); h != "" {
			t.Errorf("LeaseHolder(nonet) = %q, want empty", h)
		}
		if l, err := tx.Leases("nonet"); err != nil || len(l) != 0 {
			t.Errorf("Leases(nonet) = %v, %v; want none", l, err)
		}
		return nil
	})

	// Re-leasing an address changes its holder.
	mustUpdate(t, s, func(tx *Tx) error { return tx.PutLease("front", mustAddr("192.168.88.2"), "new") })
	mustView(t, s, func(tx *Tx) error {
		if h := tx.LeaseHolder("front", mustAddr("192.168.88.2")); h != "new" {
			t.Errorf("LeaseHolder after re-lease = %q, want new", h)
		}
		return nil
	})

	// DeleteLease, of a held and of a free address, and on a network
	// without leases.
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.DeleteLease("front", mustAddr("192.168.88.20")); err != nil {
			return err
		}
		if err := tx.DeleteLease("front", mustAddr("192.168.88.21")); err != nil {
			return err
		}
		return tx.DeleteLease("nonet", mustAddr("192.168.88.21"))
	})
	mustView(t, s, func(tx *Tx) error {
		if h := tx.LeaseHolder("front", mustAddr("192.168.88.20")); h != "" {
			t.Errorf("LeaseHolder after DeleteLease = %q, want empty", h)
		}
		got, _ := tx.Leases("front")
		if len(got) != 4 {
			t.Errorf("Leases(front) after one DeleteLease = %v, want 4", got)
		}
		return nil
	})

	// DeleteNetwork removes the lease bucket, and only that network's.
	mustUpdate(t, s, func(tx *Tx) error { return tx.DeleteNetwork("front") })
	mustView(t, s, func(tx *Tx) error {
		if b := tx.tx.Bucket(bucketLeases).Bucket([]byte("front")); b != nil {
			t.Errorf("lease bucket of front survives DeleteNetwork")
		}
		if l, err := tx.Leases("front"); err != nil || len(l) != 0 {
			t.Errorf("Leases(front) after DeleteNetwork = %v, %v", l, err)
		}
		if h := tx.LeaseHolder("front", mustAddr("192.168.88.3")); h != "" {
			t.Errorf("LeaseHolder(front) after DeleteNetwork = %q", h)
		}
		if h := tx.LeaseHolder("other", mustAddr("192.168.88.2")); h != "elsewhere" {
			t.Errorf("DeleteNetwork(front) touched other's leases: holder = %q", h)
		}
		return nil
	})

	// A network recreated under the same name starts with no leases.
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.PutNetwork(testNetwork("front", "192.168.88.0/24", "192.168.88.1")); err != nil {
			return err
		}
		return tx.PutLease("front", mustAddr("192.168.88.9"), "fresh")
	})
	mustView(t, s, func(tx *Tx) error {
		got, _ := tx.Leases("front")
		if want := []Lease{{mustAddr("192.168.88.9"), "fresh"}}; !reflect.DeepEqual(got, want) {
			t.Errorf("Leases of recreated network = %v, want %v", got, want)
		}
		return nil
	})
}

func TestLeasesAscendingAcrossOctets(t *testing.T) {
	s, _ := openTest(t)
	ips := []string{"10.9.255.254", "10.9.1.0", "10.9.0.255", "10.9.0.2", "10.9.128.1"}
	mustUpdate(t, s, func(tx *Tx) error {
		for _, ip := range ips {
			if err := tx.PutLease("back", mustAddr(ip), ip); err != nil {
				return err
			}
		}
		return nil
	})
	mustView(t, s, func(tx *Tx) error {
		got, err := tx.Leases("back")
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(got); i++ {
			if !got[i-1].IP.Less(got[i].IP) {
				t.Errorf("Leases not ascending: %v before %v", got[i-1].IP, got[i].IP)
			}
		}
		for _, l := range got {
			if l.IP.String() != l.Sandbox || !l.IP.Is4() {
				t.Errorf("lease %v does not round-trip as a plain IPv4 address", l)
			}
		}
		return nil
	})
}

func TestUpdateErrorLeavesNothing(t *testing.T) {
	s, _ := openTest(t)
	mustUpdate(t, s, func(tx *Tx) error {
		return tx.PutNetwork(testNetwork("keep", "10.1.0.0/24", "10.1.0.1"))
	})
	boom := errors.New("boom")
	err := s.Update(func(tx *Tx) error {
		if err := tx.PutNetwork(testNetwork("front", "192.168.88.0/24", "192.168.88.1")); err != nil {
			return err
		}
		if err := tx.PutSandbox(testSandbox("web")); err != nil {
			return err
		}
		if err := tx.PutLease("front", mustAddr("192.168.88.11"), "web"); err != nil {
			return err
		}
		if err := tx.DeleteNetwork("keep"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update error = %v, want the fn's error", err)
	}
	mustView(t, s, func(tx *Tx) error {
		if _, err := tx.Network("front"); !errors.Is(err, ErrNotFound) {
			t.Errorf("network from a failed Update persisted (err %v)", err)
		}
		if _, err := tx.Sandbox("web"); !errors.Is(err, ErrNotFound) {
			t.Errorf("sandbox from a failed Update persisted (err %v)", err)
		}
		if h := tx.LeaseHolder("front", mustAddr("192.168.88.11")); h != "" {
			t.Errorf("lease from a failed Update persisted: %q", h)
		}
		if tx.tx.Bucket(bucketLeases).Bucket([]byte("front")) != nil {
			t.Errorf("lease bucket from a failed Update persisted")
		}
		if _, err := tx.Network("keep"); err != nil {
			t.Errorf("delete in a failed Update took effect: %v", err)
		}
		return nil
	})
}

func TestViewIsReadOnly(t *testing.T) {
	s, _ := openTest(t)
	err := s.View(func(tx *Tx) error {
		return tx.PutNetwork(testNetwork("x", "10.0.0.0/24", "10.0.0.1"))
	})
	if err == nil {
		t.Fatal("PutNetwork inside View succeeded")
	}
}

func TestPutEmptyName(t *testing.T) {
	s, _ := openTest(t)
	if err := s.Update(func(tx *Tx) error { return tx.PutNetwork(&Network{}) }); err == nil {
		t.Error("PutNetwork with an empty name succeeded")
	}
	if err := s.Update(func(tx *Tx) error { return tx.PutSandbox(&Sandbox{}) }); err == nil {
		t.Error("PutSandbox with an empty name succeeded")
	}
}

func TestSecondOpenIsBusy(t *testing.T) {
	s, dir := openTest(t)
	start := time.Now()
	s2, err := Open(dir, Options{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		s2.Close()
		t.Fatal("second read-write Open succeeded while the first is open")
	}
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("second Open error = %v, want one wrapping ErrBusy", err)
	}
	if el := time.Since(start); el < 50*time.Millisecond || el > 3*time.Second {
		t.Errorf("second Open gave up after %v, want about 100ms", el)
	}
	if !strings.Contains(err.Error(), s.Path()) {
		t.Errorf("busy error %q does not name the file", err)
	}

	// A reader is refused too while a writer holds the file.
	r, err := Open(dir, Options{ReadOnly: true, LockTimeout: 100 * time.Millisecond})
	if err == nil {
		r.Close()
		t.Fatal("read-only Open succeeded while a writer holds the store")
	}
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("read-only Open error = %v, want ErrBusy", err)
	}

	// Once the first closes, the next Open succeeds.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(dir, Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	s3.Close()
}

func TestReadOnly(t *testing.T) {
	s, dir := openTest(t)
	net := testNetwork("front", "192.168.88.0/24", "192.168.88.1")
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.PutNetwork(net); err != nil {
			return err
		}
		return tx.PutLease("front", mustAddr("192.168.88.11"), "web")
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	r1, err := Open(dir, Options{ReadOnly: true, LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("read-only Open: %v", err)
	}
	defer r1.Close()
	// Readers share the lock.
	r2, err := Open(dir, Options{ReadOnly: true, LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("second read-only Open: %v", err)
	}
	defer r2.Close()

	for _, r := range []*Store{r1, r2} {
		mustView(t, r, func(tx *Tx) error {
			got, err := tx.Network("front")
			if err != nil || !reflect.DeepEqual(got, net) {
				t.Errorf("read-only Network(front) = %+v, %v", got, err)
			}
			if h := tx.LeaseHolder("front", mustAddr("192.168.88.11")); h != "web" {
				t.Errorf("read-only LeaseHolder = %q, want web", h)
			}
			return nil
		})
	}
	if err := r1.Update(func(*Tx) error { return nil }); err == nil {
		t.Error("Update on a read-only store succeeded")
	}

	// A writer waits for the readers.
	w, err := Open(dir, Options{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		w.Close()
		t.Fatal("read-write Open succeeded while readers hold the store")
	}
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("read-write Open error = %v, want ErrBusy", err)
	}
}

func TestCorruptRecords(t *testing.T) {
	s, _ := openTest(t)
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketNetworks).Put([]byte("bad"), []byte("{not json")); err != nil {
			return err
		}
		if err := tx.Bucket(bucketSandboxes).Put([]byte("bad"), []byte(`{"endpoints":[{"address":"300.1.1.1/24"}]}`)); err != nil {
			return err
		}
		b, err := tx.Bucket(bucketLeases).CreateBucketIfNotExists([]byte("front"))
		if err != nil {
			return err
		}
		return b.Put([]byte{192, 168, 88}, []byte("web"))
	})
	if err != nil {
		t.Fatal(err)
	}
	mustView(t, s, func(tx *Tx) error {
		if _, err := tx.Network("bad"); err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"bad"`) {
			t.Errorf("Network(bad) error = %v, want a decode error naming the record", err)
		}
		if _, err := tx.Networks(); err == nil {
			t.Error("Networks() with a corrupt record succeeded")
		}
		if _, err := tx.Sandbox("bad"); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Sandbox(bad) error = %v, want a decode error", err)
		}
		if _, err := tx.Sandboxes(); err == nil {
			t.Error("Sandboxes() with a corrupt record succeeded")
		}
		if _, err := tx.Leases("front"); err == nil || !strings.Contains(err.Error(), "corrupt lease key") {
			t.Errorf("Leases(front) with a 3-byte key: error = %v, want corrupt lease key", err)
		}
		return nil
	})
}

// A state file whose buckets were never created (nsnet was killed between
// bbolt creating the file and Open's first Update committing, or the file
// was made by another tool) must not crash read-only commands.
func TestReadOnlyWithoutBuckets(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(dir, Options{ReadOnly: true, LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustView(t, s, func(tx *Tx) error {
		if _, err := tx.Network("x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Network(x) = %v, want ErrNotFound", err)
		}
		if l, err := tx.Networks(); err != nil || len(l) != 0 {
			t.Errorf("Networks() = %v, %v", l, err)
		}
		if h := tx.LeaseHolder("front", mustAddr("10.0.0.2")); h != "" {
			t.Errorf("LeaseHolder = %q", h)
		}
		if l, err := tx.Leases("front"); err != nil || len(l) != 0 {
			t.Errorf("Leases = %v, %v", l, err)
		}
		return nil
	})
}

// TestHasPortsAndLeases checks the cheap questions the engine asks to know
// whether the resident process is still needed: any port of a protocol, any
// lease on a network; a protocol whose name is a prefix of another's is
// not taken for it.
func TestHasPortsAndLeases(t *testing.T) {
	s, _ := openTest(t)
	m := portspec.Mapping{Proto: "udp", HostPort: 5353, CtrPort: 53}
	mustUpdate(t, s, func(tx *Tx) error {
		if tx.HasPorts("udp") || tx.HasPorts("tcp") || tx.HasLeases("n1") {
			t.Error("an empty store has ports or leases")
		}
		if err := tx.PutPort(m, "s1"); err != nil {
			return err
		}
		if err := tx.PutPort(portspec.Mapping{Proto: "sctp", HostPort: 9, CtrPort: 9}, "s1"); err != nil {
			return err
		}
		return tx.PutLease("n1", netip.MustParseAddr("10.1.0.2"), "s1")
	})
	mustView(t, s, func(tx *Tx) error {
		if !tx.HasPorts("udp") || tx.HasPorts("tcp") || tx.HasPorts("sc") || !tx.HasLeases("n1") || tx.HasLeases("n2") {
			t.Errorf("HasPorts udp %t tcp %t sc %t, HasLeases n1 %t n2 %t; want true false false true false",
				tx.HasPorts("udp"), tx.HasPorts("tcp"), tx.HasPorts("sc"), tx.HasLeases("n1"), tx.HasLeases("n2"))
		}
		return nil
	})
	mustUpdate(t, s, func(tx *Tx) error {
		return errors.Join(tx.DeletePort(m, "s1"), tx.DeleteLease("n1", netip.MustParseAddr("10.1.0.2")))
	})
	mustView(t, s, func(tx *Tx) error {
		if tx.HasPorts("udp") || tx.HasLeases("n1") {
			t.Error("ports or leases left after their removal")
		}
		return nil
	})
}
