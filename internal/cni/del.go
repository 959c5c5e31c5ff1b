package cni

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/store"
)

// del takes the container off the config's network (DEL): its interface
// goes, and its sandbox with the last one. It succeeds when there is
// nothing to take off: no state root, no sandbox, another interface, a
// second DEL; the namespace may be gone already (nsnet has its own name for
// it, which it removes).
func (p *plugin) del(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	if !hasStore(c) {
		return nil
	}
	return p.withEngine(c, false, func(e *engine.Engine) error {
		for _, name := range SandboxNames(args.ContainerID) {
			done, err := e.Detach(engine.DetachSpec{Sandbox: name, ContainerID: args.ContainerID, Network: c.Network, IfName: args.IfName})
			if err != nil || done {
				return err
			}
		}
		return nil
	})
}

// hasStore reports whether the config's state root has a state store: if
// not, there is nothing to take off, check or collect, and opening the
// engine would make the root.
func hasStore(c *netConf) bool {
	_, err := os.Stat(filepath.Join(engine.StateDir("", c.Root), store.FileName))
	return !errors.Is(err, os.ErrNotExist)
}
