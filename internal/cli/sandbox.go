package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/types"
)

func (a *app) sandboxCommand() *cobra.Command {
	cmd := group("sandbox", "Manage sandboxes (named network namespaces)")
	cmd.Example = "  nsnet sandbox create ns01\n  nsnet sandbox ls"
	cmd.AddCommand(a.sandboxCreate(), a.sandboxLs(), a.sandboxInspect(), a.sandboxRm(), a.sandboxPrune())
	return cmd
}

// sandboxFlags are the flags shared by `sandbox create` and `run`.
func sandboxFlags(cmd *cobra.Command, spec *engine.SandboxSpec, labels *labelFlags) {
	labels.add(cmd, "l")
	f := cmd.Flags()
	f.StringArrayVar(&spec.Networks, "network", nil,
		"bridge (default), a network name (repeatable), host, none, or container:NAME")
	f.StringVar(&spec.IP, "ip", "", "static IPv4 address on the first network")
	f.StringVar(&spec.IP6, "ip6", "", "static IPv6 address on the first network (a dual-stack one)")
	f.StringArrayVarP(&spec.Publish, "publish", "p", nil,
		"publish a port: [HOST_IP:][HOST_PORT[-END]:]CTR_PORT[-END][/tcp|/udp|/sctp] (repeatable)")
	f.StringArrayVar(&spec.Aliases, "alias", nil, "another name of the sandbox on its networks, for their resolvers (repeatable)")
	f.StringArrayVar(&spec.DNS, "dns", nil, "DNS server for names the resolver does not know (repeatable; default: the network's)")
}

func (a *app) sandboxCreate() *cobra.Command {
	var spec engine.SandboxSpec
	var labels labelFlags
	cmd := &cobra.Command{
		Use:   "create [--network MODE]... [--ip IP] [--mac MAC] [--netns PATH] [-p SPEC]... [--label KEY=VALUE]... NAME",
		Short: "Create a sandbox: a named network namespace attached to a network",
		Example: `  nsnet sandbox create --network br01 --ip 192.168.88.11 ns01
  nsnet sandbox create -p 8080:80 --label app=web web
  nsnet sandbox create --network none --netns /proc/1234/ns/net adopted`,
		Args: exactArgs(1, "NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			spec.Name = args[0]
			var err error
			if spec.Labels, err = labels.parse(); err != nil {
				return err
			}
			return a.withEngine(false, func(e *engine.Engine) error {
				sb, err := e.CreateSandbox(spec)
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, sb.Name)
				for _, m := range sb.Ports {
					fmt.Fprintln(a.stdout, m)
				}
				return nil
			})
		},
	}
	sandboxFlags(cmd, &spec, &labels)
	cmd.Flags().StringVar(&spec.MAC, "mac", "", "static MAC address on the first network (default: derived from the IP)")
	cmd.Flags().StringVar(&spec.NetNS, "netns", "", "adopt this existing network namespace (e.g. /proc/PID/ns/net) instead of creating one")
	return cmd
}

// sandboxJSON is what `sandbox inspect` and `sandbox ls --format json` print.
type sandboxJSON struct {
	Name      string                  `json:"name"`
	ID        string                  `json:"id"`
	Mode      string                  `json:"mode"`
	Container string                  `json:"container,omitempty"`
	NetNS     string                  `json:"netns"`
	OwnsNetNS bool                    `json:"owns_netns"`
	Created   time.Time               `json:"created"`
	Networks  map[string]endpointJSON `json:"networks"`
	Ports     []portJSON              `json:"ports"`
	DNS       []string                `json:"dns,omitempty"`
	Labels    map[string]string       `json:"labels"`
	Resident  *residentJSON           `json:"resident,omitempty"`
	Runtime   *types.Runtime          `json:"runtime,omitempty"` // the container runtime's container that owns it (CNI)
}

// residentJSON is the state root's resident process, as its control socket
// answers; shown when the sandbox needs it (it publishes held ports, or is on
// a user network, whose resolver the resident is).
type residentJSON struct {
	Pid   int  `json:"pid,omitempty"`
	Alive bool `json:"alive"`
}

type portJSON struct {
	Proto         string `json:"proto"`
	HostIP        string `json:"host_ip"`
	HostPort      uint16 `json:"host_port"`
	ContainerPort uint16 `json:"container_port"`
}

type endpointJSON struct {
	Interface string   `json:"interface"`
	Address   string   `json:"address"`
	Address6  string   `json:"address6,omitempty"`
	MAC       string   `json:"mac"`
	Gateway   string   `json:"gateway,omitempty"`
	Gateway6  string   `json:"gateway6,omitempty"`
	HostVeth  string   `json:"host_veth"`
	Aliases   []string `json:"aliases,omitempty"`
}

func toSandboxJSON(e *engine.Engine, s engine.Sandbox) sandboxJSON {
	j := sandboxJSON{
		Name: s.Name, ID: s.ID, Mode: s.Mode, Container: s.Container, NetNS: s.NetNS,
		OwnsNetNS: s.OwnsNetNS, Created: s.Created, Networks: map[string]endpointJSON{}, Ports: []portJSON{}, Runtime: s.Runtime,
		Labels: orEmpty(s.Labels),
	}
	if r := e.ResidentStatus(&s); r.Needed {
		j.Resident = &residentJSON{Pid: r.Pid, Alive: r.Alive}
	}
	for _, a := range s.DNS {
		j.DNS = append(j.DNS, a.String())
	}
	for _, m := range s.Ports {
		j.Ports = append(j.Ports, portJSON{Proto: m.Proto, HostIP: m.HostIPString(), HostPort: m.HostPort, ContainerPort: m.CtrPort})
	}
	for _, ep := range s.Endpoints {
		e := endpointJSON{Interface: ep.IfName, Address: ep.Address.String(), MAC: ep.MAC, HostVeth: ep.HostVeth, Aliases: ep.Aliases}
		if ep.Gateway.IsValid() {
			e.Gateway = ep.Gateway.String()
		}
		if ep.Address6.IsValid() {
			e.Address6 = ep.Address6.String()
		}
		if ep.Gateway6.IsValid() {
			e.Gateway6 = ep.Gateway6.String()
		}
		j.Networks[ep.Network] = e
	}
	return j
}

func (a *app) sandboxInspect() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [-f FORMAT] NAME...",
		Short: "Show sandboxes as JSON",
		Example: `  nsnet sandbox inspect ns01
  nsnet sandbox inspect -f '{{.NetNS}}' ns01
  nsnet sandbox inspect -f '{{range $net, $ep := .Networks}}{{$net}} {{$ep.Address}}{{println}}{{end}}' ns01
  nsnet sandbox inspect -f '{{index .Labels "app"}}' ns01`,
		Args: minArgs(1, "NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			out, err := parseInspectFormat(format)
			if err != nil {
				return err
			}
			return a.withEngine(true, func(e *engine.Engine) error {
				return a.inspectAll(out, args, func(name string) (any, error) {
					s, err := e.InspectSandbox(name)
					if err != nil {
						return nil, err
					}
					return toSandboxJSON(e, *s), nil
				})
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "json (default), or a Go template executed for each sandbox: '{{.NetNS}}' (see README)")
	return cmd
}

func (a *app) sandboxRm() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [--force] NAME...",
		Aliases: []string{"remove"},
		Short:   "Remove sandboxes (refused while processes run in their namespace, others share it, or a container runtime owns it)",
		Example: `  nsnet sandbox rm ns01 ns02
  nsnet sandbox rm --force busy
  nsnet sandbox rm $(nsnet sandbox ls -q --filter label=test)`,
		Args: minArgs(1, "NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.withEngine(false, func(e *engine.Engine) error {
				return a.forEach(args, func(name string) error {
					removed, err := e.RemoveSandbox(name, force)
					for _, s := range removed[:max(len(removed)-1, 0)] {
						fmt.Fprintln(a.stdout, s) // sharers; forEach prints name itself
					}
					return err
				})
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false,
		"remove it even if processes run in its namespace or a container runtime owns it, and remove the sandboxes sharing it too")
	return cmd
}

// splitCommand returns the program and its arguments after the sandbox name.
func splitCommand(cmd *cobra.Command, args []string, skip int) ([]string, error) {
	if len(args) > skip && args[skip] == "--" {
		skip++ // flag parsing stopped at NAME, so "--" is still here
	}
	if len(args) <= skip {
		return nil, fmt.Errorf("%q needs a command to run\nUsage: %s", cmd.CommandPath(), cmd.UseLine())
	}
	if strings.TrimSpace(args[skip]) == "" {
		return nil, fmt.Errorf("the command to run is empty")
	}
	return args[skip:], nil
}
