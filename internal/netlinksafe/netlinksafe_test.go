package netlinksafe

import (
	"errors"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestRetry retries interrupted dumps, a bounded number of times, and
// passes other errors and results straight through.
func TestRetry(t *testing.T) {
	calls := 0
	got, err := Retry(func() (int, error) {
		calls++
		if calls < 3 {
			return -1, netlink.ErrDumpInterrupted
		}
		return 7, nil
	})
	if got != 7 || err != nil || calls != 3 {
		t.Errorf("interrupted twice: got %d, %v after %d calls; want 7, nil after 3", got, err, calls)
	}
	calls = 0
	_, err = Retry(func() (int, error) { calls++; return 0, netlink.ErrDumpInterrupted })
	if !errors.Is(err, netlink.ErrDumpInterrupted) || calls != Attempts {
		t.Errorf("always interrupted: %v after %d calls, want ErrDumpInterrupted after %d", err, calls, Attempts)
	}
	calls = 0
	boom := errors.New("boom")
	if _, err = Retry(func() (int, error) { calls++; return 0, boom }); err != boom || calls != 1 {
		t.Errorf("other error: %v after %d calls, want boom after 1", err, calls)
	}
}
