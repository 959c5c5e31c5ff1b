package cli

import (
	"github.com/spf13/cobra"

	"github.com/nsnet/nsnet/engine"
)

func (a *app) networkConnect() *cobra.Command {
	var spec engine.ConnectSpec
	cmd := &cobra.Command{
		Use:     "connect [--ip IP] [--ip6 IP6] [--alias NAME]... NETWORK SANDBOX",
		Short:   "Connect a running sandbox to one more network (its next ethN)",
		Example: "  nsnet network connect br02 ns01\n  nsnet network connect --ip 10.0.1.5 --alias db backend ns01",
		Args:    exactArgs(2, "NETWORK SANDBOX"),
		RunE: func(_ *cobra.Command, args []string) error {
			spec.Network, spec.Sandbox = args[0], args[1]
			return a.withEngine(false, func(e *engine.Engine) error {
				_, err := e.Connect(spec)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&spec.IP, "ip", "", "static IPv4 address on the network (default: the next free one, round-robin)")
	cmd.Flags().StringVar(&spec.IP6, "ip6", "", "static IPv6 address on a dual-stack network (default: the next free one, round-robin)")
	cmd.Flags().StringArrayVar(&spec.Aliases, "alias", nil, "another name of the sandbox on this network (repeatable)")
	return cmd
}

func (a *app) networkDisconnect() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "disconnect [--force] NETWORK SANDBOX",
		Short:   "Disconnect a sandbox from a network; its default route and published ports move to its next network",
		Example: "  nsnet network disconnect br02 ns01\n  nsnet network disconnect --force br01 web",
		Args:    exactArgs(2, "NETWORK SANDBOX"),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.withEngine(false, func(e *engine.Engine) error {
				_, err := e.Disconnect(args[0], args[1], force)
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "also when the sandbox's published ports would be left without a network: unpublish them")
	return cmd
}
