package main

import (
	"strings"
	"testing"

	"github.com/nsnet/nsnet/engine"
)

func TestOverlayNetworkSpec(t *testing.T) {
	ok := engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16"}
	n, err := overlayNetwork(ok, 42)
	if err != nil || n.Gateway.String() != "10.200.0.1" || n.VNI != 42 || len(n.ID) != 64 || n.MTU != 0 {
		t.Fatalf("overlayNetwork: %+v, %v", n, err)
	}
	full := engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16", Labels: map[string]string{"env": "prod"},
		Options: map[string]string{engine.OptMTU: "1400"}, NoAntiSpoof: true}
	if n, err := overlayNetwork(full, 0); err != nil || n.MTU != 1400 || n.Labels["env"] != "prod" || n.Options[engine.OptMTU] != "1400" || !n.NoAntiSpoof {
		t.Fatalf("overlayNetwork with labels, -o MTU and --antispoof=false: %+v, %v", n, err)
	}
	for _, c := range []struct {
		spec engine.NetworkSpec
		vni  uint32
		err  string
	}{
		{engine.NetworkSpec{Name: "ov"}, 0, "needs --subnet"},
		{engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16", Bridge: "br9"}, 0, "bridge networks only"},
		{engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16", Internal: true}, 0, "bridge networks only"},
		{ok, 1 << 24, "invalid --vni"},
		{engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16", MTU: 40}, 0, "invalid MTU"},
		{engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16", Gateway: "10.201.0.1"}, 0, ""},
		{engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.1/16"}, 0, ""},
		{engine.NetworkSpec{Name: "bad name!", Subnet: "10.200.0.0/16"}, 0, ""},
		{engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16", Options: map[string]string{engine.OptICC: "false"}}, 0, "for bridge networks only"},
		{engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16", IPv6: true}, 0, "IPv4 only"},
		{engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16", Options: map[string]string{"x": "1"}}, 0, "unknown driver option"},
		{engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16", MTU: 1300, Options: map[string]string{engine.OptMTU: "1400"}}, 0, "contradicts --mtu"},
		{engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16", Labels: map[string]string{"": "x"}}, 0, "network ov"},
	} {
		_, err := overlayNetwork(c.spec, c.vni)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%+v %d: %v, want an error saying %q", c.spec, c.vni, err, c.err)
		}
	}
}
