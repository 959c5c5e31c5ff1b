// Package netlinksafe retries netlink dumps that the kernel reports as
// interrupted (the table changed while it was read: NLM_F_DUMP_INTR), as the
// CNI plugins' pkg/netlinksafe and moby's internal/nlwrap do. The packages
// that wrap vishvananda/netlink read every dump through Retry.
package netlinksafe

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// Retry retries a netlink dump that the kernel reports as interrupted
// (the table changed while it was read; NLM_F_DUMP_INTR), as CNI's
// netlinksafe does, a bounded number of times.
func Retry[T any](dump func() (T, error)) (T, error) {
	var v T
	var err error
	for range Attempts {
		if v, err = dump(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, fmt.Errorf("netlink dump interrupted %d times in a row: %w", Attempts, err)
}

// Attempts is how many times Retry reads a dump before it gives up.
const Attempts = 10
