package validate

import (
	"strings"
	"testing"
)

func TestIPv6(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr []string
	}{
		{in: "fd00:1::2", want: "fd00:1::2"},
		{in: "2001:db8::2", want: "2001:db8::2"},
		{in: "FD00:1:0::2", want: "fd00:1::2"},

		{in: "", wantErr: []string{`""`, "expected an address like"}},
		{in: "fd00::1/64", wantErr: []string{`"fd00::1/64"`, "expected an address like"}},
		{in: "192.168.88.11", wantErr: []string{"is IPv4", "--ip"}},
		{in: "::ffff:192.168.88.11", wantErr: []string{"IPv4-mapped"}},
		{in: "fd00::1%eth0", wantErr: []string{"zone"}},
		{in: "::", wantErr: []string{"unspecified"}},
		{in: "::1", wantErr: []string{"loopback"}},
		{in: "fe80::1", wantErr: []string{"link-local"}},
		{in: "ff02::1", wantErr: []string{"multicast"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := IPv6(tt.in)
			if tt.wantErr == nil {
				if err != nil || got.String() != tt.want {
					t.Fatalf("IPv6(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
				}
				return
			}
			if err == nil || got.IsValid() {
				t.Fatalf("IPv6(%q) = %v, %v; want only an error", tt.in, got, err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("IPv6(%q) error %q does not contain %q", tt.in, err, w)
				}
			}
		})
	}
}
