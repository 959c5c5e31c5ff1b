// Package owner names what one nsnet state root owns in the kernel, so that
// several roots can share a network namespace without touching each other's
// objects, and so that a root's leftovers can be found from the kernel alone.
//
// A root is identified by ID, a hash of its absolute path: the same root
// always has the same ID, even after its state file is lost.
//
// Invariants: every link a root makes carries Group from its creation and,
// right after, an alias made by Mark that names the root's ID; only links
// whose alias names this root (or, for links listed in the root's own intents,
// that carry Group and no alias yet) are ever deleted by that root. A
// sandbox's host veth that its root let go with the sandbox's namespace, for
// the kernel to destroy, carries a ReleasedMark of the same root. Each root's
// firewall rules live in its own nftables table, Table(root).
package owner

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultRoot is the state root used when none is given.
const DefaultRoot = "/var/lib/nsnet"

// Group is the device group of every link nsnet makes, set when the link is
// created: the kernel ignores an alias given at creation, so until the alias
// is set this is what marks a link as nsnet's.
const Group = 0x6e736e74 // "nsnt"

// prefix starts every alias nsnet writes.
const prefix = "nsnet:"

// ID is the identity of the state root at the absolute path root.
func ID(root string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(root)))
	return hex.EncodeToString(sum[:4])
}

// Table is the name of the nftables table (family inet) of root: "nsnet" for
// the default root, "nsnet-ID" for any other.
func Table(root string) string {
	if filepath.Clean(root) == DefaultRoot {
		return "nsnet"
	}
	return "nsnet-" + ID(root)
}

// Owner is one state root, as its marks name it.
type Owner struct {
	ID string
}

// Of returns the owner for the absolute state root path.
func Of(root string) Owner { return Owner{ID: ID(root)} }

// NetworkMark is the alias of a network's bridge.
func (o Owner) NetworkMark(network string) string {
	return prefix + o.ID + " network " + network
}

// SandboxMark is the alias of a sandbox's host veth on a network.
func (o Owner) SandboxMark(sandbox, network string) string {
	return prefix + o.ID + " sandbox " + sandbox + " network " + network
}

// ReleasedMark is the alias of a sandbox's host veth once the sandbox is
// removed and the veth pair left to go with the sandbox's namespace, which
// the kernel destroys in the background: at is when.
func (o Owner) ReleasedMark(sandbox, network string, at time.Time) string {
	return prefix + o.ID + " released " + strconv.FormatInt(at.Unix(), 10) + " sandbox " + sandbox + " network " + network
}

// Released reports whether alias is a ReleasedMark of this owner, and when
// the link was released.
func (o Owner) Released(alias string) (at time.Time, ok bool) {
	rest, ok := strings.CutPrefix(alias, prefix+o.ID+" released ")
	if !ok {
		return time.Time{}, false
	}
	secs, _, _ := strings.Cut(rest, " ")
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

// Owns reports whether alias is a mark this owner wrote.
func (o Owner) Owns(alias string) bool {
	return strings.HasPrefix(alias, prefix+o.ID+" ")
}

// IsReleased reports whether alias is a ReleasedMark of any nsnet root.
func IsReleased(alias string) bool {
	id, rest, ok := strings.Cut(strings.TrimPrefix(alias, prefix), " ")
	return strings.HasPrefix(alias, prefix) && ok && id != "" && strings.HasPrefix(rest, "released ")
}

// IsMark reports whether alias is a mark of any nsnet root.
func IsMark(alias string) bool { return strings.HasPrefix(alias, prefix) }
