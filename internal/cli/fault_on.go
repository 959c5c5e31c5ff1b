//go:build nsnet_faults

package cli

import "os"

// faultPoint is where a crash test wants this process to kill itself
// (engine.Options.FaultPoint). Only binaries built with -tags nsnet_faults,
// as the tests build them, read it from the environment.
func faultPoint() string { return os.Getenv("NSNET_FAULT") }
