// Package cli is nsnet's command line: the command tree, flags, and output
// as tables or JSON. It holds no networking logic; every command opens the
// engine, makes one call and prints the result.
//
// Invariants: errors go to stderr as one "Error: ..." line and a non-zero exit
// code; normal output goes to stdout only; the engine is always closed (and the
// state lock released) before a command returns or runs a user's program.
package cli

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/agentapi"
	"github.com/nsnet/nsnet/internal/ipam"
	"github.com/nsnet/nsnet/internal/resident"
)

// exitError carries a specific exit code (e.g. a program's own, from run).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// Main runs the command line and returns the process exit code. Overlay
// commands execute the nsnet-overlay binary in place of this process (Reexec).
func Main(args []string, stdout, stderr io.Writer) int {
	return MainWith(args, stdout, stderr, Reexec{Args: args})
}

// MainWith is Main with the Overlay that runs the overlay commands
// (cmd/nsnet-overlay gives the one that talks to etcd).
func MainWith(args []string, stdout, stderr io.Writer, ov Overlay) int {
	app := &app{stdin: os.Stdin, stdout: stdout, stderr: stderr, overlay: ov}
	root := app.rootCommandFor(args)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "Error: %v\n", err)
	return 1
}

// app holds global flags and output streams.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	root           string
	pools          []string
	lockTimeout    time.Duration
	overlay        Overlay // the commands that talk to etcd
}

// rootCommand is the whole command tree.
func (a *app) rootCommand() *cobra.Command { return a.rootCommandFor(nil) }

// rootCommandFor is the command tree args call for: the root with only the
// top-level command that args name, if they name one, else with every
// command (for help, completion and suggestions). Building the tree costs
// about a fifth of a millisecond, a tenth of what starting nsnet costs.
func (a *app) rootCommandFor(args []string) *cobra.Command {
	root := &cobra.Command{
		Use:           "nsnet",
		Short:         "Docker-style container networking on Linux: bridges, sandboxes and NAT, daemonless",
		SilenceUsage:  true,
		SilenceErrors: true,
		Example:       "  nsnet network create --subnet 192.168.88.0/24 br01\n  nsnet sandbox create --network br01 ns01\n  nsnet exec ns01 -- ip addr",
		Version:       "read at --version", // non-empty: cobra adds --version, printed by the template below
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Annotations[noRootKey] != "" || strings.HasPrefix(cmd.Name(), "__complete") {
				return nil
			}
			if !engine.IsRoot() {
				return fmt.Errorf("%s must run as root: it changes network namespaces, links and nftables rules (try: sudo %s ...)", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	defRoot := os.Getenv("NSNET_ROOT")
	if defRoot == "" {
		defRoot = engine.DefaultRoot
	}
	root.PersistentFlags().StringVar(&a.root, "root", defRoot, "directory holding nsnet's state (env NSNET_ROOT)")
	root.PersistentFlags().DurationVar(&a.lockTimeout, "lock-timeout", engine.DefaultLockTimeout,
		"how long to wait for another nsnet command before failing as busy (0: do not wait)")
	root.PersistentFlags().StringArrayVar(&a.pools, "default-address-pool", nil,
		"pool for networks made without --subnet, as base=CIDR,size=N (repeatable; default Docker's pools)")
	root.SetVersionTemplate("{{" + versionLineFunc + "}}\n")
	commands := a.topLevel(root)
	if build, ok := commands[commandName(args)]; ok {
		root.AddCommand(build())
		return root
	}
	for _, name := range slices.Sorted(maps.Keys(commands)) {
		root.AddCommand(commands[name]())
	}
	a.addCompletions(root)
	return root
}

// topLevel builds each top-level command, by name (TestTopLevelNames keeps
// the names those of the commands).
func (a *app) topLevel(root *cobra.Command) map[string]func() *cobra.Command {
	return map[string]func() *cobra.Command{
		"network": a.networkCommand, "sandbox": a.sandboxCommand, "exec": a.execCommand, "run": a.runCommand,
		"port": a.portCommand, "gc": a.gcCommand, "firewall": a.firewallCommand, "demo": a.demoCommand,
		resident.Command: a.residentCommand, "agent": a.agentCommand, "diagnose": a.diagnoseCommand,
		"topology": a.topologyCommand, "version": a.versionCommand,
		"completion": func() *cobra.Command { return a.completionCommand(root) },
	}
}

// commandName is the first argument that is no global flag or flag value:
// the top-level command args call for ("" if none).
func commandName(args []string) string {
	for i := 0; i < len(args); i++ {
		switch arg := args[i]; {
		case arg == "--":
			return ""
		case arg == "--root" || arg == "--lock-timeout" || arg == "--default-address-pool":
			i++ // its value follows
		case strings.HasPrefix(arg, "-"):
		default:
			return arg
		}
	}
	return ""
}

// open opens the engine with the global options.
func (a *app) open(readOnly bool) (*engine.Engine, error) {
	o := engine.Options{Root: a.root, ReadOnly: readOnly, LockTimeout: a.lockTimeout, FaultPoint: faultPoint(),
		Warn: func(msg string) { fmt.Fprintf(a.stderr, "Warning: %s\n", msg) }}
	switch {
	case a.lockTimeout < 0:
		return nil, fmt.Errorf("--lock-timeout %s is negative: give 0 to fail at once when another nsnet command runs, or how long to wait for it (e.g. 30s)", a.lockTimeout)
	case a.lockTimeout == 0:
		o.LockTimeout = engine.NoWait
	}
	if self, err := os.Executable(); err == nil {
		o.Resident = self
	}
	o.ResolvConf = resolvConf()
	o.Cluster = agentapi.Client{Root: a.root} // overlay networks' addresses, through the agent
	for _, s := range a.pools {
		p, err := ipam.ParsePool(s)
		if err != nil {
			return nil, err
		}
		o.AddressPools = append(o.AddressPools, p)
	}
	return engine.Open(o)
}

// withEngine opens the engine, runs fn and closes it.
func (a *app) withEngine(readOnly bool, fn func(*engine.Engine) error) error {
	e, err := a.open(readOnly)
	if err != nil {
		return err
	}
	defer e.Close()
	return fn(e)
}

// forEach runs fn for every name, keeping going past errors like docker rm.
func (a *app) forEach(names []string, fn func(string) error) error {
	var failed []string
	for _, n := range names {
		if err := fn(n); err != nil {
			fmt.Fprintf(a.stderr, "Error: %v\n", err)
			failed = append(failed, n)
			continue
		}
		fmt.Fprintln(a.stdout, n)
	}
	if len(failed) > 0 {
		return &exitError{code: 1, err: nil}
	}
	return nil
}

func joinOr(xs []string, empty string) string {
	if len(xs) == 0 {
		return empty
	}
	return strings.Join(xs, ",")
}
