package observe

import (
	"net/netip"
	"slices"
	"testing"
)

// TestParseSockets reads listening sockets as /proc/net/tcp and tcp6 show
// them: an IPv4 one, an IPv6 wildcard (which takes IPv4 too, as Go's
// net.Listen("tcp", "0.0.0.0:80") makes), a v4-mapped one, a v6-only
// address (left out) and a connection (not listening, left out).
func TestParseSockets(t *testing.T) {
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 112 1 0 100 0 0 10 0
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 221 1 0 100 0 0 10 0
   1: 0000000000000000FFFF00000A00000A:0051 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0 100 0 0 10 0
   2: B80D0120000000000000000001000000:0052 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 223 1 0 100 0 0 10 0
`
	got, inodes := parseSockets("tcp", []byte(tcp))
	g6, i6 := parseSockets("tcp6", []byte(tcp6))
	got, inodes = append(got, g6...), append(inodes, i6...)
	want := []Socket{
		{Proto: "tcp", Addr: netip.MustParseAddr("127.0.0.1"), Port: 8080},
		{Proto: "tcp", Addr: netip.MustParseAddr("0.0.0.0"), Port: 80},
		{Proto: "tcp", Addr: netip.MustParseAddr("10.0.0.10"), Port: 81},
	}
	if !slices.Equal(got, want) || !slices.Equal(inodes, []string{"111", "221", "222"}) {
		t.Errorf("got %v %v, want %v and inodes 111 221 222", got, inodes, want)
	}
}
