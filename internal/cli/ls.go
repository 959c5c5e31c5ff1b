package cli

// network ls, sandbox ls and port ls, with Docker's -q, --no-trunc, --format
// and --filter.

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsnet/nsnet/engine"
)

// listFlags are the flags every ls command has.
type listFlags struct {
	quiet, noTrunc bool
	format         string
	filters        []string
}

func (lf *listFlags) add(cmd *cobra.Command, quiet string) {
	f := cmd.Flags()
	f.BoolVarP(&lf.quiet, "quiet", "q", false, quiet)
	f.BoolVar(&lf.noTrunc, "no-trunc", false, "do not truncate IDs")
	f.StringVar(&lf.format, "format", "", "table (default), json, or a Go template: '{{.Name}}', 'table {{.Name}}\\t{{.ID}}' (see README)")
	f.StringArrayVarP(&lf.filters, "filter", "f", nil, "select what is listed, as KEY=VALUE (repeatable, see README)")
}

// parse checks the flags before anything is read: the format and filters.
func (lf *listFlags) parse(a *app) (*outputFormat, engine.Filters, error) {
	out, err := parseFormat(lf.format)
	if err != nil {
		return nil, nil, err
	}
	filters, err := parseFilters(lf.filters)
	if err != nil {
		return nil, nil, err
	}
	if lf.quiet && lf.format != "" {
		fmt.Fprintln(a.stderr, "Warning: ignoring --format, because --quiet is given too")
	}
	return out, filters, nil
}

// id is an ID as ls shows it: its first 12 digits unless --no-trunc.
func (lf *listFlags) id(id string) string {
	if lf.noTrunc {
		return id
	}
	return shortID(id)
}

// createdAt formats a creation time as Docker's CreatedAt.
func createdAt(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 -0700 MST") }

func (a *app) networkLs() *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:     "ls [-q] [--no-trunc] [--format FORMAT] [-f KEY=VALUE]...",
		Aliases: []string{"list"},
		Short:   "List networks",
		Example: `  nsnet network ls
  nsnet network ls -q --filter dangling=true
  nsnet network ls --filter label=env=prod --format 'table {{.Name}}\t{{.Subnet}}'
  nsnet network ls --format '{{json .}}'`,
		Args: exactArgs(0, ""),
		RunE: func(_ *cobra.Command, _ []string) error {
			out, filters, err := lf.parse(a)
			if err != nil {
				return err
			}
			return a.withEngine(true, func(e *engine.Engine) error {
				nets, err := e.ListNetworks(filters)
				if err != nil {
					return err
				}
				return a.printNetworks(&lf, out, nets)
			})
		},
	}
	lf.add(cmd, "print only the networks' IDs, one a line")
	return cmd
}

func (a *app) printNetworks(lf *listFlags, out *outputFormat, nets []engine.NetworkDetail) error {
	switch {
	case lf.quiet:
		for _, n := range nets {
			fmt.Fprintln(a.stdout, lf.id(n.ID))
		}
		return nil
	case out.kind == formatJSON:
		js := []networkJSON{}
		for _, n := range nets {
			js = append(js, toNetworkJSON(n.Network, n.Attached))
		}
		return writeJSON(a.stdout, js)
	case out.kind == formatTemplate:
		rows := make([]any, len(nets))
		for i, n := range nets {
			rows[i] = newNetworkRow(lf, n)
		}
		return out.execute(a.stdout, networkHeaders, rows)
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(w, "NAME\tID\tBRIDGE\tSUBNET\tGATEWAY\tINTERNAL\tMTU")
	for _, n := range nets {
		subnet, gw := n.Subnet.String(), n.Gateway.String()
		if n.IPv6() {
			subnet, gw = subnet+","+n.Subnet6.String(), gw+","+n.Gateway6.String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%t\t%d\n", n.Name, lf.id(n.ID), n.Bridge, subnet, gw, n.Internal, n.MTU)
	}
	return w.Flush()
}

// networkRow is what a network ls template sees: Docker's placeholders, then
// nsnet's own.
type networkRow struct {
	ID, Name, Driver, Scope string
	IPv6, Internal          bool
	Labels, CreatedAt       string
	Bridge, Subnet, Gateway string
	Subnet6, Gateway6       string
	MTU, Sandboxes          int
	Masquerade, ICC         bool
	HostBindingIPv4         string
	labels                  map[string]string
}

var networkHeaders = headerRow{
	"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6", "Internal": "INTERNAL",
	"Labels": "LABELS", "CreatedAt": "CREATED AT", "Bridge": "BRIDGE", "Subnet": "SUBNET", "Gateway": "GATEWAY",
	"Subnet6": "SUBNET6", "Gateway6": "GATEWAY6",
	"MTU": "MTU", "Sandboxes": "SANDBOXES", "Masquerade": "MASQUERADE", "ICC": "ICC", "HostBindingIPv4": "HOST BINDING IPV4",
}

func newNetworkRow(lf *listFlags, d engine.NetworkDetail) networkRow {
	n := d.Network
	var subnet6, gateway6 string
	if n.IPv6() {
		subnet6, gateway6 = n.Subnet6.String(), n.Gateway6.String()
	}
	return networkRow{
		ID: lf.id(n.ID), Name: n.Name, Driver: n.Driver(), Scope: n.Scope(), IPv6: n.IPv6(), Internal: n.Internal,
		Subnet6: subnet6, Gateway6: gateway6,
		Labels: labelList(n.Labels), CreatedAt: createdAt(n.Created), labels: n.Labels,
		Bridge: n.Bridge, Subnet: n.Subnet.String(), Gateway: n.Gateway.String(), MTU: n.MTU, Sandboxes: len(d.Attached),
		Masquerade: masquerades(n), ICC: !n.NoICC, HostBindingIPv4: hostBinding(n),
	}
}

// Label is the value of a label ("" if the network has none of that key).
func (r networkRow) Label(key string) string { return r.labels[key] }

func (a *app) sandboxLs() *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:     "ls [-q] [--no-trunc] [--format FORMAT] [-f KEY=VALUE]...",
		Aliases: []string{"list"},
		Short:   "List sandboxes",
		Example: `  nsnet sandbox ls
  nsnet sandbox ls -q --filter network=web
  nsnet sandbox ls --filter publish=80 --format 'table {{.Name}}\t{{.Ports}}'
  nsnet sandbox ls --filter label=team --format '{{.Name}} {{.Label "team"}}'`,
		Args: exactArgs(0, ""),
		RunE: func(_ *cobra.Command, _ []string) error {
			out, filters, err := lf.parse(a)
			if err != nil {
				return err
			}
			return a.withEngine(true, func(e *engine.Engine) error {
				sbs, err := e.ListSandboxes(filters)
				if err != nil {
					return err
				}
				return a.printSandboxes(e, &lf, out, sbs)
			})
		},
	}
	lf.add(cmd, "print only the sandboxes' IDs, one a line")
	return cmd
}

func (a *app) printSandboxes(e *engine.Engine, lf *listFlags, out *outputFormat, sbs []engine.Sandbox) error {
	switch {
	case lf.quiet:
		for _, s := range sbs {
			fmt.Fprintln(a.stdout, lf.id(s.ID))
		}
		return nil
	case out.kind == formatJSON:
		js := []sandboxJSON{}
		for _, s := range sbs {
			js = append(js, toSandboxJSON(e, s))
		}
		return writeJSON(a.stdout, js)
	case out.kind == formatTemplate:
		rows := make([]any, len(sbs))
		for i, s := range sbs {
			rows[i] = newSandboxRow(lf, s)
		}
		return out.execute(a.stdout, sandboxHeaders, rows)
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(w, "NAME\tID\tMODE\tNETWORKS\tADDRESSES\tNETNS")
	for _, s := range sbs {
		r := newSandboxRow(lf, s)
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, r.ID, r.Mode, orDash(r.Networks), orDash(r.Addresses), s.NetNS)
	}
	return w.Flush()
}

// sandboxRow is what a sandbox ls template sees: Docker's placeholders
// (Names is Name), then nsnet's own.
type sandboxRow struct {
	ID, Name, Names, Mode string
	Networks, Addresses   string
	Ports, NetNS          string
	Labels, CreatedAt     string
	labels                map[string]string
}

var sandboxHeaders = headerRow{
	"ID": "SANDBOX ID", "Name": "NAME", "Names": "NAMES", "Mode": "MODE", "Networks": "NETWORKS",
	"Addresses": "ADDRESSES", "Ports": "PORTS", "NetNS": "NETNS", "Labels": "LABELS", "CreatedAt": "CREATED AT",
}

func newSandboxRow(lf *listFlags, s engine.Sandbox) sandboxRow {
	var nets, addrs, ports []string
	for _, ep := range s.Endpoints {
		nets = append(nets, ep.Network)
		addrs = append(addrs, ep.Address.String())
		if ep.Address6.IsValid() {
			addrs = append(addrs, ep.Address6.String())
		}
	}
	for _, m := range s.Ports {
		ports = append(ports, fmt.Sprintf("%s->%d/%s", m.HostAddr(), m.CtrPort, m.Proto))
	}
	mode := s.Mode
	if s.Container != "" {
		mode += ":" + s.Container
	}
	return sandboxRow{
		ID: lf.id(s.ID), Name: s.Name, Names: s.Name, Mode: mode, NetNS: s.NetNS,
		Networks: strings.Join(nets, ","), Addresses: strings.Join(addrs, ","), Ports: strings.Join(ports, ", "),
		Labels: labelList(s.Labels), CreatedAt: createdAt(s.Created), labels: s.Labels,
	}
}

// Label is the value of a label ("" if the sandbox has none of that key).
func (r sandboxRow) Label(key string) string { return r.labels[key] }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) portLs() *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:     "ls [-q] [--no-trunc] [--format FORMAT] [-f KEY=VALUE]... [NAME]",
		Aliases: []string{"list"},
		Short:   "List published ports, of one sandbox or of all",
		Example: `  nsnet port ls
  nsnet port ls web
  nsnet port ls -q web | xargs nsnet port rm web     # -q: each mapping as -p and port rm take it
  nsnet port ls --filter publish=80/tcp --format '{{.Sandbox}} {{.HostIP}}:{{.HostPort}}'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			out, filters, err := lf.parse(a)
			if err != nil {
				return err
			}
			return a.withEngine(true, func(e *engine.Engine) error {
				sbs, err := portSandboxes(e, filters, args)
				if err != nil {
					return err
				}
				return a.printPorts(e, &lf, out, sbs)
			})
		},
	}
	lf.add(cmd, "print only each mapping, as -p and port rm take it (HOST_IP:HOST_PORT:CONTAINER_PORT/PROTO), one a line")
	return cmd
}

// portSandboxes are the sandboxes whose ports port ls lists: those the
// filters select, and only the named one if a name is given.
func portSandboxes(e *engine.Engine, filters engine.Filters, args []string) ([]engine.Sandbox, error) {
	var only string
	if len(args) == 1 {
		sb, err := e.InspectSandbox(args[0])
		if err != nil {
			return nil, err
		}
		only = sb.Name
	}
	sbs, err := e.ListSandboxes(filters)
	if err != nil || only == "" {
		return sbs, err
	}
	for _, s := range sbs {
		if s.Name == only {
			return []engine.Sandbox{s}, nil
		}
	}
	return nil, nil
}

func (a *app) printPorts(e *engine.Engine, lf *listFlags, out *outputFormat, sbs []engine.Sandbox) error {
	var rows []portRow
	for _, s := range sbs {
		for _, m := range s.Ports {
			rows = append(rows, newPortRow(lf, s, m))
		}
	}
	switch {
	case lf.quiet:
		for _, r := range rows {
			fmt.Fprintln(a.stdout, r.Spec)
		}
		return nil
	case out.kind == formatJSON:
		js := []portListJSON{}
		for _, r := range rows {
			js = append(js, portListJSON{Sandbox: r.Sandbox, ID: r.id, portJSON: r.json})
		}
		return writeJSON(a.stdout, js)
	case out.kind == formatTemplate:
		anys := make([]any, len(rows))
		for i, r := range rows {
			anys[i] = r
		}
		return out.execute(a.stdout, portHeaders, anys)
	}
	return portTable(a.stdout, rows)
}

func portTable(out io.Writer, rows []portRow) error {
	w := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(w, "SANDBOX\tCONTAINER PORT\tHOST")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%d/%s\t%s\n", r.Sandbox, r.ContainerPort, r.Proto, r.hostAddr)
	}
	return w.Flush()
}

// portListJSON is one mapping in port ls --format json: the sandbox, its
// ID, and the mapping as sandbox inspect shows it.
type portListJSON struct {
	Sandbox string `json:"sandbox"`
	ID      string `json:"id"`
	portJSON
}

// portRow is what a port ls template sees.
type portRow struct {
	Sandbox, ID, Proto, HostIP string
	HostPort, ContainerPort    uint16
	Mapping, Spec              string
	Labels                     string
	labels                     map[string]string
	id                         string
	hostAddr                   string // HostIP:HostPort, an IPv6 address in brackets
	json                       portJSON
}

var portHeaders = headerRow{
	"Sandbox": "SANDBOX", "ID": "SANDBOX ID", "Proto": "PROTO", "HostIP": "HOST IP", "HostPort": "HOST PORT",
	"ContainerPort": "CONTAINER PORT", "Mapping": "MAPPING", "Spec": "SPEC", "Labels": "LABELS",
}

func newPortRow(lf *listFlags, s engine.Sandbox, m engine.Mapping) portRow {
	return portRow{
		Sandbox: s.Name, ID: lf.id(s.ID), Proto: m.Proto, HostIP: m.HostIPString(), HostPort: m.HostPort, ContainerPort: m.CtrPort,
		Mapping: m.String(), Spec: portSpec(m),
		Labels: labelList(s.Labels), labels: s.Labels, id: s.ID, hostAddr: m.HostAddr(),
		json: portJSON{Proto: m.Proto, HostIP: m.HostIPString(), HostPort: m.HostPort, ContainerPort: m.CtrPort},
	}
}

// Label is the value of one of the sandbox's labels.
func (r portRow) Label(key string) string { return r.labels[key] }

// portSpec is m as -p and port rm take it: HOST_IP:HOST_PORT:CONTAINER_PORT/PROTO,
// an IPv6 host address in brackets.
func portSpec(m engine.Mapping) string {
	return fmt.Sprintf("%s:%d/%s", m.HostAddr(), m.CtrPort, m.Proto)
}
