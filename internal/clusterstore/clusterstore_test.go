package clusterstore

import (
	"slices"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"etcd://192.0.2.2:2379", []string{"http://192.0.2.2:2379"}},
		{"etcd://192.0.2.2:2379,192.0.2.3:2379", []string{"http://192.0.2.2:2379", "http://192.0.2.3:2379"}},
		{"etcd://store.example:2379", []string{"http://store.example:2379"}},
		{"http://192.0.2.2:2379", nil},
		{"etcd://", nil},
		{"etcd://192.0.2.2", nil},
		{"192.0.2.2:2379", nil},
	} {
		got, err := ParseURL(c.in)
		if (err == nil) != (c.want != nil) || !slices.Equal(got, c.want) {
			t.Errorf("ParseURL(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}
