package store

import (
	"errors"
	"maps"
	"net/netip"
	"slices"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	// network -> 'a' address or 'm' MAC -> the host veth of the pair that had
	// it, released with its namespace (left for the kernel to destroy)
	bucketReleased = []byte("released")
	// network -> "4" or "6" -> the address last handed out there
	bucketLastGiven = []byte("last-given")
)

// PutReleased records that the veth pair whose host end is hostVeth, which
// the kernel destroys with its namespace a little later, had addr (if valid)
// and mac on network: until it is gone, whoever is given either again must
// first take them from it.
func (t *Tx) PutReleased(network string, addrs []netip.Addr, mac, hostVeth string) error {
	b, err := subBucket(t.tx, bucketReleased, network)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		if err := b.Put(addrKey(a), []byte(hostVeth)); err != nil {
			return err
		}
	}
	if mac == "" {
		return nil
	}
	return b.Put(macKey(mac), []byte(hostVeth))
}

// ReleasedWith returns the host veths of released pairs that had addr (if
// valid) or mac on network, each once.
func (t *Tx) ReleasedWith(network string, addrs []netip.Addr, mac string) []string {
	b := t.released(network)
	if b == nil {
		return nil
	}
	keys := [][]byte{}
	for _, a := range addrs {
		if a.IsValid() {
			keys = append(keys, addrKey(a))
		}
	}
	if mac != "" {
		keys = append(keys, macKey(mac))
	}
	var out []string
	seen := map[string]bool{}
	for _, k := range keys {
		if v := b.Get(k); v != nil && !seen[string(v)] {
			seen[string(v)] = true
			out = append(out, string(v))
		}
	}
	return out
}

// ReleasedVeths returns the host veths of network's released pairs, each
// once, in order.
func (t *Tx) ReleasedVeths(network string) []string {
	b := t.released(network)
	if b == nil {
		return nil
	}
	seen := map[string]bool{}
	b.ForEach(func(_, v []byte) error {
		seen[string(v)] = true
		return nil
	})
	return slices.Sorted(maps.Keys(seen))
}

// ForgetReleased forgets the released pair whose host end is hostVeth on
// network (its addresses were taken from it).
func (t *Tx) ForgetReleased(network, hostVeth string) error {
	return t.PruneReleased(network, func(v string) bool { return v == hostVeth })
}

// PruneReleased forgets network's released pairs whose host veth gone says
// the kernel has destroyed, in one pass.
func (t *Tx) PruneReleased(network string, gone func(hostVeth string) bool) error {
	b := t.released(network)
	if b == nil {
		return nil
	}
	var keys [][]byte
	b.ForEach(func(k, v []byte) error {
		if gone(string(v)) {
			keys = append(keys, append([]byte(nil), k...))
		}
		return nil
	})
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// LastGiven returns the IPv4 (or, with v6, IPv6) address last handed out on
// network, invalid if none was.
func (t *Tx) LastGiven(network string, v6 bool) netip.Addr {
	top := t.tx.Bucket(bucketLastGiven)
	if top == nil {
		return netip.Addr{}
	}
	b := top.Bucket([]byte(network))
	if b == nil {
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(b.Get(familyKey(v6)))
	return a
}

// PutLastGiven records addr as the address last handed out on network.
func (t *Tx) PutLastGiven(network string, addr netip.Addr) error {
	b, err := subBucket(t.tx, bucketLastGiven, network)
	if err != nil {
		return err
	}
	return b.Put(familyKey(addr.Is6()), addr.AsSlice())
}

// deleteNetworkAddressing drops network's released pairs and last addresses.
func deleteNetworkAddressing(tx *bolt.Tx, network string) error {
	for _, top := range [][]byte{bucketReleased, bucketLastGiven} {
		b := tx.Bucket(top)
		if b == nil {
			continue
		}
		if err := b.DeleteBucket([]byte(network)); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
			return err
		}
	}
	return nil
}

func (t *Tx) released(network string) *bolt.Bucket {
	top := t.tx.Bucket(bucketReleased)
	if top == nil {
		return nil
	}
	return top.Bucket([]byte(network))
}

// subBucket returns the bucket name inside the top-level bucket top, making
// both if missing.
func subBucket(tx *bolt.Tx, top []byte, name string) (*bolt.Bucket, error) {
	t, err := tx.CreateBucketIfNotExists(top)
	if err != nil {
		return nil, err
	}
	return t.CreateBucketIfNotExists([]byte(name))
}

func addrKey(a netip.Addr) []byte { return append([]byte{'a'}, a.AsSlice()...) }

func macKey(mac string) []byte { return append([]byte{'m'}, mac...) }

func familyKey(v6 bool) []byte {
	if v6 {
		return []byte("6")
	}
	return []byte("4")
}
