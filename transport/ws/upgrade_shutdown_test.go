package ws_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/transport/internal/hubtest"
	"chatd/transport/ws"
)

// TestShutdownDuringSessionCheck: a connection whose session recheck
// waits on the store when the server shuts down ends at once, closed
// 1001, and Shutdown returns without waiting out DispatchTimeout. Before,
// the check ran on the connection's own context, which the shutdown's
// close did not end: Shutdown waited up to DispatchTimeout (30 s, more
// than the 15 s grace), then cut the socket.
func TestShutdownDuringSessionCheck(t *testing.T) {
	t.Parallel()
	checking := make(chan struct{}, 1)
	h := ws.NewHandler(ws.Options{Hub: hubtest.New(), DispatchTimeout: time.Hour,
		Authenticate: func(context.Context, string) (ws.Identity, error) {
			return ws.Identity{UserID: "a", ExpiresAt: time.Now().Add(time.Hour)}, nil
		},
		Recheck: func(ctx context.Context, _ ws.Identity) error {
			checking <- struct{}{}
			<-ctx.Done() // a store that does not answer
			return ctx.Err()
		}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"),
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer token-a"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	select {
	case <-checking:
	case <-ctx.Done():
		t.Fatal("no session recheck")
	}
	read := make(chan error, 1) // the client reads, so answers the close frame
	go func() {
		_, _, err := c.Read(ctx)
		read <- err
	}()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-read; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("read ended with %v, want close 1001", err)
	}
}

// TestShutdownPastItsBoundNamesTheStep: a Shutdown whose ctx ends before
// the sockets closed (a client that never answers the close frame) says
// which step it gave up on, the context's error still in its chain; it
// said only "context deadline exceeded", which an operator cannot place.
func TestShutdownPastItsBoundNamesTheStep(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	s.dial(dialOptions{user: "a", paused: true}) // never reads the close frame, nor answers it
	s.waitHub("the connection registered", func(h *hubtest.Hub) bool { return h.Count() == 1 })
	spent, cancel := context.WithDeadline(context.Background(), time.Now())
	defer cancel()
	err := s.handler.Shutdown(spent)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "close the websockets") {
		t.Fatalf("Shutdown past its bound = %v, want the step named and context.DeadlineExceeded kept", err)
	}
}
