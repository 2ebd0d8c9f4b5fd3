package ws_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/transport/internal/hubtest"
	"chatd/transport/internal/nettest"
	"chatd/transport/limits"
	"chatd/transport/ws"
)

// testTimeout bounds every wait.
const testTimeout = 20 * time.Second

// server is a Handler over the fake hub, behind a real HTTP server. Tokens
// are "token-<user>"; revoke makes a user's token fail from then on.
type server struct {
	t       *testing.T
	hub     *hubtest.Hub
	handler *ws.Handler
	srv     *httptest.Server
	limits  *limits.Users

	tokenLife time.Duration // how long an identity stays valid; an hour when zero
	writes    socketWrites  // with recordWrites, what the server wrote to its sockets, write by write

	mu      sync.Mutex
	revoked map[string]bool
	// authenticated, when set, runs after a token was accepted, before the
	// connection is upgraded and registered.
	authenticated func(user string)
	// rechecked, when set, runs at the start of each session recheck.
	rechecked func()
	// recheckErr, when set, is what each session recheck returns: the
	// store cannot be read.
	recheckErr error
}

type serverOptions struct {
	opts         ws.Options
	smallBuffers bool          // small socket send buffers on the server side
	tokenLife    time.Duration // identities expire this long after the upgrade (default an hour)
	recordWrites bool          // keep every write to the server's sockets (server.writes)
}

func newServer(t *testing.T, o serverOptions) *server {
	t.Helper()
	s := &server{t: t, hub: hubtest.New(), revoked: map[string]bool{}, tokenLife: o.tokenLife}
	if s.tokenLife == 0 {
		s.tokenLife = time.Hour
	}
	opts := o.opts
	opts.Hub = s.hub
	if opts.Limits == nil {
		opts.Limits = limits.New(limits.Options{})
	}
	s.limits = opts.Limits
	opts.Authenticate, opts.Recheck = s.authenticate, s.recheck
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s.handler = ws.NewHandler(opts)
	s.srv = httptest.NewUnstartedServer(s.handler)
	if o.smallBuffers {
		s.srv.Listener = nettest.SmallSendBuffers(s.srv.Listener)
	}
	if o.recordWrites {
		s.srv.Listener = recordWrites{Listener: s.srv.Listener, w: &s.writes}
	}
	s.srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = s.handler.Shutdown(ctx)
		s.srv.Close()
	})
	return s
}

func (s *server) authenticate(_ context.Context, token string) (ws.Identity, error) {
	user, ok := strings.CutPrefix(token, "token-")
	s.mu.Lock()
	bad, hook := !ok || s.revoked[user], s.authenticated
	s.mu.Unlock()
	if bad {
		return ws.Identity{}, fmt.Errorf("%w: bad token", ws.ErrUnauthorized)
	}
	if hook != nil {
		hook(user)
	}
	exp := time.Now().Add(s.tokenLife)
	return ws.Identity{UserID: user, ExpiresAt: exp, AcceptedUntil: exp}, nil
}

func (s *server) recheck(_ context.Context, id ws.Identity) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rechecked != nil {
		s.rechecked()
	}
	if s.recheckErr != nil {
		return s.recheckErr
	}
	if s.revoked[id.UserID] || !time.Now().Before(id.ExpiresAt) {
		return fmt.Errorf("%w: session ended", ws.ErrUnauthorized)
	}
	return nil
}

func (s *server) revoke(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[user] = true
}

// socketWrites records the server's writes to its sockets.
type socketWrites struct {
	mu     sync.Mutex
	writes [][]byte
}

func (w *socketWrites) add(p []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, bytes.Clone(p))
}

// containing returns the writes that contain s.
func (w *socketWrites) containing(s string) [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out [][]byte
	for _, p := range w.writes {
		if bytes.Contains(p, []byte(s)) {
			out = append(out, p)
		}
	}
	return out
}

// recordWrites records the writes on the connections it accepts.
type recordWrites struct {
	net.Listener
	w *socketWrites
}

func (l recordWrites) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return recordedConn{Conn: c, w: l.w}, nil
}

type recordedConn struct {
	net.Conn
	w *socketWrites
}

func (c recordedConn) Write(p []byte) (int, error) {
	c.w.add(p)
	return c.Conn.Write(p)
}

func (s *server) url() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") }

// waitHub waits until cond holds on the fake hub.
func (s *server) waitHub(what string, cond func(*hubtest.Hub) bool) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if !s.hub.WaitFor(ctx, cond) {
		s.t.Fatalf("timed out waiting for %s", what)
	}
}

// frame is a server frame, decoded loosely.
type frame struct {
	Type    string          `json:"type"`
	ID      json.RawMessage `json:"id"`
	Code    string          `json:"code"`
	Message json.RawMessage `json:"message"`
	Text    string          `json:"text"`
	Seq     int64           `json:"seq"`
	Max     int64           `json:"maxFrameBytes"`
	Session string          `json:"session"`
	raw     string
}

// client is a test WebSocket whose frames a goroutine reads, unless it
// was dialled paused (then it reads nothing until resume).
type client struct {
	t      *testing.T
	c      *websocket.Conn
	frames chan frame
	closed chan struct{}
	err    error
	pings  chan struct{} // one per ping received
	resume chan struct{}
}

type dialOptions struct {
	user        string
	paused      bool // read nothing until resume is closed
	smallBuffer bool // small socket receive buffer
}

func (s *server) dial(o dialOptions) *client {
	s.t.Helper()
	cl := &client{t: s.t, frames: make(chan frame, 10_000), closed: make(chan struct{}),
		pings: make(chan struct{}, 10_000), resume: make(chan struct{})}
	h := http.Header{}
	h.Set("Authorization", "Bearer token-"+o.user)
	opts := &websocket.DialOptions{HTTPHeader: h, OnPingReceived: func(context.Context, []byte) bool {
		cl.pings <- struct{}{}
		return true
	}}
	if o.smallBuffer {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: nettest.SmallReceiveBuffer().DialContext}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, s.url(), opts)
	if err != nil {
		s.t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(16 << 20)
	cl.c = c
	s.t.Cleanup(func() { c.CloseNow() })
	if !o.paused {
		close(cl.resume)
	}
	go cl.read()
	return cl
}

func (cl *client) read() {
	defer close(cl.closed)
	<-cl.resume
	for {
		_, data, err := cl.c.Read(context.Background())
		if err != nil {
			cl.err = err
			return
		}
		f := frame{raw: string(data)}
		if err := json.Unmarshal(data, &f); err != nil {
			cl.err = err
			return
		}
		cl.frames <- f
	}
}

func (cl *client) write(s string) {
	cl.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := cl.c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		cl.t.Fatalf("write: %v", err)
	}
}

// next returns the next frame.
func (cl *client) next() frame {
	cl.t.Helper()
	select {
	case f := <-cl.frames:
		return f
	case <-cl.closed:
		select {
		case f := <-cl.frames:
			return f
		default:
		}
		cl.t.Fatalf("connection ended while waiting for a frame: %v", cl.err)
	case <-time.After(testTimeout):
		cl.t.Fatalf("no frame within %s", testTimeout)
	}
	return frame{}
}

// expect returns the next frame, which must be of type typ.
func (cl *client) expect(typ string) frame {
	cl.t.Helper()
	f := cl.next()
	if f.Type != typ {
		cl.t.Fatalf("got %.200s, want a %s frame", f.raw, typ)
	}
	return f
}

// closeReason waits for the connection to end and returns its close reason.
func (cl *client) closeReason() string {
	cl.t.Helper()
	cl.closeStatus()
	var ce websocket.CloseError
	if !errors.As(cl.err, &ce) {
		cl.t.Fatalf("connection ended without a close frame: %v", cl.err)
	}
	return ce.Reason
}

// closeStatus waits for the connection to end and returns its close code.
func (cl *client) closeStatus() websocket.StatusCode {
	cl.t.Helper()
	select {
	case <-cl.closed:
		return websocket.CloseStatus(cl.err)
	case <-time.After(testTimeout):
		cl.t.Fatalf("connection still open after %s", testTimeout)
	}
	return -1
}
