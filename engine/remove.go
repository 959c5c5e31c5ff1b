package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/nsnet/nsnet/internal/journal"
	"github.com/nsnet/nsnet/internal/netns"
	"github.com/nsnet/nsnet/internal/store"
)

// RemoveSandbox removes a sandbox (ref is its name, ID or a unique ID prefix):
// its endpoints, leases and namespace name (destroying the namespace only if
// nsnet created it). It returns the names of the sandboxes removed, the given
// one last. Unless force is set, it refuses a sandbox whose namespace others
// share (container:NAME), or whose own namespace still has processes in it;
// force removes the sharers first, and leaves the processes running.
func (e *Engine) RemoveSandbox(ref string, force bool) (removed []string, err error) {
	scan := e.startProcScan(ref)
	err = e.mutate(func(tx *store.Tx, u *undo) error {
		removed = nil
		sb, err := sandboxByRef(tx, ref)
		if err != nil {
			return err
		}
		return e.removeSandbox(tx, u, sb, force, scan, &removed)
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

func (e *Engine) removeSandbox(tx *store.Tx, u *undo, sb *Sandbox, force bool, scan *procScan, removed *[]string) error {
	sharers, err := sharersOf(tx, sb.Name)
	if err != nil {
		return err
	}
	if len(sharers) > 0 && !force {
		return fmt.Errorf("sandbox %s is shared by %v (--network container:%s): remove them first, or use --force to remove them too", sb.Name, names(sharers), sb.Name)
	}
	if r := sb.Runtime; r != nil && !force {
		return fmt.Errorf("sandbox %s belongs to container %s, which a container runtime attached through %s and removes with the container: "+
			"remove the container (podman rm, crictl rmp), or use --force to remove the sandbox anyway", sb.Name, r.ContainerID, strings.ToUpper(r.Kind))
	}
	procs, perr := e.processesOf(sb, scan)
	if !force {
		if err := refuseRunning(sb, procs, perr); err != nil {
			return err
		}
	}
	noProcs := perr == nil && len(procs) == 0
	return removeTree(tx, sb, func(s *Sandbox) error {
		*removed = append(*removed, s.Name)
		if err := e.intend(u, &journal.Intent{Op: journal.OpSandboxRemove, Name: s.Name, ObjectID: s.ID}); err != nil {
			return err
		}
		if err := e.forgetAndTeardown(tx, s, "sandbox-rm:after-teardown", s == sb && noProcs); err != nil {
			return err
		}
		e.releaseCluster(tx, s)
		return nil
	})
}

// removeTree removes sb with remove, after the sandboxes that share its
// namespace (and theirs). Every removal of a sandbox goes through it.
func removeTree(tx *store.Tx, sb *Sandbox, remove func(*Sandbox) error) error {
	sharers, err := sharersOf(tx, sb.Name)
	if err != nil {
		return err
	}
	for i := range sharers {
		if err := removeTree(tx, &sharers[i], remove); err != nil {
			return err
		}
	}
	return remove(sb)
}

// forgetAndTeardown deletes sb's records in tx, then its kernel objects (so
// a firewall rebuilt from tx no longer has its ports). If the kernel part
// fails, the caller's transaction rolls the records back. noProcs says the
// caller found no process in sb's namespace just before.
func (e *Engine) forgetAndTeardown(tx *store.Tx, sb *Sandbox, point string, noProcs bool) error {
	if err := forgetSandbox(tx, sb); err != nil {
		return err
	}
	if err := e.teardownSandbox(tx, sb, noProcs); err != nil {
		return err
	}
	e.checkpoint(point)
	return nil
}

// forgetSandbox deletes sb's record, leases, MACs, ports, namespace claim
// and run record.
func forgetSandbox(tx *store.Tx, sb *Sandbox) error {
	if err := tx.DeleteRun(sb.Name); err != nil {
		return err
	}
	for _, m := range sb.Ports {
		if err := tx.DeletePort(m, sb.Name); err != nil {
			return err
		}
	}
	for _, ep := range sb.Endpoints {
		if err := deleteLeases(tx, ep); err != nil {
			return err
		}
		if err := tx.DeleteMAC(ep.Network, ep.MAC); err != nil {
			return err
		}
	}
	if claims(sb) && tx.NamespaceHolder(sb.NetNSIno) == sb.Name {
		if err := tx.DeleteNamespace(sb.NetNSIno); err != nil {
			return err
		}
	}
	return tx.DeleteSandbox(sb.Name)
}

// teardownSandbox removes the kernel objects of sb (its published ports
// first, then its veths; meanwhile the resident lets go of its ports and
// names, its files go, and its ports' anti-spoofing elements are set to
// expire a second later), keeping going past errors. The veth pairs of a
// namespace nsnet made go with it (releaseWithNamespace); those of any other
// are deleted.
func (e *Engine) teardownSandbox(tx *store.Tx, sb *Sandbox, noProcs bool) error {
	var errs []error
	if err := e.unpublish(tx, firewallPorts(sb)); err != nil {
		errs = append(errs, err)
	}
	dropped := e.dropFromResidentWhile(tx, sb)
	defer dropped() // waited for below; this covers a panic
	etcGone := e.meanwhile(func() error { return e.removeEtc(sb.Name) })
	defer etcGone()
	released := e.pairsGoWithNamespace(sb, noProcs)
	unguarded := e.unguardWhile(tx, sb.Endpoints, released)
	if released {
		errs = append(errs, e.releaseWithNamespace(tx, sb)...)
	} else {
		errs = append(errs, e.deleteEndpoints(sb)...)
		errs = append(errs, e.unmountSandbox(sb))
	}
	errs = append(errs, unguarded(), dropped(), etcGone())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove sandbox %s: %w; the sandbox is kept, retry nsnet sandbox rm %s", sb.Name, err, sb.Name)
	}
	return nil
}

// pairsGoWithNamespace reports whether removing sb's namespace name is
// enough to remove its veth pairs: nsnet made the namespace, the name still
// names it, and no process is in it (noProcs: the caller looked already), so
// the name is its last reference and the kernel destroys it, with every
// interface in it and their veth peers. Anything else may outlive the name
// (a namespace adopted with --netns, or one whose name was replaced): its
// veths are deleted.
func (e *Engine) pairsGoWithNamespace(sb *Sandbox, noProcs bool) bool {
	if !sb.OwnsNetNS || !sb.Mounted || len(sb.Endpoints) == 0 || netnsID(sb).IsZero() {
		return false
	}
	if id, err := e.k.ns.Identify(sb.NetNS); err != nil || !id.Same(netnsID(sb)) {
		return false
	}
	if noProcs {
		return true
	}
	procs, err := e.k.procs.In(sb.NetNS, netnsID(sb))
	return err == nil && len(procs) == 0
}

// releaseWithNamespace removes sb's namespace name and leaves its veth
// pairs to the kernel, which destroys the namespace in the background, in
// batches, a little later (deleting a veth instead waits for RCU grace
// periods). The host ends get a released mark first, and stay up in their
// bridges: setting a port down makes the kernel walk its bridge's whole FDB,
// which costs more with every sandbox there. Until the kernel destroys them,
// the stale namespace still answers for the sandbox's addresses and MAC, so
// tx records them as released (store.PutReleased), and whoever is given one
// of them again sets the old pair down first (retireReleased); addresses are
// handed out round-robin (ipam.AllocateAfter), so that is rare. On overlay
// networks, whose addresses other hosts give out again unseen, the host ends
// are set down at once (releaseOwnLink). (Marked before the name goes, they
// are not contended for with the kernel's destruction of this very
// namespace.) The lease is released only when the caller commits, after all
// this; if removing the name fails, the sandbox is kept and sandbox rm again
// finishes, or gc puts its veths back.
func (e *Engine) releaseWithNamespace(tx *store.Tx, sb *Sandbox) []error {
	host, err := e.hostLinks()
	if err != nil {
		return []error{err}
	}
	at := e.clock()
	for _, ep := range sb.Endpoints {
		release := e.markOwnLink
		if n, err := tx.Network(ep.Network); err == nil && n.Overlay != nil {
			// Other hosts hand its address out again (the cluster's
			// allocator), and nothing here would see it: down at once.
			release = e.releaseOwnLink
		}
		if err := release(host, ep.HostVeth, e.owner.ReleasedMark(sb.Name, ep.Network, at)); err != nil {
			return []error{err}
		}
		if err := tx.PutReleased(ep.Network, []netip.Addr{ep.Address.Addr(), ep.Address6.Addr()}, ep.MAC, ep.HostVeth); err != nil {
			return []error{err}
		}
	}
	if err := e.k.ns.Remove(sb.NetNS); err != nil {
		return []error{err}
	}
	return []error{e.markers.Delete(sb.Name)}
}

// deleteEndpoints deletes sb's host veths, which removes the pairs at once;
// waiting for the namespace's destruction would leave them behind for a
// while, or for good if the namespace outlives the sandbox.
func (e *Engine) deleteEndpoints(sb *Sandbox) []error {
	if len(sb.Endpoints) == 0 {
		return nil
	}
	host, err := e.hostLinks()
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, ep := range sb.Endpoints {
		errs = append(errs, e.deleteOwnLink(host, ep.HostVeth))
	}
	return errs
}

// unmountSandbox removes sb's namespace name (if it gave it one), unless it
// names another namespace now, and its marker.
func (e *Engine) unmountSandbox(sb *Sandbox) error {
	if !sb.Mounted {
		return nil
	}
	note, err := e.unmountOwn(sb.NetNS, netnsID(sb))
	if note != "" {
		e.opts.Warn(fmt.Sprintf("sandbox %s: %s", sb.Name, note))
	}
	if err != nil {
		return err
	}
	return e.markers.Delete(sb.Name)
}

// claims reports whether sb holds its namespace as its own (bridge and none
// sandboxes), rather than naming the host's or another sandbox's.
func claims(sb *Sandbox) bool {
	return (sb.Mode == store.ModeBridge || sb.Mode == store.ModeNone) && sb.NetNSIno != 0
}

// netnsID is the ID of the namespace sb was given (zero if not recorded).
func netnsID(sb *Sandbox) netns.ID {
	return netns.ID{Dev: sb.NetNSDev, Ino: sb.NetNSIno, Born: sb.NetNSBorn}
}

// sharersOf returns the sandboxes that share the named one's namespace.
func sharersOf(tx *store.Tx, name string) ([]Sandbox, error) { return tx.Sharers(name) }

func names(sbs []Sandbox) []string {
	out := make([]string, len(sbs))
	for i, s := range sbs {
		out[i] = s.Name
	}
	return out
}

// Sandboxes lists every sandbox, by name.
func (e *Engine) Sandboxes() ([]Sandbox, error) {
	var out []Sandbox
	err := e.read(func(tx *store.Tx) error {
		var err error
		out, err = tx.Sandboxes()
		return err
	})
	return out, err
}

// InspectSandbox returns the sandbox that ref (its name, ID or a unique ID
// prefix) names.
func (e *Engine) InspectSandbox(ref string) (*Sandbox, error) {
	var sb *Sandbox
	err := e.read(func(tx *store.Tx) error {
		var err error
		sb, err = sandboxByRef(tx, ref)
		return err
	})
	return sb, err
}
