// Command nsnet is Docker-style container networking without a daemon.
package main

import (
	"os"

	"github.com/nsnet/nsnet/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
