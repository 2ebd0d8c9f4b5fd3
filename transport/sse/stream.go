package sse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/hub"
	"chatd/hub/protocol"
	"chatd/internal/waitctx"
	"chatd/persistence"
	"chatd/transport/auth"
	"chatd/transport/httperr"
	"chatd/transport/internal/outbox"
	"chatd/transport/internal/reqtimeout"
	"chatd/transport/internal/slow"
)

// stream is one SSE response, seen by the hub as a Subscriber. The
// handler's goroutine is its only writer.
type stream struct {
	id      string
	userID  string
	tv      int64         // the token's version (hub.Session)
	queue   *outbox.Queue // grows while frames pile up
	closing chan struct{}
	mu      sync.Mutex         // orders Deliver and Close: nothing is queued once closed
	closed  bool               // Close ran
	code    protocol.CloseCode // why the stream was closed; set once, before closing is closed
	reason  string             // with code
	stalled time.Duration      // Options.StalledWrite
	expiry  *time.Timer        // closes the stream when its token expires; nil without an expiry
	metrics Metrics            // Options.Metrics
	// writeAt is when the event (or keep-alive) being written began (ns after clockBase,
	// plus 1), 0 between events.
	writeAt atomic.Int64
}

// clockBase is what writeAt counts from (a monotonic clock).
var clockBase = time.Now()

func sinceBase() int64 { return int64(time.Since(clockBase)) + 1 }

// UserID implements hub.Subscriber.
func (s *stream) UserID() string { return s.userID }

// TokenVersion implements hub.Session.
func (s *stream) TokenVersion() int64 { return s.tv }

// ConnectionID implements hub.Subscriber.
func (s *stream) ConnectionID() string { return s.id }

// Deliver implements hub.Subscriber; a client too slow to keep its queue
// from filling up, in frames or in bytes, is disconnected (it resumes with
// Last-Event-ID). Once the stream is closed (a logout, a password change,
// a shutdown) nothing more is queued: the frames queued before are written,
// then the closed event, and nothing the user's conversations produce
// after it.
func (s *stream) Deliver(f *protocol.Frame) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	queued := s.queue.Push(f)
	s.mu.Unlock()
	if !queued && s.shut(protocol.CloseSlowClient, ReasonQueueFull) {
		s.metrics.SlowClientDisconnected(slow.QueueFull)
	}
}

// ReasonQueueFull is the reason of the closed event that ends a stream
// whose queue filled up (code 4408), as a WebSocket's close frame says it.
const ReasonQueueFull = "too slow: send queue full; reconnect and resume"

// reasonWriteTimeout is why a stream whose write outlived WriteTimeout
// was closed.
const reasonWriteTimeout = "too slow: write timed out"

// cut ends the stream after a write begun at began failed with err: one
// the write deadline cut (the client stopped reading) closes a stream
// still live as a slow client's.
func (s *stream) cut(began time.Time, timeout time.Duration, err error) {
	if (errors.Is(err, os.ErrDeadlineExceeded) || time.Since(began) >= timeout) &&
		s.shut(protocol.CloseSlowClient, reasonWriteTimeout) {
		s.metrics.SlowClientDisconnected(slow.WriteTimeout)
	}
}

// Busy implements hub.Busy: frames wait or one is being written. An event
// being written for longer than StalledWrite means the client stopped
// reading: the stream is then not busy for the hub, whose other tabs
// should not wait for it.
func (s *stream) Busy() bool {
	if at := s.writeAt.Load(); at != 0 {
		return time.Duration(sinceBase()-at) < s.stalled
	}
	return s.queue.Len() > 0
}

// WatchDrain implements hub.DrainWatcher: the stream's writer calls the
// hub's Drained once every queued frame is written, woken in case it went
// idle just before the request.
func (s *stream) WatchDrain() { s.queue.WatchDrain() }

// drained tells h the queue is written, if it asked; only the writer calls it.
func (s *stream) drained(h Hub) {
	if s.queue.Len() == 0 && s.queue.Drained() {
		h.Drained(s)
	}
}

// Close implements hub.Subscriber: the response ends. The first reason wins.
func (s *stream) Close(code protocol.CloseCode, reason string) { s.shut(code, reason) }

// shut closes the stream; false if it was closed already.
func (s *stream) shut(code protocol.CloseCode, reason string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.closed, s.code, s.reason = true, code, reason
	close(s.closing)
	return true
}

// drains reports whether the frames still queued when the stream was
// closed are written before it ends: on shutdown (the done frames of
// interrupted answers) and at logout, not for a client too slow to take
// them.
func (s *stream) drains() bool {
	return s.code == protocol.CloseGoingAway || s.code == protocol.CloseUnauthorized
}

// says reports whether the stream ends with a closed event: when it drains,
// and when its queue filled up (its frames are dropped, the client reconnects
// and resumes as after a WebSocket's 4408), not when a write timed out (the
// client stopped reading: nothing more reaches it).
func (s *stream) says() bool {
	return s.drains() || (s.code == protocol.CloseSlowClient && s.reason != reasonWriteTimeout)
}

func connID(sub hub.Subscriber) string {
	if sub == nil {
		return ""
	}
	return sub.ConnectionID()
}

// ReasonTokenExpired is the reason of the closed event that ends a stream
// when the token it was opened with expires (code 4401), as a WebSocket's
// close frame says it.
const ReasonTokenExpired = "token expired"

// open registers a new stream with the hub and the handler. A stream
// takes one of its user's connection slots (shared with WebSockets) until
// close; none left is a 429 (a send or regenerate is then answered 202
// instead: start). It ends when the token of who is no longer accepted
// (who.AcceptedUntil: its expiry plus the leeway). Once
// Shutdown has begun, a new stream is refused with a 503 before it
// registers, as a WebSocket is closed with 1001 before it does: the hub
// has already handed its last frames to the subscribers it had.
func (h *Handler) open(ctx context.Context, who auth.Identity) (*stream, error) {
	if !h.opts.Limits.AcquireConn(who.UserID) {
		return nil, httperr.RateLimited("too many open connections for this user", 10*time.Second)
	}
	return h.opened(ctx, who)
}

// opened is open once the connection slot is taken (AcquireConn): it is
// released when the stream is refused, else by close.
func (h *Handler) opened(ctx context.Context, who auth.Identity) (*stream, error) {
	s := &stream{id: persistence.NewID(), userID: who.UserID, tv: who.TokenVersion, stalled: h.opts.StalledWrite,
		queue: outbox.New(h.opts.QueueSize, h.opts.QueueBytes), closing: make(chan struct{}), metrics: h.opts.Metrics}
	if !h.track(s) {
		h.opts.Limits.ReleaseConn(who.UserID)
		return nil, httperr.Unavailable(shuttingDown, nil)
	}
	if !who.AcceptedUntil.IsZero() {
		// As a WebSocket is closed with 4401 when its token is no longer
		// accepted (its expiry plus the leeway), the stream ends then,
		// with a closed event saying so.
		s.expiry = time.AfterFunc(time.Until(who.AcceptedUntil), func() {
			s.Close(protocol.CloseUnauthorized, ReasonTokenExpired)
		})
	}
	h.opts.Hub.Register(s)
	// Bounded as the start of an answer is: a store that hangs must not
	// keep the request, and its connection slot, for as long as it hangs.
	cctx, cancel := reqtimeout.Bound(ctx, h.opts.RequestTimeout)
	defer cancel()
	if err := h.confirmSession(cctx, who, "after registering its event stream"); err != nil {
		h.close(s)
		return nil, err
	}
	return s, nil
}

// confirmSession checks the session of who once more, when (logged on a
// failure) says at which step: after its stream is registered with the
// hub, since a logout (a password change, an account deletion) that landed
// between the request's authentication and the registration closed the
// user's streams before this one was among them, and would leave it open
// until the accounts' next periodic check; and before a send or regenerate
// answered 202 starts an answer, since its body may have taken long to
// arrive. A revoked session is a 401; a store that cannot answer is a 503
// unavailable, as a WebSocket send is refused then: nothing streams to a
// session that may have ended.
func (h *Handler) confirmSession(ctx context.Context, who auth.Identity, when string) error {
	if h.opts.Recheck == nil {
		return nil
	}
	err := h.opts.Recheck(ctx, who)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, auth.ErrUnauthorized):
		return httperr.InvalidToken("signed out, or the account was removed")
	case !errors.Is(ctx.Err(), context.Canceled): // the client did not leave: the store failed or hung
		h.log.Warn("recheck session "+when, "user", who.UserID, "err", err)
	}
	return httperr.Unavailable("cannot check the session right now; retry", fmt.Errorf("recheck session %s: %w", when, err))
}

// shuttingDown is the message of a request refused once Shutdown has
// begun.
const shuttingDown = "the server is shutting down; retry"

// track adds s to the handler's streams, unless Shutdown has begun.
func (h *Handler) track(s *stream) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.streams[s] = struct{}{}
	h.running.Add(1)
	return true
}

func (h *Handler) close(s *stream) {
	if s.expiry != nil {
		s.expiry.Stop()
	}
	h.opts.Hub.Detach(s)
	h.mu.Lock()
	delete(h.streams, s)
	h.mu.Unlock()
	h.opts.Limits.ReleaseConn(s.userID)
	h.running.Done()
}

// Shutdown ends every open stream after the frames already queued (the
// hub's Shutdown has queued the done frames of interrupted answers).
func (h *Handler) Shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closing = true
	for s := range h.streams {
		s.Close(protocol.CloseGoingAway, protocol.ReasonShutdown)
	}
}

// Wait waits, after Shutdown, for the streams it closed to have written
// what was queued and their closed event, or for ctx: the HTTP server may
// then cut the connections left without losing those.
func (h *Handler) Wait(ctx context.Context) error {
	if err := waitctx.Wait(ctx, &h.running); err != nil {
		return fmt.Errorf("wait for the event streams to close: %w", err)
	}
	return nil
}

// pump writes the stream's frames as events until the done frame of
// messageID ("" ends once the queue is written), the client leaves, or the
// stream is closed.
func (h *Handler) pump(c *gin.Context, s *stream, messageID string) {
	if messageID == "" {
		h.stream(c, s, func(*protocol.Frame) bool { return s.queue.Len() == 0 })
		return
	}
	h.stream(c, s, func(f *protocol.Frame) bool { return f.IsDone(messageID) })
}

// stream writes the response headers, then the stream's frames as events
// until last says a frame was the last, the client leaves, or the stream is
// closed; for a HEAD (answered as the GET: transport's headAsGet), the
// headers alone. Comment lines keep idle proxies from closing it. Every write has
// WriteTimeout to reach the socket: a client that stops reading makes it
// fail, which ends the response and frees the stream's connection slot.
// What net/http writes once the handler returns (what the response still
// buffers, the end of the chunked body) has one more WriteTimeout: a
// client that stops reading then cannot hold the connection for ever.
// Events are written straight into the response, whose own buffer (net/http
// keeps one per response) gathers them until the flush: a stream adds no
// buffer of its own.
func (h *Handler) stream(c *gin.Context, s *stream, last func(*protocol.Frame) bool) {
	w := c.Writer
	rc := http.NewResponseController(w)
	deadline := func() { _ = rc.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout)) }
	deadline()
	defer deadline()
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream; charset=utf-8")
	hd.Set("Cache-Control", "no-store, no-transform") // a user's messages: never kept in a cache
	hd.Set("X-Accel-Buffering", "no")
	hd.Set("Connection", "keep-alive")
	w.WriteHeader(http.StatusOK)
	if c.Request.Method == http.MethodHead {
		return // the headers alone: a HEAD holds no stream open
	}
	keep := time.NewTicker(h.opts.KeepAlive)
	defer keep.Stop()
	// comment writes a comment line and flushes it; false ends the stream.
	comment := func(began time.Time, text string) bool {
		_, err := w.WriteString(text)
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			s.cut(began, h.opts.WriteTimeout, err)
		}
		return err == nil
	}
	// A first comment line sends the headers on their way at once: proxies
	// (nginx over HTTP/2) hold them until the first body byte.
	if !comment(time.Now(), ": open\n\n") {
		return
	}
	// event writes one frame and flushes once none waits; false ends the stream.
	event := func(f *protocol.Frame) bool {
		s.writeAt.Store(sinceBase())
		defer s.writeAt.Store(0)
		began := time.Now()
		deadline()
		err, end := writeEvent(w, f), last(f)
		if err == nil && (end || s.queue.Len() == 0) {
			err = rc.Flush()
		}
		if err != nil {
			s.cut(began, h.opts.WriteTimeout, err)
		}
		return err == nil && !end
	}
	// keepAlive writes a comment line; false ends the stream. Timed as an
	// event is: a client that stopped reading blocks it as well, and the
	// frames queued meanwhile must not make the stream say it is busy.
	keepAlive := func() bool {
		s.writeAt.Store(sinceBase())
		defer s.writeAt.Store(0)
		began := time.Now()
		deadline()
		return comment(began, ": keep-alive\n\n")
	}
	// end writes, when the stream drains, what was queued before it was
	// closed, and when it says why it ends, the closed event, all within
	// one WriteTimeout.
	end := func() {
		if s.says() {
			deadline()
			if s.drains() {
				drain(w, s, last)
			}
			// Why it ends, as a WebSocket's close frame says it: a client
			// told "account deleted" forgets the user's drafts.
			_ = writeEvent(w, protocol.Closed(s.code, s.reason))
			_ = rc.Flush()
		}
	}
	for {
		select {
		case <-s.closing: // before any frame: the frames left go out under end's one deadline
			end()
			return
		default:
		}
		select {
		case f := <-s.queue.C():
			s.queue.Taken(f)
			if !event(f) {
				return
			}
		case <-s.queue.More():
			if f, ok := s.queue.Pop(); ok && !event(f) {
				return
			}
		case <-keep.C:
			if !keepAlive() {
				return
			}
		case <-s.closing:
			end()
			return
		case <-c.Request.Context().Done():
			return
		}
		s.drained(h.opts.Hub)
	}
}

// drain writes what was queued before the stream was closed (on shutdown,
// the done frames), within the one write deadline set before it.
func drain(w eventWriter, s *stream, last func(*protocol.Frame) bool) {
	for {
		f, ok := s.queue.Pop()
		if !ok || writeEvent(w, f) != nil || last(f) {
			return
		}
	}
}

// eventWriter is what events are written to: the response.
type eventWriter interface {
	io.Writer
	io.StringWriter
}

// writeEvent writes f as one event. Frame JSON holds no raw newlines, so
// data is a single line. The response buffers the pieces; the first error
// (the socket failed) is returned.
func writeEvent(w eventWriter, f *protocol.Frame) error {
	ew := errWriter{w: w}
	ew.str("event: ", f.Type, "\n")
	if f.Type == protocol.TypeDelta || f.Type == protocol.TypeDone || f.Type == protocol.TypeReasoning {
		ew.str("id: ", eventID(f), "\n")
	}
	ew.str("data: ")
	if ew.err == nil {
		_, ew.err = w.Write(f.Data)
	}
	ew.str("\n\n")
	return ew.err
}

// errWriter writes strings until the first error, which it keeps.
type errWriter struct {
	w   eventWriter
	err error
}

func (e *errWriter) str(parts ...string) {
	for _, p := range parts {
		if e.err != nil {
			return
		}
		_, e.err = e.w.WriteString(p)
	}
}
