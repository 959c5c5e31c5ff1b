package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/agentapi"
)

func (a *app) networkCommand() *cobra.Command {
	cmd := group("network", "Manage bridge networks")
	cmd.Example = "  nsnet network create br01\n  nsnet network ls"
	cmd.AddCommand(a.networkCreate(), a.networkLs(), a.networkInspect(), a.networkRm(), a.networkConnect(), a.networkDisconnect(),
		a.networkPrune())
	return cmd
}

func (a *app) networkCreate() *cobra.Command {
	var spec engine.NetworkSpec
	var ov overlayFlags
	var subnets, gateways []string
	var labels labelFlags
	var opts []string
	antispoof := true
	cmd := &cobra.Command{
		Use:   "create [--ipv6] [--subnet CIDR]... [--gateway IP]... [--bridge IFNAME] [--internal] [--mtu N] [-o KEY=VALUE]... [--label KEY=VALUE]... [--antispoof=false] [--driver overlay --store etcd://HOST:PORT [--vni N]] NAME",
		Short: "Create a bridge network, or an overlay network across hosts",
		Example: `  nsnet network create --subnet 192.168.88.0/24 --gateway 192.168.88.1 --bridge br01 br01
  nsnet network create --internal backend
  nsnet network create --label env=prod -o com.docker.network.bridge.enable_icc=false isolated
  nsnet network create -o com.docker.network.bridge.host_binding_ipv4=192.0.2.10 public
  nsnet network create --driver overlay --store etcd://192.0.2.5:2379 --subnet 10.20.0.0/24 ov1`,
		Args: exactArgs(1, "NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			spec.Name = args[0]
			if err := byFamily(&spec, subnets, gateways); err != nil {
				return err
			}
			spec.NoAntiSpoof = !antispoof
			var err error
			if spec.Labels, err = labels.parse(); err != nil {
				return err
			}
			if spec.Options, err = parseOptions(opts); err != nil {
				return err
			}
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
	f.StringArrayVar(&subnets, "subnet", nil, "subnet in CIDR form, IPv4 and (with --ipv6) IPv6, once per family (default: a free one from the address pools)")
	f.StringArrayVar(&gateways, "gateway", nil, "gateway address on the bridge, once per family (default: the subnet's first address)")
	f.BoolVar(&spec.IPv6, "ipv6", false, "dual-stack: an IPv6 subnet too (default: a /64 of the IPv6 pool, a unique local /48 derived from the host)")
	f.StringVar(&spec.Bridge, "bridge", "", "bridge device name, at most 15 characters (default br-<id>)")
	f.BoolVar(&spec.Internal, "internal", false, "no masquerade and no traffic beyond the bridge")
	f.IntVar(&spec.MTU, "mtu", 0, "MTU of the bridge and the sandboxes' interfaces (default 1500)")
	f.StringArrayVar(&spec.DNS, "dns", nil, "DNS server for names the network's resolver does not know (repeatable; default: the host's)")
	f.StringArrayVarP(&opts, "opt", "o", nil, "a driver option of Docker's bridge driver, KEY=VALUE (repeatable, see README)")
	f.BoolVar(&antispoof, "antispoof", true, "each sandbox sends only from its own MAC and addresses (--antispoof=false: any, e.g. for a sandbox that routes)")
	labels.add(cmd, "")
	ov.flags(cmd)
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

// networkJSON is what `network inspect` and `network ls --format json` print.
type networkJSON struct {
	Name     string   `json:"name"`
	ID       string   `json:"id"`
	Driver   string   `json:"driver"`
	Bridge   string   `json:"bridge"`
	Subnet   string   `json:"subnet"`
	Gateway  string   `json:"gateway"`
	IPv6     bool     `json:"ipv6"`
	Subnet6  string   `json:"subnet6,omitempty"`
	Gateway6 string   `json:"gateway6,omitempty"`
	Internal bool     `json:"internal"`
	MTU      int      `json:"mtu"`
	DNS      []string `json:"dns,omitempty"`
	// Masquerade: traffic leaving the network (not internal) is
	// masqueraded; ICC: its sandboxes may reach each other; AntiSpoof:
	// each sandbox's port forwards only its own MAC and addresses.
	Masquerade      bool              `json:"masquerade"`
	ICC             bool              `json:"icc"`
	AntiSpoof       bool              `json:"antispoof"`
	HostBindingIPv4 string            `json:"host_binding_ipv4"`
	Options         map[string]string `json:"options"`
	Labels          map[string]string `json:"labels"`
	Overlay         *overlayJSON      `json:"overlay,omitempty"` // driver overlay only
	Created         time.Time         `json:"created"`
	Sandboxes       []attachmentJSON  `json:"sandboxes"` // this host's
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
	Address6  string   `json:"address6,omitempty"`
	MAC       string   `json:"mac"`
	HostVeth  string   `json:"host_veth"`
	Aliases   []string `json:"aliases,omitempty"`
}

func toNetworkJSON(n engine.Network, attached []engine.Attachment) networkJSON {
	j := networkJSON{
		Name: n.Name, ID: n.ID, Driver: n.Driver(), Bridge: n.Bridge, Subnet: n.Subnet.String(),
		Gateway: n.Gateway.String(), Internal: n.Internal, MTU: n.MTU, Created: n.Created,
		Masquerade: masquerades(n), ICC: !n.NoICC, AntiSpoof: !n.NoAntiSpoof, HostBindingIPv4: hostBinding(n),
		Options: orEmpty(n.Options), Labels: orEmpty(n.Labels), Sandboxes: []attachmentJSON{}, IPv6: n.IPv6(),
	}
	if n.IPv6() {
		j.Subnet6, j.Gateway6 = n.Subnet6.String(), n.Gateway6.String()
	}
	if o := n.Overlay; o != nil {
		j.Overlay = &overlayJSON{VNI: o.VNI, Device: o.Device, Store: o.Store}
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

func (a *app) networkInspect() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [-f FORMAT] NAME...",
		Short: "Show networks as JSON",
		Example: `  nsnet network inspect br01
  nsnet network inspect -f '{{.Subnet}} {{.Gateway}}' br01
  nsnet network inspect -f '{{range .Sandboxes}}{{.Sandbox}} {{.Address}}{{println}}{{end}}' br01`,
		Args: minArgs(1, "NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			out, err := parseInspectFormat(format)
			if err != nil {
				return err
			}
			return a.withEngine(true, func(e *engine.Engine) error {
				return a.inspectAll(out, args, func(name string) (any, error) {
					d, err := e.InspectNetwork(name)
					if err != nil {
						return nil, err
					}
					return toNetworkJSON(d.Network, d.Attached), nil
				})
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "json (default), or a Go template executed for each network: '{{.Subnet}}' (see README)")
	return cmd
}

// masquerades reports whether traffic leaving n is masqueraded.
func masquerades(n engine.Network) bool { return !n.Internal && !n.NoMasquerade }

// hostBinding is the host address n's ports are published on by default.
func hostBinding(n engine.Network) string {
	if !n.HostBinding.IsValid() {
		return "0.0.0.0"
	}
	return n.HostBinding.String()
}

// orEmpty is m, or an empty map: inspect always shows the object.
func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func (a *app) networkRm() *cobra.Command {
	var store string
	cmd := &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove"},
		Short:   "Remove networks (refused while sandboxes are attached)",
		Example: `  nsnet network rm br01
  nsnet network rm $(nsnet network ls -q --filter dangling=true)`,
		Args: minArgs(1, "NAME"),
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
	noFiles(cmd, "store")
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
