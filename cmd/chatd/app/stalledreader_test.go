package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"chatd/persistence"
)

// TestStalledRESTReaderCut: a client that asks for a large REST answer
// (GET /api/conversations/:id?limit=500, its page of messages marshalled
// whole) and never reads it has its connection cut once a write makes no
// progress for the response write timeout: the handler returns, and the
// memory its answer held is freed. Before, there was no write deadline on
// REST answers: the handlers stayed blocked, holding their answers, for as
// long as the clients kept their connections open.
func TestStalledRESTReaderCut(t *testing.T) {
	// Long enough that the clients that read (the warm-up below, four
	// answers of 7.7 MB at once) never miss it on a loaded machine under
	// -race, where 300 ms was missed and a reader may wait a second or two
	// for a core.
	e := newEnv(t, envOptions{tweak: func(c *Config) { c.ResponseWriteTimeout = 5 * time.Second }})
	// The handlers, counted as they run, behind small socket send buffers,
	// so that a client that stops reading blocks the server's writes soon.
	const stalled = 4
	entered, left := make(chan struct{}, stalled), make(chan struct{}, stalled)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/conversations/") {
			entered <- struct{}{}
			defer func() { left <- struct{}{} }()
		}
		e.app.Handler().ServeHTTP(w, r)
	}))
	srv.Listener = smallBufferListener{srv.Listener}
	srv.Start()
	defer srv.Close()

	u := e.register(t)
	var created struct{ Conversation persistence.Conversation }
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{}, http.StatusCreated, &created)
	ctx := context.Background()
	// 40 messages of 32,000 '<' (the content limit; each escaped to 6
	// bytes in JSON): an answer of about 7.7 MB.
	content := strings.Repeat("<", 32000)
	parent := ""
	for range 40 {
		m := persistence.Message{ConversationID: created.Conversation.ID, OwnerID: u.ID, ParentID: parent,
			Role: persistence.RoleUser, Content: content, Status: persistence.StatusComplete}
		if err := e.store.InsertMessage(ctx, &m); err != nil {
			t.Fatal(err)
		}
		parent = m.ID
	}
	heap := func() uint64 {
		// Twice: what a sync.Pool held (encoding/json keeps its encode
		// buffers, as large as the last answer marshalled) survives one
		// collection in the pool's victim cache.
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	// Read the answer whole first, as many times at once as there will be
	// stalled clients, so that what the store keeps cached afterwards (the
	// SQLite page cache of each read connection) is in the baseline.
	page := fmt.Sprintf("/api/conversations/%s?limit=500", created.Conversation.ID)
	var warm sync.WaitGroup
	for range stalled {
		warm.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+page, nil)
			req.Header.Set("Authorization", "Bearer "+u.Token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			if _, err := io.Copy(io.Discard, res.Body); err != nil || res.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %d %v", page, res.StatusCode, err)
			}
		})
	}
	warm.Wait()
	before := heap()

	conns := make([]net.Conn, stalled)
	for i := range conns {
		c, err := smallReceiveBufferDialer().Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", page, u.Token)
		conns[i] = c // never read until the server has given up
	}
	timeout := time.After(testTimeout)
	for i := range 2 * stalled {
		select {
		case <-entered:
		case <-left:
		case <-timeout:
			t.Fatalf("after %s, %d of %d handlers had started and returned; the rest are blocked writing to clients that stopped reading",
				testTimeout, i, 2*stalled)
		}
	}
	if after := heap(); after > before+16<<20 {
		t.Fatalf("heap in use %d MiB after the stalled answers were cut, %d MiB before them", after>>20, before>>20)
	}
	// The connections were cut: what the clients get is a few KiB of the
	// answer, then the end.
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(testTimeout))
		n, err := io.Copy(io.Discard, c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection %d still open after its answer was cut", i)
		}
		if n > 1<<20 {
			t.Fatalf("connection %d got %d bytes: the answer was not cut", i, n)
		}
	}
}

// smallReceiveBufferDialer dials with a small socket receive buffer.
func smallReceiveBufferDialer() *net.Dialer {
	return &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
}
