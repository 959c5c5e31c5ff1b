package validate

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr []string // substrings of the error; nil means valid
	}{
		{"simple", "ns01", nil},
		{"underscore and dot", "my_net.1", nil},
		{"dash inside", "my-net", nil},
		{"single letter", "a", nil},
		{"single digit", "7", nil},
		{"upper case", "Web.Frontend-2", nil},
		{"trailing dash", "net-", nil},
		{"64 chars", strings.Repeat("a", 64), nil},

		{"empty", "", []string{"network name is empty", "1 to 64"}},
		{"65 chars", strings.Repeat("a", 65), []string{strings.Repeat("a", 65), "65 characters", "limit is 64"}},
		{"leading dash", "-net", []string{`"-net"`, "start with a letter or digit"}},
		{"leading dot", ".net", []string{`".net"`, "start with a letter or digit"}},
		{"leading underscore", "_net", []string{`"_net"`, "start with a letter or digit"}},
		{"slash", "a/b", []string{`"a/b"`, `'/'`, "not allowed"}},
		{"space", "a b", []string{`"a b"`, `' '`}},
		{"colon", "a:b", []string{`"a:b"`, `':'`}},
		{"newline", "a\nb", []string{`"a\nb"`, `'\n'`}},
		{"nul", "a\x00b", []string{`"a\x00b"`}},
		{"unicode letter", "caf\u00e9", []string{`"café"`, "not allowed"}},
		{"unicode leading", "\u00e9t\u00e9", []string{`"été"`, "start with a letter or digit"}},
		{"invalid utf-8", "a\xffb", []string{`"a\xffb"`, "not allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Name("network", tt.in)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Name(%q): %v", tt.in, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Name(%q) = nil, want error", tt.in)
			}
			if !strings.Contains(err.Error(), "network") {
				t.Errorf("error %q does not name the kind", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Name(%q) error %q does not contain %q", tt.in, err, w)
				}
			}
		})
	}
}

func TestNameKind(t *testing.T) {
	err := Name("sandbox", "-x")
	if err == nil || !strings.Contains(err.Error(), "sandbox name") {
		t.Fatalf(`Name("sandbox", "-x") = %v, want an error about a sandbox name`, err)
	}
}

// The message should name the character that is not allowed, not the first
// byte of its UTF-8 encoding.
func TestNameReportsWholeRune(t *testing.T) {
	err := Name("network", "caf\u00e9")
	if err == nil {
		t.Fatal("Name(café) = nil, want error")
	}
	if !strings.Contains(err.Error(), `'é'`) {
		t.Errorf("error %q does not name the character 'é'", err)
	}
}

func TestIfName(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr []string
	}{
		{"eth0", "eth0", nil},
		{"veth", "veth1a2b3c4", nil},
		{"15 chars", strings.Repeat("v", 15), nil},
		{"dots and dashes", "br-1.100", nil},
		{"three dots", "...", nil},
		{"all-ish", "all0", nil},

		{"empty", "", []string{"empty"}},
		{"16 chars", strings.Repeat("v", 16), []string{strings.Repeat("v", 16), "16 characters", "at most 15"}},
		{"dot", ".", []string{`"."`}},
		{"dotdot", "..", []string{`".."`}},
		{"slash", "eth/0", []string{`"eth/0"`, `'/'`}},
		{"colon", "eth0:1", []string{`"eth0:1"`, `':'`}},
		{"space", "eth 0", []string{`"eth 0"`, `' '`}},
		{"tab", "eth\t0", []string{`"eth\t0"`, `'\t'`}},
		{"newline", "eth0\n", []string{`"eth0\n"`, `'\n'`}},
		{"nul", "eth\x000", []string{`"eth\x000"`}},
		{"percent template", "eth%d", []string{`"eth%d"`, `'%'`}},
		{"reserved all", "all", []string{`"all"`, "reserved"}},
		{"reserved default", "default", []string{`"default"`, "reserved"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := IfName(tt.in)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("IfName(%q): %v", tt.in, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("IfName(%q) = nil, want error", tt.in)
			}
			if !strings.Contains(err.Error(), "interface name") {
				t.Errorf("error %q does not say it is about an interface name", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("IfName(%q) error %q does not contain %q", tt.in, err, w)
				}
			}
		})
	}
}

// The kernel (net/core/dev.c dev_valid_name) rejects '/', ':' and every byte
// for which its isspace() is true: '\t' '\n' '\v' '\f' '\r' ' ' and 0xa0
// (lib/ctype.c marks 160 as space), so UTF-8 text containing byte 0xa0, like
// "à" (c3 a0), is refused too. The doc comment promises "no whitespace".
func TestIfNameOtherWhitespace(t *testing.T) {
	for _, s := range []string{"eth\r0", "eth\v0", "eth\f0", "eth\xa00", "v\u00e0"} {
		if err := IfName(s); err == nil {
			t.Errorf("IfName(%q) = nil, want error", s)
		}
	}
}

func TestIPv4(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr []string
	}{
		{in: "192.168.88.11", want: "192.168.88.11"},
		{in: "0.0.0.0", want: "0.0.0.0"},
		{in: "255.255.255.255", want: "255.255.255.255"},

		{in: "", wantErr: []string{`""`, "expected dotted IPv4"}},
		{in: "garbage", wantErr: []string{`"garbage"`, "expected dotted IPv4"}},
		{in: "192.168.88", wantErr: []string{`"192.168.88"`}},
		{in: "192.168.88.256", wantErr: []string{`"192.168.88.256"`}},
		{in: "192.168.088.11", wantErr: []string{`"192.168.088.11"`}},
		{in: "192.168.88.11/24", wantErr: []string{`"192.168.88.11/24"`}},
		{in: " 192.168.88.11", wantErr: []string{`" 192.168.88.11"`}},
		{in: "192.168.88.11%eth0", wantErr: []string{`"192.168.88.11%eth0"`}},
		{in: "fd00::1", wantErr: []string{`"fd00::1"`, "not IPv4"}},
		{in: "::ffff:192.168.88.11", wantErr: []string{`"::ffff:192.168.88.11"`, "not IPv4"}},
		{in: "fe80::1%eth0", wantErr: []string{"not IPv4"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := IPv4(tt.in)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("IPv4(%q): %v", tt.in, err)
				}
				if got.String() != tt.want || !got.Is4() {
					t.Errorf("IPv4(%q) = %v, want %s", tt.in, got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("IPv4(%q) = %v, want error", tt.in, got)
			}
			if got.IsValid() {
				t.Errorf("IPv4(%q) returned %v alongside an error", tt.in, got)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("IPv4(%q) error %q does not contain %q", tt.in, err, w)
				}
			}
		})
	}
}

func TestMAC(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr []string
	}{
		{in: "02:42:c0:a8:58:0b", want: "02:42:c0:a8:58:0b"},
		{in: "02:42:C0:A8:58:0B", want: "02:42:c0:a8:58:0b"},
		{in: "02-42-c0-a8-58-0b", want: "02:42:c0:a8:58:0b"},
		{in: "0242.c0a8.580b", want: "02:42:c0:a8:58:0b"},
		{in: "00:00:00:00:00:01", want: "00:00:00:00:00:01"},
		{in: "fe:ff:ff:ff:ff:ff", want: "fe:ff:ff:ff:ff:ff"},

		{in: "", wantErr: []string{`""`, "six hex bytes"}},
		{in: "garbage", wantErr: []string{`"garbage"`, "six hex bytes"}},
		{in: "02:42:c0:a8:58", wantErr: []string{`"02:42:c0:a8:58"`, "six hex bytes"}},
		{in: "02:42:c0:a8:58:0g", wantErr: []string{`"02:42:c0:a8:58:0g"`}},
		{in: "02:42:c0:a8:58:0b:00:01", wantErr: []string{`"02:42:c0:a8:58:0b:00:01"`, "six hex bytes"}},
		{in: "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", wantErr: []string{"six hex bytes"}},
		{in: "01:00:5e:00:00:01", wantErr: []string{`"01:00:5e:00:00:01"`, "multicast"}},
		{in: "33:33:00:00:00:01", wantErr: []string{`"33:33:00:00:00:01"`, "multicast"}},
		{in: "ff:ff:ff:ff:ff:ff", wantErr: []string{`"ff:ff:ff:ff:ff:ff"`, "multicast"}},
		{in: "00:00:00:00:00:00", wantErr: []string{`"00:00:00:00:00:00"`, "all zeros"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := MAC(tt.in)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("MAC(%q): %v", tt.in, err)
				}
				if got.String() != tt.want {
					t.Errorf("MAC(%q) = %s, want %s", tt.in, got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("MAC(%q) = %s, want error", tt.in, got)
			}
			if got != nil {
				t.Errorf("MAC(%q) returned %s alongside an error", tt.in, got)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("MAC(%q) error %q does not contain %q", tt.in, err, w)
				}
			}
		})
	}
}

func FuzzName(f *testing.F) {
	for _, s := range []string{"ns01", "my_net.1", "", "-x", "a/b", "caf\u00e9", strings.Repeat("a", 64), strings.Repeat("a", 65), "a\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := Name("network", s)
		if err != nil {
			if s != "" && !strings.Contains(err.Error(), quote(s)) {
				t.Fatalf("Name(%q) error %q does not contain the name", s, err)
			}
			return
		}
		if len(s) < 1 || len(s) > MaxNameLen {
			t.Fatalf("Name(%q) accepted a name of %d bytes", s, len(s))
		}
		c := s[0]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			t.Fatalf("Name(%q) accepted a name starting with %q", s, c)
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
			if !ok {
				t.Fatalf("Name(%q) accepted byte %q", s, c)
			}
		}
	})
}

func FuzzIfName(f *testing.F) {
	for _, s := range []string{"eth0", "veth1a2b3c4", ".", "..", "...", "", "eth/0", "eth0:1", "eth 0", "eth\t0", "eth\r0", strings.Repeat("v", 15), strings.Repeat("v", 16), "\u00e9th0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := IfName(s)
		if err != nil {
			if s != "" && !strings.Contains(err.Error(), quote(s)) {
				t.Fatalf("IfName(%q) error %q does not contain the name", s, err)
			}
			return
		}
		if len(s) < 1 || len(s) > MaxIfNameLen {
			t.Fatalf("IfName(%q) accepted a name of %d bytes", s, len(s))
		}
		if s == "." || s == ".." || s == "all" || s == "default" {
			t.Fatalf("IfName(%q) accepted", s)
		}
		for i := 0; i < len(s); i++ {
			switch c := s[i]; c {
			case '/', ':', '%', 0:
				t.Fatalf("IfName(%q) accepted byte %q", s, c)
			case ' ', '\t', '\n':
				t.Fatalf("IfName(%q) accepted whitespace %q", s, c)
			case '\r', '\v', '\f', 0xa0:
				// Also whitespace to the kernel; see
				// TestIfNameOtherWhitespace (bug, skipped). Not checked
				// here so the fuzzer can look for other problems.
			}
		}
	})
}

func FuzzMAC(f *testing.F) {
	for _, s := range []string{"02:42:c0:a8:58:0b", "0242.c0a8.580b", "02-42-c0-a8-58-0b", "01:00:5e:00:00:01", "00:00:00:00:00:00", "02:42:c0:a8:58:0b:00:01", "", "zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := MAC(s)
		if err != nil {
			if m != nil {
				t.Fatalf("MAC(%q) returned %s alongside an error", s, m)
			}
			if !strings.Contains(err.Error(), quote(s)) {
				t.Fatalf("MAC(%q) error %q does not contain the input", s, err)
			}
			return
		}
		if len(m) != 6 {
			t.Fatalf("MAC(%q) = %s: %d bytes", s, m, len(m))
		}
		if m[0]&1 != 0 {
			t.Fatalf("MAC(%q) = %s: multicast", s, m)
		}
		if string(m) == "\x00\x00\x00\x00\x00\x00" {
			t.Fatalf("MAC(%q) = %s: all zeros", s, m)
		}
		back, err := MAC(m.String())
		if err != nil || back.String() != m.String() {
			t.Fatalf("MAC(%q) = %s, but MAC(%q) = %s, %v", s, m, m.String(), back, err)
		}
		if _, err := net.ParseMAC(m.String()); err != nil {
			t.Fatalf("MAC(%q) = %s, which net.ParseMAC rejects: %v", s, m, err)
		}
	})
}

// quote is how the messages print the offending value (%q).
func quote(s string) string { return strconv.Quote(s) }
