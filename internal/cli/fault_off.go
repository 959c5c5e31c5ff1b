//go:build !nsnet_faults

package cli

// faultPoint is empty in a release binary: fault injection exists only in
// binaries built with -tags nsnet_faults.
func faultPoint() string { return "" }

// resolvConf is empty in a release binary: the engine reads the host's
// /etc/resolv.conf.
func resolvConf() string { return "" }
