package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestPprofListener: CHATD_PPROF_ADDR serves the profiles on their own
// loopback listener, never on the public port.
func TestPprofListener(t *testing.T) {
	t.Parallel()
	s := start(t, testEnv(t.TempDir(), "CHATD_PPROF_ADDR", "127.0.0.1:0"))
	addr := ""
	sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
	for sc.Scan() {
		var line struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "pprof listening" {
			addr = line.Addr
		}
	}
	if addr == "" {
		t.Fatalf("no pprof listening line in the logs:\n%s", s.logs)
	}
	get := func(url string) (int, string) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if st, body := get("http://" + addr + "/debug/pprof/goroutine?debug=1"); st != 200 || !strings.HasPrefix(body, "goroutine profile: total") {
		t.Fatalf("pprof goroutine profile: %d %.100s", st, body)
	}
	// The public port answers with the web client's fallback page, not profiles.
	if _, body := get(s.url + "/debug/pprof/goroutine?debug=1"); strings.Contains(body, "goroutine profile") {
		t.Fatal("the public port serves profiles")
	}
}

// TestPprofOnChatdPort: CHATD_PPROF_ADDR on the port of CHATD_ADDR, where
// the two would collide, is refused naming both variables. It used to
// start the profiles there first, then stop blaming CHATD_ADDR's port as
// in use by another program. Two addresses apart on one port are not
// refused (it refused every CHATD_ADDR on loopback: 127.0.0.1 with pprof
// on ::1, 127.0.0.2 with pprof on 127.0.0.1, which both listen). Each
// case on port 8080 is also listened on for real, on a free port, pprof
// first as run does: the rule and the system agree.
func TestPprofOnChatdPort(t *testing.T) {
	t.Parallel()
	cases := []struct {
		addr, pprof string
		refused     bool
	}{
		{":8080", "127.0.0.1:8080", true},
		{"0.0.0.0:8080", "[::1]:8080", true},
		{"[::]:8080", "127.0.0.1:8080", true},
		{"127.0.0.1:8080", "localhost:8080", true},
		{"localhost:8080", "localhost:8080", true},
		{"[::1]:8080", "[::1]:8080", true},
		{"[::ffff:127.0.0.1]:8080", "127.0.0.1:8080", true},
		{"[::]:http", "[::1]:80", true},
		{"localhost:6060", "127.0.0.1:6060", true},
		{"127.0.0.1:8080", "[::1]:8080", false},
		{"[::1]:8080", "127.0.0.1:8080", false},
		{"127.0.0.2:8080", "127.0.0.1:8080", false},
		{"127.0.0.1:8080", "127.0.0.2:8080", false},
		{"127.0.0.2:8080", "localhost:8080", false},
		{"[::1]:8080", "localhost:8080", false}, // localhost listens on its IPv4 address
		{":8080", "127.0.0.1:6060", false},
		{"10.0.0.1:6060", "127.0.0.1:6060", false}, // never the same socket
		{"127.0.0.1:0", "127.0.0.1:0", false},      // each its own port
	}
	for _, c := range cases {
		_, err := loadConfig(envOf(map[string]string{"CHATD_ADDR": c.addr, "CHATD_PPROF_ADDR": c.pprof}))
		switch {
		case c.refused && (err == nil || !strings.Contains(err.Error(), "CHATD_PPROF_ADDR: ") || !strings.Contains(err.Error(), "port of CHATD_ADDR")):
			t.Errorf("CHATD_ADDR=%s CHATD_PPROF_ADDR=%s: error %v, want one naming both", c.addr, c.pprof, err)
		case !c.refused && err != nil:
			t.Errorf("CHATD_ADDR=%s CHATD_PPROF_ADDR=%s: %v", c.addr, c.pprof, err)
		case c.refused && strings.Contains(err.Error(), "such as 127.0.0.1"+c.pprof[strings.LastIndex(c.pprof, ":"):]):
			t.Errorf("CHATD_ADDR=%s CHATD_PPROF_ADDR=%s: %v, suggests the port it refuses", c.addr, c.pprof, err)
		}
		if strings.HasSuffix(c.addr, ":8080") && strings.HasSuffix(c.pprof, ":8080") {
			if collide := bothListen(t, c.pprof, c.addr); collide != c.refused {
				t.Errorf("CHATD_ADDR=%s CHATD_PPROF_ADDR=%s: refused %v, but listening on both collides: %v", c.addr, c.pprof, c.refused, collide)
			}
		}
	}
}

// bothListen reports whether listening on second (host:8080) fails while
// first (host:8080) is listened on, both on a free port in place of 8080.
func bothListen(t *testing.T, first, second string) (collide bool) {
	t.Helper()
	for range 5 { // another program may take the free port first
		free, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(free.Addr().(*net.TCPAddr).Port)
		free.Close()
		a, err := net.Listen("tcp", strings.TrimSuffix(first, "8080")+port)
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", strings.TrimSuffix(second, "8080")+port)
		a.Close()
		if err == nil {
			b.Close()
		}
		return err != nil
	}
	t.Fatalf("no free port to listen on %s", first)
	return false
}

// TestPprofPortInUse: a CHATD_PPROF_ADDR another program holds stops the
// start with an error naming CHATD_PPROF_ADDR (it said "listen for pprof on
// ...: address already in use", naming no variable).
func TestPprofPortInUse(t *testing.T) {
	t.Parallel()
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = run(ctx, envOf(testEnv(t.TempDir(), "CHATD_PPROF_ADDR", held.Addr().String())), io.Discard,
		func(net.Addr) { t.Error("it listened"); cancel() })
	want := "CHATD_PPROF_ADDR: " + held.Addr().String() + " is in use by another program"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one saying %q", err, want)
	}
	if strings.Contains(err.Error(), "CHATD_PPROF_ADDR="+held.Addr().String()+",") {
		t.Errorf("error %v suggests the port in use", err)
	}
}
