package engine

import (
	"strings"
	"testing"
)

func TestDefaultBridgeNamesAreReserved(t *testing.T) {
	for _, tt := range []struct {
		name, bridge string
		refused      bool
	}{
		{"foo", "nsnet0", true},
		{"foo", "nsnet1", true},
		{"foo", "nsnet42", true},
		{"bridge", "nsnet0", false}, // the default network itself
		{"bridge", "nsnet3", false},
		{"foo", "nsnet", false},
		{"foo", "nsnet0a", false},
		{"foo", "nsnetx", false},
		{"foo", "br-nsnet0", false},
		{"foo", "xnsnet0", false},
	} {
		_, err := parseNetworkSpec(NetworkSpec{Name: tt.name, Bridge: tt.bridge})
		if got := err != nil; got != tt.refused {
			t.Errorf("network %s --bridge %s: error %v, want refused %t", tt.name, tt.bridge, err, tt.refused)
		}
		if err != nil && !strings.Contains(err.Error(), "reserved for the default network") {
			t.Errorf("network %s --bridge %s: error %q does not say why", tt.name, tt.bridge, err)
		}
	}
}
