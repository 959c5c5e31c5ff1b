package engine

import (
	"errors"
	"fmt"
	"slices"

	"github.com/nsnet/nsnet/internal/journal"
	"github.com/nsnet/nsnet/internal/owner"
	"github.com/nsnet/nsnet/internal/resident"
	"github.com/nsnet/nsnet/internal/resolver"
	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/internal/sysctl"
)

// recoverPending settles the intents of commands that died: a create whose
// record was not committed is undone, a removal whose record is still there is
// finished. It returns what it did (or, with dryRun, would do).
func (e *Engine) recoverPending(dryRun bool) ([]string, error) {
	pending, bad, err := e.journal.Pending()
	if err != nil || len(pending)+len(bad) == 0 {
		return nil, err
	}
	var actions []string
	for _, name := range bad {
		actions = append(actions, "discard unreadable intent "+name)
		if !dryRun {
			e.journal.Discard(name)
		}
	}
	err = e.st.Update(func(tx *store.Tx) error {
		for _, it := range pending {
			a, err := e.recoverIntent(tx, it, dryRun)
			if err != nil {
				return fmt.Errorf("recover interrupted %s %s: %w", it.Op, it.Name, err)
			}
			actions = append(actions, a)
		}
		if dryRun {
			return nil
		}
		e.settleResident(tx)
		return e.syncFirewall(tx)
	})
	if err != nil || dryRun {
		return actions, err
	}
	for _, it := range pending {
		e.journal.Done(it.ID)
	}
	return actions, nil
}

func (e *Engine) recoverIntent(tx *store.Tx, it journal.Intent, dryRun bool) (string, error) {
	if it.Op == journal.OpNetworkConnect || it.Op == journal.OpNetworkDisconnect {
		return e.recoverConnect(tx, it, dryRun)
	}
	committed := e.recordExists(tx, it)
	switch {
	case it.Op == journal.OpNetworkCreate || it.Op == journal.OpSandboxCreate:
		if committed {
			return fmt.Sprintf("interrupted %s %s had completed", it.Op, it.Name), nil
		}
		if dryRun {
			return fmt.Sprintf("would undo interrupted %s %s", it.Op, it.Name), nil
		}
		return fmt.Sprintf("undid interrupted %s %s", it.Op, it.Name), e.undoIntent(tx, it)
	case !committed:
		return fmt.Sprintf("interrupted %s %s had completed", it.Op, it.Name), nil
	case dryRun:
		return fmt.Sprintf("would finish interrupted %s %s", it.Op, it.Name), nil
	}
	return fmt.Sprintf("finished interrupted %s %s", it.Op, it.Name), e.finishRemoval(tx, it)
}

// recoverConnect settles an interrupted network connect (undone unless its
// endpoint was stored) or disconnect (finished unless its endpoint is gone
// from the store already).
func (e *Engine) recoverConnect(tx *store.Tx, it journal.Intent, dryRun bool) (string, error) {
	sb, connected := e.connectedIn(tx, it)
	done := connected == (it.Op == journal.OpNetworkConnect)
	verb, pastVerb := "finish", "finished"
	if it.Op == journal.OpNetworkConnect {
		verb, pastVerb = "undo", "undid"
	}
	switch {
	case done || (sb == nil && it.Op == journal.OpNetworkDisconnect):
		return fmt.Sprintf("interrupted %s %s had completed", it.Op, it.Name), nil
	case dryRun:
		return fmt.Sprintf("would %s interrupted %s %s", verb, it.Op, it.Name), nil
	case it.Op == journal.OpNetworkConnect:
		return fmt.Sprintf("%s interrupted %s %s", pastVerb, it.Op, it.Name), e.undoIntent(tx, it)
	}
	n, err := tx.Network(it.Networks[0])
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s interrupted %s %s", pastVerb, it.Op, it.Name), e.disconnect(tx, &undo{}, sb, n, true)
}

// connectedIn returns the intent's sandbox, if stored, and whether it has an
// endpoint on the intent's network.
func (e *Engine) connectedIn(tx *store.Tx, it journal.Intent) (*Sandbox, bool) {
	sb, err := tx.Sandbox(it.Name)
	if err != nil || sb.ID != it.ObjectID || len(it.Networks) == 0 {
		return nil, false
	}
	return sb, endpointOn(sb, it.Networks[0]) != nil
}

// recordExists reports whether the intent's network or sandbox is stored.
func (e *Engine) recordExists(tx *store.Tx, it journal.Intent) bool {
	if it.Op == journal.OpNetworkCreate || it.Op == journal.OpNetworkRemove {
		n, err := tx.Network(it.Name)
		return err == nil && n.ID == it.ObjectID
	}
	s, err := tx.Sandbox(it.Name)
	return err == nil && s.ID == it.ObjectID
}

// undoIntent removes the links and this root's mounts an intent lists (and
// the ports of an uncommitted sandbox from the resident), and turns IPv4
// forwarding back off if it turned it on and no stored network needs it.
func (e *Engine) undoIntent(tx *store.Tx, it journal.Intent) error {
	host, err := e.hostLinks()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range it.Links {
		errs = append(errs, e.deleteOwnLink(host, l))
	}
	if it.Op == journal.OpSandboxCreate {
		errs = append(errs, e.removeEtc(it.Name))
	}
	if it.Op == journal.OpSandboxCreate && e.residentOn() {
		if err := e.k.res.Drop(it.Name, resident.Names{}); !errors.Is(err, resident.ErrNotRunning) {
			errs = append(errs, err)
		}
	}
	marks, err := e.markers.List(e.opts.Root)
	errs = append(errs, err)
	for _, m := range marks {
		if slices.Contains(it.Mounts, e.k.ns.Path(m.Name)) {
			errs = append(errs, e.removeMarkedMount(m))
		}
	}
	if it.Forwarding {
		errs = append(errs, e.forwardingOff(tx))
	}
	if it.Forwarding6 {
		errs = append(errs, e.forwardingOff6(tx))
	}
	return errors.Join(errs...)
}

// forwardingOff turns IPv4 forwarding off unless a stored network needs it.
func (e *Engine) forwardingOff(tx *store.Tx) error {
	nets, err := tx.Networks()
	if err != nil || needsForwarding(nets) {
		return err
	}
	_, err = e.k.sys.Set(sysctl.IPv4Forward, "0")
	return err
}

// forwardingOff6 turns IPv6 forwarding off unless a stored network needs it.
func (e *Engine) forwardingOff6(tx *store.Tx) error {
	nets, err := tx.Networks()
	if err != nil || needsForwarding6(nets) {
		return err
	}
	_, err = e.k.sys.Set(sysctl.IPv6Forward, "0")
	return err
}

// finishRemoval completes an interrupted removal whose record survived.
func (e *Engine) finishRemoval(tx *store.Tx, it journal.Intent) error {
	if it.Op == journal.OpSandboxRemove {
		sb, err := tx.Sandbox(it.Name)
		if err != nil {
			return err
		}
		// The interrupted command's intent is being settled: no new one.
		return removeTree(tx, sb, func(s *Sandbox) error { return e.forgetAndTeardown(tx, s, "", false) })
	}
	n, err := tx.Network(it.Name)
	if err != nil {
		return err
	}
	if err := tx.DeleteNetwork(it.Name); err != nil {
		return err
	}
	return e.teardownNetwork(tx, n)
}

// deleteOwnLink deletes the named link only if it is this root's (ownLink).
func (e *Engine) deleteOwnLink(host links, name string) error {
	if own, err := e.ownLink(host, name); err != nil || !own {
		return err
	}
	return host.DeleteLink(name)
}

// releaseOwnLink releases the named host veth (links.ReleaseVeth: down, with
// the alias mark) only if it is this root's (ownLink).
func (e *Engine) releaseOwnLink(host links, name, mark string) error {
	if own, err := e.ownLink(host, name); err != nil || !own {
		return err
	}
	return host.ReleaseVeth(name, mark)
}

// markOwnLink gives the named link the alias mark only if it is this
// root's (ownLink).
func (e *Engine) markOwnLink(host links, name, mark string) error {
	if own, err := e.ownLink(host, name); err != nil || !own {
		return err
	}
	return host.MarkLink(name, mark)
}

// ownsMark reports whether a link with this alias and device group is this
// root's: its alias is this root's mark, or it has nsnet's device group and
// no alias yet (made by a command that died before it could mark it).
func (e *Engine) ownsMark(alias string, group uint32) bool {
	return e.owner.Owns(alias) || (alias == "" && group == owner.Group)
}

// ownsByGroup reports whether a link with this alias and device group,
// found under the name of one of this root's bridges or veths, is that link:
// its alias is this root's mark, or it has nsnet's device group and no other
// root's mark (an alias changed by hand is drift that gc repairs).
func (e *Engine) ownsByGroup(alias string, group uint32) bool {
	return e.owner.Owns(alias) || (group == owner.Group && !owner.IsMark(alias))
}

// foreignLink says why the link with the name of one of this root's bridges
// or veths is someone else's interface (ownsByGroup), or "" if it is that
// link or there is none.
func (e *Engine) foreignLink(host links, name string) (string, error) {
	alias, group, ok, err := host.Mark(name)
	if err != nil || !ok || e.ownsByGroup(alias, group) {
		return "", err
	}
	return fmt.Sprintf("alias %q, device group %d", alias, group), nil
}

// ownLink reports whether the named link exists and is this root's
// (ownsMark). Anything else is left alone, with a warning.
func (e *Engine) ownLink(host links, name string) (bool, error) {
	alias, group, ok, err := host.Mark(name)
	if err != nil || !ok {
		return false, err
	}
	if !e.ownsMark(alias, group) {
		e.opts.Warn(fmt.Sprintf("left link %s alone: it is not this state root's (alias %q)", name, alias))
		return false, nil
	}
	return true, nil
}

// settleResident makes a running resident serve the zones tx calls for
// once interrupted commands are settled (a create undone, a removal
// finished), or stops it if nothing is left for it; a failure is a warning,
// which gc reports again as drift.
func (e *Engine) settleResident(tx *store.Tx) {
	if !e.residentOn() {
		return
	}
	needed, err := residentNeeded(tx)
	switch {
	case err != nil:
	case !needed:
		err = e.k.res.Stop()
	default:
		var zones []resolver.Zone
		if zones, err = e.allZones(tx, nil); err == nil {
			err = e.k.res.Serve(resident.Names{Zones: zones, All: true})
		}
	}
	if err != nil && !errors.Is(err, resident.ErrNotRunning) {
		e.opts.Warn(fmt.Sprintf("after settling interrupted commands: %v (nsnet gc puts the resident process in order)", err))
	}
}
