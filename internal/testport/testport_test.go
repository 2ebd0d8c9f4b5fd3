package testport

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
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

// TestReservedAcrossProcesses: ports another test process was handed stay
// its own while it runs, and are free to take once it has exited.
func TestReservedAcrossProcesses(t *testing.T) {
	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), "TESTPORT_HOLD=1", "GORACE=atexit_sleep_ms=0")
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var held []int
	for sc := bufio.NewScanner(stdout); held == nil && sc.Scan(); {
		if rest, ok := strings.CutPrefix(sc.Text(), "held "); ok {
			for _, f := range strings.Fields(rest) {
				p, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("child's line %q: %v", sc.Text(), err)
				}
				held = append(held, p)
			}
		}
	}
	if len(held) != 4 {
		_ = child.Process.Kill()
		t.Fatalf("child held %v, want 4 ports", held)
	}
	for _, p := range held {
		if reserve(p) {
			t.Errorf("port %d reserved here while the child holds it", p)
			release(p)
		}
	}
	_ = stdin.Close() // the child exits
	_, _ = io.Copy(io.Discard, stdout)
	if err := child.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	for _, p := range held {
		if !reserve(p) {
			t.Errorf("port %d still reserved after the child exited", p)
		}
		release(p)
	}
}

// TestMain runs the tests, or, in TestReservedAcrossProcesses's child
// process, takes four ports, prints them and holds them until its standard
// input closes.
func TestMain(m *testing.M) {
	if os.Getenv("TESTPORT_HOLD") == "" {
		os.Exit(m.Run())
	}
	ports, err := free(4)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Print("held")
	for _, p := range ports {
		fmt.Print(" ", p)
	}
	fmt.Println()
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}
