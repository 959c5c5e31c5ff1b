package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/testenv"
)

// TestDemo runs `nsnet demo` (which builds its own world) and checks that it
// shows each step of the article and leaves nothing behind.
func TestDemo(t *testing.T) {
	testenv.NeedRoot(t)
	out, err := exec.Command(testenv.Binary(t), "demo").CombinedOutput()
	if err != nil {
		t.Fatalf("nsnet demo: %v\n%s", err, out)
	}
	for _, want := range []string{
		"host: br01   bridge  UP   02:42:c0:a8:58:01 [192.168.88.1/24]",
		"bridge br01, 2 ports:",
		"ns01: eth0   veth    UP   02:42:c0:a8:58:0b [192.168.88.11/24]",
		"reply from 192.168.88.12",
		"192.168.88.12   02:42:c0:a8:58:0c eth0",
		"the server answers: \"hello 203.0.113.2\"",
		"ns01's server answers: \"hello 203.0.113.1\"",
		"80/tcp           0.0.0.0:8080",
		"host links now: eth0, lo",
		"present: false",
		"└── network br01 192.168.88.0/24, bridge br01, gateway 192.168.88.1 (masquerade)",
		"published 0.0.0.0:8080->80/tcp",
		"result: the path works",
		"probe verdict: the kernel agrees with the analysis",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q\n%s", want, out)
		}
	}
	for _, n := range testenv.NamespaceNames(t) {
		if strings.HasPrefix(n, "nsnet-demo-") || n == "ns01" || n == "ns02" {
			t.Errorf("demo left namespace %s", n)
		}
	}
}
