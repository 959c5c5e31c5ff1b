package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/engine"
)

// Overlay runs the commands that talk to the cluster store (etcd) of overlay
// networks: network create --driver overlay, network rm --store, agent. The
// etcd client is large and slow to start (it more than doubles the binary
// and the start of every command), so the nsnet binary does not link it: its
// Overlay (Reexec) replaces the process with the nsnet-overlay binary
// (cmd/nsnet-overlay), which runs the same command line with an Overlay that
// does the work. Sandboxes reach the agent through its socket
// (internal/agentapi) without it.
type Overlay interface {
	CreateNetwork(spec engine.NetworkSpec, store string, vni uint32) (name string, err error)
	RemoveNetworks(store string, names []string) (removed []string, err error) // every name tried; err says why each other failed
	Agent(a AgentArgs) error
}

// AgentArgs are the agent command's.
type AgentArgs struct {
	Root      string
	Store     string // etcd://HOST:PORT[,...]
	Advertise string // empty: the address this host reaches the store from
	TTL       time.Duration
	Open      func() (*engine.Engine, error) // the state root's engine, with the global options
	Log       func(string)
}

// OverlayBinary is the name of the binary that links the etcd client.
const OverlayBinary = "nsnet-overlay"

// Reexec is the nsnet binary's Overlay: it executes nsnet-overlay (next to
// the running binary, or else in PATH) with the same arguments, in place of
// this process.
type Reexec struct{ Args []string }

func (r Reexec) CreateNetwork(engine.NetworkSpec, string, uint32) (string, error) {
	return "", r.exec()
}
func (r Reexec) RemoveNetworks(string, []string) ([]string, error) { return nil, r.exec() }
func (r Reexec) Agent(AgentArgs) error                             { return r.exec() }

func (r Reexec) exec() error {
	path := ""
	if self, err := os.Executable(); err == nil {
		path = filepath.Join(filepath.Dir(self), OverlayBinary)
	}
	if _, err := os.Stat(path); err != nil {
		if path, err = exec.LookPath(OverlayBinary); err != nil {
			return fmt.Errorf("overlay networks need the %s binary, next to nsnet or in PATH (go build ./cmd/%s): %w", OverlayBinary, OverlayBinary, err)
		}
	}
	err := unix.Exec(path, append([]string{path}, r.Args...), os.Environ())
	return fmt.Errorf("run %s: %w", path, err)
}

// overlayFlags are network create's flags for overlay networks.
type overlayFlags struct {
	driver, store string
	vni           uint32
}

func (o *overlayFlags) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.driver, "driver", "bridge", "bridge (this host only) or overlay (across hosts, state in --store)")
	cmd.RegisterFlagCompletionFunc("driver", cobra.FixedCompletions([]cobra.Completion{"bridge", "overlay"}, cobra.ShellCompDirectiveNoFileComp))
	noFiles(cmd, "store", "vni")
	f.StringVar(&o.store, "store", "", "the cluster store of an overlay network: etcd://HOST:PORT[,HOST:PORT...]")
	f.Uint32Var(&o.vni, "vni", 0, "VXLAN network identifier of an overlay network (default: the next free one from 4096)")
}

// check reports whether the flags ask for an overlay network, and refuses
// overlay flags on a bridge network.
func (o *overlayFlags) check() (bool, error) {
	switch o.driver {
	case "overlay":
		if o.store == "" {
			return true, errors.New("--driver overlay needs --store etcd://HOST:PORT: the cluster store every host's agent watches")
		}
		return true, nil
	case "bridge", "":
		if o.store != "" || o.vni != 0 {
			return false, errors.New("--store and --vni are for --driver overlay")
		}
		return false, nil
	}
	return false, fmt.Errorf("unknown --driver %q: give bridge or overlay", o.driver)
}

// createOverlay stores an overlay network in the cluster store; every
// host's agent then makes its part.
func (a *app) createOverlay(spec engine.NetworkSpec, o overlayFlags) error {
	name, err := a.overlay.CreateNetwork(spec, o.store, o.vni)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, name)
	return nil
}

func (a *app) agentCommand() *cobra.Command {
	args := AgentArgs{Open: func() (*engine.Engine, error) { return a.open(false) }}
	cmd := &cobra.Command{
		Use:   "agent --store etcd://HOST:PORT[,...] [--advertise IP] [--ttl D]",
		Short: "Run this host's overlay agent (resident): joins the overlay networks of the store and forwards to the other hosts' sandboxes",
		Example: `  nsnet agent --store etcd://192.0.2.5:2379
  nsnet agent --store etcd://192.0.2.5:2379,192.0.2.6:2379 --advertise 192.0.2.21 --ttl 30s`,
		Args: exactArgs(0, ""),
		RunE: func(*cobra.Command, []string) error {
			if args.TTL < time.Second {
				return fmt.Errorf("--ttl %s is too short: give at least 1s", args.TTL)
			}
			args.Root = a.root
			args.Log = func(s string) { fmt.Fprintln(a.stderr, s) }
			return a.overlay.Agent(args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&args.Store, "store", "", "the cluster store: etcd://HOST:PORT[,HOST:PORT...]")
	f.StringVar(&args.Advertise, "advertise", "", "this host's underlay address, the VXLAN tunnels' end (default: the address it reaches the store from)")
	f.DurationVar(&args.TTL, "ttl", 10*time.Second, // overlay.DefaultTTL, which nsnet does not link
		"how long this host's sandboxes stay known to the others after the agent stops")
	cmd.MarkFlagRequired("store")
	noFiles(cmd, "store", "advertise", "ttl")
	return cmd
}

// removeOverlays removes overlay networks from the cluster store, printing
// each removed.
func (a *app) removeOverlays(store string, names []string) error {
	removed, err := a.overlay.RemoveNetworks(store, names)
	for _, n := range removed {
		fmt.Fprintln(a.stdout, n)
	}
	return err
}

// noFiles keeps the shell from completing file names for cmd's flags,
// whose values are addresses and numbers.
func noFiles(cmd *cobra.Command, flags ...string) {
	for _, f := range flags {
		cmd.RegisterFlagCompletionFunc(f, cobra.NoFileCompletions)
	}
}
