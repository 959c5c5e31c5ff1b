package cli

import "github.com/spf13/cobra"

func (a *app) demoCommand() *cobra.Command {
	var svg string
	cmd := &cobra.Command{
		Use:     "demo [--svg FILE]",
		Short:   "Rebuild the seed article's bridge walkthrough inside a throwaway world",
		Example: "  sudo nsnet demo\n  sudo nsnet demo --svg /tmp/demo.svg",
		Args:    exactArgs(0, ""),
		RunE: func(_ *cobra.Command, _ []string) error {
			return runDemo(a.stdout, svg)
		},
	}
	cmd.Flags().StringVar(&svg, "svg", "", "also write the drawing of the demo's network (nsnet topology --format svg) to FILE; needs nsnet-svg beside nsnet or in $PATH")
	return cmd
}
