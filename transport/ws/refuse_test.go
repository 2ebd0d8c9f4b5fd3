package ws_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/hub/protocol"
	"chatd/transport/limits"
	"chatd/transport/ws"
)

// silentUpgrade upgrades as user over a bare TCP connection and never
// answers the server's close frame: it reads everything until the server
// closes the connection (or testTimeout), and returns what it read and how
// long the server took.
func silentUpgrade(t *testing.T, s *server, user string) ([]byte, time.Duration, error) {
	t.Helper()
	start := time.Now()
	c, err := net.Dial("tcp", s.srv.Listener.Addr().String())
	if err != nil {
		return nil, 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(start.Add(testTimeout))
	req := "GET / HTTP/1.1\r\nHost: chatd\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Protocol: " + protocol.Name + "\r\nAuthorization: Bearer token-" + user + "\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return nil, 0, err
	}
	got, err := io.ReadAll(c)
	return got, time.Since(start), err
}

// tooManyClose is the close frame of a refusal: 1013 and its reason.
var tooManyClose = append([]byte{0x88, byte(2 + len(ws.ReasonTooManyConnections)), 0x03, 0xf5}, ws.ReasonTooManyConnections...)

// checkRefused fails the test unless got is a 101 followed by the
// refusal's close frame.
func checkRefused(t *testing.T, got []byte, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("the server did not close the refused connection: %v (read %q)", err, got)
	}
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 101 ")) || !bytes.HasSuffix(got, tooManyClose) {
		t.Fatalf("refused connection read %q, want a 101 and the close 1013 %q", got, ws.ReasonTooManyConnections)
	}
}

// opens is open, the connection closed when the test ends.
func opens(ctx context.Context, t *testing.T, url, user string) opened {
	o := open(ctx, url, user)
	if o.c != nil {
		t.Cleanup(func() { o.c.CloseNow() })
	}
	return o
}

// TestRefusedSocketBounded: a WebSocket refused as over its user's
// connection limit whose peer never answers the close frame is closed
// after RefuseTimeout, because the close handshake held the request's
// goroutine for 2 s whatever the peer did.
func TestRefusedSocketBounded(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{opts: ws.Options{Limits: limits.New(limits.Options{MaxConns: 1}),
		RefuseTimeout: 50 * time.Millisecond}})
	s.dial(dialOptions{user: "full"}).expect(protocol.TypeHello)
	got, took, err := silentUpgrade(t, s, "full")
	checkRefused(t, got, err)
	if took >= 1900*time.Millisecond { // the 2 s of before, with room for a slow machine
		t.Fatalf("the refused connection was closed after %v, want about RefuseTimeout (50ms)", took)
	}
}

// TestRepeatedRefusalsQuiet: once a user was refused MaxRefusals times in
// RefusalWindow, its further upgrades, many at once, are each still
// closed with 1013 "too many connections" (what a browser's client backs
// off on), and counted, but cheaply: the token that was refused is not
// checked again, and the close frame is not waited for (a peer that
// never answers it gets its connection closed well before RefuseTimeout). Before, each cost a token check and up to 2 s of a goroutine,
// without bound. Once the user has room again, the next upgrade is
// checked and gets hello, and other users are not concerned.
func TestRepeatedRefusalsQuiet(t *testing.T) {
	t.Parallel()
	const maxRefusals, parallel, refuseTimeout = 2, 16, 4 * time.Second
	metrics := &slowCount{}
	s := newServer(t, serverOptions{opts: ws.Options{Limits: limits.New(limits.Options{MaxConns: 1}),
		Metrics: metrics, RefuseTimeout: refuseTimeout, MaxRefusals: maxRefusals, RefusalWindow: time.Hour}})
	var checks atomic.Int32
	s.mu.Lock()
	s.authenticated = func(string) { checks.Add(1) }
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	held := opens(ctx, t, s.url(), "many")
	if !held.hello {
		t.Fatalf("first connection: %+v", held)
	}
	for range maxRefusals { // refused with a close handshake (the client answers it)
		if o := open(ctx, s.url(), "many"); o.code != websocket.StatusCode(protocol.CloseTryAgainLater) || o.reason != ws.ReasonTooManyConnections {
			t.Fatalf("refusal: %+v", o)
		}
	}
	if n := checks.Load(); n != 1+maxRefusals {
		t.Fatalf("%d token checks, want %d", n, 1+maxRefusals)
	}
	type result struct {
		got  []byte
		took time.Duration
		err  error
	}
	results := make(chan result, parallel)
	for range parallel {
		go func() {
			got, took, err := silentUpgrade(t, s, "many")
			results <- result{got, took, err}
		}()
	}
	for range parallel {
		r := <-results
		checkRefused(t, r.got, r.err)
		if r.took >= refuseTimeout {
			t.Fatalf("a quiet refusal waited for the close frame: closed after %v", r.took)
		}
	}
	if n := checks.Load(); n != 1+maxRefusals {
		t.Fatalf("%d token checks after the quiet refusals, want still %d", n, 1+maxRefusals)
	}
	if n := metrics.refused.Load(); n != maxRefusals+parallel {
		t.Fatalf("%d refusals counted, want %d", n, maxRefusals+parallel)
	}
	if o := opens(ctx, t, s.url(), "other"); !o.hello {
		t.Fatalf("another user's connection: %+v", o)
	}
	held.c.Close(websocket.StatusNormalClosure, "")
	until(t, "the slot to be released", func() bool { return !strings.Contains(strings.Join(s.limits.ConnectedUsers(), ","), "many") })
	if o := opens(ctx, t, s.url(), "many"); !o.hello {
		t.Fatalf("once the user had room: %+v", o)
	}
	if n := checks.Load(); n != 3+maxRefusals {
		t.Fatalf("%d token checks, want %d (the upgrade once there was room was checked)", n, 3+maxRefusals)
	}
}
