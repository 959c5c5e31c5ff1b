package netns

import (
	"fmt"
	"testing"
)

// TestReceivesOnly reads the mount that /run/netns lies on from mountinfo
// files as the kernel writes them: a slave that is not shared only receives.
func TestReceivesOnly(t *testing.T) {
	const (
		root    = "22 1 254:0 / / rw,relatime %s - ext4 /dev/vda rw\n"
		run     = "30 22 0:25 / /run rw,nosuid %s - tmpfs tmpfs rw\n"
		netnsAt = "40 30 0:25 /netns /run/netns rw,nosuid %s - tmpfs tmpfs rw\n"
		box     = "41 40 0:4 net:[4026532317] /run/netns/box rw %s - nsfs nsfs rw\n"
	)
	for _, tc := range []struct {
		name, info string
		at         string
		only       bool
	}{
		{"the host's: shared", f(root, "shared:1") + f(run, "shared:5") + f(netnsAt, "shared:12") + f(box, "shared:13"), "/run/netns", false},
		{"ip netns exec: slaves", f(root, "master:1") + f(run, "master:5") + f(netnsAt, "master:12"), "/run/netns", true},
		{"private", f(root, "") + f(netnsAt, ""), "/run/netns", false},
		{"shared and slave: sends back too", f(root, "shared:30 master:1") + f(netnsAt, "shared:31 master:12"), "/run/netns", false},
		{"no mount at /run/netns: /run's", f(root, "shared:1") + f(run, "master:5"), "/run", true},
		{"no mount at /run/netns: /", f(root, "master:1"), "/", true},
		{"the topmost of two at one point", f(root, "shared:1") + f(netnsAt, "shared:12") + f(netnsAt, "master:12"), "/run/netns", true},
		{"a sibling with a longer name is not above it", f(root, "shared:1") + "50 22 0:30 / /run/netnsx rw master:9 - tmpfs t rw\n", "/", false},
	} {
		at, only := receivesOnly([]byte(tc.info), "/run/netns")
		if at != tc.at || only != tc.only {
			t.Errorf("%s: receivesOnly = %q, %t; want %q, %t", tc.name, at, only, tc.at, tc.only)
		}
	}
}

// f fills a mountinfo line's optional fields.
func f(line, optional string) string { return fmt.Sprintf(line, optional) }
