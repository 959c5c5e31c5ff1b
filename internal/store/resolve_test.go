package store

import (
	"errors"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	s, _ := openTest(t)
	ids := map[string]string{
		"web":          "3f12aa00000000000000000000000000",
		"db":           "3f9b0000000000000000000000000000",
		"cache":        "7c00000000000000000000000000000a",
		"7c":           "aa000000000000000000000000000000", // a name that is another's ID prefix
		"3f12aa000000": "bb000000000000000000000000000000",
	}
	mustUpdate(t, s, func(tx *Tx) error {
		for name, id := range ids {
			if err := tx.PutSandbox(&Sandbox{Name: name, ID: id, Mode: ModeNone}); err != nil {
				return err
			}
			if err := tx.PutNetwork(&Network{Name: name, ID: id}); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tt := range []struct {
		ref, want string
		err       error
	}{
		{ref: "web", want: "web"},
		{ref: "3f12aa000000", want: "3f12aa000000"},            // an exact name wins over an ID prefix
		{ref: "3f12aa00000000000000000000000000", want: "web"}, // an exact ID
		{ref: "3f12", want: "web"},                             // a unique prefix
		{ref: "3F9", want: "db"},                               // hex in capitals
		{ref: "7c", want: "7c"},                                // the name, not cache's prefix
		{ref: "7c0", want: "cache"},
		{ref: "7c00000000000000000000000000000a", want: "cache"},
		{ref: "3f", err: ErrAmbiguous},
		{ref: "f", err: ErrNotFound},
		{ref: "nope", err: ErrNotFound},
		{ref: "", err: ErrNotFound},
		{ref: "3f12aa00000000000000000000000000ff", err: ErrNotFound}, // longer than any ID
	} {
		mustView(t, s, func(tx *Tx) error {
			for kind, resolve := range map[string]func(string) (string, error){"sandbox": tx.SandboxName, "network": tx.NetworkName} {
				got, err := resolve(tt.ref)
				if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
					t.Errorf("%s %q: got %q, %v; want %q, %v", kind, tt.ref, got, err, tt.want, tt.err)
				}
			}
			return nil
		})
	}
	mustView(t, s, func(tx *Tx) error {
		_, err := tx.SandboxName("3f")
		var amb *AmbiguousError
		if !errors.As(err, &amb) || len(amb.Candidates) != 2 || !strings.Contains(err.Error(), "db (3f9b00000000...)") ||
			!strings.Contains(err.Error(), "web (3f12aa000000...)") {
			t.Errorf("ambiguous prefix: %v; want both candidates named", err)
		}
		return nil
	})
}
