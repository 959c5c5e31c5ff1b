// Package layering holds tests of how nsnet's packages may import each
// other and the kernel libraries.
package layering

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/nsnet/nsnet/"

// imports maps each package of the module (by path relative to the module
// root) to what its non-test files import. bench/ holds standalone programs
// (the floors nsnet is measured against) and is left out.
func imports(t *testing.T) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("../..", path)
		if d.IsDir() && rel != "." && (strings.HasPrefix(d.Name(), ".") || rel == "bench" || rel == "examples") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg := filepath.Dir(rel)
		if out[pkg] == nil {
			out[pkg] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			out[pkg][strings.TrimPrefix(p, module)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out["engine"]) == 0 {
		t.Fatal("found no imports of the engine: the walk missed the module")
	}
	return out
}

// TestKernelLibrariesOnlyInTheirWrappers keeps vishvananda/netlink in the
// small packages that wrap it (links, conntrack, the demo's views and
// wires, and the dump retry they share) and google/nftables in
// internal/firewall: the rest of nsnet reaches the kernel through them.
func TestKernelLibrariesOnlyInTheirWrappers(t *testing.T) {
	wrappers := map[string][]string{
		"github.com/vishvananda/netlink": {"internal/link", "internal/conntrack", "internal/netview", "internal/wire", "internal/netlinksafe"},
		"github.com/google/nftables":     {"internal/firewall"},
	}
	for pkg, imps := range imports(t) {
		for imp := range imps {
			for lib, allowed := range wrappers {
				if (imp == lib || strings.HasPrefix(imp, lib+"/")) && !slices.Contains(allowed, pkg) {
					t.Errorf("%s imports %s, which only %v may import", pkg, imp, allowed)
				}
			}
		}
	}
}

// TestImportsPointOneWay keeps the command line and the CNI plugin above the
// engine and the engine above the packages it uses: none of those imports
// the engine or the command line (internal/demo drives the command line, as a
// user would).
func TestImportsPointOneWay(t *testing.T) {
	for pkg, imps := range imports(t) {
		below := strings.HasPrefix(pkg, "internal/") && pkg != "internal/cli" && pkg != "internal/demo" && pkg != "internal/cni"
		if (below && (imps["engine"] || imps["internal/cli"])) || (pkg == "engine" && imps["internal/cli"]) {
			t.Errorf("%s imports a package above it: %v", pkg, imps)
		}
	}
}

// TestNsnetLeavesOutGraphviz keeps github.com/goccy/go-graphviz and the
// WebAssembly runtime it runs Graphviz on (github.com/tetratelabs/wazero) out
// of the nsnet binary, directly or through any package: the library compiles
// Graphviz when the process starts, which every nsnet command would pay
// (about 28 ms, and a cache written to /tmp). Only cmd/nsnet-svg links it.
func TestNsnetLeavesOutGraphviz(t *testing.T) {
	assertLeftOut(t, []string{"github.com/goccy/go-graphviz", "github.com/tetratelabs/wazero"}, "cmd/nsnet-svg")
}

// TestNsnetLinksNoEtcdClient keeps the etcd client (and gRPC) out of the
// nsnet binary, directly or through any package: it more than doubles the
// binary and the start of every command. Only cmd/nsnet-overlay, which nsnet
// executes for the commands that talk to etcd, links it.
func TestNsnetLinksNoEtcdClient(t *testing.T) {
	assertLeftOut(t, []string{"go.etcd.io/etcd/client/v3", "google.golang.org/grpc"}, "cmd/nsnet-overlay")
}

// assertLeftOut checks that cmd/nsnet (with and without the fault tags)
// links none of the banned libraries or their subpackages, and that keeper,
// the binary they belong in, links the first: else the check sees nothing.
func assertLeftOut(t *testing.T, banned []string, keeper string) {
	t.Helper()
	for _, tags := range []string{"", "nsnet_faults"} {
		linked := deps(t, module+"cmd/nsnet", tags)
		for _, lib := range banned {
			if slices.ContainsFunc(linked, func(d string) bool { return d == lib || strings.HasPrefix(d, lib+"/") }) {
				t.Errorf("cmd/nsnet (tags %q) links %s: keep it in %s", tags, lib, keeper)
			}
		}
	}
	if !slices.Contains(deps(t, module+keeper, ""), banned[0]) {
		t.Errorf("%s does not link %s: the check above sees nothing", keeper, banned[0])
	}
}

// deps lists every package pkg links, transitively (go list -deps).
func deps(t *testing.T, pkg, tags string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-tags", tags, "-f", "{{.ImportPath}}", pkg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr.String())
	}
	return strings.Fields(string(out))
}
