package holder

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Main runs a holder whose control socket is fd 3. It returns when told to
// stop.
func Main() error {
	RaiseFileLimit(1 << 16) // sockets arrive later too; without room, recvmsg drops them
	ctl, err := net.FileListener(os.NewFile(3, "control"))
	if err != nil {
		return fmt.Errorf("port holder: control socket: %w", err)
	}
	held := map[string]*os.File{}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	signal.Ignore(syscall.SIGHUP)
	go func() {
		<-stop
		ctl.Close()
	}()
	for {
		c, err := ctl.Accept()
		if err != nil {
			return nil // closed on SIGTERM
		}
		serve(c.(*net.UnixConn), held)
	}
}

// serve handles one control request.
func serve(c *net.UnixConn, held map[string]*os.File) {
	defer c.Close()
	buf := make([]byte, 1<<20)
	oob := make([]byte, syscall.CmsgSpace(4*4096))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return
	}
	fds := receivedFds(oob[:oobn])
	var req request
	line, _ := bufio.NewReader(strings.NewReader(string(buf[:n]))).ReadString('\n')
	if err := json.Unmarshal([]byte(line), &req); err != nil {
		fmt.Fprintf(c, "bad request: %v\n", err)
		return
	}
	switch req.Op {
	case "hold":
		if len(fds) != len(req.Keys) {
			fmt.Fprintf(c, "got %d sockets for %d keys\n", len(fds), len(req.Keys))
			return
		}
		for i, k := range req.Keys {
			if old := held[k]; old != nil {
				old.Close()
			}
			held[k] = os.NewFile(uintptr(fds[i]), k)
		}
	case "release":
		for _, k := range req.Keys {
			if f := held[k]; f != nil {
				f.Close()
				delete(held, k)
			}
		}
	default:
		fmt.Fprintf(c, "unknown op %q\n", req.Op)
		return
	}
	fmt.Fprintln(c, "ok")
}

func receivedFds(oob []byte) []int {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if rights, err := syscall.ParseUnixRights(&m); err == nil {
			fds = append(fds, rights...)
		}
	}
	return fds
}
