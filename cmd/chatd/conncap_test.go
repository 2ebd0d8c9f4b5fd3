package main

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestConnectionCap: with CHATD_MAX_CONNECTIONS open connections (here
// idle clients that never finish their headers), another client waits
// until one of them goes, instead of the server taking connections
// without bound.
func TestConnectionCap(t *testing.T) {
	t.Parallel()
	s := start(t, testEnv(t.TempDir(), "CHATD_MAX_CONNECTIONS", "16"))
	addr := strings.TrimPrefix(s.url, "http://")
	idle := make([]net.Conn, 16)
	for i := range idle {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\n")); err != nil { // headers never end
			t.Fatal(err)
		}
		idle[i] = c
	}
	answered := make(chan int, 1)
	go func() {
		res, err := (&http.Client{Timeout: testTimeout}).Get(s.url + "/healthz")
		if err != nil {
			answered <- -1
			return
		}
		res.Body.Close()
		answered <- res.StatusCode
	}()
	select {
	case code := <-answered:
		t.Fatalf("a 17th connection was served (%d) while 16 were open", code)
	case <-time.After(300 * time.Millisecond):
	}
	idle[0].Close()
	select {
	case code := <-answered:
		if code != http.StatusOK {
			t.Fatalf("waiting request: %d", code)
		}
	case <-time.After(testTimeout):
		t.Fatal("the waiting connection was not served after a slot freed")
	}
}
