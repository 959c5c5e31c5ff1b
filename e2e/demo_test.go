package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/testenv"
)

// TestDemo runs `nsnet demo --svg FILE` (which builds its own world), with
// nsnet-svg beside nsnet, and checks that it shows each step of the article,
// writes the drawing, and leaves nothing behind.
func TestDemo(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.SVGRenderer(t)
	svgFile := filepath.Join(t.TempDir(), "demo.svg")
	out, err := exec.Command(testenv.Binary(t), "demo", "--svg", svgFile).CombinedOutput()
	if err != nil {
		t.Fatalf("nsnet demo: %v\n%s", err, out)
	}
	svg, err := os.ReadFile(svgFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"br01", "192.168.88.1/24", "ns01", "192.168.88.11/24", "02:42:c0:a8:58:0b",
		"ns02", "192.168.88.12/24", "02:42:c0:a8:58:0c", "ip_forward on", "published 0.0.0.0:8080->80/tcp"} {
		if !svgShows(t, string(svg), o) {
			t.Errorf("the demo's SVG does not show %q", o)
		}
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

// TestDemoWithoutSVGRenderer: with no nsnet-svg beside nsnet or in $PATH,
// `nsnet demo` still runs to the end (it draws the network as text), and
// `nsnet demo --svg FILE` fails before it builds anything, saying how to get
// nsnet-svg, and writes no file.
func TestDemoWithoutSVGRenderer(t *testing.T) {
	testenv.NeedRoot(t)
	bin, env := nsnetWithoutSVG(t)
	svgFile := filepath.Join(t.TempDir(), "demo.svg")
	demo := exec.Command(bin, "demo", "--svg", svgFile)
	demo.Env = env
	out, err := demo.CombinedOutput()
	assertSaysHowToDrawSVG(t, "nsnet demo --svg", out, err)
	if strings.Contains(string(out), "== 1.") {
		t.Errorf("nsnet demo --svg without nsnet-svg started the walkthrough:\n%s", out)
	}
	if _, err := os.Stat(svgFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("nsnet demo --svg without nsnet-svg left %s: %v", svgFile, err)
	}
	demo = exec.Command(bin, "demo")
	demo.Env = env
	out, err = demo.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "published 0.0.0.0:8080->80/tcp") || !strings.Contains(string(out), "nothing left behind") {
		t.Errorf("nsnet demo without nsnet-svg: %v\n%s", err, out)
	}
	for _, n := range testenv.NamespaceNames(t) {
		if strings.HasPrefix(n, "nsnet-demo-") || n == "ns01" || n == "ns02" {
			t.Errorf("demo left namespace %s", n)
		}
	}
}
