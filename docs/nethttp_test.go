package docs

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// serverHeaderKiB is the MaxHeaderBytes of the http.Server cmd/chatd's
// serve runs, in KiB, as run.go writes it.
func serverHeaderKiB(t *testing.T) int {
	t.Helper()
	src, err := os.ReadFile("../cmd/chatd/run.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`MaxHeaderBytes:\s+(\d+) << 10,`).FindAllSubmatch(src, -1)
	if len(m) != 1 {
		t.Fatalf("run.go sets MaxHeaderBytes %d times as N << 10, want once: rewritten? update this test with it", len(m))
	}
	n, err := strconv.Atoi(string(m[0][1]))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestNetHTTPErrorsDocumented: the errors Go's net/http answers itself,
// before any route (so not in the JSON error shape), are the ones api.md
// names, with the statuses and the plain-text type it says, and the
// header limit it states is run.go's. Before, api.md said every error
// was JSON, though headers over 64 KiB answered a plain-text 431 and a
// malformed request line a plain-text 400.
func TestNetHTTPErrorsDocumented(t *testing.T) {
	t.Parallel()
	kib := serverHeaderKiB(t)
	// net/http reads 4 KiB beyond MaxHeaderBytes before it refuses.
	limit := kib + 4
	if got, err := statedNumber("api.md", `a request line and\s+headers over (\d+) KiB together`); err != nil || got != limit {
		t.Errorf("api.md states a header limit of %d KiB (%v); run.go's MaxHeaderBytes is %d KiB, refused past %d KiB", got, err, kib, limit)
	}
	if got, err := statedNumber("api.md", `the server's\s+(\d+) KiB bound`); err != nil || got != kib {
		t.Errorf("api.md states the server's bound as %d KiB (%v); run.go's MaxHeaderBytes is %d KiB", got, err, kib)
	}
	documented(t, "431 `Request Header Fields Too Large`", "400 `Bad Request`", "505 `HTTP Version Not Supported`",
		"501 `Not Implemented`", "417 `Expectation Failed` with no body",
		"are plain text (`Content-Type: text/plain; charset=utf-8`)")

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"routed":true}`))
	}))
	srv.Config.MaxHeaderBytes = kib << 10
	srv.Start()
	t.Cleanup(srv.Close)
	const get = "GET / HTTP/1.1\r\nHost: x\r\n"
	for _, c := range []struct {
		name, request string
		status        int
		plain         bool
	}{
		{"headers just within the limit", get + "X-Pad: " + strings.Repeat("a", limit<<10-200) + "\r\n\r\n", 200, false},
		{"headers just over the limit", get + "X-Pad: " + strings.Repeat("a", limit<<10) + "\r\n\r\n", 431, true},
		{"malformed request line", "GARBAGE\r\n\r\n", 400, true},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400, true},
		{"HTTP/3.0", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505, true},
		{"Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, true},
		{"Expect", get + "Expect: something\r\n\r\n", 417, false},
	} {
		res := rawRequest(t, srv.Listener.Addr().String(), c.request)
		plain := res.Header.Get("Content-Type") == "text/plain; charset=utf-8"
		if res.StatusCode != c.status || plain != c.plain {
			t.Errorf("%s: %d %q, want %d (plain text: %v)", c.name, res.StatusCode, res.Header.Get("Content-Type"), c.status, c.plain)
		}
	}
}

// rawRequest writes request as is on a new connection to addr and reads
// the answer's status line and headers.
func rawRequest(t *testing.T, addr, request string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	go func() { _, _ = conn.Write([]byte(request)) }() // the server may answer before reading it all
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	defer res.Body.Close()
	return res
}
