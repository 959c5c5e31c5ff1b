package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/observe"
	"github.com/nsnet/nsnet/internal/topology"
)

func (a *app) topologyCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "topology [NETWORK...] [--format text|dot|svg|json]",
		Short: "Draw the networks as the kernel has them: uplink, forwarding and NAT, bridges, veth pairs, sandboxes, published ports",
		Example: "  nsnet topology\n  nsnet topology frontend --format dot | dot -Tsvg > frontend.svg\n" +
			"  nsnet topology --format svg > net.svg    # with nsnet-svg beside nsnet",
		Long: "topology reads the store (read-only) and the live state of the kernel and draws the host's uplink and default route, " +
			"ip_forward and nsnet's NAT table, each network's bridge and gateway (internal networks marked), each sandbox's veth pair with " +
			"interface names, addresses and MACs, and its published ports; every network, or those named. Formats: text (a tree), " +
			"dot (Graphviz), svg (drawn by Graphviz: nsnet pipes the dot graph through nsnet-svg, found beside nsnet or in $PATH), json.",
		RunE: func(_ *cobra.Command, args []string) error { return a.topology(args, format) },
	}
	cmd.Flags().StringVar(&format, "format", "text", "text, dot, svg or json")
	return cmd
}

func (a *app) topology(networks []string, format string) error {
	switch format {
	case "text", "dot", "svg", "json":
	default:
		return fmt.Errorf("unknown --format %q: use text, dot, svg or json", format)
	}
	renderer, err := svgRenderer(format)
	if err != nil {
		return err
	}
	req := observe.Request{}
	err = a.withEngine(true, func(e *engine.Engine) error {
		var err error
		if req.Networks, err = e.Networks(); err != nil {
			return err
		}
		if req.Sandboxes, err = e.Sandboxes(); err != nil {
			return err
		}
		req.Table = e.FirewallTable()
		return nil
	})
	if err != nil {
		return err
	}
	if req.Root, err = filepath.Abs(a.root); err != nil {
		return err
	}
	for _, sb := range req.Sandboxes {
		req.Read = append(req.Read, sb.Name)
	}
	snap, err := observe.Gather(observe.Kernel{}, req)
	if err != nil {
		return err
	}
	g, err := topology.Build(snap, networks)
	if err != nil {
		return err
	}
	switch format {
	case "dot":
		g.WriteDot(a.stdout)
	case "svg":
		return g.WriteSVG(a.stdout, renderer)
	case "json":
		return g.WriteJSON(a.stdout)
	default:
		g.WriteText(a.stdout)
	}
	return nil
}

// svgRenderer finds nsnet-svg, before anything is read, when the format is
// svg; otherwise it returns "".
func svgRenderer(format string) (string, error) {
	if format != "svg" {
		return "", nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("topology: find the nsnet binary, beside which nsnet-svg is looked for: %w", err)
	}
	return topology.FindSVGRenderer(self)
}
