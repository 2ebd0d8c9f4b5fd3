package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
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
