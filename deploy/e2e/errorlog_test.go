package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSearchOutOfNginxErrorLog checks that a search's query string, what a
// user looks for, reaches neither of nginx's logs when the upstream fails:
// nginx writes the whole request line and the upstream URL into every
// proxy error, and the search (GET /api/conversations?q=) is the one route
// whose query string carries what a user typed. A proxy error of another
// route still reaches error.log. The upstream refuses the connection (an
// instance stopped or restarting), resets it, or is two refusing
// instances (the failed first try of a request retried on the other).
func TestSearchOutOfNginxErrorLog(t *testing.T) {
	t.Parallel()
	need(t, "nginx", "apt-get update && apt-get install -y nginx")
	cases := []struct {
		name      string
		upstreams func(t *testing.T) []string
	}{
		{"refused", func(t *testing.T) []string { return []string{refusingUpstream(t)} }},
		{"reset", func(t *testing.T) []string { return []string{resettingUpstream(t)} }},
		{"retried on the other instance", func(t *testing.T) []string {
			return []string{refusingUpstream(t), refusingUpstream(t)}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			site := startNginx(t, nginxOptions{Root: standinRoot(t), Upstream: strings.Join(c.upstreams(t), ",")})
			checkSearchOutOfErrorLog(t, site)
		})
	}
}

// checkSearchOutOfErrorLog sends a search and then another API request to a
// site whose upstream fails, and reads both of nginx's logs.
func checkSearchOutOfErrorLog(t *testing.T, site *nginxSite) {
	c := site.Client(true)
	term := fmt.Sprintf("quokka%d", time.Now().UnixNano())
	if resp, _ := get(t, c, site.URL("/api/conversations?q=my+divorce+lawyer+"+term+"&limit=30"), nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("search with a failing upstream: %d, want 502 from nginx", resp.StatusCode)
	}
	const other = "/api/models"
	if resp, _ := get(t, c, site.URL(other), nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("GET %s with a failing upstream: %d, want 502 from nginx", other, resp.StatusCode)
	}
	// nginx writes a proxy error as it happens, before its 502 goes out.
	errorLog, err := os.ReadFile(filepath.Join(site.Prefix, "error.log"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(errorLog), term) {
		t.Errorf("nginx's error.log holds the search term %s:\n%s", term, errorLog)
	}
	if !strings.Contains(string(errorLog), `"GET `+other+` HTTP/`) {
		t.Errorf("nginx's error.log has no proxy error for GET %s:\n%s", other, errorLog)
	}
	searched := false
	for _, line := range accessLogUpTo(t, site, other) {
		if strings.Contains(line, term) {
			t.Errorf("nginx logged the search term: %s", line)
		}
		searched = searched || strings.Contains(line, `"GET /api/conversations HTTP/2.0" 502 `)
	}
	if !searched {
		t.Error("no line for the failed search (GET /api/conversations, 502) in the access log")
	}
}

// refusingUpstream is the address of a port nothing listens on.
func refusingUpstream(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", freePort(t))
}

// resettingUpstream is the address of a listener that resets every
// connection as soon as it accepts it, until the test ends.
func resettingUpstream(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			conn.(*net.TCPConn).SetLinger(0) // close with RST
			conn.Close()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().String()
}
