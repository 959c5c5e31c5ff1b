package cli

// network prune and sandbox prune, with Docker's question and answer.

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nsnet/nsnet/engine"
)

func (a *app) networkPrune() *cobra.Command {
	return a.pruneCommand(pruneKind{
		what:    "networks",
		command: "pruning networks",
		warning: "WARNING! This will remove all networks not used by at least one sandbox (but the default network bridge).",
		example: `  nsnet network prune
  nsnet network prune -f --filter label=test
  nsnet network prune -f --filter until=24h`,
		keys:  engine.NetworkPruneFilterKeys,
		prune: func(e *engine.Engine, f engine.Filters) ([]string, error) { return e.PruneNetworks(f) },
	})
}

func (a *app) sandboxPrune() *cobra.Command {
	return a.pruneCommand(pruneKind{
		what:    "sandboxes",
		command: "pruning sandboxes",
		warning: "WARNING! This will remove all sandboxes whose namespace no process is in (but host-mode sandboxes, " +
			"those adopted with --netns, and those of a running nsnet run --rm).",
		example: `  nsnet sandbox prune
  nsnet sandbox prune -f --filter network=br01`,
		keys:  engine.SandboxPruneFilterKeys,
		prune: func(e *engine.Engine, f engine.Filters) ([]string, error) { return e.PruneSandboxes(f) },
	})
}

// pruneKind is what a prune command removes.
type pruneKind struct {
	what, command, warning, example string
	keys                            []string
	prune                           func(*engine.Engine, engine.Filters) ([]string, error)
}

func (a *app) pruneCommand(k pruneKind) *cobra.Command {
	var force bool
	var filters []string
	cmd := &cobra.Command{
		Use:     "prune [-f] [--filter KEY=VALUE]...",
		Short:   "Remove unused " + k.what,
		Example: k.example,
		Args:    exactArgs(0, ""),
		RunE: func(_ *cobra.Command, _ []string) error {
			f, err := parseFilters(filters)
			if err == nil {
				err = engine.CheckFilters(k.command, f, k.keys)
			}
			if err != nil {
				return err
			}
			if !force && !a.confirm(k.warning) {
				fmt.Fprintln(a.stdout, "Nothing was removed.")
				return nil
			}
			return a.withEngine(false, func(e *engine.Engine) error {
				removed, err := k.prune(e, f)
				if len(removed) > 0 {
					fmt.Fprintf(a.stdout, "Deleted %s%s:\n", strings.ToUpper(k.what[:1]), k.what[1:])
					for _, name := range removed {
						fmt.Fprintln(a.stdout, name)
					}
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "remove only what is selected, as KEY=VALUE (repeatable, see README)")
	return cmd
}

// confirm asks Docker's question after warning, and reads the answer from
// stdin: y or yes (in any case) goes on; anything else, or none, does not.
func (a *app) confirm(warning string) bool {
	fmt.Fprintf(a.stdout, "%s\nAre you sure you want to continue? [y/N] ", warning)
	line, _ := bufio.NewReader(a.stdin).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	if line == "" || !strings.HasSuffix(line, "\n") {
		fmt.Fprintln(a.stdout) // no new line was typed: end the question's
	}
	return answer == "y" || answer == "yes"
}
