package validate

import (
	"fmt"
	"strings"
	"testing"
)

func TestLabels(t *testing.T) {
	many := map[string]string{}
	for i := 0; i <= MaxLabels; i++ {
		many[fmt.Sprint("k", i)] = ""
	}
	for _, c := range []struct {
		labels map[string]string
		want   string // "" for valid
	}{
		{map[string]string{"env": "prod", "com.example/x": "a b=c", "empty": "", "ключ": "значение"}, ""},
		{map[string]string{"": "v"}, "the key is empty"},
		{map[string]string{"a b": "v"}, "white space"},
		{map[string]string{"a\u00a0b": "v"}, "white space"},
		{map[string]string{"a\x7f": "v"}, "printable"},
		{map[string]string{"k": "a\nb"}, "no control characters"},
		{map[string]string{"k": "\xff"}, "printable UTF-8"},
		{map[string]string{strings.Repeat("k", MaxLabelKeyLen+1): ""}, "the limit is 255"},
		{map[string]string{"k": strings.Repeat("v", MaxLabelValueLen+1)}, "the limit is 4096"},
		{many, "has 65 labels: the limit is 64"},
	} {
		err := Labels("network n1", c.labels)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("Labels(%q): %v", c.labels, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "network n1")):
			t.Errorf("Labels(%q): %v, want an error about network n1 saying %q", c.labels, err, c.want)
		}
	}
}
