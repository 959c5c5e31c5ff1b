package cli

import "github.com/spf13/cobra"

func (a *app) demoCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "demo",
		Short:   "Rebuild the seed article's bridge walkthrough inside a throwaway world",
		Example: "  sudo nsnet demo",
		Args:    exactArgs(0, ""),
		RunE: func(_ *cobra.Command, _ []string) error {
			return runDemo(a.stdout)
		},
	}
}
