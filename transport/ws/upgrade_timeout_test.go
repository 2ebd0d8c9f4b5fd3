package ws_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/transport/httperr"
	"chatd/transport/internal/hubtest"
	"chatd/transport/ws"
)

// TestUpgradeTokenCheckBounded: the token check of an upgrade waits on
// the store at most DispatchTimeout (CHATD_REQUEST_TIMEOUT), then the
// upgrade is answered 503, as every other request's check is, instead of
// holding the request for as long as the store hangs.
func TestUpgradeTokenCheckBounded(t *testing.T) {
	t.Parallel()
	h := ws.NewHandler(ws.Options{Hub: hubtest.New(), DispatchTimeout: 50 * time.Millisecond,
		Authenticate: func(ctx context.Context, _ string) (ws.Identity, error) {
			<-ctx.Done() // a store that does not answer
			return ws.Identity{}, ctx.Err()
		},
		Recheck: func(context.Context, ws.Identity) error { return nil }})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"),
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer token-a"}}})
	if err == nil {
		c.CloseNow()
		t.Fatal("upgraded")
	}
	if res == nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("answer %v (err %v), want 503", res, err)
	}
}

// loudLines is a slog handler keeping the messages of the lines at WARN
// or above.
type loudLines struct {
	mu    *sync.Mutex
	lines *[]string
}

func (loudLines) Enabled(context.Context, slog.Level) bool { return true }
func (l loudLines) WithAttrs([]slog.Attr) slog.Handler     { return l }
func (l loudLines) WithGroup(string) slog.Handler          { return l }
func (l loudLines) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		l.mu.Lock()
		*l.lines = append(*l.lines, r.Level.String()+" "+r.Message)
		l.mu.Unlock()
	}
	return nil
}

// statusOf records the status an upgrade was answered with.
type statusOf struct {
	http.ResponseWriter
	status int
}

func (w *statusOf) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// TestUpgradeClientGoneDuringTokenCheck: an upgrade whose client leaves
// while its token check waits on the store is answered (logged, counted
// by the router) 499, as every other request of a client gone, and logs
// nothing at WARN or above: it logged "authenticate websocket" at ERROR
// with context canceled and answered 503, a server error, which let any
// client fill the error log by closing its connections. A store that
// fails while the client waits is still a 503 (TestUpgradeTokenCheckBounded).
func TestUpgradeClientGoneDuringTokenCheck(t *testing.T) {
	t.Parallel()
	loud := loudLines{mu: &sync.Mutex{}, lines: new([]string)}
	entered := make(chan struct{})
	h := ws.NewHandler(ws.Options{Hub: hubtest.New(), Logger: slog.New(loud), DispatchTimeout: testTimeout,
		Authenticate: func(ctx context.Context, _ string) (ws.Identity, error) {
			close(entered)
			<-ctx.Done() // a store that has not answered when the client leaves
			return ws.Identity{}, fmt.Errorf("load user: %w", ctx.Err())
		},
		Recheck: func(context.Context, ws.Identity) error { return nil }})
	answered := make(chan int, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusOf{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		answered <- rec.status
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	dialCtx, leave := context.WithCancel(ctx)
	go func() {
		<-entered
		leave()
	}()
	if c, _, err := websocket.Dial(dialCtx, "ws"+strings.TrimPrefix(srv.URL, "http"),
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer token-a"}}}); err == nil {
		c.CloseNow()
		t.Fatal("upgraded")
	}
	select {
	case status := <-answered:
		if status != httperr.StatusClientClosed {
			t.Errorf("answered %d, want %d", status, httperr.StatusClientClosed)
		}
	case <-ctx.Done():
		t.Fatal("the upgrade was not answered")
	}
	loud.mu.Lock()
	defer loud.mu.Unlock()
	if len(*loud.lines) > 0 {
		t.Errorf("logged at WARN or above: %q", *loud.lines)
	}
}
