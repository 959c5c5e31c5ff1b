package engine

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/netns"
	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/internal/validate"
)

// Process is a process found in a sandbox's namespace.
type Process struct {
	PID  int
	Comm string // the command name, /proc/PID/comm
}

func (p Process) String() string { return fmt.Sprintf("%s (pid %d)", p.Comm, p.PID) }

// maxListed bounds how many processes an error names.
const maxListed = 5

// checkNoProcesses refuses to remove a sandbox whose own namespace still has
// processes in it, as docker rm refuses a running container. Host-mode and
// container:NAME sandboxes only name a namespace that is not theirs, so
// removing them never stops anything: they are not checked.
func (e *Engine) checkNoProcesses(sb *Sandbox) error {
	procs, err := e.processesOf(sb, nil)
	return refuseRunning(sb, procs, err)
}

// processesOf returns the processes in sb's own namespace (none for host
// and container:NAME sandboxes: that namespace is not theirs), from scan if
// it looked at that very namespace, else by looking now.
func (e *Engine) processesOf(sb *Sandbox, scan *procScan) ([]Process, error) {
	if sb.Mode == store.ModeHost || sb.Mode == store.ModeContainer {
		return nil, nil
	}
	if scan != nil && scan.path == sb.NetNS && sameNamespace(sb, scan.id) {
		<-scan.done
		return scan.procs, scan.err
	}
	return e.k.procs.In(sb.NetNS, netnsID(sb))
}

// procScan is a look for the processes in a namespace, started in the
// background: looking at every process of the host takes as long as opening
// the store and reading a record, so RemoveSandbox starts it from the name it
// is given (a sandbox's own namespace is named after it) before it opens the
// store, and processesOf uses it if the sandbox turns out to be that one.
type procScan struct {
	path  string
	id    netns.ID // the namespace path named when the look started
	done  chan struct{}
	procs []Process
	err   error
}

// startProcScan starts a procScan of the namespace that a sandbox named ref
// would have; nil if ref is no sandbox name or no namespace has that name.
func (e *Engine) startProcScan(ref string) *procScan {
	if e.opts.ReadOnly || validate.Name("sandbox", ref) != nil {
		return nil
	}
	path := e.k.ns.Path(ref)
	id, err := e.k.ns.Identify(path)
	if err != nil {
		return nil
	}
	s := &procScan{path: path, id: id, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.procs, s.err = e.k.procs.In(path, id)
	}()
	return s
}

// refuseRunning is the error for removing sb with procs in its namespace
// (or when looking for them failed), nil if there are none.
func refuseRunning(sb *Sandbox, procs []Process, err error) error {
	if err != nil {
		return fmt.Errorf("sandbox %s: look for processes in its namespace: %w; use --force to remove it anyway", sb.Name, err)
	}
	if len(procs) == 0 {
		return nil
	}
	names := make([]string, 0, maxListed+1)
	for i, p := range procs {
		if i == maxListed {
			names = append(names, fmt.Sprintf("and %d more", len(procs)-maxListed))
			break
		}
		names = append(names, p.String())
	}
	return fmt.Errorf("sandbox %s has running processes: %s; stop them, or use --force to remove it anyway (they keep running, cut off from its networks)",
		sb.Name, strings.Join(names, ", "))
}

// processesIn lists the processes (by their main thread, by pid) whose
// network namespace is the one at path, other than this one. A namespace
// that is gone, or that is not want (when want is known; records older than
// namespace IDs know only the inode), has none of the sandbox's.
func processesIn(path string, want netns.ID) ([]Process, error) {
	var ns unix.Stat_t
	if err := unix.Stat(path, &ns); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	now := netns.ID{Dev: ns.Dev, Ino: ns.Ino, Born: ns.Ctim.Nano()}
	if want.Ino != 0 && (now.Ino != want.Ino || (want.Dev != 0 && !want.Same(now))) {
		return nil, nil
	}
	proc, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	defer proc.Close()
	names, err := proc.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	// Namespace files all live on the one nsfs, whose inode numbers are
	// unique among the living: the link's text names the namespace (readlink
	// is cheaper than stat here, and this runs over every process, relative
	// to /proc).
	link := fmt.Sprintf("net:[%d]", ns.Ino)
	out := scanProcesses(proc, names, link, scanWorkers(len(names)))
	slices.SortFunc(out, func(a, b Process) int { return a.PID - b.PID })
	return out, nil
}

// scanChunk is how many processes make it worth reading them on one more
// goroutine: a host with thousands of processes (a busy node) would
// otherwise add a readlink each, one after another, to every removal.
const scanChunk = 256

// scanWorkers is how many goroutines read n processes' namespaces: one per
// scanChunk of them, at most one per P.
func scanWorkers(n int) int {
	return max(1, min(runtime.GOMAXPROCS(0), n/scanChunk))
}

// scanProcesses returns the processes among names (entries of the /proc
// directory open as proc) whose network namespace link reads link, other
// than this one, reading them on workers goroutines.
func scanProcesses(proc *os.File, names []string, link string, workers int) []Process {
	if workers <= 1 {
		return scanPart(proc, names, link)
	}
	parts := make([][]Process, workers)
	per := (len(names) + workers - 1) / workers
	var wg sync.WaitGroup
	for i := range workers {
		part := names[min(i*per, len(names)):min((i+1)*per, len(names))]
		wg.Go(func() { parts[i] = scanPart(proc, part, link) })
	}
	wg.Wait()
	return slices.Concat(parts...)
}

// scanPart is scanProcesses on one goroutine.
func scanPart(proc *os.File, names []string, link string) []Process {
	buf := make([]byte, len(link)+1)
	var out []Process
	self := os.Getpid()
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self {
			continue
		}
		if n, err := unix.Readlinkat(int(proc.Fd()), name+"/ns/net", buf); err != nil || string(buf[:n]) != link {
			continue // gone meanwhile, or elsewhere
		}
		comm, err := os.ReadFile("/proc/" + name + "/comm")
		if err != nil {
			continue // exited meanwhile
		}
		out = append(out, Process{PID: pid, Comm: strings.TrimSpace(string(comm))})
	}
	return out
}
