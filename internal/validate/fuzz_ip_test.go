package validate

import "testing"

// FuzzIPv4: IPv4 never panics, and what it accepts is IPv4 and prints back
// to an address it accepts again.
func FuzzIPv4(f *testing.F) {
	for _, s := range []string{"192.168.88.11", "0.0.0.0", "::1", "1.2.3", "010.1.1.1", "1.2.3.4%eth0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := IPv4(s)
		if err != nil {
			return
		}
		if !a.Is4() {
			t.Fatalf("IPv4(%q) = %v, not IPv4", s, a)
		}
		b, err := IPv4(a.String())
		if err != nil || b != a {
			t.Fatalf("IPv4(%q) = %v does not round-trip: %v %v", s, a, b, err)
		}
	})
}
