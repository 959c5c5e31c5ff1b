package engine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nsnet/nsnet/internal/resolvconf"
)

// TestRemoveEtcTakesInterruptedWrites checks that removing a sandbox's files
// takes the temporary files a killed write of this root's left there (whole,
// cut short, or empty) with them, and leaves anyone else's, and the
// directory they are in.
func TestRemoveEtcTakesInterruptedWrites(t *testing.T) {
	_, e, _ := apiEngine(t, nil)
	header := resolvconf.Header(e.owner.ID, "s1")
	for _, c := range []struct {
		name, content string
		gone          bool
	}{
		{"whole", header + "nameserver 192.0.2.53\n", true},
		{"cut in the header", header[:10], true},
		{"empty", "", true},
		{"another root's", resolvconf.Header("0123abcd", "s1"), false},
		{"someone's", "nameserver 198.51.100.1\n", false},
	} {
		dir := e.etcDir("s1")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, hostsFile+tempSuffix)
		if err := os.WriteFile(tmp, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := e.removeEtc("s1"); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, err := os.Stat(dir)
		if gone := os.IsNotExist(err); gone != c.gone {
			t.Errorf("%s: the directory is gone: %t, want %t", c.name, gone, c.gone)
		}
		os.RemoveAll(dir)
	}
}
