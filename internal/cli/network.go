package cli

import (
	"fmt"
	"strconv"
	"strings"
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
	var subnets, gateways, opts []string
	cmd := &cobra.Command{
		Use:   "create [--ipv6] [--subnet CIDR]... [--gateway IP]... [--bridge IFNAME] [--internal] [--mtu N] [-o KEY=VALUE] NAME",
		Short: "Create a bridge network",
		Args:  exactArgs(1, "NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			spec.Name = args[0]
			if err := byFamily(&spec, subnets, gateways); err != nil {
				return err
			}
			if err := networkOpts(&spec, opts); err != nil {
				return err
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
	f.StringArrayVar(&subnets, "subnet", nil, "subnet in CIDR form, IPv4 and (with --ipv6) IPv6, once per family (default: a free one from the address pools)")
	f.StringArrayVar(&gateways, "gateway", nil, "gateway address on the bridge, once per family (default: the subnet's first address)")
	f.BoolVar(&spec.IPv6, "ipv6", false, "dual-stack: an IPv6 subnet too (default: a /64 of the IPv6 pool, a unique local /48 derived from the host)")
	f.StringArrayVarP(&opts, "opt", "o", nil, "driver option: com.docker.network.bridge.enable_ip_masquerade=false sends traffic out with the sandboxes' own addresses")
	f.StringVar(&spec.Bridge, "bridge", "", "bridge device name, at most 15 characters (default br-<id>)")
	f.BoolVar(&spec.Internal, "internal", false, "no masquerade and no traffic beyond the bridge")
	f.IntVar(&spec.MTU, "mtu", 0, "MTU of the bridge and the sandboxes' interfaces (default 1500)")
	f.StringArrayVar(&spec.DNS, "dns", nil, "DNS server for names the network's resolver does not know (repeatable; default: the host's)")
	return cmd
}

// byFamily puts each --subnet and --gateway into spec by its address
// family, as Docker takes one of each: a colon makes it IPv6.
func byFamily(spec *engine.NetworkSpec, subnets, gateways []string) error {
	put := func(flag string, vals []string, v4, v6 *string) error {
		for _, v := range vals {
			dst := v4
			if strings.Contains(v, ":") {
				dst = v6
			}
			if *dst != "" {
				return fmt.Errorf("--%s %s: one --%s per address family (IPv4, IPv6) is allowed, and %s is given already", flag, v, flag, *dst)
			}
			*dst = v
		}
		return nil
	}
	if err := put("subnet", subnets, &spec.Subnet, &spec.Subnet6); err != nil {
		return err
	}
	return put("gateway", gateways, &spec.Gateway, &spec.Gateway6)
}

// maskOpt is Docker's bridge driver option for masquerade.
const maskOpt = "com.docker.network.bridge.enable_ip_masquerade"

// networkOpts reads -o KEY=VALUE driver options into spec: only
// enable_ip_masquerade is known.
func networkOpts(spec *engine.NetworkSpec, opts []string) error {
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		if k != maskOpt {
			return fmt.Errorf("unknown network option %q: nsnet knows only %s=true|false", o, maskOpt)
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("network option %q: %s takes true or false", o, maskOpt)
		}
		spec.NoMasquerade = !b
	}
	return nil
}

// networkJSON is what `network inspect` and `network ls --format json` print.
type networkJSON struct {
	Name      string           `json:"name"`
	ID        string           `json:"id"`
	Driver    string           `json:"driver"`
	Bridge    string           `json:"bridge"`
	Subnet    string           `json:"subnet"`
	Gateway   string           `json:"gateway"`
	IPv6      bool             `json:"ipv6"`
	Subnet6   string           `json:"subnet6,omitempty"`
	Gateway6  string           `json:"gateway6,omitempty"`
	Masq      bool             `json:"masquerade"`
	Internal  bool             `json:"internal"`
	MTU       int              `json:"mtu"`
	DNS       []string         `json:"dns,omitempty"`
	Created   time.Time        `json:"created"`
	Sandboxes []attachmentJSON `json:"sandboxes"`
}

type attachmentJSON struct {
	Sandbox   string   `json:"sandbox"`
	Interface string   `json:"interface"`
	Address   string   `json:"address"`
	Address6  string   `json:"address6,omitempty"`
	MAC       string   `json:"mac"`
	HostVeth  string   `json:"host_veth"`
	Aliases   []string `json:"aliases,omitempty"`
}

func toNetworkJSON(n engine.Network, attached []engine.Attachment) networkJSON {
	j := networkJSON{
		Name: n.Name, ID: n.ID, Driver: "bridge", Bridge: n.Bridge, Subnet: n.Subnet.String(),
		Gateway: n.Gateway.String(), Internal: n.Internal, MTU: n.MTU, Created: n.Created,
		Sandboxes: []attachmentJSON{}, IPv6: n.IPv6(), Masq: !n.Internal && !n.NoMasquerade,
	}
	if n.IPv6() {
		j.Subnet6, j.Gateway6 = n.Subnet6.String(), n.Gateway6.String()
	}
	for _, at := range attached {
		aj := attachmentJSON{
			Sandbox: at.Sandbox, Interface: at.IfName, Address: at.Address.String(), MAC: at.MAC, HostVeth: at.HostVeth,
			Aliases: at.Aliases,
		}
		if at.Address6.IsValid() {
			aj.Address6 = at.Address6.String()
		}
		j.Sandboxes = append(j.Sandboxes, aj)
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
		subnet, gw := n.Subnet.String(), n.Gateway.String()
		if n.IPv6() {
			subnet, gw = subnet+","+n.Subnet6.String(), gw+","+n.Gateway6.String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%t\t%d\n", n.Name, shortID(n.ID), n.Bridge, subnet, gw, n.Internal, n.MTU)
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
