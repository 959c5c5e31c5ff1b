// Package journal records what a mutating nsnet command is about to do to the
// kernel, so that a command killed half-way can be finished or undone by the
// next one, and marks the namespaces nsnet mounts so they can be found even
// if the state store is lost.
//
// Intents are small JSON files in ROOT/intents, written before the kernel is
// touched and removed after the store commit. They are not fsynced: kernel
// state does not survive a power loss either, so only process death (which
// keeps the page cache) needs them.
//
// Markers are files in a run directory (default /run/nsnet/netns, a tmpfs that
// is emptied on reboot just like the namespaces it describes), one per
// namespace mount nsnet made, naming the state root that made it.
//
// Invariants: a file is written whole (temporary file, then rename) or not at
// all; readers skip files they cannot decode and report them.
package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nsnet/nsnet/internal/netns"
)

// Operations an intent can describe.
const (
	OpNetworkCreate = "network-create"
	OpNetworkRemove = "network-rm"
	OpSandboxCreate = "sandbox-create"
	OpSandboxRemove = "sandbox-rm"
	// Connecting and disconnecting a sandbox: Name is the sandbox, Networks
	// holds the network.
	OpNetworkConnect    = "network-connect"
	OpNetworkDisconnect = "network-disconnect"
)

// Intent is what one command is about to do.
type Intent struct {
	ID          string    `json:"id"`
	Op          string    `json:"op"`
	Name        string    `json:"name"`      // network or sandbox name
	ObjectID    string    `json:"object_id"` // ID of the network or sandbox record
	Links       []string  `json:"links,omitempty"`
	Mounts      []string  `json:"mounts,omitempty"`      // namespace mounts the command makes
	Networks    []string  `json:"networks,omitempty"`    // networks the command creates on the way (default network)
	Forwarding  bool      `json:"forwarding,omitempty"`  // the command may turn IPv4 forwarding on, which was off
	Forwarding6 bool      `json:"forwarding6,omitempty"` // the command may turn IPv6 forwarding on, which was off
	PID         int       `json:"pid"`
	Started     time.Time `json:"started"`
}

// Journal is a directory of intents.
type Journal struct {
	dir string
}

// Open returns the journal in dir, creating it if needed.
func Open(dir string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create intent journal %s: %w", dir, err)
	}
	return &Journal{dir: dir}, nil
}

// Write records an intent.
func (j *Journal) Write(it *Intent) error {
	it.PID, it.Started = os.Getpid(), time.Now().UTC()
	return writeJSON(filepath.Join(j.dir, it.ID+".json"), it)
}

// Done removes a finished intent.
func (j *Journal) Done(id string) error {
	err := os.Remove(filepath.Join(j.dir, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Pending returns the intents left by commands that did not finish, oldest
// first, and the names of files that could not be read.
func (j *Journal) Pending() ([]Intent, []string, error) {
	entries, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read intent journal %s: %w", j.dir, err)
	}
	var out []Intent
	var bad []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") { // a write killed before its rename
			bad = append(bad, e.Name())
			continue
		}
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		var it Intent
		if err := readJSON(filepath.Join(j.dir, e.Name()), &it); err != nil {
			bad = append(bad, e.Name())
			continue
		}
		out = append(out, it)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Started.Before(out[b].Started) })
	return out, bad, nil
}

// Discard removes an unreadable intent file.
func (j *Journal) Discard(name string) error { return os.Remove(filepath.Join(j.dir, name)) }

// Marker says which state root mounted a namespace. The mount's path is
// derived from Name (netns.Path), never read from the file.
type Marker struct {
	Name  string   `json:"name"`  // sandbox name, also the mount's file name
	Root  string   `json:"root"`  // absolute state root
	Owns  bool     `json:"owns"`  // nsnet created the namespace
	NetNS netns.ID `json:"netns"` // the namespace that was mounted
}

// Markers is the directory of namespace markers.
type Markers struct {
	dir string
}

// OpenMarkers returns the marker directory, creating it if needed.
func OpenMarkers(dir string) (*Markers, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create marker directory %s: %w", dir, err)
	}
	return &Markers{dir: dir}, nil
}

// Put writes the marker for a namespace mount.
func (m *Markers) Put(mk Marker) error { return writeJSON(filepath.Join(m.dir, mk.Name), mk) }

// Delete removes a marker; a missing one is not an error.
func (m *Markers) Delete(name string) error {
	err := os.Remove(filepath.Join(m.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Stale lists the temporary marker files older than age: writes killed
// before their rename, to Delete. (Another root may be writing one right
// now, hence the age.)
func (m *Markers) Stale(age time.Duration) []string {
	entries, _ := os.ReadDir(m.dir)
	var stale []string
	for _, e := range entries {
		info, err := e.Info()
		if err == nil && strings.HasSuffix(e.Name(), ".tmp") && time.Since(info.ModTime()) >= age {
			stale = append(stale, e.Name())
		}
	}
	return stale
}

// List returns the markers made by root.
func (m *Markers) List(root string) ([]Marker, error) {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, fmt.Errorf("read marker directory %s: %w", m.dir, err)
	}
	var out []Marker
	for _, e := range entries {
		var mk Marker
		if strings.HasPrefix(e.Name(), ".") || readJSON(filepath.Join(m.dir, e.Name()), &mk) != nil || mk.Name != e.Name() {
			continue
		}
		if mk.Root == root {
			out = append(out, mk)
		}
	}
	return out, nil
}

func writeJSON(path string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readJSON(path string, v any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}
