// Package demo rebuilds the seed article's walkthrough (a bridge br01, two
// sandboxes ns01 and ns02, ARP across the bridge, forwarding and masquerade,
// then clean-up) inside a throwaway world, printing what the kernel shows at
// each step.
//
// Invariants: the machine's own network namespace is never changed. Every
// nsnet command runs as a child process inside the world's "host" namespace;
// the world and the demo's state directory are removed on every exit path,
// and the demo fails if anything of nsnet is left behind.
package demo

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/netns"
	"github.com/nsnet/nsnet/internal/topology"
	"github.com/nsnet/nsnet/internal/wire"
)

// Names and addresses of the world, from the documentation ranges.
const (
	InetNS   = "nsnet-demo-inet"
	HostNS   = "nsnet-demo-host"
	RouterIP = "203.0.113.1"
	UplinkIP = "203.0.113.2"
	PublicIP = "198.51.100.7"
)

// Sandbox names and addresses as in the seed article.
var sandboxes = []struct{ name, ip string }{{"ns01", "192.168.88.11"}, {"ns02", "192.168.88.12"}}

// demo carries the state of one run.
type demo struct {
	w    io.Writer
	self string // the nsnet binary
	root string // throwaway state directory
	host string // path of the host namespace
	inet string // path of the internet namespace
	svg  string // where to write the topology's SVG, if anywhere
}

// Run performs the walkthrough. self is the nsnet binary to run commands
// with; svg, unless empty, is a file to write the drawing of the demo's
// network to (nsnet topology --format svg, which needs nsnet-svg beside self
// or in $PATH: without it Run fails before it starts).
func Run(w io.Writer, self, svg string) (err error) {
	d := &demo{w: w, self: self, host: netns.Path(HostNS), inet: netns.Path(InetNS), svg: svg}
	if err := d.checkSVGRenderer(); err != nil {
		return err
	}
	if err := d.checkFree(); err != nil {
		return err
	}
	if d.root, err = os.MkdirTemp("", "nsnet-demo-"); err != nil {
		return fmt.Errorf("demo: make state directory: %w", err)
	}
	defer func() { err = errors.Join(err, d.destroyWorld()) }()
	if err := d.buildWorld(); err != nil {
		return err
	}
	steps := []func() error{d.createBridge, d.createSandboxes, d.showBridge, d.showSandboxes, d.ping, d.showNeighbours, d.reachInternet, d.publish, d.explain, d.cleanUp}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	d.say("\nDone: every step of the article, and nothing left behind.")
	return nil
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.w, format+"\n", args...) }

func (d *demo) heading(n int, title, seed string) {
	d.say("\n== %d. %s\n   (%s)", n, title, seed)
}

// checkSVGRenderer fails, before the world is built, when --svg asks for a
// drawing nsnet cannot make: nsnet-svg is missing.
func (d *demo) checkSVGRenderer() error {
	if d.svg == "" {
		return nil
	}
	if _, err := topology.FindSVGRenderer(d.self); err != nil {
		return fmt.Errorf("demo --svg %s: %w", d.svg, err)
	}
	return nil
}

func (d *demo) checkFree() error {
	for _, name := range []string{InetNS, HostNS, sandboxes[0].name, sandboxes[1].name} {
		if netns.Exists(netns.Path(name)) {
			return fmt.Errorf("demo: a network namespace named %s already exists; remove it (ip netns del %s) and run the demo again", name, name)
		}
	}
	return nil
}

// buildWorld makes the "internet" and "host" namespaces joined by a wire.
func (d *demo) buildWorld() error {
	d.say("nsnet demo: the article's bridge network, rebuilt for real in a throwaway world.")
	d.say("World: namespace %s plays the internet (router %s, a server at %s);", InetNS, RouterIP, PublicIP)
	d.say("       namespace %s plays the host (eth0 %s/24, default via %s). Your own network is not touched.", HostNS, UplinkIP, RouterIP)
	for _, p := range []string{d.inet, d.host} {
		if err := netns.Create(p, nil); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	err := wire.Wire(
		wire.End{NetNS: d.inet, Name: "wan0", Addrs: []netip.Prefix{netip.MustParsePrefix(RouterIP + "/24")},
			LoAddrs: []netip.Prefix{netip.MustParsePrefix(PublicIP + "/32")}},
		wire.End{NetNS: d.host, Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix(UplinkIP + "/24")},
			Gateway: netip.MustParseAddr(RouterIP)},
	)
	if err != nil {
		return fmt.Errorf("demo: build world: %w", err)
	}
	return nil
}

// destroyWorld removes everything the demo may have made, keeping going.
func (d *demo) destroyWorld() error {
	var errs []error
	for _, sb := range sandboxes {
		if netns.Exists(netns.Path(sb.name)) {
			d.nsnetQuiet("sandbox", "rm", sb.name)
		}
	}
	for _, p := range []string{netns.Path(sandboxes[0].name), netns.Path(sandboxes[1].name), d.host, d.inet} {
		if err := netns.Remove(p); err != nil {
			errs = append(errs, err)
		}
	}
	if d.root != "" {
		errs = append(errs, os.RemoveAll(d.root), os.RemoveAll(engine.StateDir("", d.root)))
	}
	return errors.Join(errs...)
}

// nsnet runs an nsnet command inside the host namespace and prints it.
func (d *demo) nsnet(args ...string) (string, error) {
	d.say("$ nsnet %s", strings.Join(args, " "))
	out, err := d.run(args...)
	if out != "" {
		d.say("%s", strings.TrimRight(out, "\n"))
	}
	if err != nil {
		return out, fmt.Errorf("demo: nsnet %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

func (d *demo) nsnetQuiet(args ...string) { d.run(args...) }

func (d *demo) run(args ...string) (string, error) {
	cmd := exec.Command(d.self, append([]string{"--root", d.root}, args...)...)
	var out []byte
	err := netns.Do(d.host, func() error {
		var err error
		out, err = cmd.CombinedOutput()
		return err
	})
	return string(out), err
}

// inHost runs fn with the calling thread in the host namespace.
func (d *demo) inHost(fn func() error) error { return netns.Do(d.host, fn) }

func (d *demo) timeout() time.Duration { return 2 * time.Second }
