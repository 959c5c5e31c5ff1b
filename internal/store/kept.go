package store

// Kept networks. A state root whose state file lives in a run directory (a
// tmpfs emptied at boot, as the namespaces, links and rules that its
// sandboxes, leases and ports describe are) keeps its network records, which
// outlive a reboot as Docker's and Podman's networks do, in KeptFile in the
// root as well: written, fsynced and renamed into place within every
// transaction that puts or deletes a network, before it commits. The state
// file records the inode of the KeptFile it wrote last, so a KeptFile left
// newer by a command killed before its commit is written again by the next.
// A new state file starts with the kept networks; one found without a
// KeptFile belongs to a state root that was deleted and made anew, and is
// started anew; a state root with an older nsnet's state file of its own
// (FileName in the root, no KeptFile) has it moved to the run directory.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// KeptFile holds a state root's network records across reboots.
const KeptFile = "networks.json"

// RootFile, beside a state file in a run directory, names its state root.
const RootFile = "root"

var (
	bucketMeta   = []byte("meta")
	keyKeptInode = []byte("kept-inode") // the inode of the KeptFile written last
)

// kept is the content of a KeptFile.
type kept struct {
	Networks []Network `json:"networks"`
}

// preparation is what prepareKept did before the state file is opened.
type preparation struct {
	reset bool // the state file was another state root's: removed
	moved bool // the state root's own older state file was moved in
}

// prepareKept readies the state file at path for the state root keep (if
// set): see the package's kept networks. A state root gets its KeptFile
// before its state file, so that a state file without one is always one of
// a root made anew, never one that a concurrent first command is making.
func prepareKept(path string, isNew bool, keep string) (preparation, error) {
	if keep == "" {
		return preparation{}, nil
	}
	_, err := os.Stat(filepath.Join(keep, KeptFile))
	if err == nil {
		return preparation{}, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return preparation{}, fmt.Errorf("state root %s: %w", keep, err)
	}
	var p preparation
	if !isNew { // the state root was deleted and made anew
		if err := os.Remove(path); err != nil {
			return p, fmt.Errorf("state root %s was made anew: remove the old state file %s: %w", keep, path, err)
		}
		p.reset = true
	} else if old := filepath.Join(keep, FileName); fileSize(old) > 0 {
		if err := moveFile(old, path); err != nil {
			return p, fmt.Errorf("move the state file %s to %s: %w", old, path, err)
		}
		return preparation{moved: true}, nil // its networks are kept on open (checkKept)
	}
	raw, _ := json.Marshal(kept{Networks: []Network{}})
	if err := writeDurably(filepath.Join(keep, KeptFile), raw); err != nil {
		return p, fmt.Errorf("keep the network records in %s: %w", keep, err)
	}
	return p, nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// moveFile copies from to to (writeDurably), then renames from to
// from.moved: the first open of an upgraded nsnet moves the state root's
// state file to the run directory, and leaves a copy behind.
func moveFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := writeDurably(to, data); err != nil {
		return err
	}
	return os.Rename(from, from+".moved")
}

// seed puts the kept networks into a new state file.
func (s *Store) seed(tx *Tx) error {
	if s.keep == "" {
		return nil
	}
	raw, err := os.ReadFile(filepath.Join(s.keep, KeptFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the kept networks: %w", err)
	}
	var k kept
	if err := json.Unmarshal(raw, &k); err != nil {
		return fmt.Errorf("%w: the kept networks %s cannot be read (%v): move it away, and recreate the networks", ErrCorrupt, filepath.Join(s.keep, KeptFile), err)
	}
	for i := range k.Networks {
		if err := tx.put(bucketNetworks, k.Networks[i].Name, &k.Networks[i]); err != nil {
			return err
		}
	}
	tx.networksChanged = false
	return s.putKeptInode(tx)
}

// checkKept writes the KeptFile anew if it is not the one the state file
// wrote last (a command was killed between writing it and its commit, or
// there is none yet); a read-only store leaves it.
func (s *Store) checkKept(readOnly bool) error {
	if s.keep == "" || readOnly {
		return nil
	}
	ino, _ := keptInode(s.keep)
	var recorded uint64
	s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta); b != nil && len(b.Get(keyKeptInode)) == 8 {
			recorded = binary.BigEndian.Uint64(b.Get(keyKeptInode))
		}
		return nil
	})
	if ino != 0 && ino == recorded {
		return nil
	}
	return s.Update(func(tx *Tx) error { tx.networksChanged = true; return nil })
}

// keepNetworks writes tx's networks to the KeptFile and records its inode in
// tx.
func (s *Store) keepNetworks(tx *Tx) error {
	if s.keep == "" {
		return nil
	}
	nets, err := tx.Networks()
	if err != nil {
		return err
	}
	raw, err := json.MarshalIndent(kept{Networks: nets}, "", "  ")
	if err != nil {
		return err
	}
	if err := writeDurably(filepath.Join(s.keep, KeptFile), append(raw, '\n')); err != nil {
		return fmt.Errorf("keep the network records in %s: %w", s.keep, err)
	}
	return s.putKeptInode(tx)
}

func (s *Store) putKeptInode(tx *Tx) error {
	ino, err := keptInode(s.keep)
	if err != nil {
		return err
	}
	b, err := tx.tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	return b.Put(keyKeptInode, binary.BigEndian.AppendUint64(nil, ino))
}

// keptInode is the inode of the state root keep's KeptFile (0 if none).
func keptInode(keep string) (uint64, error) {
	fi, err := os.Stat(filepath.Join(keep, KeptFile))
	if err != nil {
		return 0, err
	}
	return fi.Sys().(*syscall.Stat_t).Ino, nil
}

// writeDurably replaces path with data: a temporary file, fsynced, renamed
// into place, and the directory fsynced.
func writeDurably(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o600); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
