package engine

// Listing with filters, and removing what nothing uses (prune).

import (
	"errors"
	"fmt"

	"github.com/nsnet/nsnet/internal/store"
)

// ListNetworks returns the networks that f selects (NetworkFilterKeys), by
// name, each with the sandboxes attached to it.
func (e *Engine) ListNetworks(f Filters) ([]NetworkDetail, error) {
	sel, err := compileFilters("listing networks", f, NetworkFilterKeys, e.clock())
	if err != nil {
		return nil, err
	}
	var out []NetworkDetail
	err = e.read(func(tx *store.Tx) error {
		all, err := networkDetails(tx)
		for _, d := range all {
			if sel.network(&d.Network, len(d.Attached)) {
				out = append(out, d)
			}
		}
		return err
	})
	return out, err
}

// networkDetails are all networks with their attachments, by name.
func networkDetails(tx *store.Tx) ([]NetworkDetail, error) {
	nets, err := tx.Networks()
	if err != nil {
		return nil, err
	}
	sbs, err := tx.Sandboxes()
	if err != nil {
		return nil, err
	}
	attached := map[string][]Attachment{}
	for _, s := range sbs {
		for _, ep := range s.Endpoints {
			attached[ep.Network] = append(attached[ep.Network], Attachment{Sandbox: s.Name, Endpoint: ep})
		}
	}
	out := make([]NetworkDetail, len(nets))
	for i, n := range nets {
		out[i] = NetworkDetail{Network: n, Attached: attached[n.Name]}
	}
	return out, nil
}

// ListSandboxes returns the sandboxes that f selects (SandboxFilterKeys),
// by name, with their published ports.
func (e *Engine) ListSandboxes(f Filters) ([]Sandbox, error) {
	sel, err := compileFilters("listing sandboxes", f, SandboxFilterKeys, e.clock())
	if err != nil {
		return nil, err
	}
	var out []Sandbox
	err = e.read(func(tx *store.Tx) error {
		sel.resolveNetworks(tx)
		sbs, err := tx.Sandboxes()
		for _, s := range sbs {
			if sel.sandbox(&s) {
				out = append(out, s)
			}
		}
		return err
	})
	return out, err
}

// PruneNetworks removes the networks that f selects
// (NetworkPruneFilterKeys) and no sandbox is attached to, as docker network
// prune does: never the default network, which sandboxes make again on
// their first use anyway, nor this host's part of an overlay network,
// which is its overlay agent's (network rm --store removes an overlay). Each is removed on its own, as network rm removes
// it, so one that fails keeps its record, is reported in the error, and
// leaves the others removed. It returns the names removed.
func (e *Engine) PruneNetworks(f Filters) (removed []string, err error) {
	sel, err := compileFilters("pruning networks", f, NetworkPruneFilterKeys, e.clock())
	if err != nil {
		return nil, err
	}
	err = e.writeOp(func() error {
		var unused []*Network
		err := e.view(func(tx *store.Tx) error {
			all, err := networkDetails(tx)
			for _, d := range all {
				if len(d.Attached) == 0 && d.Name != DefaultNetwork && d.Overlay == nil && sel.network(&d.Network, 0) {
					unused = append(unused, &d.Network)
				}
			}
			return err
		})
		if err != nil {
			return err
		}
		var errs []error
		for _, n := range unused {
			if err := e.apply(func(tx *store.Tx, u *undo) error { return e.removeNetwork(tx, u, n) }); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, n.Name)
		}
		return errors.Join(errs...)
	})
	return removed, err
}

// PruneSandboxes removes the sandboxes that f selects
// (SandboxPruneFilterKeys) and whose namespace no process is in, as docker
// container prune removes stopped containers. It never removes a host-mode
// sandbox (its namespace, the host's, always runs something), one whose
// namespace nsnet did not make (adopted with --netns: a container runtime
// may be about to start its process in it), one that another sandbox not
// pruned shares, or one whose nsnet run --rm still runs (it removes its
// sandbox itself). Each is removed on its own, as sandbox rm removes it. It
// returns the names removed.
func (e *Engine) PruneSandboxes(f Filters) (removed []string, err error) {
	sel, err := compileFilters("pruning sandboxes", f, SandboxPruneFilterKeys, e.clock())
	if err != nil {
		return nil, err
	}
	err = e.writeOp(func() error {
		idle, err := e.idleSandboxes(sel)
		if err != nil {
			return err
		}
		var errs []error
		for progress := true; progress && len(idle) > 0; {
			progress = false
			var left []string
			for _, name := range idle {
				done, err := e.pruneSandbox(name)
				switch {
				case err != nil:
					errs = append(errs, err)
				case done:
					removed, progress = append(removed, name), true
				default:
					left = append(left, name) // shared: maybe once its sharers are gone
				}
			}
			idle = left
		}
		return errors.Join(errs...)
	})
	return removed, err
}

// idleSandboxes are the names of the sandboxes that sel selects and prune
// may remove, sharers before the sandboxes they share.
func (e *Engine) idleSandboxes(sel *selector) ([]string, error) {
	var owners, sharers []string
	err := e.view(func(tx *store.Tx) error {
		sel.resolveNetworks(tx)
		sbs, err := tx.Sandboxes()
		if err != nil {
			return err
		}
		runs, err := tx.Runs()
		if err != nil {
			return err
		}
		for i := range sbs {
			sb := &sbs[i]
			if r, ok := runs[sb.Name]; (ok && runAlive(r)) || !sel.sandbox(sb) || !e.prunable(tx, sb) {
				continue
			}
			if sb.Mode == ModeContainer {
				sharers = append(sharers, sb.Name)
			} else {
				owners = append(owners, sb.Name)
			}
		}
		return nil
	})
	return append(sharers, owners...), err
}

// prunable reports whether sb's namespace is one nsnet made and no process
// is in it (a container: sandbox's is the one it shares).
func (e *Engine) prunable(tx *store.Tx, sb *Sandbox) bool {
	own := sb
	for depth := 0; own.Mode == ModeContainer && depth < 64; depth++ {
		next, err := tx.Sandbox(own.Container)
		if err != nil {
			return false
		}
		own = next
	}
	if own.Mode == ModeHost || own.Mode == ModeContainer || !own.OwnsNetNS {
		return false
	}
	procs, err := e.processesOf(own, nil)
	return err == nil && len(procs) == 0
}

// pruneSandbox removes the named sandbox unless others share it; done
// reports whether it did. One gone meanwhile counts as done.
func (e *Engine) pruneSandbox(name string) (done bool, err error) {
	err = e.apply(func(tx *store.Tx, u *undo) error {
		sb, err := tx.Sandbox(name)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		sharers, err := sharersOf(tx, name)
		if err != nil || len(sharers) > 0 {
			return err
		}
		done = true
		return e.removeSandbox(tx, u, sb, false, nil, new([]string))
	})
	if err != nil {
		return false, fmt.Errorf("prune sandbox %s: %w", name, err)
	}
	return done, nil
}
