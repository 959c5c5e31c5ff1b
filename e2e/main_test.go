// Package e2e holds nsnet's privileged end-to-end tests. Each test builds its
// own throwaway world (internal/testenv), runs the nsnet binary inside the
// world's "host" namespace, checks the result with independent tools (ip -j,
// nft -j, ping, TCP), and ends by asserting nothing of nsnet is left.
package e2e

import (
	"os"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/testenv"
)

// roleEnv makes the test binary play another program when a test starts it:
// "sleep" (a process that only looks like something, by its command line) or
// "embed" (a program embedding the engine, see TestResidentsAreReaped) or
// "daemon" (one that keeps an engine open, see
// TestEmbeddedEngineAndCLISideBySide).
const roleEnv = "NSNET_E2E_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "sleep":
		time.Sleep(time.Hour)
		os.Exit(0)
	case "embed":
		os.Exit(embedMain())
	case "daemon":
		os.Exit(daemonMain())
	}
	code := m.Run()
	testenv.RemoveBinary()
	testenv.RemoveOrphanStates()
	os.Exit(code)
}
