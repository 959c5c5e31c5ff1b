package link

import (
	"testing"

	"github.com/nsnet/nsnet/internal/testenv"
)

// TestMark reads a link's alias and device group as ip sets them, and tells
// a link that does not exist from an error.
func TestMark(t *testing.T) {
	w := testenv.New(t)
	for _, args := range [][]string{
		{"link", "add", "d-marked", "type", "bridge"},
		{"link", "set", "d-marked", "alias", "nsnet:abc sandbox s network n", "group", "1852009332"},
		{"link", "add", "d-plain", "type", "bridge"},
	} {
		if out, err := testenv.RunIn(w.Host, "ip", args...); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	err := testenv.InNS(w.HostPath(), func() error {
		h, err := OpenHost()
		if err != nil {
			return err
		}
		defer h.Close()
		for _, tc := range []struct {
			name, alias string
			group       uint32
			ok          bool
		}{
			{"d-marked", "nsnet:abc sandbox s network n", 1852009332, true},
			{"d-plain", "", 0, true},
			{"d-none", "", 0, false},
		} {
			alias, group, ok, err := h.Mark(tc.name)
			if err != nil || alias != tc.alias || group != tc.group || ok != tc.ok {
				t.Errorf("Mark(%s) = %q, %d, %v, %v; want %q, %d, %v, nil", tc.name, alias, group, ok, err, tc.alias, tc.group, tc.ok)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
