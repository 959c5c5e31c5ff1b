// Command nsnet is Docker-style container networking without a daemon. Run
// with CNI_COMMAND set, it is a CNI plugin (internal/cni).
package main

import (
	"os"

	"github.com/nsnet/nsnet/internal/cli"
	"github.com/nsnet/nsnet/internal/cni"
)

func main() {
	if os.Getenv("CNI_COMMAND") != "" {
		os.Exit(cni.Main())
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
