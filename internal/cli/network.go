package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/agentapi"
)

func (a *app) networkCommand() *cobra.Command {
	cmd := group("network", "Manage bridge networks")
	cmd.AddCommand(a.networkCreate(), a.networkLs(), a.networkInspect(), a.networkRm(), a.networkConnect(), a.networkDisconnect())
	return cmd
}

func (a *app) networkCreate() *cobra.Command {
	var spec engine.NetworkSpec
	var ov overlayFlags
	cmd := &cobra.Command{
		Use:   "create [--subnet CIDR] [--gateway IP] [--bridge IFNAME] [--internal] [--mtu N] [--driver overlay --store etcd://HOST:PORT [--vni N]] NAME",
		Short: "Create a bridge network, or an overlay network across hosts",
		Args:  exactArgs(1, "NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			spec.Name = args[0]
			if overlay, err := ov.check(); overlay || err != nil {
				return errors.Join(err, a.createOverlay(spec, ov))
			}
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
	ov.flags(cmd)
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
	MTU       int              `json:"mtu"`
	DNS       []string         `json:"dns,omitempty"`
	Overlay   *overlayJSON     `json:"overlay,omitempty"` // driver overlay only
	Created   time.Time        `json:"created"`
	Sandboxes []attachmentJSON `json:"sandboxes"` // this host's
}

// overlayJSON is the overlay part of a network in `network inspect`.
type overlayJSON struct {
	VNI    uint32   `json:"vni"`
	Device string   `json:"device"`
	Store  []string `json:"store"`
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
		Gateway: n.Gateway.String(), Internal: n.Internal, MTU: n.MTU, Created: n.Created,
		Sandboxes: []attachmentJSON{},
	}
	if o := n.Overlay; o != nil {
		j.Driver, j.Overlay = "overlay", &overlayJSON{VNI: o.VNI, Device: o.Device, Store: o.Store}
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
	var store string
	cmd := &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove"},
		Short:   "Remove networks (refused while sandboxes are attached)",
		Args:    minArgs(1, "NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			if store != "" {
				return a.removeOverlays(store, args)
			}
			return a.withEngine(false, func(e *engine.Engine) error {
				return a.forEach(args, func(name string) error { return removeLocal(e, name) })
			})
		},
	}
	cmd.Flags().StringVar(&store, "store", "", "remove overlay networks from this cluster store (etcd://HOST:PORT[,...]); every host's agent then removes its part")
	return cmd
}

// removeLocal removes a network of this host; an overlay network's part is
// the agent's to remove, once the network is gone from the cluster store.
func removeLocal(e *engine.Engine, name string) error {
	if d, err := e.InspectNetwork(name); err == nil && d.Overlay != nil {
		return fmt.Errorf("network %s is an overlay network, which spans hosts: remove it from the cluster store (nsnet network rm --store %s %s), and every host's agent removes its part",
			d.Name, agentapi.StoreURL(d.Overlay.Store), d.Name)
	}
	return e.RemoveNetwork(name)
}
