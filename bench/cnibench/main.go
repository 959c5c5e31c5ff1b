// Command cnibench is the helper of bench/cni.sh: it times CNI ADD and DEL
// through libcni, the library container runtimes use, for several network
// lists side by side, interleaved.
//
//	cnibench -n N -reps R -path DIRS -cache DIR -netns PREFIX NAME=CONFLIST...
//
// Run it in the network namespace that plays the host (nsenter --net): the
// plugins libcni starts run there. The containers' namespaces
// /run/netns/PREFIX1 .. PREFIXN exist beforehand (the runtime's job, not
// timed) and are reused by every list: DEL leaves them as ADD found them.
// Each rep runs every list once, in an order that rotates from rep to rep:
// one untimed ADD and DEL (the first ADD may make a bridge or a network),
// then N ADDs, one container after the other, then their N DELs, each timed
// from the call to its return (the plugins' processes included). Every ADD
// asks for a published port (hostPort 20000+i to containerPort 80): a list
// whose plugins do not declare the portMappings capability never sees it.
//
// It prints, per list, the percentiles of ADD, DEL and ADD+DEL (the two of
// one container) in milliseconds over all reps.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
)

type tool struct {
	name           string
	list           *libcni.NetworkConfigList
	add, del, both []time.Duration
}

func main() {
	n := flag.Int("n", 50, "containers per run")
	reps := flag.Int("reps", 3, "runs per list")
	path := flag.String("path", "/usr/lib/cni", "plugin directories, colon-separated")
	cache := flag.String("cache", "", "libcni's result cache directory")
	prefix := flag.String("netns", "cnib-c", "the containers' namespaces are /run/netns/PREFIX1..N")
	flag.Parse()
	tools, err := load(flag.Args())
	if err != nil || *cache == "" {
		fmt.Fprintf(os.Stderr, "cnibench: %v (usage: cnibench -n N -reps R -path DIRS -cache DIR -netns PREFIX NAME=CONFLIST...)\n", err)
		os.Exit(2)
	}
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
	c := libcni.NewCNIConfigWithCacheDir(strings.Split(*path, ":"), *cache, exec)
	for rep := range *reps {
		for k := range tools {
			t := &tools[(rep+k)%len(tools)]
			if err := t.run(c, *n, *prefix); err != nil {
				fmt.Fprintf(os.Stderr, "cnibench: %s: %v\n", t.name, err)
				os.Exit(1)
			}
		}
	}
	fmt.Printf("%-14s %6s  %-28s  %-28s  %-28s\n", "list", "n", "ADD p50/p90/p99 ms", "DEL p50/p90/p99 ms", "ADD+DEL p50/p90/p99 ms")
	for _, t := range tools {
		fmt.Printf("%-14s %6d  %-28s  %-28s  %-28s\n", t.name, len(t.add), pcts(t.add), pcts(t.del), pcts(t.both))
	}
}

// load reads the NAME=CONFLIST arguments.
func load(args []string) ([]tool, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("no lists given")
	}
	var out []tool
	for _, a := range args {
		name, file, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not NAME=CONFLIST", a)
		}
		l, err := libcni.ConfListFromFile(file)
		if err != nil {
			return nil, err
		}
		out = append(out, tool{name: name, list: l})
	}
	return out, nil
}

// rt is container i's runtime config, with its published port.
func rt(prefix string, i int) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: containerID(i), NetNS: fmt.Sprintf("/run/netns/%s%d", prefix, i), IfName: "eth0",
		CapabilityArgs: map[string]any{"portMappings": []map[string]any{{"hostPort": 20000 + i, "containerPort": 80, "protocol": "tcp"}}},
	}
}

// containerID is container i's ID: 64 hex digits, as Podman's and
// containerd's are.
func containerID(i int) string {
	sum := sha256.Sum256([]byte(fmt.Sprint("cnibench", i)))
	return hex.EncodeToString(sum[:])
}

// run times n ADDs, then their n DELs, after an untimed ADD and DEL.
func (t *tool) run(c *libcni.CNIConfig, n int, prefix string) error {
	ctx := context.Background()
	if _, err := c.AddNetworkList(ctx, t.list, rt(prefix, 1)); err != nil {
		return fmt.Errorf("warm-up ADD: %w", err)
	}
	if err := c.DelNetworkList(ctx, t.list, rt(prefix, 1)); err != nil {
		return fmt.Errorf("warm-up DEL: %w", err)
	}
	adds := make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		if _, err := c.AddNetworkList(ctx, t.list, rt(prefix, i+1)); err != nil {
			return fmt.Errorf("ADD %d: %w", i+1, err)
		}
		adds[i] = time.Since(start)
	}
	for i := range n {
		start := time.Now()
		if err := c.DelNetworkList(ctx, t.list, rt(prefix, i+1)); err != nil {
			return fmt.Errorf("DEL %d: %w", i+1, err)
		}
		d := time.Since(start)
		t.add, t.del, t.both = append(t.add, adds[i]), append(t.del, d), append(t.both, adds[i]+d)
	}
	return nil
}

// pcts formats the 50th, 90th and 99th percentiles in milliseconds.
func pcts(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) float64 {
		return float64(s[min(len(s)-1, int(p*float64(len(s))))].Microseconds()) / 1000
	}
	return fmt.Sprintf("%.2f / %.2f / %.2f", at(0.50), at(0.90), at(0.99))
}
