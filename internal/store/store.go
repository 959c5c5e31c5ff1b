// Package store keeps nsnet's state in one embedded bbolt file (with
// Options.Keep, in a run directory, its network records also kept in the
// state root: kept.go; with Options.BootID too, for one boot only, its
// commits not synced: boot.go).
//
// Invariants: the file is only changed inside a read-write transaction, and a
// read-write Store holds bbolt's exclusive file lock for as long as it is open,
// so at most one nsnet process mutates state at a time; readers take a shared
// lock. A lease exists for an address, and a MAC index entry for a MAC,
// exactly when a sandbox endpoint on that network has it, and callers keep it
// so by changing them in one transaction. A sharers index entry exists
// exactly for each container-mode sandbox (PutSandbox and DeleteSandbox keep
// it so). A released entry names the host veth of a pair that had an address
// or MAC until its sandbox was removed, and that the kernel destroys later
// with the namespace: it may outlive the pair (whoever next takes the address
// or MAC forgets it), never a network.
// With Keep, KeptFile lists exactly the committed networks, but after a
// command killed between writing it and its commit, until the next
// read-write open writes it again.
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/nsnet/nsnet/internal/portspec"
)

// FileName is the state file inside the root directory.
const FileName = "nsnet.db"

// ErrBusy is returned when another nsnet process holds the lock for too long.
var ErrBusy = errors.New("state store is busy")

// ErrNotFound is returned when a named record does not exist.
var ErrNotFound = errors.New("not found")

var (
	bucketNetworks  = []byte("networks")
	bucketSandboxes = []byte("sandboxes")
	bucketLeases    = []byte("leases")
	bucketNetNS     = []byte("namespaces")    // namespace inode -> sandbox that has it
	bucketPorts     = []byte("ports")         // "proto/port" -> {host IP: sandbox}
	bucketSbPorts   = []byte("sandbox-ports") // sandbox -> "proto/hostIP/port" -> mapping
	bucketMACs      = []byte("macs")          // network -> MAC -> sandbox whose endpoint has it
	bucketRuns      = []byte("runs")          // sandbox -> the run --rm process it goes with
	bucketSharers   = []byte("sharers")       // sandbox "\x00" sharer -> "": container:NAME sandboxes by NAME
)

// Store is an open state file.
type Store struct {
	db   *bolt.DB
	keep string // Options.Keep
}

// ErrCorrupt is returned when the state file exists but cannot be read.
var ErrCorrupt = errors.New("state file is corrupt")

// Options tune Open.
type Options struct {
	ReadOnly bool // take a shared lock; fails over to read-write if the file is new or empty
	// LockTimeout is how long to wait for another process's lock; zero or
	// less means not at all (bbolt's own zero would wait forever).
	LockTimeout time.Duration
	// Keep, if set, is the state root, whose KeptFile keeps the network
	// records across reboots while the state file lives in a run directory
	// (a tmpfs) with the rest: see kept.go.
	Keep string
	// BootID, with Keep, is this boot's ID (CurrentBoot): a state file of an
	// earlier boot is started anew, and commits are not synced (boot.go).
	// Empty: no boot is checked, and every commit is synced.
	BootID string
}

// Open opens the state file in dir, creating it if it is missing or empty
// (an empty file is what a crash during the very first open leaves). With
// o.Keep, a new file starts with the kept networks (or is the state root's
// older state file, moved), and a file whose root was reset is started anew;
// with o.BootID too, so is a file of an earlier boot.
func Open(dir string, o Options) (*Store, error) {
	path := filepath.Join(dir, FileName)
	fi, statErr := os.Stat(path)
	isNew := errors.Is(statErr, os.ErrNotExist) || (statErr == nil && fi.Size() == 0)
	perBoot := o.Keep != "" && o.BootID != ""
	if perBoot {
		removed, err := prepareBoot(dir, path, o.BootID)
		switch {
		case err != nil && o.ReadOnly && errors.Is(err, os.ErrPermission):
			// A reader that may not write reads what is there.
		case err != nil:
			return nil, err
		}
		isNew = isNew || removed
	}
	fresh, err := prepareKept(path, isNew, o.Keep)
	if err != nil {
		return nil, err
	}
	isNew = isNew || fresh.reset
	if isNew || fresh.moved {
		o.ReadOnly = false
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create state directory %s: %w", dir, err)
		}
	}
	timeout := o.LockTimeout
	if timeout <= 0 {
		timeout = time.Nanosecond // bbolt then tries once
	}
	db, err := openBolt(path, &bolt.Options{Timeout: timeout, ReadOnly: o.ReadOnly, NoSync: perBoot, NoGrowSync: perBoot})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout) && o.LockTimeout <= 0:
		return nil, fmt.Errorf("%w: another nsnet command holds %s and --lock-timeout 0 does not wait; retry when it finishes", ErrBusy, path)
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("%w: another nsnet command has held %s for %s; retry when it finishes", ErrBusy, path, o.LockTimeout)
	case errors.As(err, new(*corruptError)):
		anew := "a new, empty one; then nsnet gc finds what nsnet had made in the kernel"
		if o.Keep != "" {
			anew = "a new one with the networks kept in " + filepath.Join(o.Keep, KeptFile) + "; then nsnet gc finds what the sandboxes had in the kernel"
		}
		return nil, fmt.Errorf("%w: %s cannot be read (%v): move it away (mv %s %s.corrupt) and nsnet starts %s by its owner marks, and removes it",
			ErrCorrupt, path, err, path, path, anew)
	case err != nil:
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	s := &Store{db: db, keep: o.Keep}
	if isNew && o.Keep != "" { // which state root this file is of, for people and tests that look
		os.WriteFile(filepath.Join(dir, RootFile), []byte(o.Keep+"\n"), 0o600)
	}
	if isNew { // make the buckets now, so readers always find them
		if err := s.Update(func(tx *Tx) error { return s.seed(tx) }); err != nil {
			db.Close()
			return nil, err
		}
	}
	if err := s.checkKept(o.ReadOnly); err != nil { // read-write when new or moved in
		db.Close()
		return nil, err
	}
	return s, nil
}

// openBolt opens the bbolt file at path, turning what a damaged file makes
// bbolt do (an error, a panic, or a fault reading its memory map beyond a
// truncated end) into an error wrapping ErrCorrupt.
func openBolt(path string, o *bolt.Options) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, &corruptError{fmt.Sprint(r)}
		}
	}()
	db, err = bolt.Open(path, 0o600, o)
	if err != nil {
		if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrVersionMismatch) ||
			errors.Is(err, bolterrors.ErrChecksum) || strings.Contains(err.Error(), "file size too small") {
			err = &corruptError{err.Error()}
		}
		return nil, err
	}
	if err := checkLength(db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// corruptError is what openBolt makes of a damaged file.
type corruptError struct{ detail string }

func (e *corruptError) Error() string { return e.detail }

func (e *corruptError) Unwrap() error { return ErrCorrupt }

// checkLength refuses a file shorter than the pages its header says it has
// (one cut short, e.g. on a full disk): reading them would fault.
func checkLength(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		fi, err := os.Stat(db.Path())
		if err != nil {
			return err
		}
		if fi.Size() < tx.Size() {
			return &corruptError{fmt.Sprintf("the file is %d bytes long, but its pages reach %d", fi.Size(), tx.Size())}
		}
		return nil
	})
}

// Close releases the file and its lock.
func (s *Store) Close() error { return s.db.Close() }

// Path is the state file's path.
func (s *Store) Path() string { return s.db.Path() }

// Update runs fn in a read-write transaction, committed only if fn succeeds.
func (s *Store) Update(fn func(*Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := indexMACs(&Tx{tx: tx}); err != nil {
			return err
		}
		if err := indexSharers(&Tx{tx: tx}); err != nil {
			return err
		}
		for _, b := range [][]byte{bucketNetworks, bucketSandboxes, bucketLeases, bucketNetNS, bucketPorts, bucketSbPorts, bucketRuns} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		t := &Tx{tx: tx}
		if err := fn(t); err != nil {
			return err
		}
		if t.networksChanged {
			return s.keepNetworks(t)
		}
		return nil
	})
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// Tx is a transaction over nsnet's records.
type Tx struct {
	tx              *bolt.Tx
	networksChanged bool // a network record was put or deleted
}

// Network returns the named network or ErrNotFound.
func (t *Tx) Network(name string) (*Network, error) {
	var n Network
	if err := t.get(bucketNetworks, name, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// Networks returns every network, sorted by name.
func (t *Tx) Networks() ([]Network, error) {
	var out []Network
	err := t.each(bucketNetworks, func(v []byte) error {
		var n Network
		if err := json.Unmarshal(v, &n); err != nil {
			return err
		}
		out = append(out, n)
		return nil
	})
	return out, err
}

// PutNetwork stores n under its name.
func (t *Tx) PutNetwork(n *Network) error {
	t.networksChanged = true
	return t.put(bucketNetworks, n.Name, n)
}

// DeleteNetwork removes the network record, its lease and MAC buckets, its
// released pairs and its last addresses.
func (t *Tx) DeleteNetwork(name string) error {
	t.networksChanged = true
	if err := t.tx.Bucket(bucketNetworks).Delete([]byte(name)); err != nil {
		return err
	}
	for _, top := range [][]byte{bucketLeases, bucketMACs} {
		err := t.tx.Bucket(top).DeleteBucket([]byte(name))
		if err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
			return err
		}
	}
	return deleteNetworkAddressing(t.tx, name)
}

// Sandbox returns the named sandbox, with its ports, or ErrNotFound.
func (t *Tx) Sandbox(name string) (*Sandbox, error) {
	s, err := t.SandboxRecord(name)
	if err != nil {
		return nil, err
	}
	s.Ports, err = t.sandboxPorts(name)
	return s, err
}

// SandboxRecord returns the named sandbox without reading its ports.
func (t *Tx) SandboxRecord(name string) (*Sandbox, error) {
	var s Sandbox
	if err := t.get(bucketSandboxes, name, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (t *Tx) sandboxPorts(name string) ([]portspec.Mapping, error) {
	top := t.tx.Bucket(bucketSbPorts)
	if top == nil {
		return nil, nil
	}
	b := top.Bucket([]byte(name))
	if b == nil {
		return nil, nil
	}
	var out []portspec.Mapping
	err := b.ForEach(func(k, v []byte) error {
		var m portspec.Mapping
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("decode port %s of sandbox %s: %w", k, name, err)
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// Sandboxes returns every sandbox, sorted by name.
func (t *Tx) Sandboxes() ([]Sandbox, error) {
	var out []Sandbox
	err := t.each(bucketSandboxes, func(v []byte) error {
		var s Sandbox
		if err := json.Unmarshal(v, &s); err != nil {
			return err
		}
		var err error
		s.Ports, err = t.sandboxPorts(s.Name)
		out = append(out, s)
		return err
	})
	return out, err
}

// Sharers returns the sandboxes, with their ports, that share the named
// sandbox's namespace (mode container, Container == name), sorted by name,
// from the sharers index: however many sandboxes there are, it reads only
// these. (A state file older than the index, opened read-only, is searched.)
func (t *Tx) Sharers(name string) ([]Sandbox, error) {
	b := t.tx.Bucket(bucketSharers)
	if b == nil {
		return t.searchSharers(name)
	}
	var out []Sandbox
	prefix := sharerKey(name, "")
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		s, err := t.Sandbox(string(k[len(prefix):]))
		if err != nil {
			return nil, fmt.Errorf("sandbox %s, which the sharers index names: %w", k[len(prefix):], err)
		}
		out = append(out, *s)
	}
	return out, nil
}

// searchSharers is Sharers without the index: it decodes only the records
// of container-mode sandboxes.
func (t *Tx) searchSharers(name string) ([]Sandbox, error) {
	var out []Sandbox
	err := t.each(bucketSandboxes, func(v []byte) error {
		s, ok, err := decodeSharer(v)
		if err != nil || !ok || s.Container != name {
			return err
		}
		s.Ports, err = t.sandboxPorts(s.Name)
		out = append(out, *s)
		return err
	})
	return out, err
}

// decodeSharer decodes a sandbox record if it is a container-mode one.
func decodeSharer(v []byte) (*Sandbox, bool, error) {
	if !bytes.Contains(v, containerField) {
		return nil, false, nil // only ModeContainer records have one (omitempty)
	}
	var s Sandbox
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, false, err
	}
	return &s, s.Mode == ModeContainer, nil
}

// containerField is how the Container field of a sandbox record starts.
var containerField = []byte(`"container":`)

// sharerKey is the sharers index key of sharer on sandbox (sharer "": the
// prefix of all of sandbox's). Names hold no NUL.
func sharerKey(sandbox, sharer string) []byte { return []byte(sandbox + "\x00" + sharer) }

// indexSharers makes the sharers index of a state file older than it, from
// the stored sandboxes; it does nothing once the index exists.
func indexSharers(t *Tx) error {
	if t.tx.Bucket(bucketSharers) != nil {
		return nil
	}
	b, err := t.tx.CreateBucket(bucketSharers)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketSharers, err)
	}
	return t.each(bucketSandboxes, func(v []byte) error {
		s, ok, err := decodeSharer(v)
		if err != nil || !ok {
			return err
		}
		return b.Put(sharerKey(s.Container, s.Name), nil)
	})
}

// PutSandbox stores s under its name (and, for a container-mode sandbox, in
// the sharers index).
func (t *Tx) PutSandbox(s *Sandbox) error {
	if s.Mode == ModeContainer {
		if err := t.tx.Bucket(bucketSharers).Put(sharerKey(s.Container, s.Name), nil); err != nil {
			return err
		}
	}
	return t.put(bucketSandboxes, s.Name, s)
}

// DeleteSandbox removes the sandbox record and its (empty) port bucket; its
// leases and ports are deleted by DeleteLease and DeletePort.
func (t *Tx) DeleteSandbox(name string) error {
	err := t.tx.Bucket(bucketSbPorts).DeleteBucket([]byte(name))
	if err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
		return err
	}
	if raw := t.tx.Bucket(bucketSandboxes).Get([]byte(name)); raw != nil {
		if s, ok, err := decodeSharer(raw); err == nil && ok {
			if err := t.tx.Bucket(bucketSharers).Delete(sharerKey(s.Container, name)); err != nil {
				return err
			}
		}
	}
	return t.tx.Bucket(bucketSandboxes).Delete([]byte(name))
}

// LeaseHolder returns the sandbox holding ip on network, or "".
func (t *Tx) LeaseHolder(network string, ip netip.Addr) string {
	b := t.leases(network)
	if b == nil {
		return ""
	}
	return string(b.Get(ip.AsSlice()))
}

// Leased returns a function that reports whether an address is leased on
// network, as LeaseHolder does, meant for addresses asked in ascending order
// (as ipam.Allocate asks them): it walks the network's leases once with one
// cursor instead of looking each address up, so finding a free address past
// many leased ones stays cheap. Valid for the transaction's life.
func (t *Tx) Leased(network string) func(netip.Addr) bool {
	b := t.leases(network)
	if b == nil {
		return func(netip.Addr) bool { return false }
	}
	c := b.Cursor()
	var k []byte // the cursor's key: the first leased address not below the last one asked
	return func(a netip.Addr) bool {
		want := a.AsSlice()
		if k == nil || bytes.Compare(k, want) > 0 {
			k, _ = c.Seek(want) // the first question, or one below the last
		}
		for k != nil && bytes.Compare(k, want) < 0 {
			k, _ = c.Next()
		}
		return k != nil && bytes.Equal(k, want)
	}
}

// Leases returns the addresses leased on network, ascending, with holders.
func (t *Tx) Leases(network string) ([]Lease, error) {
	b := t.leases(network)
	if b == nil {
		return nil, nil
	}
	var out []Lease
	err := b.ForEach(func(k, v []byte) error {
		ip, ok := netip.AddrFromSlice(k)
		if !ok {
			return fmt.Errorf("corrupt lease key %x in network %s", k, network)
		}
		out = append(out, Lease{IP: ip, Sandbox: string(v)})
		return nil
	})
	return out, err
}

// HasLeases reports whether any address is leased on network, without
// reading them.
func (t *Tx) HasLeases(network string) bool {
	b := t.leases(network)
	if b == nil {
		return false
	}
	k, _ := b.Cursor().First()
	return k != nil
}

// PutLease records that sandbox holds ip on network.
func (t *Tx) PutLease(network string, ip netip.Addr, sandbox string) error {
	b, err := t.tx.Bucket(bucketLeases).CreateBucketIfNotExists([]byte(network))
	if err != nil {
		return err
	}
	return b.Put(ip.AsSlice(), []byte(sandbox))
}

// DeleteLease releases ip on network; releasing a free address is a no-op.
func (t *Tx) DeleteLease(network string, ip netip.Addr) error {
	b := t.leases(network)
	if b == nil {
		return nil
	}
	return b.Delete(ip.AsSlice())
}

// NamespaceHolder returns the sandbox whose own namespace has this inode, or "".
func (t *Tx) NamespaceHolder(inode uint64) string {
	b := t.tx.Bucket(bucketNetNS)
	if b == nil {
		return "" // a state file older than this bucket, opened read-only
	}
	return string(b.Get(binary.BigEndian.AppendUint64(nil, inode)))
}

// MACHolder returns the sandbox whose endpoint on network has mac, or "".
func (t *Tx) MACHolder(network, mac string) string {
	b := t.macs(network)
	if b == nil {
		return ""
	}
	return string(b.Get([]byte(mac)))
}

// PutMAC records that sandbox's endpoint on network has mac.
func (t *Tx) PutMAC(network, mac, sandbox string) error {
	b, err := t.tx.Bucket(bucketMACs).CreateBucketIfNotExists([]byte(network))
	if err != nil {
		return err
	}
	return b.Put([]byte(mac), []byte(sandbox))
}

// DeleteMAC forgets mac on network; forgetting an unused MAC is a no-op.
func (t *Tx) DeleteMAC(network, mac string) error {
	b := t.macs(network)
	if b == nil {
		return nil
	}
	return b.Delete([]byte(mac))
}

func (t *Tx) macs(network string) *bolt.Bucket {
	top := t.tx.Bucket(bucketMACs)
	if top == nil {
		return nil
	}
	return top.Bucket([]byte(network))
}

// indexMACs makes the MAC index of a state file older than it, from the
// stored endpoints; it does nothing once the index exists.
func indexMACs(t *Tx) error {
	if t.tx.Bucket(bucketMACs) != nil {
		return nil
	}
	if _, err := t.tx.CreateBucket(bucketMACs); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketMACs, err)
	}
	sbs, err := t.Sandboxes()
	if err != nil {
		return err
	}
	for _, s := range sbs {
		for _, ep := range s.Endpoints {
			if err := t.PutMAC(ep.Network, ep.MAC, s.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// PortHolders returns who publishes proto/port, by host IP ("0.0.0.0" for
// every address).
func (t *Tx) PortHolders(proto string, port uint16) (map[string]string, error) {
	holders := map[string]string{}
	b := t.tx.Bucket(bucketPorts)
	if b == nil {
		return holders, nil
	}
	raw := b.Get(portKey(proto, port))
	if raw == nil {
		return holders, nil
	}
	if err := json.Unmarshal(raw, &holders); err != nil {
		return nil, fmt.Errorf("decode port record %s/%d: %w", proto, port, err)
	}
	return holders, nil
}

// HasPorts reports whether any sandbox publishes a port of proto, without
// reading them.
func (t *Tx) HasPorts(proto string) bool {
	b := t.tx.Bucket(bucketPorts)
	if b == nil {
		return false
	}
	prefix := []byte(proto + "/")
	k, _ := b.Cursor().Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix)
}

// PutPort records that sandbox publishes m.
func (t *Tx) PutPort(m portspec.Mapping, sandbox string) error {
	b, err := t.tx.Bucket(bucketSbPorts).CreateBucketIfNotExists([]byte(sandbox))
	if err != nil {
		return err
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := b.Put(mappingKey(m), raw); err != nil {
		return err
	}
	return t.updatePort(m, func(h map[string]string) { h[m.HostIPString()] = sandbox })
}

// DeletePort forgets that sandbox publishes m.
func (t *Tx) DeletePort(m portspec.Mapping, sandbox string) error {
	if b := t.tx.Bucket(bucketSbPorts).Bucket([]byte(sandbox)); b != nil {
		if err := b.Delete(mappingKey(m)); err != nil {
			return err
		}
	}
	return t.updatePort(m, func(h map[string]string) { delete(h, m.HostIPString()) })
}

// PortsAt returns the mappings sandbox publishes on proto/port (on any host
// address), from the port index.
func (t *Tx) PortsAt(sandbox, proto string, port uint16) ([]portspec.Mapping, error) {
	holders, err := t.PortHolders(proto, port)
	if err != nil {
		return nil, err
	}
	b := t.tx.Bucket(bucketSbPorts).Bucket([]byte(sandbox))
	var out []portspec.Mapping
	for ip, holder := range holders {
		if holder != sandbox || b == nil {
			continue
		}
		raw := b.Get(sandboxPortKey(proto, ip, port))
		if raw == nil {
			continue
		}
		var m portspec.Mapping
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("decode port %s/%d of sandbox %s: %w", proto, port, sandbox, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func mappingKey(m portspec.Mapping) []byte { return []byte(m.Key()) }

// sandboxPortKey is mappingKey for a host address as the port index holds
// it ("0.0.0.0" for every address; "::" is every IPv6 address).
func sandboxPortKey(proto, hostIP string, port uint16) []byte {
	m := portspec.Mapping{Proto: proto, HostPort: port}
	if a, err := netip.ParseAddr(hostIP); err == nil && !(a.Is4() && a.IsUnspecified()) {
		m.HostIP = a
	}
	return mappingKey(m)
}

func (t *Tx) updatePort(m portspec.Mapping, change func(map[string]string)) error {
	holders, err := t.PortHolders(m.Proto, m.HostPort)
	if err != nil {
		return err
	}
	change(holders)
	b := t.tx.Bucket(bucketPorts)
	if len(holders) == 0 {
		return b.Delete(portKey(m.Proto, m.HostPort))
	}
	raw, err := json.Marshal(holders)
	if err != nil {
		return err
	}
	return b.Put(portKey(m.Proto, m.HostPort), raw)
}

func portKey(proto string, port uint16) []byte { return []byte(fmt.Sprintf("%s/%d", proto, port)) }

// leases is network's lease bucket, or nil if it has none (yet).
func (t *Tx) leases(network string) *bolt.Bucket {
	top := t.tx.Bucket(bucketLeases)
	if top == nil {
		return nil
	}
	return top.Bucket([]byte(network))
}

// PutNamespace records that sandbox has the namespace with this inode.
func (t *Tx) PutNamespace(inode uint64, sandbox string) error {
	return t.tx.Bucket(bucketNetNS).Put(binary.BigEndian.AppendUint64(nil, inode), []byte(sandbox))
}

// DeleteNamespace forgets the namespace with this inode.
func (t *Tx) DeleteNamespace(inode uint64) error {
	return t.tx.Bucket(bucketNetNS).Delete(binary.BigEndian.AppendUint64(nil, inode))
}

func (t *Tx) get(bucket []byte, key string, v any) error {
	b := t.tx.Bucket(bucket)
	if b == nil {
		return ErrNotFound
	}
	raw := b.Get([]byte(key))
	if raw == nil {
		return ErrNotFound
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode %s record %q: %w", bucket, key, err)
	}
	return nil
}

func (t *Tx) put(bucket []byte, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s record %q: %w", bucket, key, err)
	}
	return t.tx.Bucket(bucket).Put([]byte(key), raw)
}

func (t *Tx) each(bucket []byte, fn func(v []byte) error) error {
	b := t.tx.Bucket(bucket)
	if b == nil {
		return nil
	}
	return b.ForEach(func(_, v []byte) error { return fn(v) })
}

// PutRun records that sandbox is to be removed once the process r has
// exited (nsnet run --rm).
func (t *Tx) PutRun(sandbox string, r Run) error { return t.put(bucketRuns, sandbox, r) }

// DeleteRun forgets the run record of sandbox, if any.
func (t *Tx) DeleteRun(sandbox string) error {
	if b := t.tx.Bucket(bucketRuns); b != nil {
		return b.Delete([]byte(sandbox))
	}
	return nil
}

// Runs returns the run records, by sandbox.
func (t *Tx) Runs() (map[string]Run, error) {
	out := map[string]Run{}
	b := t.tx.Bucket(bucketRuns)
	if b == nil {
		return out, nil
	}
	err := b.ForEach(func(k, v []byte) error {
		var r Run
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode run record %q: %w", k, err)
		}
		out[string(k)] = r
		return nil
	})
	return out, err
}
