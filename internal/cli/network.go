package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsnet/nsnet/engine"
)

func (a *app) networkCommand() *cobra.Command {
	cmd := group("network", "Manage bridge networks")
	cmd.AddCommand(a.networkCreate(), a.networkLs(), a.networkInspect(), a.networkRm(), a.networkConnect(), a.networkDisconnect())
	return cmd
}

func (a *app) networkCreate() *cobra.Command {
	var spec engine.NetworkSpec
	antispoof := true
	cmd := &cobra.Command{
		Use:   "create [--subnet CIDR] [--gateway IP] [--bridge IFNAME] [--internal] [--mtu N] [--antispoof=false] NAME",
		Short: "Create a bridge network",
		Args:  exactArgs(1, "NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			spec.Name = args[0]
			spec.NoAntiSpoof = !antispoof
			return a.withEngine(false, func(e *engine.Engine) error {
				n, err := e.CreateNetwork(spec)
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, n.Name)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.Subnet, "subnet", "", "IPv4 subnet in CIDR form (default: a free one from the address pools)")
	f.StringVar(&spec.Gateway, "gateway", "", "gateway address on the bridge (default: the subnet's first address)")
	f.StringVar(&spec.Bridge, "bridge", "", "bridge device name, at most 15 characters (default br-<id>)")
	f.BoolVar(&spec.Internal, "internal", false, "no masquerade and no traffic beyond the bridge")
	f.IntVar(&spec.MTU, "mtu", 0, "MTU of the bridge and the sandboxes' interfaces (default 1500)")
	f.StringArrayVar(&spec.DNS, "dns", nil, "DNS server for names the network's resolver does not know (repeatable; default: the host's)")
	f.BoolVar(&antispoof, "antispoof", true, "each sandbox sends only from its own MAC and addresses (--antispoof=false: any, e.g. for a sandbox that routes)")
	return cmd
}

// networkJSON is what `network inspect` and `network ls --format json` print.
type networkJSON struct {
	Name      string           `json:"name"`
	ID        string           `json:"id"`
	Driver    string           `json:"driver"`
	Bridge    string           `json:"bridge"`
	Subnet    string           `json:"subnet"`
	Gateway   string           `json:"gateway"`
	Internal  bool             `json:"internal"`
	AntiSpoof bool             `json:"antispoof"`
	MTU       int              `json:"mtu"`
	DNS       []string         `json:"dns,omitempty"`
	Created   time.Time        `json:"created"`
	Sandboxes []attachmentJSON `json:"sandboxes"`
}

type attachmentJSON struct {
	Sandbox   string   `json:"sandbox"`
	Interface string   `json:"interface"`
	Address   string   `json:"address"`
	MAC       string   `json:"mac"`
	HostVeth  string   `json:"host_veth"`
	Aliases   []string `json:"aliases,omitempty"`
}

func toNetworkJSON(n engine.Network, attached []engine.Attachment) networkJSON {
	j := networkJSON{
		Name: n.Name, ID: n.ID, Driver: "bridge", Bridge: n.Bridge, Subnet: n.Subnet.String(),
		Gateway: n.Gateway.String(), Internal: n.Internal, AntiSpoof: !n.NoAntiSpoof, MTU: n.MTU, Created: n.Created,
		Sandboxes: []attachmentJSON{},
	}
	for _, at := range attached {
		j.Sandboxes = append(j.Sandboxes, attachmentJSON{
			Sandbox: at.Sandbox, Interface: at.IfName, Address: at.Address.String(), MAC: at.MAC, HostVeth: at.HostVeth,
			Aliases: at.Aliases,
		})
	}
	for _, a := range n.DNS {
		j.DNS = append(j.DNS, a.String())
	}
	return j
}

func (a *app) networkLs() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "ls [--format json]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    exactArgs(0, ""),
		RunE: func(_ *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			return a.withEngine(true, func(e *engine.Engine) error {
				nets, err := e.Networks()
				if err != nil {
					return err
				}
				if format == "json" {
					out := []networkJSON{}
					for _, n := range nets {
						d, err := e.InspectNetwork(n.Name)
						if err != nil {
							return err
						}
						out = append(out, toNetworkJSON(d.Network, d.Attached))
					}
					return writeJSON(a.stdout, out)
				}
				return a.networkTable(nets)
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "output format: table (default) or json")
	return cmd
}

func (a *app) networkTable(nets []engine.Network) error {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(w, "NAME\tID\tBRIDGE\tSUBNET\tGATEWAY\tINTERNAL\tMTU")
	for _, n := range nets {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%t\t%d\n", n.Name, shortID(n.ID), n.Bridge, n.Subnet, n.Gateway, n.Internal, n.MTU)
	}
	return w.Flush()
}

func (a *app) networkInspect() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NAME...",
		Short: "Show networks as JSON",
		Args:  minArgs(1, "NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.withEngine(true, func(e *engine.Engine) error {
				return a.inspectAll(args, func(name string) (any, error) {
					d, err := e.InspectNetwork(name)
					if err != nil {
						return nil, err
					}
					return toNetworkJSON(d.Network, d.Attached), nil
				})
			})
		},
	}
}

func (a *app) networkRm() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove"},
		Short:   "Remove networks (refused while sandboxes are attached)",
		Args:    minArgs(1, "NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.withEngine(false, func(e *engine.Engine) error {
				return a.forEach(args, e.RemoveNetwork)
			})
		},
	}
}
