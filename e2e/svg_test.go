package e2e

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/testenv"
)

// nsnetWithoutSVG copies the test's nsnet binary into a directory of its
// own, with no nsnet-svg beside it, and returns its path and an environment
// whose $PATH holds no nsnet-svg either.
func nsnetWithoutSVG(t *testing.T) (bin string, env []string) {
	t.Helper()
	bin = filepath.Join(t.TempDir(), "nsnet")
	src, err := os.Open(testenv.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	var path []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(dir, "nsnet-svg")); err != nil {
			path = append(path, dir)
		}
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "NSNET_ROOT=") {
			env = append(env, kv)
		}
	}
	return bin, append(env, "PATH="+strings.Join(path, string(filepath.ListSeparator)))
}

// assertSaysHowToDrawSVG checks that an nsnet command failed for want of
// nsnet-svg, with an error that says both ways out.
func assertSaysHowToDrawSVG(t *testing.T, what string, out []byte, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s without nsnet-svg succeeded:\n%s", what, out)
		return
	}
	for _, want := range []string{
		"nsnet-svg, which draws the SVG, is neither beside",
		`go build -o "$(dirname "$(command -v nsnet)")/nsnet-svg" ./cmd/nsnet-svg`,
		"nsnet topology --format dot | dot -Tsvg",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("%s without nsnet-svg does not say %q:\n%s", what, want, out)
		}
	}
}
