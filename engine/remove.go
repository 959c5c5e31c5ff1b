package engine

import (
	"errors"
	"fmt"

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
	err = e.mutate(func(tx *store.Tx, u *undo) error {
		removed = nil
		sb, err := sandboxByRef(tx, ref)
		if err != nil {
			return err
		}
		return e.removeSandbox(tx, u, sb, force, &removed)
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

func (e *Engine) removeSandbox(tx *store.Tx, u *undo, sb *Sandbox, force bool, removed *[]string) error {
	sharers, err := sharersOf(tx, sb.Name)
	if err != nil {
		return err
	}
	if len(sharers) > 0 && !force {
		return fmt.Errorf("sandbox %s is shared by %v (--network container:%s): remove them first, or use --force to remove them too", sb.Name, names(sharers), sb.Name)
	}
	if !force {
		if err := e.checkNoProcesses(sb); err != nil {
			return err
		}
	}
	return removeTree(tx, sb, func(s *Sandbox) error {
		*removed = append(*removed, s.Name)
		if err := e.intend(u, &journal.Intent{Op: journal.OpSandboxRemove, Name: s.Name, ObjectID: s.ID}); err != nil {
			return err
		}
		return e.forgetAndTeardown(tx, s, "sandbox-rm:after-teardown")
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
// fails, the caller's transaction rolls the records back.
func (e *Engine) forgetAndTeardown(tx *store.Tx, sb *Sandbox, point string) error {
	if err := forgetSandbox(tx, sb); err != nil {
		return err
	}
	if err := e.teardownSandbox(tx, sb); err != nil {
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
		if err := tx.DeleteLease(ep.Network, ep.Address.Addr()); err != nil {
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
// first), keeping going past errors.
func (e *Engine) teardownSandbox(tx *store.Tx, sb *Sandbox) error {
	var errs []error
	if err := e.unpublish(tx, firewallPorts(sb)); err != nil {
		errs = append(errs, err)
	}
	if err := e.k.holders.Stop(sb.Name); err != nil {
		errs = append(errs, err)
	}
	if len(sb.Endpoints) > 0 {
		host, err := e.hostLinks()
		if err != nil {
			return err
		}
		for _, ep := range sb.Endpoints {
			// Deleting the host end removes the pair at once; waiting for the
			// namespace's destruction would leave it behind for a while.
			if err := e.deleteOwnLink(host, ep.HostVeth); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if sb.Mounted {
		note, err := e.unmountOwn(sb.NetNS, netnsID(sb))
		if note != "" {
			e.opts.Warn(fmt.Sprintf("sandbox %s: %s", sb.Name, note))
		}
		if err == nil {
			err = e.markers.Delete(sb.Name)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove sandbox %s: %w; the sandbox is kept, retry nsnet sandbox rm %s", sb.Name, errors.Join(errs...), sb.Name)
	}
	return nil
}

// claims reports whether sb holds its namespace as its own (bridge and none
// sandboxes), rather than naming the host's or another sandbox's.
func claims(sb *Sandbox) bool {
	return (sb.Mode == store.ModeBridge || sb.Mode == store.ModeNone) && sb.NetNSIno != 0
}

// netnsID is the ID of the namespace sb was given (zero if not recorded).
func netnsID(sb *Sandbox) netns.ID { return netns.ID{Dev: sb.NetNSDev, Ino: sb.NetNSIno} }

func sharersOf(tx *store.Tx, name string) ([]Sandbox, error) {
	all, err := tx.Sandboxes()
	if err != nil {
		return nil, err
	}
	var out []Sandbox
	for _, s := range all {
		if s.Mode == store.ModeContainer && s.Container == name {
			out = append(out, s)
		}
	}
	return out, nil
}

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
