package engine

import (
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/netns"
)

// TestProcessesIn finds a child process in the namespace it shares with the
// test (only reading /proc), and never the test process itself.
func TestProcessesIn(t *testing.T) {
	kid := sleepers(t, 1)[0]
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
		if p.PID == kid {
			found = p.Comm == "sleep"
		}
	}
	if !found {
		t.Errorf("processesIn did not find sleep (pid %d) in %v", kid, procs)
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

// TestScanProcessesInParts checks that reading /proc on several goroutines
// finds what one goroutine finds: the test's children in its namespace.
func TestScanProcessesInParts(t *testing.T) {
	kids := sleepers(t, 40)
	proc, names, link := procNames(t)
	want := scanProcesses(proc, names, link, 1)
	for _, pid := range kids {
		if !slices.ContainsFunc(want, func(p Process) bool { return p.PID == pid }) {
			t.Fatalf("one goroutine did not find child %d among %v", pid, want)
		}
	}
	for _, workers := range []int{2, 3, 7, len(names) + 1} {
		got := scanProcesses(proc, names, link, workers)
		// Processes not the test's may come and go between the scans: look for the children.
		for _, pid := range kids {
			if !slices.ContainsFunc(got, func(p Process) bool { return p.PID == pid }) {
				t.Errorf("%d goroutines did not find child %d among %v", workers, pid, got)
			}
		}
	}
	if n := scanWorkers(10); n != 1 {
		t.Errorf("scanWorkers(10) = %d; want 1", n)
	}
	if n := scanWorkers(1 << 20); n != runtime.GOMAXPROCS(0) {
		t.Errorf("scanWorkers(1<<20) = %d; want GOMAXPROCS, %d", n, runtime.GOMAXPROCS(0))
	}
}

// BenchmarkProcessesIn looks for the processes of a namespace that has none
// (as for every removal that goes ahead) on a host with 2,000 more processes
// than it had (a busy node): one readlink per process, on one goroutine as
// before and on scanWorkers of them, in one run:
//
//	go test -run XXX -bench ProcessesIn ./engine/
func BenchmarkProcessesIn(b *testing.B) {
	sleepers(b, 2000)
	proc, names, _ := procNames(b)
	const link = "net:[1]" // no namespace's
	for _, c := range []struct {
		name    string
		workers int
	}{{"one goroutine", 1}, {"scanWorkers", scanWorkers(len(names))}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				scanProcesses(proc, names, link, c.workers)
			}
			b.ReportMetric(float64(len(names)), "procs")
			b.ReportMetric(float64(c.workers), "goroutines")
		})
	}
}

// sleepers starts n sleep processes, ended when tb is done, and returns
// their pids once each has exec'd sleep.
func sleepers(tb testing.TB, n int) []int {
	tb.Helper()
	var pids []int
	for range n {
		cmd := exec.Command("sleep", "1000")
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		pids = append(pids, cmd.Process.Pid)
	}
	for _, pid := range pids {
		for i := 0; i < 500; i++ {
			if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); strings.TrimSpace(string(comm)) == "sleep" {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return pids
}

// procNames opens /proc and returns it, its entries, and the link text of
// this process's network namespace.
func procNames(tb testing.TB) (*os.File, []string, string) {
	tb.Helper()
	proc, err := os.Open("/proc")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { proc.Close() })
	names, err := proc.Readdirnames(-1)
	if err != nil {
		tb.Fatal(err)
	}
	link, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		tb.Fatal(err)
	}
	return proc, names, link
}
