package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/testenv"
	"golang.org/x/sys/unix"
)

// A cluster is a world of hosts on one underlay: the world's internet
// namespace holds the underlay bridge ul0 (192.0.2.0/24), each host
// namespace has eth1 on it (192.0.2.11, .12, ...) and its own state root,
// and etcd runs in a namespace of its own at 192.0.2.2. hosts[0] is the
// world's own host (with its uplink); the others are namespaces of the same
// world, so the world's cleanup deletes them too.
type cluster struct {
	t       *testing.T
	w       *testenv.World
	hosts   []*testenv.World
	etcdNS  string
	etcdDir string
	etcd    *exec.Cmd
	agents  []*exec.Cmd
	logs    []string
	ttl     string
	clean   []testenv.Snapshot // each host as built, before any agent ran
	dead    []string           // namespaces of hosts killed (kill)
}

const (
	etcdIP    = "192.0.2.2"
	storeURL  = "etcd://" + etcdIP + ":2379"
	underlay  = "192.0.2.0/24"
	agentTTL  = "2s"
	agentWait = 20 * time.Second
)

func underlayIP(i int) string { return fmt.Sprintf("192.0.2.%d", 11+i) }

// newCluster builds n hosts and etcd, and starts etcd and every agent.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	if _, err := exec.LookPath("etcd"); err != nil {
		t.Fatalf("etcd is not installed (apt-get install etcd-server; .ci/run installs it): %v", err)
	}
	w := testenv.New(t)
	c := &cluster{t: t, w: w, etcdNS: w.Name("etcd"), etcdDir: t.TempDir(), ttl: agentTTL}
	bin := testenv.Binary(t)
	w.Bin = bin
	c.mustIP("-n", w.Inet, "link", "add", "ul0", "type", "bridge")
	c.mustIP("-n", w.Inet, "link", "set", "ul0", "up")
	for i := range n {
		h := w
		if i > 0 {
			h = &testenv.World{Prefix: w.Prefix, Host: w.Name(fmt.Sprintf("h%d", i)), Inet: w.Inet, Root: t.TempDir(), ResolvConf: w.ResolvConf, Bin: bin}
			c.mustIP("netns", "add", h.Host)
			c.mustIP("-n", h.Host, "link", "set", "lo", "up")
		}
		c.plug(h.Host, fmt.Sprintf("u%d", i), underlayIP(i))
		c.hosts = append(c.hosts, h)
	}
	c.mustIP("netns", "add", c.etcdNS)
	c.mustIP("-n", c.etcdNS, "link", "set", "lo", "up")
	c.plug(c.etcdNS, "ue", etcdIP)
	for _, h := range c.hosts {
		c.clean = append(c.clean, h.Snapshot(t))
	}
	t.Cleanup(c.stop)
	c.startEtcd()
	c.agents = make([]*exec.Cmd, n)
	c.logs = make([]string, n)
	for i := range n {
		c.startAgent(i)
	}
	return c
}

func (c *cluster) mustIP(args ...string) {
	c.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		c.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// plug connects namespace ns to the underlay bridge as eth1 with addr.
func (c *cluster) plug(ns, port, addr string) {
	inet := c.w.Inet
	c.mustIP("-n", inet, "link", "add", port, "type", "veth", "peer", "name", "eth1", "netns", ns)
	c.mustIP("-n", inet, "link", "set", port, "master", "ul0", "up")
	c.mustIP("-n", ns, "addr", "add", addr+"/24", "dev", "eth1")
	c.mustIP("-n", ns, "link", "set", "eth1", "up")
}

func (c *cluster) startEtcd() {
	c.t.Helper()
	url := "http://" + etcdIP
	log, err := os.OpenFile(filepath.Join(c.etcdDir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command("nsenter", "--net="+testenv.NSPath(c.etcdNS), "--", "etcd", "--name", "e2e",
		"--data-dir", filepath.Join(c.etcdDir, "data"), "--listen-client-urls", url+":2379", "--advertise-client-urls", url+":2379",
		"--listen-peer-urls", url+":2380", "--initial-advertise-peer-urls", url+":2380", "--initial-cluster", "e2e="+url+":2380")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start etcd: %v", err)
	}
	c.etcd = cmd
	err = eventually(func() error {
		conn, err := testenv.DialIn(c.etcdNS, etcdIP+":2379", time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	})
	if err != nil {
		c.t.Fatalf("etcd does not answer at %s:2379: %v\n%s", etcdIP, err, c.etcdLog())
	}
}

func (c *cluster) etcdLog() string {
	raw, _ := os.ReadFile(filepath.Join(c.etcdDir, "etcd.log"))
	return tail(string(raw), 3000)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// stopEtcd stops etcd (SIGTERM) and waits for it.
func (c *cluster) stopEtcd() {
	if c.etcd == nil {
		return
	}
	c.etcd.Process.Signal(unix.SIGTERM)
	c.etcd.Wait()
	c.etcd = nil
}

// startAgent starts host i's agent, logging to a file of the test's.
func (c *cluster) startAgent(i int) {
	c.t.Helper()
	h := c.hosts[i]
	c.logs[i] = filepath.Join(c.etcdDir, fmt.Sprintf("agent%d.log", i))
	log, err := os.OpenFile(c.logs[i], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command("nsenter", "--net="+h.HostPath(), "--", h.Bin, "--root", h.Root, "agent", "--store", storeURL,
		"--advertise", underlayIP(i), "--ttl", c.ttl)
	cmd.Env = append(os.Environ(), "NSNET_RESOLV_CONF="+h.ResolvConf)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start agent %d: %v", i, err)
	}
	c.agents[i] = cmd
}

// stopAgent stops host i's agent with sig and waits for it.
func (c *cluster) stopAgent(i int, sig unix.Signal) {
	a := c.agents[i]
	if a == nil {
		return
	}
	a.Process.Signal(sig)
	a.Wait()
	c.agents[i] = nil
}

func (c *cluster) agentLogs() string {
	var b strings.Builder
	for i, f := range c.logs {
		raw, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "--- agent %d:\n%s\n", i, tail(string(raw), 2000))
	}
	return b.String()
}

// stop ends every agent and etcd, and kills what the extra hosts' roots
// left running (their resident processes), failing the test for it.
func (c *cluster) stop() {
	if c.t.Failed() {
		c.t.Logf("agent logs:\n%s\netcd log:\n%s", c.agentLogs(), c.etcdLog())
	}
	for i := range c.agents {
		c.stopAgent(i, unix.SIGTERM)
	}
	c.stopEtcd()
	for _, h := range c.hosts[1:] {
		for _, pid := range processesOfRoot(h.Root) {
			c.t.Errorf("leftover process %d of root %s", pid, h.Root)
			unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// processesOfRoot lists processes whose command line has --root root.
func processesOfRoot(root string) []int {
	var out []int
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(raw), "\x00--root\x00"+root+"\x00") {
			continue
		}
		if pid, err := strconv.Atoi(strings.Split(f, "/")[2]); err == nil && pid != os.Getpid() {
			out = append(out, pid)
		}
	}
	return out
}

// createOverlay makes an overlay network and waits until every running
// agent has made its part.
func (c *cluster) createOverlay(name, subnet string, extra ...string) {
	c.t.Helper()
	args := append([]string{"network", "create", "--driver", "overlay", "--store", storeURL, "--subnet", subnet}, extra...)
	c.hosts[0].MustNsnet(c.t, append(args, name)...)
	for i, h := range c.hosts {
		if c.agents[i] == nil {
			continue
		}
		err := waitFor(agentWait, func() error {
			if r := h.Nsnet("network", "inspect", name); r.Code != 0 {
				return fmt.Errorf("host %d has no part of %s yet: %s", i, name, r.Stderr)
			}
			return nil
		})
		if err != nil {
			c.t.Fatalf("%v\n%s", err, c.agentLogs())
		}
	}
}

// removeOverlay removes an overlay network and waits until every agent
// has removed its part.
func (c *cluster) removeOverlay(name string) {
	c.t.Helper()
	c.hosts[0].MustNsnet(c.t, "network", "rm", "--store", storeURL, name)
	for i, h := range c.hosts {
		if c.agents[i] == nil {
			continue
		}
		err := waitFor(agentWait, func() error {
			if r := h.Nsnet("network", "inspect", name); r.Code == 0 {
				return fmt.Errorf("host %d still has its part of %s", i, name)
			}
			return nil
		})
		if err != nil {
			c.t.Fatalf("%v\n%s", err, c.agentLogs())
		}
	}
}

// sandbox creates sandbox name on host i and returns its overlay address.
func (c *cluster) sandbox(i int, name string, args ...string) string {
	c.t.Helper()
	h := c.hosts[i]
	h.MustNsnet(c.t, append(append([]string{"sandbox", "create"}, args...), name)...)
	sb := inspectSandbox(c.t, h, name)
	for _, ep := range sb.Networks {
		return strings.Split(ep.Address, "/")[0]
	}
	c.t.Fatalf("sandbox %s has no network", name)
	return ""
}

func waitFor(d time.Duration, check func() error) error {
	err := check()
	for deadline := time.Now().Add(d); err != nil && time.Now().Before(deadline); err = check() {
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

// fdb is one entry of `bridge -j fdb show dev DEV`.
type fdb struct {
	MAC   string   `json:"mac"`
	Dst   string   `json:"dst"`
	Flags []string `json:"flags"`
	State string   `json:"state"`
}

// remoteEntries returns, from the kernel of host ns, the VXLAN device dev's
// FDB entries that point at a remote VTEP (MAC -> dst) and its permanent
// neighbours (IP -> MAC).
func remoteEntries(t *testing.T, ns, dev string) (map[string]string, map[string]string) {
	t.Helper()
	out, err := testenv.RunIn(ns, "bridge", "-j", "fdb", "show", "dev", dev)
	if err != nil {
		t.Fatalf("bridge fdb show dev %s in %s: %v", dev, ns, err)
	}
	var entries []fdb
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("decode fdb of %s: %v: %s", dev, err, out)
	}
	macs := map[string]string{}
	for _, e := range entries {
		if e.Dst != "" {
			macs[e.MAC] = e.Dst
		}
	}
	neigh := map[string]string{}
	for _, n := range testenv.Neighbours(t, ns) {
		if n.Dev == dev && slices.Contains(n.State, "PERMANENT") {
			neigh[n.Dst] = n.LLAddr
		}
	}
	return macs, neigh
}

// vxlanDevice returns the VXLAN device of overlay network name on host h.
func vxlanDevice(t *testing.T, h *testenv.World, name string) testenv.Link {
	t.Helper()
	br := inspectNetwork(t, h, name).Bridge
	for _, l := range testenv.Links(t, h.Host) {
		if l.Master == br && l.Kind() == "vxlan" {
			return l
		}
	}
	t.Fatalf("host %s: no VXLAN device on bridge %s of %s", h.Host, br, name)
	return testenv.Link{}
}

func mustPing(t *testing.T, from, to string) {
	t.Helper()
	if err := testenv.Ping(from, to); err != nil {
		t.Fatalf("%s cannot reach %s: %v", from, to, err)
	}
}

func mustNotPing(t *testing.T, from, to string) {
	t.Helper()
	if err := testenv.Ping(from, to); err == nil {
		t.Fatalf("%s reaches %s, which it must not", from, to)
	}
}
