package engine

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nsnet/nsnet/internal/journal"
	"github.com/nsnet/nsnet/internal/link"
	"github.com/nsnet/nsnet/internal/store"
)

// gc is one garbage-collection pass: it collects what it did or would do.
type gc struct {
	e       *Engine
	tx      *store.Tx
	dryRun  bool
	gone    map[string]bool // sandboxes being forgotten or removed: nothing else is done to them
	settled map[string]bool // in a dry run: what settling the intents would take care of
	foreign map[string]bool // networks whose bridge's name someone else's interface has: left alone
	actions []string
	errs    []error
}

// do records an action and, unless this is a dry run, performs it.
func (g *gc) do(what string, fn func() error) {
	if g.dryRun {
		g.actions = append(g.actions, "would "+what)
		return
	}
	if err := fn(); err != nil {
		g.errs = append(g.errs, fmt.Errorf("%s: %w", what, err))
		return
	}
	g.actions = append(g.actions, what)
}

// GC compares the store with the whole live kernel state nsnet owns: it
// settles interrupted commands, forgets sandboxes whose namespace vanished or
// was replaced, releases leases nobody holds, removes links and namespace
// mounts of this root that no record explains, recreates missing bridges and
// veths, repairs those that drifted (down, another MTU, an address or route
// missing, off their bridge, IPv6 on), turns the sysctls nsnet owns back,
// keeps the resident process exact, and rewrites the nftables table if any rule or
// element drifted. It returns what it did (or, with dryRun, would do):
// nothing when all is in order, so after a gc a dry run reports nothing. A
// dry run lists what settling an interrupted command takes care of once, as
// that, and not again as drift.
func (e *Engine) GC(dryRun bool) (actions []string, err error) {
	if err := e.writable(); err != nil {
		return nil, err
	}
	err = e.op(true, func() error {
		actions, err = e.gc(dryRun)
		return err
	})
	return actions, err
}

func (e *Engine) gc(dryRun bool) ([]string, error) {
	actions, err := e.recoverPending(dryRun)
	if err != nil {
		return actions, err
	}
	runs, removing, err := e.settleRuns(dryRun)
	g := &gc{e: e, dryRun: dryRun, actions: append(actions, runs...), gone: map[string]bool{}, settled: map[string]bool{}, foreign: map[string]bool{}}
	if err != nil {
		g.errs = append(g.errs, err)
	}
	for _, name := range removing {
		g.gone[name] = true
	}
	if err := g.settling(); err != nil {
		return g.actions, err
	}
	if err := g.forgetVanished(); err != nil {
		return g.actions, err
	}
	var nets []Network
	err = e.st.Update(func(tx *store.Tx) error {
		g.tx = tx
		steps := []func() error{g.strayLeases, g.strayLinks, g.strayMounts, g.bridges, g.endpoints, g.forwarding, g.resident, g.etcFiles, g.firewall}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		var err error
		nets, err = tx.Networks()
		return err
	})
	for i := range nets {
		if !nets[i].Internal {
			e.warnForwardDrops(&nets[i])
		}
	}
	if needsForwarding(nets) {
		e.warnLocalnet()
	}
	e.warnBridgeFiltering(nets)
	return g.actions, errors.Join(err, errors.Join(g.errs...))
}

// settling notes, in a dry run, what settling the intents would take care
// of, so that the plan does not list it a second time, or contradict it: the
// links and mounts of creates to undo and their ports in the resident, the
// sandboxes and networks whose removal is to be finished, and the firewall
// table and the resident's names, which settling rewrites.
func (g *gc) settling() error {
	if !g.dryRun {
		return nil
	}
	pending, bad, err := g.e.journal.Pending()
	if err != nil || len(pending)+len(bad) == 0 {
		return err
	}
	g.settled["table"], g.settled["names"] = true, true
	return g.e.view(func(tx *store.Tx) error {
		for _, it := range pending {
			stored := g.e.recordExists(tx, it)
			switch {
			case it.Op == journal.OpSandboxRemove && stored: // to finish
				g.gone[it.Name] = true
			case it.Op == journal.OpNetworkRemove && stored:
				g.settle("network ", it.Name)
			case it.Op == journal.OpSandboxCreate && !stored: // to undo
				g.settle("ports ", it.Name)
				g.settle("etc ", it.Name)
				g.settle("link ", it.Links...)
				g.settle("mount ", it.Mounts...)
			case it.Op == journal.OpNetworkCreate && !stored:
				g.settle("link ", it.Links...)
			case it.Op == journal.OpNetworkConnect:
				g.settle("link ", it.Links...) // undone if not stored
			case it.Op == journal.OpNetworkDisconnect:
				if _, on := g.e.connectedIn(tx, it); on { // to finish: its route, ports and veths with it
					g.gone[it.Name] = true
					g.settle("link ", it.Links...)
				}
			}
		}
		return nil
	})
}

func (g *gc) settle(kind string, names ...string) {
	for _, n := range names {
		g.settled[kind+n] = true
	}
}

// forgetVanished forgets sandboxes whose namespace is gone (a reboot, or
// `ip netns del` from outside) or names another namespace now, each in a
// transaction of its own: if its kernel teardown fails, its record stays.
func (g *gc) forgetVanished() error {
	var vanished []Sandbox
	err := g.e.view(func(tx *store.Tx) error {
		sbs, err := tx.Sandboxes()
		for _, sb := range sbs {
			if !g.gone[sb.Name] && g.e.vanishedWhy(&sb) != "" {
				vanished = append(vanished, sb)
			}
		}
		return err
	})
	for i := range vanished {
		sb := &vanished[i]
		g.gone[sb.Name] = true
		g.do(fmt.Sprintf("forget sandbox %s: %s", sb.Name, g.e.vanishedWhy(sb)), func() error { return g.forget(sb) })
	}
	return err
}

// vanishedWhy says why sb's namespace is not its own any more, or "".
func (e *Engine) vanishedWhy(sb *Sandbox) string {
	id, err := e.k.ns.Identify(sb.NetNS)
	switch {
	case err != nil:
		return fmt.Sprintf("its namespace %s is gone", sb.NetNS)
	case !sameNamespace(sb, id):
		return fmt.Sprintf("%s now names another namespace, which is left alone", sb.NetNS)
	}
	return ""
}

// forget removes sb's record and what is left of it in the kernel, in one
// transaction that keeps the record if the kernel part fails.
func (g *gc) forget(sb *Sandbox) error {
	err := g.e.st.Update(func(tx *store.Tx) error {
		cur, err := tx.Sandbox(sb.Name)
		if err != nil || cur.ID != sb.ID {
			return err // gone or replaced meanwhile: nothing to forget
		}
		return g.e.forgetAndTeardown(tx, cur, "", false)
	})
	if err != nil {
		return fmt.Errorf("%w; the record of sandbox %s is kept: fix the cause and run nsnet gc again", err, sb.Name)
	}
	return nil
}

// strayLeases releases addresses that no stored endpoint holds.
func (g *gc) strayLeases() error {
	held, err := heldAddresses(g.tx)
	if err != nil {
		return err
	}
	nets, err := g.tx.Networks()
	if err != nil {
		return err
	}
	for _, n := range nets {
		leases, err := g.tx.Leases(n.Name)
		if err != nil {
			return err
		}
		for _, l := range leases {
			if held[n.Name+"/"+l.IP.String()] == l.Sandbox {
				continue
			}
			g.do(fmt.Sprintf("release %s on network %s (held by missing sandbox %s)", l.IP, n.Name, l.Sandbox), func() error {
				return g.tx.DeleteLease(n.Name, l.IP)
			})
		}
	}
	return nil
}

func heldAddresses(tx *store.Tx) (map[string]string, error) {
	sbs, err := tx.Sandboxes()
	held := map[string]string{}
	for _, s := range sbs {
		for _, ep := range s.Endpoints {
			held[ep.Network+"/"+ep.Address.Addr().String()] = s.Name
			if ep.Address6.IsValid() {
				held[ep.Network+"/"+ep.Address6.Addr().String()] = s.Name
			}
		}
	}
	return held, err
}

// expectedLinks are the host links the store accounts for.
func expectedLinks(tx *store.Tx) (map[string]bool, error) {
	want := map[string]bool{}
	nets, err := tx.Networks()
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		want[n.Bridge] = true
		if n.Overlay != nil {
			want[n.Overlay.Device] = true // made and kept by the overlay agent
		}
	}
	sbs, err := tx.Sandboxes()
	for _, s := range sbs {
		for _, ep := range s.Endpoints {
			want[ep.HostVeth] = true
		}
	}
	return want, err
}

// releaseGrace is how long a sandbox's host veth released with its
// namespace (see releaseWithNamespace) is left to the kernel, which destroys
// it with the namespace, usually within milliseconds. One still there after
// that belongs to a namespace that something else keeps alive (a process that
// entered it after the sandbox was removed, an open descriptor): gc removes it.
const releaseGrace = time.Minute

// strayLinks removes links marked as nsnet's that no record explains, but
// leaves released host veths to the kernel for releaseGrace.
func (g *gc) strayLinks() error {
	want, err := expectedLinks(g.tx)
	if err != nil {
		return err
	}
	host, err := g.e.hostLinks()
	if err != nil {
		return err
	}
	links, err := host.List()
	if err != nil {
		return err
	}
	for _, l := range links {
		if !g.e.owner.Owns(l.Alias) || want[l.Name] || g.settled["link "+l.Name] {
			continue
		}
		if at, ok := g.e.owner.Released(l.Alias); ok && g.e.clock().Sub(at) < releaseGrace {
			continue
		}
		g.do(fmt.Sprintf("remove leftover %s %s (%s)", l.Kind, l.Name, l.Alias), func() error { return host.DeleteLink(l.Name) })
	}
	return g.forgetDestroyed(links)
}

// forgetDestroyed forgets the released pairs (store.PutReleased) the kernel
// has destroyed since: nsnet's own bookkeeping, not drift, so it is not an
// action, and a dry run leaves it.
func (g *gc) forgetDestroyed(links []link.Listed) error {
	if g.dryRun {
		return nil
	}
	present := make(map[string]bool, len(links))
	for _, l := range links {
		present[l.Name] = true
	}
	nets, err := g.tx.Networks()
	for _, n := range nets {
		err = errors.Join(err, g.tx.PruneReleased(n.Name, func(veth string) bool { return !present[veth] }))
	}
	return err
}

// strayMounts removes namespace mounts this root made that no sandbox has.
func (g *gc) strayMounts() error {
	for _, f := range g.e.markers.Stale(time.Minute) {
		g.do("remove unfinished marker "+f, func() error { return g.e.markers.Delete(f) })
	}
	marks, err := g.e.markers.List(g.e.opts.Root)
	if err != nil {
		return err
	}
	for _, m := range marks {
		path := g.e.k.ns.Path(m.Name)
		if sb, err := g.tx.Sandbox(m.Name); (err == nil && sb.Mounted && sb.NetNS == path) || g.settled["mount "+path] {
			continue
		}
		what := "remove leftover namespace name " + path
		if m.Owns {
			what = "remove leftover namespace " + path
		}
		g.do(what, func() error { return g.e.removeMarkedMount(m) })
	}
	return nil
}

// firewall rewrites the root's table if any chain, rule or element differs
// from what the store calls for.
func (g *gc) firewall() error {
	s, err := firewallState(g.tx)
	if err != nil {
		return err
	}
	if g.settled["table"] {
		return nil
	}
	diffs, err := g.e.k.fw.Diff(s.nets, s.ports, s.guards)
	if err != nil || len(diffs) == 0 {
		return err
	}
	what := fmt.Sprintf("rewrite nftables tables inet and bridge %s (%s)", g.e.table, strings.Join(diffs, "; "))
	if len(s.nets) == 0 {
		what = fmt.Sprintf("remove nftables tables inet and bridge %s: no network needs them", g.e.table)
	}
	g.do(what, func() error { return g.e.syncFirewall(g.tx) })
	return nil
}
