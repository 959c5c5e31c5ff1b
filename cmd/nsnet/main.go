// Command nsnet is Docker-style container networking without a daemon. Run
// as runtimes run CNI plugins (CNI_COMMAND set, no arguments), it is one
// (internal/cni).
package main

import (
	"os"

	"github.com/nsnet/nsnet/internal/cli"
	"github.com/nsnet/nsnet/internal/cni"
)

func main() {
	if len(os.Args) == 1 && os.Getenv("CNI_COMMAND") != "" {
		os.Exit(cni.Main())
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
