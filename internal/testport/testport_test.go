package testport

import (
	"net"
	"strconv"
	"testing"
)

// TestFree: the ports are distinct, outside the ephemeral range, free to
// listen on, and never handed out twice.
func TestFree(t *testing.T) {
	elo, ehi := ephemeralRange()
	seen := map[int]bool{}
	for range 3 {
		for _, p := range Free(t, 6) {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
			if p >= elo && p <= ehi || p < lowest || p > 65535 {
				t.Fatalf("port %d in the ephemeral range %d-%d or out of bounds", p, elo, ehi)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				t.Fatalf("port %d not free: %v", p, err)
			}
			_ = ln.Close()
		}
	}
}

// TestSpan picks the larger side of the ephemeral range.
func TestSpan(t *testing.T) {
	for _, tc := range []struct{ elo, ehi, lo, hi int }{
		{32768, 60999, lowest, 32767},
		{1024, 65000, 65001, 65535},
		{15000, 20000, 20001, 65535},
	} {
		if lo, hi := span(tc.elo, tc.ehi); lo != tc.lo || hi != tc.hi {
			t.Errorf("span(%d, %d) = %d-%d, want %d-%d", tc.elo, tc.ehi, lo, hi, tc.lo, tc.hi)
		}
	}
}
