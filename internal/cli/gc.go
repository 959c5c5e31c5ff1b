package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/resident"
)

// codePending is the exit code of `gc --dry-run` when there is work to do.
const codePending = 2

func (a *app) gcCommand() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "gc [--dry-run]",
		Short: "Compare the store with the kernel; remove leftovers and restore what is missing or drifted",
		Long: "Compare the store with the kernel; remove leftovers and restore what is missing or drifted.\n" +
			"Exit status: 0 when all is in order (or was put in order), 1 on an error, and with --dry-run 2 when work is pending.",
		Example: "  nsnet gc --dry-run\n  nsnet gc",
		Args:    exactArgs(0, ""),
		RunE: func(_ *cobra.Command, _ []string) error {
			return a.withEngine(false, func(e *engine.Engine) error {
				actions, err := e.GC(dryRun)
				for _, act := range actions {
					fmt.Fprintln(a.stdout, act)
				}
				switch {
				case err != nil:
					return err
				case len(actions) == 0:
					fmt.Fprintln(a.stdout, "nothing to do: the store and the kernel agree")
				case dryRun:
					return &exitError{code: codePending}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only report what would be done")
	return cmd
}

func (a *app) firewallCommand() *cobra.Command {
	cmd := group("firewall", "Manage nsnet's nftables table")
	cmd.Example = "  nsnet firewall reload"
	cmd.AddCommand(&cobra.Command{
		Use:     "reload",
		Short:   "Rebuild nsnet's nftables table from the store (e.g. after nft flush ruleset)",
		Example: "  nft flush ruleset && nsnet firewall reload",
		Args:    exactArgs(0, ""),
		RunE: func(_ *cobra.Command, _ []string) error {
			return a.withEngine(false, func(e *engine.Engine) error { return e.ReloadFirewall() })
		},
	})
	return cmd
}

// residentCommand runs the state root's resident process, which keeps
// published host ports bound and serves the names of the root's user
// networks; nsnet starts it itself (see internal/resident).
func (a *app) residentCommand() *cobra.Command {
	return &cobra.Command{
		Use:    resident.Command + " --root ROOT",
		Hidden: true,
		Args:   exactArgs(0, ""),
		RunE: func(*cobra.Command, []string) error {
			return resident.Main(resident.Args{Root: a.root})
		},
	}
}
