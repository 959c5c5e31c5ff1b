//go:build nsnet_faults

package cli

import "os"

// faultPoint is where a crash test wants this process to kill itself
// (engine.Options.FaultPoint). Only binaries built with -tags nsnet_faults,
// as the tests build them, read it from the environment.
func faultPoint() string { return os.Getenv("NSNET_FAULT") }

// resolvConf is the host's resolver configuration the tests give their
// worlds (engine.Options.ResolvConf), from NSNET_RESOLV_CONF, so that no
// test binary ever forwards to the machine's own resolvers; only binaries
// built with -tags nsnet_faults read it.
func resolvConf() string { return os.Getenv("NSNET_RESOLV_CONF") }
