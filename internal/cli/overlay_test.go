package cli

import (
	"strings"
	"testing"
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
