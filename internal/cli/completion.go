package cli

// nsnet completion bash|zsh|fish, and the completion of network, sandbox
// and port names from the store.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/store"
)

// completionLockTimeout bounds how long a completion waits for the store:
// a shell waits for it, and a command that changes the store holds its lock
// only a few milliseconds.
const completionLockTimeout = 250 * time.Millisecond

// noRoot marks commands that run without root: they touch no state.
var noRoot = map[string]string{noRootKey: "true"}

const noRootKey = "nsnet-no-root"

func (a *app) completionCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script",
		Long: "Print the script that teaches a shell to complete nsnet's commands, flags, and the names of\n" +
			"networks, sandboxes and published ports (read from the store of --root, as root).",
		Example: `  source <(nsnet completion bash)                          # this shell; or put it in ~/.bashrc
  nsnet completion zsh > "${fpath[1]}/_nsnet"
  nsnet completion fish > ~/.config/fish/completions/nsnet.fish`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := exactArgs(1, "bash, zsh or fish")(cmd, args); err != nil {
				return err
			}
			switch args[0] {
			case "bash", "zsh", "fish":
				return nil
			}
			return fmt.Errorf("unknown shell %q: nsnet completion knows bash, zsh and fish", args[0])
		},
		ValidArgs:   []string{"bash", "zsh", "fish"},
		Annotations: noRoot,
		RunE: func(_ *cobra.Command, args []string) error {
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(a.stdout, true)
			case "zsh":
				return root.GenZshCompletion(a.stdout)
			}
			return root.GenFishCompletion(a.stdout, true)
		},
	}
}

// names reads names for a completion: never an error (a shell would show
// it), never a wait of more than completionLockTimeout, nothing written.
func (a *app) names(read func(*engine.Engine) ([]string, error)) []string {
	if _, err := os.Stat(filepath.Join(engine.StateDir("", a.root), store.FileName)); err != nil {
		return nil // no store: nothing to name, and a read-only open would make one
	}
	e, err := engine.Open(engine.Options{Root: a.root, ReadOnly: true, LockTimeout: completionLockTimeout})
	if err != nil {
		return nil
	}
	defer e.Close()
	out, err := read(e)
	if err != nil {
		return nil
	}
	return out
}

func (a *app) networkNames() []string {
	return a.names(func(e *engine.Engine) ([]string, error) {
		nets, err := e.Networks()
		out := make([]string, len(nets))
		for i, n := range nets {
			out[i] = n.Name
		}
		return out, err
	})
}

func (a *app) sandboxNames() []string {
	return a.names(func(e *engine.Engine) ([]string, error) {
		sbs, err := e.Sandboxes()
		out := make([]string, len(sbs))
		for i, s := range sbs {
			out[i] = s.Name
		}
		return out, err
	})
}

// portSpecs are the mappings of a sandbox, as port rm takes them.
func (a *app) portSpecs(sandbox string) []string {
	return a.names(func(e *engine.Engine) ([]string, error) {
		sb, err := e.InspectSandbox(sandbox)
		if err != nil {
			return nil, err
		}
		out := make([]string, len(sb.Ports))
		for i, m := range sb.Ports {
			out[i] = portSpec(m)
		}
		return out, nil
	})
}

// modes are what --network takes: a mode or a network name.
func (a *app) modes() []string {
	out := append([]string{engine.DefaultNetwork, engine.ModeHost, engine.ModeNone}, a.networkNames()...)
	for _, s := range a.sandboxNames() {
		out = append(out, "container:"+s)
	}
	return out
}

// complete completes positional arguments: kinds[i] names what the i-th
// is ("network", "sandbox", "port": a mapping of the sandbox given first);
// the last kind repeats for the arguments after it when repeat is set.
func (a *app) complete(repeat bool, kinds ...string) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		i := len(args)
		if i >= len(kinds) {
			if !repeat || len(kinds) == 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			i = len(kinds) - 1
		}
		var names []string
		switch kinds[i] {
		case "network":
			names = a.networkNames()
		case "sandbox":
			names = a.sandboxNames()
		case "port":
			if len(args) > 0 {
				names = a.portSpecs(args[0])
			}
		}
		return withPrefix(names, prefix, args), cobra.ShellCompDirectiveNoFileComp
	}
}

// withPrefix are the names that start with prefix and are not given yet.
func withPrefix(names []string, prefix string, given []string) []cobra.Completion {
	var out []cobra.Completion
	for _, n := range names {
		if strings.HasPrefix(n, prefix) && !slices.Contains(given, n) {
			out = append(out, n)
		}
	}
	return out
}

// addCompletions registers the dynamic completions of the command tree.
func (a *app) addCompletions(root *cobra.Command) {
	set := func(path string, fn cobra.CompletionFunc) {
		if cmd, _, err := root.Find(strings.Fields(path)); err == nil && cmd.Name() == lastWord(path) {
			cmd.ValidArgsFunction = fn
		}
	}
	set("network inspect", a.complete(true, "network"))
	set("network rm", a.complete(true, "network"))
	set("network connect", a.complete(false, "network", "sandbox"))
	set("network disconnect", a.complete(false, "network", "sandbox"))
	set("sandbox inspect", a.complete(true, "sandbox"))
	set("sandbox rm", a.complete(true, "sandbox"))
	set("exec", a.complete(false, "sandbox"))
	set("port add", a.complete(false, "sandbox"))
	set("port ls", a.complete(false, "sandbox"))
	set("port rm", a.complete(true, "sandbox", "port"))
	set("diagnose", a.complete(false, "sandbox"))
	set("topology", a.complete(true, "network"))
	set("agent", a.complete(false))
	for _, path := range []string{"sandbox create", "run"} {
		if cmd, _, err := root.Find(strings.Fields(path)); err == nil {
			cmd.RegisterFlagCompletionFunc("network", func(_ *cobra.Command, _ []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return withPrefix(a.modes(), prefix, nil), cobra.ShellCompDirectiveNoFileComp
			})
		}
	}
}

func lastWord(s string) string {
	f := strings.Fields(s)
	return f[len(f)-1]
}
