package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nsnet/nsnet/engine"
)

func (a *app) portCommand() *cobra.Command {
	cmd := group("port", "Publish, unpublish and list ports of sandboxes")
	cmd.Example = "  nsnet port add ns01 8080:80\n  nsnet port ls"
	cmd.AddCommand(&cobra.Command{
		Use:   "add NAME SPEC...",
		Short: "Publish more ports of a running sandbox ([HOST_IP:][HOST_PORT[-END]:]CTR_PORT[-END][/PROTO])",
		Example: `  nsnet port add ns01 8080:80
  nsnet port add ns01 127.0.0.1:5353:53/udp 9000-9010:9000-9010`,
		Args: minArgs(2, "NAME SPEC"),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.withEngine(false, func(e *engine.Engine) error {
				ms, err := e.AddPorts(args[0], args[1:])
				if err != nil {
					return err // nothing was published: print no mapping
				}
				a.printMappings(ms)
				return nil
			})
		},
	}, &cobra.Command{
		Use:     "rm NAME SPEC...",
		Aliases: []string{"remove"},
		Short:   "Unpublish ports of a sandbox (a container port alone removes all its mappings)",
		Example: `  nsnet port rm ns01 80
  nsnet port rm ns01 127.0.0.1:5353:53/udp`,
		Args: minArgs(2, "NAME SPEC"),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.withEngine(false, func(e *engine.Engine) error {
				ms, err := e.RemovePorts(args[0], args[1:])
				if err != nil {
					return err
				}
				a.printMappings(ms)
				return nil
			})
		},
	}, a.portLs())
	return cmd
}

func (a *app) printMappings(ms []engine.Mapping) {
	for _, m := range ms {
		fmt.Fprintln(a.stdout, m)
	}
}
