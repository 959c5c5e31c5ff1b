// Package engine is nsnet's library API: it creates and removes bridge
// networks and sandboxes (named network namespaces with their endpoints),
// keeping the state store and the kernel in step.
//
// It reaches the kernel only through the small interfaces of kernel.go, whose
// real implementations are nsnet's wrapper packages; the unit tests use an
// in-memory fake instead.
//
// Invariants:
//   - Every mutating call validates its input before it changes anything, runs
//     as one operation that holds the state store's lock only while it runs
//     (so concurrent nsnet processes and goroutines are serialised and never
//     hand out one address twice), and undoes its kernel changes in reverse
//     order if any later step or the commit fails.
//   - Teardown is best effort: it tolerates objects that are already gone, keeps
//     going past errors and reports all of them; a record is deleted only when
//     its kernel objects are, or, for a namespace nsnet made, when its veths
//     are released (marked, up) to go with it (releaseWithNamespace); their
//     addresses and MACs are recorded as released, and whoever is given one
//     of them sets the old veth down first (retireReleased).
//   - The engine touches only what its state root made: links with its mark,
//     namespace mounts with its marker and the namespace ID it recorded, its own
//     nftables tables (inet and bridge, one name). Anything else (another root's, a stranger under a
//     sandbox's name) is left alone.
//   - Every endpoint on a network with anti-spoofing has its port's elements
//     in the bridge table from before its veth's host end first goes up
//     until after it is down or gone (guardWhile; unguardWhile sets them to
//     expire a second after the veth is deleted; a veth released up keeps its
//     port in the guarded set, sending nothing, for minutes); gc restores and
//     removes what differs.
//   - A lease exists exactly for each address (IPv4, and IPv6 on a
//     dual-stack network), and a MAC index entry exactly for the MAC, of each
//     stored endpoint; no two endpoints on a network, nor
//     an endpoint and the network's bridge, share a MAC.
//   - The state root's resident process (resident.go) holds nothing the store
//     does not: an operation that changes the published ports or the names of
//     the user networks tells it before it returns, while it holds the store's
//     lock, starts it with the whole state if none answers, and stops it once
//     it has nothing left to hold or serve; gc puts it back in step.
package engine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/nsnet/nsnet/internal/ipam"
	"github.com/nsnet/nsnet/internal/journal"
	"github.com/nsnet/nsnet/internal/owner"
	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/types"
)

// DefaultRoot is where state is kept unless Options.Root says otherwise.
const DefaultRoot = owner.DefaultRoot

// DefaultLockTimeout bounds how long a command waits for another one.
const DefaultLockTimeout = 30 * time.Second

// NoWait as Options.LockTimeout fails at once, without waiting, when another
// nsnet command holds the state store (the CLI's --lock-timeout 0).
const NoWait time.Duration = -1

// ErrNotFound is wrapped by errors about unknown networks and sandboxes.
var ErrNotFound = store.ErrNotFound

// ErrBusy is wrapped when the state store stayed locked too long.
var ErrBusy = store.ErrBusy

// DefaultRunDir holds nsnet's namespace markers and state files (StateDir);
// like /run/netns it is emptied on reboot.
const DefaultRunDir = "/run/nsnet"

// AddressPool is a range that networks made without a subnet are carved from.
type AddressPool = types.AddressPool

// DefaultAddressPools are Docker's: 172.17.0.0/16 to 172.31.0.0/16, then
// 192.168.0.0/16 in /20s.
var DefaultAddressPools = ipam.DefaultPools

// Options configure an Engine.
type Options struct {
	Root         string        // state directory: intents, kept networks (DefaultRoot if empty)
	RunDir       string        // namespace markers, state file (DefaultRunDir if empty)
	AddressPools []AddressPool // subnets for networks made without --subnet (DefaultAddressPools if nil); IPv6 bases serve --ipv6
	// HostID seeds the default IPv6 pool, a unique local /48 (ipam.ULAPool),
	// used when AddressPools has no IPv6 base (default: /etc/machine-id).
	HostID      string
	LockTimeout time.Duration // wait for other nsnet processes (DefaultLockTimeout if zero; NoWait: not at all)
	ReadOnly    bool          // only reads: takes a shared lock
	Warn        func(string)  // told of problems that do not fail the operation (default: ignored)
	// Resident is an nsnet binary to run as the state root's resident
	// process (`nsnet __resident`), which keeps published host ports bound
	// and serves the embedded DNS of the root's user networks. Empty: ports
	// are checked when published but not held afterwards, and no names are
	// served.
	Resident string
	// ResolvConf is the host's resolver configuration, whose nameservers
	// answer the names a user network's resolver does not know, unless the
	// network has --dns servers, and whose servers, search domains and
	// options sandboxes' resolv.conf get (DefaultResolvConf if empty).
	ResolvConf string
	// FaultPoint is for crash tests only: the process kills itself with
	// SIGKILL when it reaches this point (one of FaultPoints). Empty: never.
	FaultPoint string
	// Cluster allocates the addresses of overlay networks across hosts
	// (package overlay). Nil: sandboxes cannot join overlay networks.
	Cluster Cluster
}

// DefaultResolvConf is the host's resolver configuration.
const DefaultResolvConf = "/etc/resolv.conf"

// ErrReadOnly is wrapped by the errors of mutating calls on an engine opened
// with Options.ReadOnly.
var ErrReadOnly = errors.New("engine is read-only")

// Engine is nsnet's state root and its handles on the host.
//
// An Engine is safe for concurrent use: each method is one operation that
// holds the state store's lock (bbolt's file lock) only while it runs, so
// calls from several goroutines, and nsnet commands or other programs using
// the same root, run one at a time and always see each other's results.
// Between calls the engine holds no lock, so a long-running program that
// embeds it (a runtime daemon) and the nsnet CLI work side by side.
type Engine struct {
	opts    Options
	mu      sync.Mutex   // one operation at a time in this process
	st      *store.Store // the state store, open (and locked) during an operation
	journal *journal.Journal
	markers *journal.Markers
	host    links       // the host's links, opened on first use
	k       kernel      // everything outside the state root
	owner   owner.Owner // marks this root writes on links
	table   string      // the name of this root's nftables table
	clock   func() time.Time
	newID   func() string // IDs of networks, sandboxes and intents
	fault   string        // Options.FaultPoint: the point at which to die (tests)
	die     func()        // how to die there: killSelf (the unit tests panic instead)
	// Per operation: the host's upstream DNS servers, read once
	// (hostUpstream), and whether the operation took something from the
	// resident, which then stops if it holds and serves nothing.
	hostDNS   []netip.AddrPort
	hostDNSOK bool
	shrunk    bool
}

// Open checks the options and the state root, whose store each operation
// then opens and locks for its duration. Close releases the kernel handles.
func Open(o Options) (*Engine, error) {
	if o.Root == "" {
		o.Root = DefaultRoot
	}
	if o.AddressPools == nil {
		o.AddressPools = ipam.DefaultPools
	}
	if o.HostID == "" {
		o.HostID = machineID()
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.RunDir == "" {
		o.RunDir = DefaultRunDir
	}
	if o.ResolvConf == "" {
		o.ResolvConf = DefaultResolvConf
	}
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
	if o.ResolvConf == "" {
		o.ResolvConf = DefaultResolvConf
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, fmt.Errorf("state root %s: %w", o.Root, err)
	}
	o.Root = root
	if err := checkTrusted(o); err != nil {
		return nil, err
	}
	if o.FaultPoint != "" && !slices.Contains(FaultPoints, o.FaultPoint) {
		return nil, fmt.Errorf("unknown fault point %q: see engine.FaultPoints", o.FaultPoint)
	}
	table := owner.Table(o.Root)
	return openWith(o, table, realKernel(o, table))
}

// machineID is the host's machine ID (systemd's /etc/machine-id), or its
// hostname where there is none.
func machineID() string {
	if b, err := os.ReadFile("/etc/machine-id"); err == nil && len(b) > 0 {
		return string(b)
	}
	h, _ := os.Hostname()
	return h
}

// openWith makes the engine for checked options on a kernel (the unit tests
// give it a fake one).
func openWith(o Options, table string, k kernel) (*Engine, error) {
	e := &Engine{opts: o, clock: time.Now, newID: randomID, fault: o.FaultPoint, die: killSelf, owner: owner.Of(o.Root), table: table, k: k}
	if !o.ReadOnly {
		if err := e.openJournal(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// op runs fn as one operation: with the state store open and locked
// (exclusively if write, shared otherwise) and no other operation of this
// engine running.
func (e *Engine) op(write bool, fn func() error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, err := store.Open(StateDir(e.opts.RunDir, e.opts.Root), store.Options{ReadOnly: e.opts.ReadOnly || !write, LockTimeout: e.opts.LockTimeout, Keep: e.opts.Root, BootID: store.CurrentBoot()})
	if err != nil {
		return err
	}
	e.st, e.hostDNS, e.hostDNSOK, e.shrunk = st, nil, false, false
	defer func() {
		e.k.res.Close()
		e.st = nil
		st.Close()
	}()
	return fn()
}

// StateDir is where the state file of the state root root lives: in the
// run directory, a tmpfs emptied at boot, as the kernel objects its records
// describe are; the state root keeps the network records across reboots
// (store.KeptFile).
func StateDir(runDir, root string) string {
	if runDir == "" {
		runDir = DefaultRunDir
	}
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return filepath.Join(runDir, "state", owner.ID(root))
}

func (e *Engine) openJournal() error {
	var err error
	if e.journal, err = journal.Open(filepath.Join(e.opts.Root, "intents")); err != nil {
		return err
	}
	e.markers, err = journal.OpenMarkers(filepath.Join(e.opts.RunDir, "netns"))
	return err
}

// Close releases the kernel handles.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.host != nil {
		e.host.Close()
		e.host = nil
	}
	return nil
}

// hostLinks returns the netlink handle on the host, opening it on first use.
func (e *Engine) hostLinks() (links, error) {
	if e.host != nil {
		return e.host, nil
	}
	h, err := e.k.openLinks()
	if err != nil {
		return nil, err
	}
	e.host = h
	return h, nil
}

// mutate runs fn in a read-write transaction. If fn or the commit fails, the
// undo steps fn registered run in reverse order.
// Before that it finishes or undoes what interrupted commands left behind.
// Intents fn wrote are removed once the outcome is settled: after the commit,
// or after a complete undo (a failed undo keeps them for the next command).
func (e *Engine) mutate(fn func(tx *store.Tx, u *undo) error) error {
	return e.writeOp(func() error { return e.apply(fn) })
}

// writeOp runs fn as one writing operation, once what interrupted commands
// left behind is finished or undone; fn runs its changes with apply.
func (e *Engine) writeOp(fn func() error) error {
	if err := e.writable(); err != nil {
		return err
	}
	return e.op(true, func() error {
		if _, err := e.recoverPending(false); err != nil {
			return err
		}
		e.settleRuns(false) // a failure is left for later commands, and reported by gc
		return fn()
	})
}

// writable refuses mutating calls on a read-only engine.
func (e *Engine) writable() error {
	if e.opts.ReadOnly {
		return fmt.Errorf("%w (Options.ReadOnly): open it read-write to change or collect anything", ErrReadOnly)
	}
	return nil
}

// apply runs fn in a read-write transaction, undoing what fn registered if fn
// or the commit fails, and settles the intents fn wrote.
func (e *Engine) apply(fn func(tx *store.Tx, u *undo) error) error {
	u := &undo{}
	err := e.st.Update(func(tx *store.Tx) error {
		if err := fn(tx, u); err != nil {
			return err
		}
		e.checkpoint("before-commit")
		return nil
	})
	if err != nil {
		if uerr := u.run(); uerr != nil {
			return fmt.Errorf("%w; undoing the partial change also failed: %v", err, uerr)
		}
	}
	e.checkpoint("after-commit")
	for _, id := range u.intents {
		e.journal.Done(id)
	}
	if err == nil {
		e.afterCommit(u)
	}
	return err
}

// afterCommit runs what an operation left for after its commit (releasing
// host ports it unpublished), still under the store's lock, and stops the
// resident if the operation took something from it and it now holds and
// serves nothing.
func (e *Engine) afterCommit(u *undo) {
	for _, f := range u.after {
		f()
	}
	if e.shrunk {
		e.stopIdleResident()
	}
}

// intend records what the command is about to do before it touches the
// kernel; the intent is settled by mutate.
func (e *Engine) intend(u *undo, it *journal.Intent) error {
	it.ID = e.newID()
	if err := e.journal.Write(it); err != nil {
		return err
	}
	u.intents = append(u.intents, it.ID)
	e.checkpoint(it.Op + ":after-intent")
	return nil
}

// FaultPoints are the names Options.FaultPoint accepts: the process kills
// itself with SIGKILL there, to test recovery. (The nsnet binary takes one
// from NSNET_FAULT only when built with -tags nsnet_faults, as the tests
// build it; a release binary and a program that embeds the engine ignore the
// environment.)
var FaultPoints = []string{
	"network-create:after-intent", "network-create:after-bridge",
	"sandbox-create:after-intent", "sandbox-create:after-netns", "sandbox-create:after-veth",
	"network-rm:after-intent", "network-rm:after-teardown",
	"sandbox-rm:after-intent", "sandbox-rm:after-teardown",
	"network-connect:after-intent", "network-connect:after-veth",
	"network-disconnect:after-intent", "network-disconnect:after-teardown",
	"before-commit", "after-commit",
}

// checkpoint dies here if Options.FaultPoint names this point.
func (e *Engine) checkpoint(name string) {
	if e.fault != "" && e.fault == name {
		e.die()
	}
}

// killSelf ends the process as a crash would, with a signal it cannot catch.
func killSelf() {
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // never returns: the signal is fatal
}

// view runs fn in a read-only transaction of the running operation.
func (e *Engine) view(fn func(tx *store.Tx) error) error { return e.st.View(fn) }

// read runs fn in a read-only transaction, as an operation of its own.
func (e *Engine) read(fn func(tx *store.Tx) error) error {
	return e.op(false, func() error { return e.st.View(fn) })
}

// undo is a stack of compensating actions, the intents to settle, and what
// to do once the change is committed.
type undo struct {
	steps   []func() error
	intents []string
	after   []func()
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

func randomID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err)) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

// FirewallTable is the name of the nftables tables (families inet and
// bridge) that hold the rules of this engine's state root.
func (e *Engine) FirewallTable() string { return e.table }

// IsRoot reports whether the process has the privileges nsnet needs.
func IsRoot() bool { return os.Geteuid() == 0 }
