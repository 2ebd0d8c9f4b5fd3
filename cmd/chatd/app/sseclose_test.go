package app

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeGate holds the writes of the connections it wraps while held.
type writeGate struct {
	mu      sync.Mutex
	held    chan struct{} // non-nil while held
	entered chan struct{} // told of a write that waits
}

func (g *writeGate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held = make(chan struct{})
}

func (g *writeGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.held)
	g.held = nil
}

type gatedListener struct {
	net.Listener
	g *writeGate
}

func (l gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return gatedConn{Conn: c, g: l.g}, nil
}

type gatedConn struct {
	net.Conn
	g *writeGate
}

func (c gatedConn) Write(p []byte) (int, error) {
	c.g.mu.Lock()
	held := c.g.held
	c.g.mu.Unlock()
	if held != nil {
		select {
		case c.g.entered <- struct{}{}:
		default:
		}
		<-held
	}
	return c.Conn.Write(p)
}

// TestShutdownWaitsForEventStreams: Shutdown returns once the event
// streams it closed have written their closed event, so that the HTTP
// server, which cuts the connections left once Shutdown returns after the
// grace (serve), does not cut it. Before, Shutdown closed the streams and
// returned without waiting for them: a stream still writing its closed
// event (here held up by its socket) was cut, and the client got none.
func TestShutdownWaitsForEventStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	g := &writeGate{entered: make(chan struct{}, 1)}
	srv := httptest.NewUnstartedServer(e.app.Handler())
	srv.Listener = gatedListener{Listener: srv.Listener, g: g}
	srv.Start()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+u.Token)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body := bufio.NewReader(res.Body)
	if line, err := body.ReadString('\n'); err != nil || !strings.HasPrefix(line, ": open") {
		t.Fatalf("first line %q %v", line, err)
	}

	g.hold()
	grace, cancelGrace := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelGrace()
	shut := make(chan error, 1)
	go func() { shut <- e.app.Shutdown(grace) }()
	select {
	case <-g.entered: // the stream writes its closed event
	case <-ctx.Done():
		t.Fatal("the stream wrote nothing at the shutdown")
	}
	// The socket takes the event a while later; only the old code depends
	// on this timing: it returned at once, and the connection was cut.
	time.AfterFunc(200*time.Millisecond, g.release)
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	srv.CloseClientConnections() // as serve does once Shutdown returned
	rest, _ := io.ReadAll(body)
	if !strings.Contains(string(rest), "event: closed") {
		t.Fatalf("the stream ended without its closed event: %q", rest)
	}
}
