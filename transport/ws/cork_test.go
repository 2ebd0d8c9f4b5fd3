package ws

import (
	"bytes"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
)

// writesConn records each write it is given.
type writesConn struct {
	net.Conn
	mu     sync.Mutex
	writes []string
}

func (c *writesConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, string(p))
	return len(p), nil
}

// TestCorkConn: what is written while corked reaches the socket in one
// write at uncork, in order; a write that would take the kept bytes past
// corkLimit sends them first, and one of corkLimit or more goes out as it
// is; uncorked, every write goes through at once.
func TestCorkConn(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("b", corkLimit)
	half := strings.Repeat("h", corkLimit/2+1)
	for _, tc := range []struct {
		name   string
		corked bool
		writes []string
		before []string // the socket's writes before uncork
		after  []string // and after it
	}{
		{"uncorked", false, []string{"a", "b"}, []string{"a", "b"}, []string{"a", "b"}},
		{"corked", true, []string{"a", "b", "c"}, nil, []string{"abc"}},
		{"past the limit", true, []string{"a", half, half}, []string{"a" + half}, []string{"a" + half, half}},
		{"larger than the limit", true, []string{"a", big, "c"}, []string{"a", big}, []string{"a", big, "c"}},
		{"nothing kept", true, nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sock := &writesConn{}
			c := &corkConn{Conn: sock}
			if tc.corked {
				c.cork()
			}
			for _, w := range tc.writes {
				if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if !slices.Equal(sock.writes, tc.before) {
				t.Fatalf("before uncork the socket got writes of %v bytes, want %v", lengths(sock.writes), lengths(tc.before))
			}
			if err := c.uncork(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sock.writes, tc.after) {
				t.Fatalf("after uncork the socket got writes of %v bytes, want %v", lengths(sock.writes), lengths(tc.after))
			}
			if c.buf != nil {
				t.Fatal("a buffer is kept after uncork")
			}
		})
	}
}

// TestCorkConnConcurrentWrites: writes from other goroutines while the
// connection is corked (the library's pongs) keep their bytes together.
func TestCorkConnConcurrentWrites(t *testing.T) {
	t.Parallel()
	sock := &writesConn{}
	c := &corkConn{Conn: sock}
	c.cork()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = c.Write(bytes.Repeat([]byte{byte('a' + i)}, 10))
			}
		})
	}
	wg.Wait()
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(sock.writes, "")
	if len(all) != 8*100*10 {
		t.Fatalf("%d bytes reached the socket, want %d", len(all), 8*100*10)
	}
	for i := 0; i < len(all); i += 10 {
		if strings.Count(all[i:i+10], all[i:i+1]) != 10 {
			t.Fatalf("a write's bytes were split at %d: %q", i, all[i:i+10])
		}
	}
}

// lengths describes writes by their lengths.
func lengths(ws []string) []int {
	out := make([]int, len(ws))
	for i, w := range ws {
		out[i] = len(w)
	}
	return out
}
