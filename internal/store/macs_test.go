package store

import (
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestMACs(t *testing.T) {
	s, _ := openTest(t)
	mustUpdate(t, s, func(tx *Tx) error {
		for _, n := range []*Network{testNetwork("front", "192.168.88.0/24", "192.168.88.1"), testNetwork("back", "10.9.0.0/16", "10.9.0.1")} {
			if err := tx.PutNetwork(n); err != nil {
				return err
			}
		}
		if err := tx.PutMAC("front", "02:42:c0:a8:58:0b", "a"); err != nil {
			return err
		}
		return tx.PutMAC("back", "02:00:00:00:00:01", "b")
	})
	mustUpdate(t, s, func(tx *Tx) error {
		if h := tx.MACHolder("front", "02:42:c0:a8:58:0b"); h != "a" {
			t.Errorf("MACHolder(front) = %q, want a", h)
		}
		if h := tx.MACHolder("back", "02:42:c0:a8:58:0b"); h != "" {
			t.Errorf("a MAC on front is held on back by %q", h)
		}
		if h := tx.MACHolder("nowhere", "02:42:c0:a8:58:0b"); h != "" {
			t.Errorf("MACHolder on an unknown network = %q", h)
		}
		if err := tx.DeleteMAC("front", "02:42:c0:a8:58:0b"); err != nil {
			return err
		}
		if err := tx.DeleteMAC("nowhere", "02:42:c0:a8:58:0b"); err != nil {
			t.Errorf("DeleteMAC on an unknown network: %v", err)
		}
		if h := tx.MACHolder("front", "02:42:c0:a8:58:0b"); h != "" {
			t.Errorf("MACHolder after DeleteMAC = %q", h)
		}
		return tx.DeleteNetwork("back")
	})
	mustView(t, s, func(tx *Tx) error {
		if h := tx.MACHolder("back", "02:00:00:00:00:01"); h != "" {
			t.Errorf("MAC index of a deleted network still says %q", h)
		}
		return nil
	})
}

// TestMACIndexOfOlderFile checks that a state file made before the MAC index
// gets one from its endpoints on the first write.
func TestMACIndexOfOlderFile(t *testing.T) {
	s, _ := openTest(t)
	mustUpdate(t, s, func(tx *Tx) error { return tx.PutSandbox(testSandbox("old")) })
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketMACs) }); err != nil {
		t.Fatal(err)
	}
	mustView(t, s, func(tx *Tx) error {
		if h := tx.MACHolder("front", "02:42:c0:a8:58:0b"); h != "" {
			t.Errorf("without an index MACHolder = %q", h)
		}
		return nil
	})
	mustUpdate(t, s, func(*Tx) error { return nil })
	mustView(t, s, func(tx *Tx) error {
		for _, ep := range testSandbox("old").Endpoints {
			if h := tx.MACHolder(ep.Network, ep.MAC); h != "old" {
				t.Errorf("MACHolder(%s, %s) = %q after indexing, want old", ep.Network, ep.MAC, h)
			}
		}
		return nil
	})
}
