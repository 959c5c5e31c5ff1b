package resident

import "testing"

// TestNamespaceSame: Born counts only where both sides know it, so that gc
// keeps agreeing with a resident of an older nsnet, which drops it.
func TestNamespaceSame(t *testing.T) {
	ns := Namespace{Path: "/run/netns/a", Dev: 4, Ino: 4026532317, Born: 1764561744000000000}
	for _, tc := range []struct {
		name  string
		other Namespace
		same  bool
	}{
		{"itself", ns, true},
		{"without Born (an older resident)", Namespace{Path: ns.Path, Dev: ns.Dev, Ino: ns.Ino}, true},
		{"made later under the same number", Namespace{Path: ns.Path, Dev: ns.Dev, Ino: ns.Ino, Born: ns.Born + 4000000}, false},
		{"another number", Namespace{Path: ns.Path, Dev: ns.Dev, Ino: ns.Ino + 1, Born: ns.Born}, false},
		{"another path", Namespace{Path: "/run/netns/b", Dev: ns.Dev, Ino: ns.Ino, Born: ns.Born}, false},
	} {
		if got := ns.Same(tc.other); got != tc.same || tc.other.Same(ns) != tc.same {
			t.Errorf("%s: Same = %t, want %t", tc.name, got, tc.same)
		}
	}
}
