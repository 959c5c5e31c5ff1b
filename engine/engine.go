// Package engine is nsnet's library API: it creates and removes bridge
// networks and sandboxes (named network namespaces with their endpoints),
// keeping the state store and the kernel in step.
//
// Invariants:
//   - Every mutating call validates its input before it changes anything, runs
//     inside one store transaction (so concurrent nsnet processes are serialised
//     and never hand out one address twice), and undoes its kernel changes in
//     reverse order if any later step or the commit fails.
//   - Teardown is best effort: it tolerates objects that are already gone, keeps
//     going past errors and reports all of them; a record is deleted only when
//     its kernel objects are.
//   - A lease exists exactly for the address of each stored endpoint.
package engine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nsnet/nsnet/internal/ipam"
	"github.com/nsnet/nsnet/internal/link"
	"github.com/nsnet/nsnet/internal/store"
)

// DefaultRoot is where state is kept unless Options.Root says otherwise.
const DefaultRoot = "/var/lib/nsnet"

// DefaultLockTimeout bounds how long a command waits for another one.
const DefaultLockTimeout = 30 * time.Second

// ErrNotFound is wrapped by errors about unknown networks and sandboxes.
var ErrNotFound = store.ErrNotFound

// ErrBusy is wrapped when the state store stayed locked too long.
var ErrBusy = store.ErrBusy

// Options configure an Engine.
type Options struct {
	Root         string        // state directory (DefaultRoot if empty)
	AddressPools []ipam.Pool   // subnets for networks made without --subnet (ipam.DefaultPools if nil)
	LockTimeout  time.Duration // wait for other nsnet processes (DefaultLockTimeout if zero)
	ReadOnly     bool          // only reads: takes a shared lock
}

// Engine is an open nsnet state with handles on the host.
type Engine struct {
	opts  Options
	st    *store.Store
	host  *link.Host
	clock func() time.Time
}

// Open opens the state store. Close it to release the lock.
func Open(o Options) (*Engine, error) {
	if o.Root == "" {
		o.Root = DefaultRoot
	}
	if o.AddressPools == nil {
		o.AddressPools = ipam.DefaultPools
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	st, err := store.Open(o.Root, store.Options{ReadOnly: o.ReadOnly, LockTimeout: o.LockTimeout})
	if err != nil {
		return nil, err
	}
	return &Engine{opts: o, st: st, clock: time.Now}, nil
}

// Close releases the store and kernel handles.
func (e *Engine) Close() error {
	if e.host != nil {
		e.host.Close()
	}
	return e.st.Close()
}

// hostLinks returns the netlink handle on the host, opening it on first use.
func (e *Engine) hostLinks() (*link.Host, error) {
	if e.host != nil {
		return e.host, nil
	}
	h, err := link.OpenHost()
	if err != nil {
		return nil, err
	}
	e.host = h
	return h, nil
}

// mutate runs fn in a read-write transaction. If fn or the commit fails, the
// undo steps fn registered run in reverse order.
func (e *Engine) mutate(fn func(tx *store.Tx, u *undo) error) error {
	u := &undo{}
	err := e.st.Update(func(tx *store.Tx) error { return fn(tx, u) })
	if err != nil {
		if uerr := u.run(); uerr != nil {
			err = fmt.Errorf("%w; undoing the partial change also failed: %v", err, uerr)
		}
	}
	return err
}

// view runs fn in a read-only transaction.
func (e *Engine) view(fn func(tx *store.Tx) error) error { return e.st.View(fn) }

// undo is a stack of compensating actions.
type undo struct {
	steps []func() error
}

func (u *undo) push(f func() error) { u.steps = append(u.steps, f) }

func (u *undo) run() error {
	var errs []error
	for i := len(u.steps) - 1; i >= 0; i-- {
		if err := u.steps[i](); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func newID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err)) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

// IsRoot reports whether the process has the privileges nsnet needs.
func IsRoot() bool { return os.Geteuid() == 0 }
