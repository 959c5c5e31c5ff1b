// Command portsbench is the helper of bench/ports.sh: a TCP server that
// accepts connections and closes them, and a client that times TCP connect().
//
//	portsbench serve ADDR
//	    listen on ADDR (e.g. :80), print "ready", then accept and close every
//	    connection until killed.
//	portsbench connect [-n M] [-warmup W] [-timeout D] [-raw FILE] [-until-eof] HOST:PORT
//	    W untimed connects, then M timed ones, one at a time; print one line
//	    "n=M min_us=.. p50_us=.. p90_us=.. p99_us=.. max_us=.. mean_us=..".
//
// Each connect is a fresh socket: the time is that of connect(2) and the
// poll(2) that waits for it, from the SYN to the SYN-ACK, so it includes the NAT lookup the first
// packet of a connection takes on its way through the host. With -until-eof
// the time runs on until the server's close arrives (the server above closes
// at once), so it covers the whole way to the server even through a proxy,
// whose own listening socket answers the SYN. The socket is then closed
// with SO_LINGER 0 (an RST), so no TIME_WAIT piles up.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		if len(os.Args) != 3 {
			usage()
		}
		err = serve(os.Args[2])
	case "connect":
		err = connect(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "portsbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: portsbench serve ADDR | portsbench connect [-n M] [-warmup W] [-timeout D] [-raw FILE] HOST:PORT")
	os.Exit(2)
}

func serve(addr string) error {
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			continue // e.g. ECONNABORTED: the client's RST came first
		}
		c.Close()
	}
}

func connect(args []string) error {
	fs := flag.NewFlagSet("connect", flag.ExitOnError)
	n := fs.Int("n", 1000, "timed connects")
	warmup := fs.Int("warmup", 100, "untimed connects first")
	timeout := fs.Duration("timeout", 2*time.Second, "give up on one connect after this long")
	raw := fs.String("raw", "", "write every timed connect's microseconds to this file")
	untilEOF := fs.Bool("until-eof", false, "time until the server's close arrives, not only the handshake")
	fs.Parse(args)
	if fs.NArg() != 1 || *n < 1 {
		usage()
	}
	ap, err := netip.ParseAddrPort(fs.Arg(0))
	if err != nil || !ap.Addr().Is4() {
		return fmt.Errorf("want IPv4 HOST:PORT, got %q", fs.Arg(0))
	}
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	samples := make([]float64, 0, *n)
	for i := 0; i < *warmup+*n; i++ {
		d, err := connectOnce(sa, *timeout, *untilEOF)
		if err != nil {
			return fmt.Errorf("connect %d to %s: %w", i+1, ap, err)
		}
		if i >= *warmup {
			samples = append(samples, float64(d.Nanoseconds())/1e3)
		}
	}
	if *raw != "" {
		if err := writeRaw(*raw, samples); err != nil {
			return err
		}
	}
	sum := 0.0
	for _, s := range samples {
		sum += s
	}
	slices.Sort(samples)
	fmt.Printf("n=%d min_us=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f\n",
		len(samples), samples[0], quantile(samples, 0.5), quantile(samples, 0.9), quantile(samples, 0.99),
		samples[len(samples)-1], sum/float64(len(samples)))
	return nil
}

// connectOnce times one connect(2) (and, with untilEOF, the wait for the
// server's close) and closes the socket with an RST. The socket is
// non-blocking and the waits are poll(2)s, which survive the signals the Go
// runtime sends (a blocking connect with a timeout fails with EINTR instead).
func connectOnce(sa *unix.SockaddrInet4, timeout time.Duration, untilEOF bool) (time.Duration, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		return 0, err
	}
	t0 := time.Now()
	err = unix.Connect(fd, sa)
	if err != nil && err != unix.EINPROGRESS {
		return 0, err
	}
	deadline := t0.Add(timeout)
	if err == unix.EINPROGRESS {
		if err := await(fd, unix.POLLOUT, deadline); err != nil {
			return 0, err
		}
	}
	d := time.Since(t0)
	soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return 0, err
	}
	if soerr != 0 {
		return 0, unix.Errno(soerr)
	}
	if untilEOF {
		if err := awaitEOF(fd, deadline); err != nil {
			return 0, err
		}
		d = time.Since(t0)
	}
	return d, nil
}

// await polls fd for events until deadline.
func await(fd int, events int16, deadline time.Time) error {
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return errors.New("no answer within the timeout")
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(pfd, int(left.Milliseconds())+1)
		if err == unix.EINTR || (err == nil && n == 0) {
			continue
		}
		return err
	}
}

// awaitEOF reads fd until the end of the stream (or a reset) arrives.
func awaitEOF(fd int, deadline time.Time) error {
	buf := make([]byte, 512)
	for {
		n, err := unix.Read(fd, buf)
		switch {
		case n == 0 && err == nil, err == unix.ECONNRESET:
			return nil
		case err == unix.EAGAIN:
			if err := await(fd, unix.POLLIN, deadline); err != nil {
				return err
			}
		case err != nil:
			return err
		}
	}
}

// quantile is the nearest-rank q-quantile of sorted s.
func quantile(s []float64, q float64) float64 {
	k := max(1, min(int(math.Ceil(q*float64(len(s)))), len(s)))
	return s[k-1]
}

func writeRaw(path string, samples []float64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, s := range samples {
		fmt.Fprintf(w, "%.1f\n", s)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
