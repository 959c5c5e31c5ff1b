package cni

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/validate"
)

// netConf is the plugin's object in the conflist, as the runtime passes it
// on stdin (with name, cniVersion, prevResult and runtimeConfig added).
type netConf struct {
	types.PluginConf
	Network  string `json:"network"`  // the nsnet network (default: the CNI network's name)
	Subnet   string `json:"subnet"`   // for the network made on the first ADD
	Gateway  string `json:"gateway"`  // idem
	Internal bool   `json:"internal"` // idem
	// IPv6, Subnet6 and Gateway6 make that network dual-stack (as
	// network create --ipv6 does): the result then gives the container's
	// IPv6 address and an IPv6 default route too.
	IPv6     bool   `json:"ipv6"`
	Subnet6  string `json:"subnet6"`
	Gateway6 string `json:"gateway6"`
	MTU      int    `json:"mtu"` // idem
	// AntiSpoof, false, lets the network's containers send from any MAC
	// and address (default true: each only from its own); for the network
	// made on the first ADD, and checked against an existing one.
	AntiSpoof *bool  `json:"antispoof,omitempty"`
	Root      string `json:"root"` // the state root (default /var/lib/nsnet)
	// Resolver, true, gives containers the network's resolver (its
	// gateway), which answers their names and aliases, as their nameserver
	// in the result. (Not "dns": libcni reads every plugin's "dns" as CNI's
	// DNS object, whose nameservers, domain, search and options the result
	// carries too.)
	Resolver bool `json:"resolver"`
	// ResolvConf is the host's resolver configuration, whose nameservers
	// answer what the network's resolver does not know (default
	// /etc/resolv.conf).
	ResolvConf string `json:"resolvConf"`
	// LockTimeout bounds the wait for other nsnet commands ("30s" by
	// default; "0s": do not wait). A store still busy then fails with code
	// 11, try again later.
	LockTimeout string `json:"lockTimeout"`

	RuntimeConfig runtimeConfig `json:"runtimeConfig"`
	lockTimeout   time.Duration // LockTimeout, parsed (engine.NoWait for "0s")
}

// runtimeConfig holds the capabilities' arguments: published ports, static
// addresses, a MAC and names, as the CNI conventions define them.
type runtimeConfig struct {
	PortMappings []portMapping       `json:"portMappings"`
	IPs          []string            `json:"ips"`
	MAC          string              `json:"mac"`
	Aliases      map[string][]string `json:"aliases"`
}

// portMapping is one entry of the portMappings capability.
type portMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP"`
}

// supported are the spec versions the plugin speaks: 1.1.0, and the 0.4.0
// and 1.0.0 that Podman 4 writes and reads.
var supported = version.PluginSupports("0.4.0", "1.0.0", "1.1.0")

// parseConf decodes stdin and fills in defaults; an error is code 7
// (invalid network config) or 6 (cannot decode).
func parseConf(stdin []byte) (*netConf, error) {
	c := &netConf{}
	if err := json.Unmarshal(stdin, c); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "decode the network config", err.Error())
	}
	if c.Network == "" {
		c.Network = c.Name
	}
	if c.Root == "" {
		c.Root = engine.DefaultRoot
	}
	c.lockTimeout = engine.DefaultLockTimeout
	if c.LockTimeout != "" {
		d, err := time.ParseDuration(c.LockTimeout)
		if err != nil || d < 0 {
			return nil, invalidConf("lockTimeout %q is not a duration such as 30s", c.LockTimeout)
		}
		c.lockTimeout = d
		if d == 0 {
			c.lockTimeout = engine.NoWait
		}
	}
	if err := version.ParsePrevResult(&c.PluginConf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "decode prevResult", err.Error())
	}
	return c, nil
}

func invalidConf(format string, args ...any) error {
	return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf(format, args...), "")
}

// networkSpec is the network the config describes, as it is made on the
// first ADD.
func (c *netConf) networkSpec() engine.NetworkSpec {
	return engine.NetworkSpec{Name: c.Network, Subnet: c.Subnet, Gateway: c.Gateway, Internal: c.Internal, MTU: c.MTU,
		IPv6: c.IPv6, Subnet6: c.Subnet6, Gateway6: c.Gateway6, NoAntiSpoof: c.AntiSpoof != nil && !*c.AntiSpoof}
}

// request is what one ADD asks for: the container's static address and MAC,
// its published ports and its names.
type request struct {
	ip      string
	mac     string
	publish []string
	aliases []string
}

// parseRequest reads the capabilities' arguments (runtimeConfig) and the
// CNI_ARGS IP= and MAC= that Podman passes for --ip and --mac-address (the
// capabilities win), and K8S_POD_NAME (Podman's container name, Kubernetes'
// pod name), which becomes one more alias.
func parseRequest(c *netConf, args *skel.CmdArgs) (request, error) {
	var r request
	kv := cniArgs(args.Args)
	r.ip, r.mac = kv["IP"], kv["MAC"]
	if len(c.RuntimeConfig.IPs) > 1 {
		return r, invalidConf("nsnet gives a container one IPv4 address per network, not %q", c.RuntimeConfig.IPs)
	}
	if len(c.RuntimeConfig.IPs) == 1 {
		r.ip = c.RuntimeConfig.IPs[0]
	}
	if r.ip != "" {
		ip, err := staticIP(r.ip)
		if err != nil {
			return r, err
		}
		r.ip = ip
	}
	if c.RuntimeConfig.MAC != "" {
		r.mac = c.RuntimeConfig.MAC
	}
	for _, pm := range c.RuntimeConfig.PortMappings {
		spec, err := pm.spec()
		if err != nil {
			return r, err
		}
		r.publish = append(r.publish, spec)
	}
	r.aliases = c.RuntimeConfig.Aliases[c.Name]
	if name := kv["K8S_POD_NAME"]; name != "" && validate.Name("alias", name) == nil {
		r.aliases = append(r.aliases, name) // Podman's container name, Kubernetes' pod name
	}
	return r, nil
}

// staticIP takes an address as CNI_ARGS (10.1.2.3) or the ips capability
// (10.1.2.3/24) gives it.
func staticIP(s string) (string, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		s = p.Addr().String()
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return "", invalidConf("static address %q: nsnet gives containers IPv4 addresses, such as 10.88.0.5 or 10.88.0.5/24", s)
	}
	return a.String(), nil
}

// cniArgs parses CNI_ARGS, "K=V;K2=V2".
func cniArgs(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// spec is the mapping as nsnet's -p syntax: [HOST_IP:]HOST_PORT:CTR_PORT/PROTO.
func (pm portMapping) spec() (string, error) {
	proto := strings.ToLower(pm.Protocol)
	if proto == "" {
		proto = "tcp"
	}
	if pm.HostPort < 1 || pm.HostPort > 65535 || pm.ContainerPort < 1 || pm.ContainerPort > 65535 {
		return "", invalidConf("port mapping %d:%d/%s: both ports must be between 1 and 65535", pm.HostPort, pm.ContainerPort, proto)
	}
	spec := fmt.Sprintf("%d:%d/%s", pm.HostPort, pm.ContainerPort, proto)
	if pm.HostIP == "" {
		return spec, nil
	}
	ip, err := netip.ParseAddr(pm.HostIP)
	switch {
	case err != nil || !ip.Is4():
		return "", invalidConf("port mapping %s on host address %q: nsnet publishes on IPv4 host addresses only", spec, pm.HostIP)
	case ip.IsUnspecified():
		return spec, nil
	}
	return ip.String() + ":" + spec, nil
}
