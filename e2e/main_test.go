// Package e2e holds nsnet's privileged end-to-end tests. Each test builds its
// own throwaway world (internal/testenv), runs the nsnet binary inside the
// world's "host" namespace, checks the result with independent tools (ip -j,
// nft -j, ping, TCP), and ends by asserting nothing of nsnet is left.
package e2e

import (
	"os"
	"testing"

	"github.com/nsnet/nsnet/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveBinary()
	os.Exit(code)
}
