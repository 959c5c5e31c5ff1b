package cli

import (
	"strings"
	"testing"

	"github.com/nsnet/nsnet/engine"
)

func TestOverlayFlags(t *testing.T) {
	for _, c := range []struct {
		o       overlayFlags
		overlay bool
		err     string
	}{
		{overlayFlags{driver: "bridge"}, false, ""},
		{overlayFlags{driver: "overlay", store: "etcd://192.0.2.2:2379"}, true, ""},
		{overlayFlags{driver: "overlay"}, true, "needs --store"},
		{overlayFlags{driver: "bridge", store: "etcd://192.0.2.2:2379"}, false, "are for --driver overlay"},
		{overlayFlags{driver: "bridge", vni: 7}, false, "are for --driver overlay"},
		{overlayFlags{driver: "macvlan"}, false, "unknown --driver"},
	} {
		overlay, err := c.o.check()
		if overlay != c.overlay || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%+v: %v, %v; want %v, %q", c.o, overlay, err, c.overlay, c.err)
		}
	}
}

func TestOverlayNetworkSpec(t *testing.T) {
	ok := engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16"}
	n, err := overlayNetwork(ok, overlayFlags{vni: 42})
	if err != nil || n.Gateway.String() != "10.200.0.1" || n.VNI != 42 || len(n.ID) != 64 || n.MTU != 0 {
		t.Fatalf("overlayNetwork: %+v, %v", n, err)
	}
	for _, c := range []struct {
		spec engine.NetworkSpec
		o    overlayFlags
		err  string
	}{
		{engine.NetworkSpec{Name: "ov"}, overlayFlags{}, "needs --subnet"},
		{engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16", Bridge: "br9"}, overlayFlags{}, "bridge networks only"},
		{engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16", Internal: true}, overlayFlags{}, "bridge networks only"},
		{ok, overlayFlags{vni: 1 << 24}, "invalid --vni"},
		{engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16", MTU: 40}, overlayFlags{}, "invalid MTU"},
		{engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16", Gateway: "10.201.0.1"}, overlayFlags{}, ""},
		{engine.NetworkSpec{Name: "ov", Subnet: "10.200.0.1/16"}, overlayFlags{}, ""},
		{engine.NetworkSpec{Name: "bad name!", Subnet: "10.200.0.0/16"}, overlayFlags{}, ""},
	} {
		_, err := overlayNetwork(c.spec, c.o)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%+v %+v: %v, want an error saying %q", c.spec, c.o, err, c.err)
		}
	}
}
