package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }

// FuzzSandboxRecord stores arbitrary bytes as a sandbox and a network record
// (and as a lease key) behind the store's back and reads them through the
// store: decoding never panics, a failure is an error other than
// ErrNotFound, and what does decode re-encodes stably through PutSandbox /
// PutNetwork.
func FuzzSandboxRecord(f *testing.F) {
	seed, _ := json.Marshal(testSandbox("web"))
	f.Add(seed)
	seed, _ = json.Marshal(testNetwork("front", "192.168.88.0/24", "192.168.88.1"))
	f.Add(seed)
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `"x"`, `{"endpoints":null}`, `{"endpoints":[{}]}`,
		`{"endpoints":[{"address":"1.2.3.4/33"}]}`, `{"endpoints":[{"address":"1.2.3.4"}]}`,
		`{"endpoints":[{"gateway":"fe80::1%eth0"}]}`, `{"subnet":"::/0","gateway":""}`,
		`{"created":"10000-01-01T00:00:00Z"}`, `{"created":"2026-11-27T16:25:47+05:30"}`,
		`{"mtu":1e400}`, `{"name":"\ud800"}`, `{"name":"a\u0000b"}`,
	} {
		f.Add([]byte(s))
	}

	dir := f.TempDir()
	s, err := Open(dir, Options{LockTimeout: time.Second})
	if err != nil {
		f.Fatal(err)
	}
	s.db.NoSync = true
	f.Cleanup(func() { s.Close() })

	key := []byte("fuzz")
	f.Fuzz(func(t *testing.T, raw []byte) {
		err := s.db.Update(func(tx *bolt.Tx) error {
			if err := tx.Bucket(bucketSandboxes).Put(key, raw); err != nil {
				return err
			}
			if err := tx.Bucket(bucketNetworks).Put(key, raw); err != nil {
				return err
			}
			b, err := tx.Bucket(bucketLeases).CreateBucketIfNotExists(key)
			if err != nil {
				return err
			}
			if len(raw) > 0 && len(raw) <= 64 {
				return b.Put(raw, []byte("holder"))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			s.Update(func(tx *Tx) error {
				tx.DeleteSandbox(string(key))
				return tx.DeleteNetwork(string(key))
			})
		})

		var sb *Sandbox
		var nw *Network
		err = s.View(func(tx *Tx) error {
			var err error
			sb, err = tx.Sandbox(string(key))
			if err != nil {
				if errors.Is(err, ErrNotFound) {
					t.Errorf("Sandbox of a stored record: ErrNotFound")
				}
				sb = nil
			}
			list, lerr := tx.Sandboxes()
			if (err == nil) != (lerr == nil) {
				t.Errorf("Sandbox err %v but Sandboxes err %v", err, lerr)
			}
			if lerr == nil && (len(list) != 1 || !reflect.DeepEqual(&list[0], sb)) {
				t.Errorf("Sandboxes() = %+v, Sandbox() = %+v", list, sb)
			}

			nw, err = tx.Network(string(key))
			if err != nil {
				if errors.Is(err, ErrNotFound) {
					t.Errorf("Network of a stored record: ErrNotFound")
				}
				nw = nil
			}
			if _, lerr := tx.Networks(); (err == nil) != (lerr == nil) {
				t.Errorf("Network err %v but Networks err %v", err, lerr)
			}

			leases, lerr := tx.Leases(string(key))
			switch {
			case len(raw) == 4 || len(raw) == 16:
				if lerr != nil || len(leases) != 1 || !bytes.Equal(leases[0].IP.AsSlice(), raw) {
					t.Errorf("Leases with a %d-byte key = %v, %v", len(raw), leases, lerr)
				} else if h := tx.LeaseHolder(string(key), leases[0].IP); h != "holder" {
					t.Errorf("LeaseHolder(%v) = %q", leases[0].IP, h)
				}
			case len(raw) > 0 && len(raw) <= 64:
				if lerr == nil {
					t.Errorf("Leases with a %d-byte key succeeded: %v", len(raw), leases)
				}
			default:
				if lerr != nil || len(leases) != 0 {
					t.Errorf("Leases of an empty bucket = %v, %v", leases, lerr)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

		// What decodes re-encodes stably: put, get, put again gives the
		// same bytes.
		if sb != nil {
			sb.Name = string(key)
			roundTrip(t, s, sb, func(tx *Tx, v *Sandbox) error { return tx.PutSandbox(v) },
				func(tx *Tx) (*Sandbox, error) { return tx.Sandbox(string(key)) }, bucketSandboxes)
		}
		if nw != nil {
			nw.Name = string(key)
			roundTrip(t, s, nw, func(tx *Tx, v *Network) error { return tx.PutNetwork(v) },
				func(tx *Tx) (*Network, error) { return tx.Network(string(key)) }, bucketNetworks)
		}
	})
}

func roundTrip[T any](t *testing.T, s *Store, v *T, put func(*Tx, *T) error, get func(*Tx) (*T, error), bucket []byte) {
	t.Helper()
	raw := func() []byte {
		var out []byte
		s.View(func(tx *Tx) error {
			out = bytes.Clone(tx.tx.Bucket(bucket).Get([]byte("fuzz")))
			return nil
		})
		return out
	}
	if err := s.Update(func(tx *Tx) error { return put(tx, v) }); err != nil {
		// Only values json cannot encode (a time outside years 0-9999)
		// may fail, and then nothing changes.
		return
	}
	first := raw()
	var back *T
	if err := s.View(func(tx *Tx) (err error) { back, err = get(tx); return err }); err != nil {
		t.Fatalf("record written by Put does not read back: %v\n%s", err, first)
	}
	if err := s.Update(func(tx *Tx) error { return put(tx, back) }); err != nil {
		t.Fatalf("record read back does not write again: %v", err)
	}
	if second := raw(); !bytes.Equal(first, second) {
		t.Fatalf("record changed across a round trip:\n%s\n%s", first, second)
	}
}

// FuzzNetworkRoundTrip builds Network and Sandbox values from fuzzed fields,
// stores them and reads them back unchanged.
func FuzzNetworkRoundTrip(f *testing.F) {
	f.Add("front", uint32(0xc0a85800), uint8(24), uint32(0xc0a85801), 1500, true, "02:42:c0:a8:58:01", int64(1795796747), uint32(123456789), "eth0")
	f.Add("x", uint32(0), uint8(0), uint32(0), -1, false, "", int64(0), uint32(0), "")
	f.Add("n", uint32(0xffffffff), uint8(32), uint32(0xffffffff), 1<<30, false, "\x00", int64(-62135596800), uint32(0), "\u00e9")
	dir := f.TempDir()
	s, err := Open(dir, Options{LockTimeout: time.Second})
	if err != nil {
		f.Fatal(err)
	}
	s.db.NoSync = true
	f.Cleanup(func() { s.Close() })

	f.Fuzz(func(t *testing.T, name string, subnet uint32, bits uint8, gw uint32, mtu int, internal bool, mac string, sec int64, nsec uint32, ifname string) {
		// Names reach the store validated (ASCII); JSON would replace
		// invalid UTF-8, so only valid strings are expected to round-trip.
		for _, s := range []string{name, mac, ifname} {
			if !utf8.ValidString(s) {
				return
			}
		}
		if name == "" || len(name) > bolt.MaxKeySize || len(mac)+1+len(name) > bolt.MaxKeySize {
			return // the sandbox (a container-mode one: mac is its Container) is a key of the sharers index too
		}
		a4 := func(v uint32) netip.Addr {
			return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		}
		ts := time.Unix(sec%(1<<39), int64(nsec%1e9)).UTC()
		n := &Network{
			ID: name + "-id", Name: name, Bridge: ifname,
			Subnet: netip.PrefixFrom(a4(subnet), int(bits)%33), Gateway: a4(gw),
			Internal: internal, MTU: mtu, BridgeMAC: mac, Created: ts,
		}
		sb := &Sandbox{
			ID: name + "-id", Name: name, Mode: ModeContainer, Container: mac, NetNS: ifname,
			OwnsNetNS: internal, Mounted: !internal, Created: ts,
			Endpoints: []Endpoint{{
				Network: name, IfName: ifname, Address: netip.PrefixFrom(a4(gw), int(bits)%33),
				MAC: mac, Gateway: a4(subnet), HostVeth: ifname,
			}},
		}
		errN := s.Update(func(tx *Tx) error { return tx.PutNetwork(n) })
		errS := s.Update(func(tx *Tx) error { return tx.PutSandbox(sb) })
		t.Cleanup(func() {
			s.Update(func(tx *Tx) error {
				tx.DeleteSandbox(name)
				return tx.DeleteNetwork(name)
			})
		})
		validYear := ts.Year() >= 0 && ts.Year() <= 9999
		if (errN == nil) != validYear || (errS == nil) != validYear {
			t.Fatalf("Put with created %v: network err %v, sandbox err %v", ts, errN, errS)
		}
		err := s.View(func(tx *Tx) error {
			gotN, err := tx.Network(name)
			if !validYear {
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("failed PutNetwork left a record: %+v, %v", gotN, err)
				}
				return nil
			}
			if err != nil {
				t.Fatalf("Network(%q): %v", name, err)
			}
			if !reflect.DeepEqual(gotN, n) {
				t.Errorf("Network round trip:\n got %+v\nwant %+v", gotN, n)
			}
			gotS, err := tx.Sandbox(name)
			if err != nil {
				t.Fatalf("Sandbox(%q): %v", name, err)
			}
			if !reflect.DeepEqual(gotS, sb) {
				t.Errorf("Sandbox round trip:\n got %+v\nwant %+v", gotS, sb)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
