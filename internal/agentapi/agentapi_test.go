package agentapi

import (
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/types"
)

var ov = &types.Network{Name: "ov", Overlay: &types.Overlay{VNI: 1, Store: []string{"http://192.0.2.2:2379", "http://192.0.2.3:2379"}}}

// TestNoAgent: without an agent a reservation is refused with what to do.
func TestNoAgent(t *testing.T) {
	_, err := Client{Root: t.TempDir()}.Reserve(ov, "s1", netip.Addr{})
	if err == nil || !strings.Contains(err.Error(), "nsnet agent --store etcd://192.0.2.2:2379,192.0.2.3:2379") {
		t.Fatalf("no agent: %v", err)
	}
}

// TestRoundTrip: a request reaches the socket as sent, and the answer, or
// its error, comes back.
func TestRoundTrip(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "overlay"), 0o700)
	ln, err := net.Listen("unix", Socket(root))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan Request, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var r Request
			json.NewDecoder(c).Decode(&r)
			got <- r
			resp := Response{IP: netip.MustParseAddr("10.200.0.9")}
			if r.Op == OpRelease {
				resp = Response{Error: "the cluster store (etcd) is unreachable"}
			}
			json.NewEncoder(c).Encode(resp)
			c.Close()
		}
	}()
	c := Client{Root: root}
	ip, err := c.Reserve(ov, "s1", netip.Addr{})
	if r := <-got; err != nil || ip.String() != "10.200.0.9" || r != (Request{Op: OpReserve, Network: "ov", Sandbox: "s1"}) {
		t.Fatalf("reserve: %v, %v; the agent got %+v", ip, err, r)
	}
	err = c.Release(ov, "s1", ip)
	if r := <-got; err == nil || !strings.Contains(err.Error(), "unreachable") || r.Op != OpRelease || r.IP != ip {
		t.Fatalf("release: %v; the agent got %+v", err, r)
	}
}
