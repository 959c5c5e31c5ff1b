// overlaybench measures how soon a sandbox made on one host is reachable
// from a sandbox on another host over an overlay network: it runs
// `nsnet sandbox create` on the remote host N times and, from the moment
// each create returns, pings the new sandbox from the local one every few
// milliseconds until it answers. bench/overlay.sh builds the hosts and runs
// it; see bench/README.md.
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/nsnet/nsnet/internal/probe"
)

func main() {
	bin := flag.String("nsnet", "nsnet", "the nsnet binary")
	host := flag.String("host", "", "the remote host's network namespace (path)")
	root := flag.String("root", "", "the remote host's state root")
	from := flag.String("from", "", "the local sandbox's namespace (path) to ping from")
	network := flag.String("network", "", "the overlay network")
	prefix := flag.String("prefix", "ob", "name prefix of the sandboxes made")
	base := flag.String("base", "10.200.1.10", "the first address given (--ip), then the next ones")
	n := flag.Int("n", 50, "sandboxes to make")
	flag.Parse()
	ip := netip.MustParseAddr(*base)
	var waits []time.Duration
	first := 0
	for i := range *n {
		name := fmt.Sprintf("%s-lat%d", *prefix, i)
		if out, err := nsnet(*bin, *host, *root, "sandbox", "create", "--network", *network, "--ip", ip.String(), name); err != nil {
			fail("create %s: %v: %s", name, err, out)
		}
		start := time.Now()
		tries := 0
		for {
			tries++
			if _, err := probe.Ping(*from, ip, 5*time.Millisecond); err == nil {
				break
			}
			if time.Since(start) > 5*time.Second {
				fail("%s (%s) not reachable 5 s after its create returned", name, ip)
			}
		}
		waits = append(waits, time.Since(start))
		if tries == 1 {
			first++
		}
		if out, err := nsnet(*bin, *host, *root, "sandbox", "rm", name); err != nil {
			fail("rm %s: %v: %s", name, err, out)
		}
		ip = ip.Next()
	}
	slices.Sort(waits)
	q := func(p float64) float64 { return float64(waits[int(p*float64(len(waits)-1))].Microseconds()) / 1000 }
	fmt.Printf("n=%d reachable at the first ping: %d/%d; time from create's return to the first reply (ms): p50 %.2f p90 %.2f p99 %.2f max %.2f\n",
		len(waits), first, len(waits), q(0.5), q(0.9), q(0.99), q(1))
}

func nsnet(bin, host, root string, args ...string) ([]byte, error) {
	argv := append([]string{"--net=" + host, "--", bin, "--root", root}, args...)
	return exec.Command("nsenter", argv...).CombinedOutput()
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "overlaybench: "+format+"\n", args...)
	os.Exit(1)
}
