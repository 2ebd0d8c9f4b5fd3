package main

import (
	"net"
	"strconv"
	"testing"

	"chatd/internal/testport"
)

// TestCheckListenHoldsAChosenPort: the port the system chose for
// CHATD_ADDR's :0 stays bound from the check until it is served, so the
// next listener of port 0 (CHATD_PPROF_ADDR=127.0.0.1:0, started in
// between) cannot be given it. Before, the check let it go and the bench
// once saw pprof take it and the start fail "in use by another program";
// a port named stays let go until the store is open, as before.
func TestCheckListenHoldsAChosenPort(t *testing.T) {
	t.Parallel()
	// Outside the ephemeral range, reserved for this test: a port taken
	// with :0 and let go could be given to any connection meanwhile.
	named := net.JoinHostPort("127.0.0.1", strconv.Itoa(testport.Free(t, 1)[0]))
	for _, tc := range []struct {
		name, addr string
		held       bool
	}{
		{"port 0", "127.0.0.1:0", true},
		{"a port named", named, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, held, err := checkListen(tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			if (held != nil) != tc.held {
				t.Fatalf("held %v, want held %v", held, tc.held)
			}
			if !tc.held {
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					t.Fatalf("%s not let go after the check: %v", addr, err)
				}
				ln.Close()
				return
			}
			defer held.Close()
			if held.Addr().String() != addr {
				t.Fatalf("held %s, said %s", held.Addr(), addr)
			}
			if ln, err := net.Listen("tcp", addr); err == nil {
				ln.Close()
				t.Fatalf("%s could be bound again after the check: let go", addr)
			}
			ln, err := listenUnlessStopped(t.Context(), addr, held)
			if err != nil || ln != held {
				t.Fatalf("served %v (%v), want the held listener", ln, err)
			}
		})
	}
}
