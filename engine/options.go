package engine

// Docker's bridge driver options (network create -o KEY=VALUE), mapped onto
// nsnet's own settings of a network.

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/nsnet/nsnet/internal/validate"
)

// The driver options nsnet knows, as Docker's bridge driver names them.
const (
	OptBridgeName  = "com.docker.network.bridge.name"                 // = --bridge
	OptMTU         = "com.docker.network.driver.mtu"                  // = --mtu
	OptMasquerade  = "com.docker.network.bridge.enable_ip_masquerade" // false: routed, no masquerade
	OptICC         = "com.docker.network.bridge.enable_icc"           // false: sandboxes do not reach each other
	OptHostBinding = "com.docker.network.bridge.host_binding_ipv4"    // default host address of published ports
)

// NetworkOptions are the driver options network create accepts.
var NetworkOptions = []string{OptBridgeName, OptMTU, OptMasquerade, OptICC, OptHostBinding}

var limitedBroadcast = netip.MustParseAddr("255.255.255.255")

// applyOptions sets what spec's driver options mean on n (parsed from spec
// already), refusing unknown options, bad values and a value that
// contradicts a flag given too.
func applyOptions(n *Network, spec NetworkSpec) error {
	for _, k := range slices.Sorted(maps.Keys(spec.Options)) {
		if err := applyOption(n, spec, k, spec.Options[k]); err != nil {
			return fmt.Errorf("network %s: %w", spec.Name, err)
		}
	}
	if len(spec.Options) > 0 {
		n.Options = maps.Clone(spec.Options)
	}
	return nil
}

func applyOption(n *Network, spec NetworkSpec, key, val string) error {
	switch key {
	case OptBridgeName:
		if spec.Bridge != "" && spec.Bridge != val {
			return fmt.Errorf("-o %s=%s contradicts --bridge %s: give one of them", key, val, spec.Bridge)
		}
		n.Bridge = val
	case OptMTU:
		mtu, err := strconv.Atoi(val)
		if err != nil {
			return fmt.Errorf("invalid -o %s=%s: give the MTU as a number (68 to 65535)", key, val)
		}
		if spec.MTU != 0 && spec.MTU != mtu {
			return fmt.Errorf("-o %s=%s contradicts --mtu %d: give one of them", key, val, spec.MTU)
		}
		n.MTU = mtu
	case OptMasquerade, OptICC:
		on, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("invalid -o %s=%s: give true or false", key, val)
		}
		if key == OptMasquerade {
			n.NoMasquerade = !on
		} else {
			n.NoICC = !on
		}
	case OptHostBinding:
		ip, err := validate.IPv4(val)
		if err != nil {
			return fmt.Errorf("invalid -o %s: %w", key, err)
		}
		if ip.IsMulticast() || ip == limitedBroadcast {
			return fmt.Errorf("invalid -o %s=%s: give an address of the host's, or 0.0.0.0 for all of them", key, val)
		}
		if !ip.IsUnspecified() {
			n.HostBinding = ip
		}
	default:
		return fmt.Errorf("unknown driver option -o %s: nsnet knows %s", key, strings.Join(NetworkOptions, ", "))
	}
	return nil
}
