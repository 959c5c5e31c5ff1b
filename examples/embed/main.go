// Command embed shows nsnet's engine used as a library by a program outside
// the nsnet module, as a container runtime would: it makes a network and a
// sandbox with a published port, lists them, and removes them again.
//
// Run it as root, in a network namespace of its own so that it changes
// nothing of the machine's network, e.g.:
//
//	ip netns add embed-demo
//	nsenter --net=/run/netns/embed-demo go run . -root /tmp/embed-state
//	ip netns del embed-demo
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/nsnet/nsnet/engine"
)

func main() {
	root := flag.String("root", "/tmp/nsnet-embed", "state root (a directory only root can write)")
	subnet := flag.String("subnet", "10.99.0.0/24", "subnet of the example network")
	name := flag.String("name", "embed", "name of the example network and prefix of its sandbox")
	flag.Parse()
	if err := run(*root, *subnet, *name); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

func run(root, subnet, name string) error {
	e, err := engine.Open(engine.Options{
		Root:         root,
		AddressPools: []engine.AddressPool{}, // this program always gives a subnet
		Warn:         func(msg string) { fmt.Fprintln(os.Stderr, "warning:", msg) },
	})
	if err != nil {
		return err
	}
	defer e.Close()

	n, err := e.CreateNetwork(engine.NetworkSpec{Name: name, Subnet: subnet})
	if err != nil {
		return err
	}
	fmt.Printf("network %s: bridge %s, subnet %s, gateway %s\n", n.Name, n.Bridge, n.Subnet, n.Gateway)

	sb, err := e.CreateSandbox(engine.SandboxSpec{Name: name + "-1", Networks: []string{n.Name}, Publish: []string{"8080:80"}})
	if err != nil {
		return err
	}
	for _, ep := range sb.Endpoints {
		fmt.Printf("sandbox %s (%s mode): %s %s on %s\n", sb.Name, sb.Mode, ep.IfName, ep.Address, ep.Network)
	}
	for _, m := range sb.Ports {
		fmt.Printf("  published %s\n", m)
	}
	if sb.Mode != engine.ModeBridge {
		return fmt.Errorf("sandbox %s has mode %s, want %s", sb.Name, sb.Mode, engine.ModeBridge)
	}

	removed, err := e.RemoveSandbox(sb.Name, false)
	if err != nil {
		return err
	}
	fmt.Printf("removed sandboxes %v\n", removed)
	if err := e.RemoveNetwork(n.Name); err != nil {
		return err
	}
	fmt.Printf("removed network %s\n", n.Name)
	return nil
}
