package engine

import (
	"github.com/nsnet/nsnet/internal/netns"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestProcessesIn finds a child process in the namespace it shares with the
// test (only reading /proc), and never the test process itself.
func TestProcessesIn(t *testing.T) {
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for i := 0; i < 500; i++ { // until the fork has exec'd sleep
		if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm"); strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Held open, the namespace's file stays the same (see netns.ID).
	self, err := os.Open("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	id, err := netns.IDOf(self)
	if err != nil {
		t.Fatal(err)
	}
	procs, err := processesIn("/proc/self/ns/net", id)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, p := range procs {
		if p.PID == os.Getpid() {
			t.Errorf("processesIn lists the calling process")
		}
		if p.PID == cmd.Process.Pid {
			found = p.Comm == "sleep"
		}
	}
	if !found {
		t.Errorf("processesIn did not find sleep (pid %d) in %v", cmd.Process.Pid, procs)
	}
	if procs, err := processesIn("/proc/self/ns/net", netns.ID{Ino: 1}); err != nil || len(procs) != 0 {
		t.Errorf("a namespace that is not the recorded one: %v, %v; want none", procs, err)
	}
	later := id
	later.Born++
	if procs, err := processesIn("/proc/self/ns/net", later); err != nil || len(procs) != 0 {
		t.Errorf("a namespace made later under the recorded one's number: %v, %v; want none", procs, err)
	}
	if procs, err := processesIn("/nonexistent/ns", netns.ID{}); err != nil || len(procs) != 0 {
		t.Errorf("a namespace that is gone: %v, %v; want none", procs, err)
	}
}
