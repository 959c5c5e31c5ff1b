package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/nsnet/nsnet/engine"
)

func (a *app) portCommand() *cobra.Command {
	cmd := group("port", "Publish, unpublish and list ports of sandboxes")
	cmd.AddCommand(&cobra.Command{
		Use:   "add NAME SPEC...",
		Short: "Publish more ports of a running sandbox ([HOST_IP:][HOST_PORT[-END]:]CTR_PORT[-END][/PROTO])",
		Args:  minArgs(2, "NAME SPEC"),
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
		Args:    minArgs(2, "NAME SPEC"),
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
	}, &cobra.Command{
		Use:     "ls [NAME]",
		Aliases: []string{"list"},
		Short:   "List published ports, of one sandbox or of all",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.withEngine(true, func(e *engine.Engine) error { return a.portTable(e, args) })
		},
	})
	return cmd
}

func (a *app) printMappings(ms []engine.Mapping) {
	for _, m := range ms {
		fmt.Fprintln(a.stdout, m)
	}
}

func (a *app) portTable(e *engine.Engine, names []string) error {
	var sbs []engine.Sandbox
	if len(names) == 1 {
		sb, err := e.InspectSandbox(names[0])
		if err != nil {
			return err
		}
		sbs = append(sbs, *sb)
	} else {
		var err error
		if sbs, err = e.Sandboxes(); err != nil {
			return err
		}
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(w, "SANDBOX\tCONTAINER PORT\tHOST")
	for _, s := range sbs {
		for _, m := range s.Ports {
			fmt.Fprintf(w, "%s\t%d/%s\t%s\n", s.Name, m.CtrPort, m.Proto, m.HostAddr())
		}
	}
	return w.Flush()
}
