// Command nsnet-overlay is nsnet with the etcd client linked in: the nsnet
// binary executes it, with the same arguments, for the commands that talk to
// the cluster store of overlay networks (network create --driver overlay,
// network rm --store, agent), so that nsnet itself stays small and quick to
// start. It runs any other nsnet command as nsnet would.
package main

import (
	"os"

	"github.com/nsnet/nsnet/internal/cli"
)

func main() {
	os.Exit(cli.MainWith(os.Args[1:], os.Stdout, os.Stderr, driver{}))
}
