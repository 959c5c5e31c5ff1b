package engine

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nsnet/nsnet/internal/resolvconf"
	"github.com/nsnet/nsnet/internal/store"
)

// The files a sandbox's programs see in place of /etc's (EtcDir/NAME, bound
// over /etc by `ip netns exec`, `nsnet exec` and `nsnet run`).
const (
	resolvConfFile = "resolv.conf"
	hostsFile      = "hosts"
)

// etcFiles are the contents of sb's resolv.conf and hosts, as Docker writes a
// container's: the nameserver is the resolver of its first user network (not
// the default one), or else its --dns servers, or the host's it can reach;
// search domains and options are the host's; hosts has localhost and the
// sandbox's own name and short ID on each of its addresses. A container:
// sandbox gets the files of the sandbox whose namespace it shares; a host
// sandbox none (it is the host).
func (e *Engine) etcFiles(tx *store.Tx, sb *Sandbox) (map[string]string, error) {
	switch sb.Mode {
	case store.ModeHost:
		return nil, nil
	case store.ModeContainer:
		owner, err := tx.Sandbox(sb.Container)
		if err != nil {
			return nil, nil // the owner went first (rm --force): nothing to show
		}
		files, err := e.etcFiles(tx, owner)
		return rehead(files, e.owner.ID, owner.Name, sb.Name), err
	}
	host, err := e.hostResolvConf()
	if err != nil {
		return nil, err
	}
	conf := resolvconf.Conf{Search: host.Search, Options: host.Options, Nameservers: sb.DNS}
	var hosts []resolvconf.Host
	for _, ep := range sb.Endpoints {
		hosts = append(hosts, resolvconf.Host{Addr: ep.Address.Addr(), Names: []string{sb.Name, shortID(sb.ID)}})
	}
	if resolver, ok := firstResolver(tx, sb); ok {
		conf.Nameservers = []netip.Addr{resolver}
		if !slices.Contains(conf.Options, "ndots:0") { // as Docker: names go to the resolver as they are
			conf.Options = append(slices.Clone(conf.Options), "ndots:0")
		}
	}
	if len(conf.Nameservers) == 0 {
		if conf.Nameservers = host.Reachable(); len(conf.Nameservers) == 0 {
			conf.Nameservers = resolvconf.Fallback
		}
	}
	head := resolvconf.Header(e.owner.ID, sb.Name)
	return map[string]string{resolvConfFile: resolvconf.Format(head, conf), hostsFile: resolvconf.FormatHosts(head, hosts)}, nil
}

// firstResolver is the address of the resolver of sb's first network that
// has one (all but the default network do: its gateway).
func firstResolver(tx *store.Tx, sb *Sandbox) (netip.Addr, bool) {
	for _, ep := range sb.Endpoints {
		if ep.Network == DefaultNetwork {
			continue
		}
		if n, err := tx.Network(ep.Network); err == nil {
			return n.Gateway, true
		}
	}
	return netip.Addr{}, false
}

// rehead puts the header for sandbox on files written for owner.
func rehead(files map[string]string, root, owner, sandbox string) map[string]string {
	old, head := resolvconf.Header(root, owner), resolvconf.Header(root, sandbox)
	out := map[string]string{}
	for name, content := range files {
		out[name] = head + content[len(old):]
	}
	return out
}

// shortID is the first 12 digits of an ID, as ls shows it.
func shortID(id string) string { return id[:min(12, len(id))] }

// hostResolvConf reads the host's resolv.conf; a missing one has nothing.
func (e *Engine) hostResolvConf() (resolvconf.Conf, error) {
	f, err := os.Open(e.opts.ResolvConf)
	if errors.Is(err, os.ErrNotExist) {
		return resolvconf.Conf{}, nil
	}
	if err != nil {
		return resolvconf.Conf{}, fmt.Errorf("read the host's resolv.conf: %w", err)
	}
	defer f.Close()
	return resolvconf.Parse(f)
}

// etcDir is where sandbox name's files go.
func (e *Engine) etcDir(name string) string { return filepath.Join(e.k.etcDir, name) }

// writeEtc writes sb's files as etcFiles makes them, and registers an undo
// that puts back what was there before (or removes them). Files someone else
// put in the sandbox's directory are left alone and not replaced.
func (e *Engine) writeEtc(tx *store.Tx, u *undo, sb *Sandbox) error {
	return e.writeEtcWhile(tx, u, sb, sb.Endpoints)()
}

// writeEtcWhile is writeEtc for sb with endpoints eps (before it has them:
// they are being made), with the files written on a goroutine of its own
// (meanwhile): the function it returns waits for them, and the caller calls
// it before it returns.
func (e *Engine) writeEtcWhile(tx *store.Tx, u *undo, sb *Sandbox, eps []Endpoint) func() error {
	planned := *sb
	planned.Endpoints = eps
	files, err := e.etcFiles(tx, &planned)
	if err != nil || len(files) == 0 {
		return func() error { return err }
	}
	var before map[string]string // what was there; nil: not read, so nothing written
	wait := e.meanwhile(func() error {
		was, err := e.readEtc(sb.Name)
		if err != nil {
			return err
		}
		before = was
		return e.putEtc(sb.Name, files, before)
	})
	u.push(func() error {
		if wait(); before == nil {
			return nil
		}
		return e.restoreEtc(sb.Name, before)
	})
	return wait
}

// putEtc writes files into sandbox name's directory, but those of before
// that are not nsnet's.
func (e *Engine) putEtc(name string, files, before map[string]string) error {
	for f, content := range files {
		if old, ok := before[f]; ok && !resolvconf.Marked(old, e.owner.ID) {
			e.opts.Warn(fmt.Sprintf("sandbox %s: %s is not nsnet's: left as it is", name, filepath.Join(e.etcDir(name), f)))
			continue
		}
		if err := writeFileAtomic(filepath.Join(e.etcDir(name), f), content); err != nil {
			return err
		}
	}
	return nil
}

// readEtc reads the files of sandbox name that exist.
func (e *Engine) readEtc(name string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range []string{resolvConfFile, hostsFile} {
		raw, err := os.ReadFile(filepath.Join(e.etcDir(name), f))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[f] = string(raw)
	}
	return out, nil
}

// restoreEtc puts back files as readEtc read them: ours that were not there
// are removed.
func (e *Engine) restoreEtc(name string, before map[string]string) error {
	var errs []error
	for _, f := range []string{resolvConfFile, hostsFile} {
		path := filepath.Join(e.etcDir(name), f)
		if old, ok := before[f]; ok {
			errs = append(errs, writeFileAtomic(path, old))
		} else {
			errs = append(errs, e.removeOwnFile(path))
		}
		errs = append(errs, e.removeOwnTemp(path+tempSuffix, name))
	}
	os.Remove(e.etcDir(name)) // only if empty
	return errors.Join(errs...)
}

// removeEtc removes the files nsnet wrote for sandbox name, and its
// directory if nothing else is left in it.
func (e *Engine) removeEtc(name string) error {
	return e.restoreEtc(name, nil)
}

// removeOwnFile removes a file this root wrote; any other is left alone.
func (e *Engine) removeOwnFile(path string) error {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !resolvconf.Marked(string(raw), e.owner.ID) {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// removeOwnTemp removes the temporary file a killed writeFileAtomic of
// this root's left for sandbox: one with this root's mark, or one cut short
// before the end of it (empty, or a beginning of the header this root
// writes). Any other is left alone.
func (e *Engine) removeOwnTemp(path, sandbox string) error {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !resolvconf.Marked(string(raw), e.owner.ID) && !strings.HasPrefix(resolvconf.Header(e.owner.ID, sandbox), string(raw)) {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// tempSuffix names the temporary file writeFileAtomic writes first.
const tempSuffix = ".nsnet-tmp"

// writeFileAtomic writes content to path through a temporary file and a
// rename, making the directory if needed.
func writeFileAtomic(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	tmp := path + tempSuffix
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// sameFiles reports whether the files on disk are what want says.
func sameFiles(have, want map[string]string) bool { return maps.Equal(have, want) }

// etcFiles (gc) rewrites the resolv.conf and hosts of sandboxes whose files
// are missing or drifted, and removes files this root wrote for sandboxes
// that no longer exist.
func (g *gc) etcFiles() error {
	sbs, err := g.tx.Sandboxes()
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for i := range sbs {
		sb := &sbs[i]
		known[sb.Name] = true
		if g.gone[sb.Name] {
			continue
		}
		if err := g.etcOf(sb); err != nil {
			return err
		}
	}
	dirs, _ := os.ReadDir(g.e.k.etcDir)
	for _, d := range dirs {
		if name := d.Name(); d.IsDir() && !known[name] && !g.settled["etc "+name] && g.e.hasOwnEtc(name) {
			g.do(fmt.Sprintf("remove leftover %s and %s of missing sandbox %s (%s)", resolvConfFile, hostsFile, name, g.e.etcDir(name)),
				func() error { return g.e.removeEtc(name) })
		}
	}
	return nil
}

// etcOf rewrites sb's files if they are not what they should be; a file
// nsnet did not write is the user's, left as it is (as putEtc leaves it).
func (g *gc) etcOf(sb *Sandbox) error {
	want, err := g.e.etcFiles(g.tx, sb)
	if err != nil {
		return err
	}
	have, err := g.e.readEtc(sb.Name)
	if err != nil {
		return err
	}
	for f, content := range have {
		if !resolvconf.Marked(content, g.e.owner.ID) {
			delete(have, f)
			delete(want, f)
		}
	}
	if sameFiles(have, want) {
		return nil
	}
	g.do(fmt.Sprintf("rewrite %s and %s of sandbox %s (%s)", resolvConfFile, hostsFile, sb.Name, g.e.etcDir(sb.Name)),
		func() error { return g.e.writeEtc(g.tx, &undo{}, sb) })
	return nil
}

// hasOwnEtc reports whether sandbox name's directory holds a file this root
// wrote.
func (e *Engine) hasOwnEtc(name string) bool {
	files, _ := e.readEtc(name)
	for _, content := range files {
		if resolvconf.Marked(content, e.owner.ID) {
			return true
		}
	}
	return false
}
