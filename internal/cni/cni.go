// Package cni is nsnet as a CNI plugin (spec 1.1.0; configs of 0.4.0 and
// 1.0.0 too): the nsnet binary runs it when CNI_COMMAND is set, so that
// container runtimes (Podman, containerd, CRI-O, and Kubernetes through
// them) attach containers to nsnet networks.
//
// The plugin's network is an nsnet network of the state root the config
// names, made on the first ADD from the config's fields, and the same one
// the CLI sees. A container's attachments are one sandbox, named after its
// container ID (SandboxName), that adopts the runtime's namespace: the first
// ADD makes it, an ADD to another network connects it, a DEL takes it off
// that network, or removes it if it was the last. The runtime holds the
// published host ports itself (Podman's conmon binds them right after ADD),
// so nsnet installs the forwarding and leaves the sockets alone.
//
// Invariants: every command is one or more engine operations, each under the
// state store's lock, so parallel ADDs and DELs neither fail nor hand out an
// address twice; DEL and GC change only sandboxes the runtime made
// (Sandbox.Runtime); errors are the spec's JSON with its codes (7 for a bad
// config, 11 when the store stays busy, 3 for CHECK of an unknown
// container; 100 when CHECK finds drift).
package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/nsnet/nsnet/engine"
)

// ErrDrift is the plugin's own error code: CHECK found the attachment
// otherwise than nsnet's record (prevResult, the kernel, the rules).
const ErrDrift uint = 100

// RuntimeKind marks the sandboxes this plugin makes (types.Runtime.Kind).
const RuntimeKind = "cni"

// Main runs the command CNI_COMMAND names, with the config on stdin, and
// returns the exit code: the result, or the error as the spec's JSON, is
// on stdout.
func Main() int {
	p := &plugin{stdout: os.Stdout, stderr: os.Stderr}
	funcs := skel.CNIFuncs{Add: p.add, Del: p.del, Check: p.check, GC: p.gc, Status: p.status}
	if err := skel.PluginMainFuncsWithError(funcs, supported, "nsnet: container networking, as a CNI plugin"); err != nil {
		if perr := err.Print(); perr != nil {
			fmt.Fprintf(os.Stderr, "nsnet: write the error: %v\n", perr)
		}
		return 1
	}
	return 0
}

// plugin runs the commands, writing results to stdout and warnings to
// stderr.
type plugin struct {
	stdout, stderr io.Writer
}

// open opens the engine of the config's state root. The runtime holds the
// host ports of its containers (the engine never holds a runtime's ports).
// The state root's resident process, which serves the networks' names, runs
// as this very binary when the config has resolver, and is kept up to date
// whenever it runs (started by another config or the CLI): otherwise the
// engine neither starts nor tells it anything.
func (p *plugin) open(c *netConf, readOnly bool) (*engine.Engine, error) {
	o := engine.Options{
		Root: c.Root, LockTimeout: c.lockTimeout, ReadOnly: readOnly, ResolvConf: c.ResolvConf,
		Warn: func(msg string) { fmt.Fprintf(p.stderr, "nsnet: warning: %s\n", msg) },
	}
	e, err := engine.Open(o)
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("open nsnet's state root %s", c.Root), err.Error())
	}
	if !c.Resolver && !e.ResidentStatus(&engine.Sandbox{}).Alive {
		return e, nil
	}
	e.Close()
	if o.Resident, err = os.Executable(); err != nil {
		return nil, types.NewError(types.ErrInternal, "find the nsnet binary to run as the resident process", err.Error())
	}
	if e, err = engine.Open(o); err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("open nsnet's state root %s", c.Root), err.Error())
	}
	return e, nil
}

// withEngine runs fn on the config's engine and gives its error the
// spec's code.
func (p *plugin) withEngine(c *netConf, readOnly bool, fn func(*engine.Engine) error) error {
	e, err := p.open(c, readOnly)
	if err != nil {
		return err
	}
	defer e.Close()
	return coded(fn(e))
}

// coded gives an engine error the spec's code: 11 (try again later) when
// the store stayed busy, 999 (internal) otherwise; an error that has a code
// keeps it.
func coded(err error) error {
	var te *types.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		return err
	case errors.Is(err, engine.ErrBusy):
		return types.NewError(types.ErrTryAgainLater, "nsnet's state store is busy: try again later", err.Error())
	}
	return types.NewError(types.ErrInternal, err.Error(), "")
}

// SandboxName is the sandbox of a container: "cni-" and the first 12
// characters of its ID (all of it if shorter). Should another container's
// sandbox have that name, the next of SandboxNames is used.
func SandboxName(containerID string) string { return SandboxNames(containerID)[0] }

// SandboxNames are the names a container's sandbox may have, in the order
// they are tried: "cni-" and the first 12, 24 and 40 characters of the
// container ID, then all of it if it fits in a name (60 characters), else
// its first 20 characters and a hash of all of it. (Container IDs are made of
// letters, digits, '_', '.' and '-', as sandbox names are.)
func SandboxNames(containerID string) []string {
	var out []string
	for _, n := range []int{12, 24, 40} {
		if n >= len(containerID) {
			break
		}
		out = append(out, "cni-"+containerID[:n])
	}
	if len(containerID) <= 60 {
		return append(out, "cni-"+containerID)
	}
	sum := sha256.Sum256([]byte(containerID))
	return append(out, "cni-"+containerID[:20]+"-"+hex.EncodeToString(sum[:])[:39])
}
