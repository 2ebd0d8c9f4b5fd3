package sse

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/internal/hubtest"
	"chatd/transport/internal/outbox"
)

// deadlineRecorder records the last write deadline set on the response.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	last time.Time
}

func (r *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	r.last = t
	return nil
}

// TestStreamLeavesDeadline: a stream returns with a write deadline on its
// connection, for what net/http writes once the handler is done (what the
// response still buffers, the end of the chunked body). Before, it cleared
// the deadline as it returned: a client that stopped reading then held
// the connection for as long as it liked, unless a middleware set one
// again.
func TestStreamLeavesDeadline(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.ReleaseMode)
	h := NewHandler(Options{Hub: hubtest.New(), WriteTimeout: time.Minute})
	for _, code := range []protocol.CloseCode{protocol.CloseSlowClient, protocol.CloseUnauthorized} {
		rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
		c, _ := gin.CreateTestContext(rec)
		c.Request = httptest.NewRequest("GET", "/api/events", nil)
		s := &stream{queue: outbox.New(8, 1<<20), closing: make(chan struct{}), stalled: time.Millisecond}
		s.Close(code, "") // the stream ends at once
		start := time.Now()
		h.stream(c, s, func(*protocol.Frame) bool { return false })
		if rec.last.Before(start.Add(time.Minute)) {
			t.Fatalf("closed with %d: write deadline left %v, want WriteTimeout after the end", code, rec.last)
		}
	}
}

// keepAliveBlocker is a response whose keep-alive write blocks, as on a
// client that stopped reading, until release is closed.
type keepAliveBlocker struct {
	*httptest.ResponseRecorder
	blocked chan struct{} // closed once a keep-alive write blocks
	release chan struct{}
	once    sync.Once
}

func (r *keepAliveBlocker) WriteString(s string) (int, error) {
	if strings.Contains(s, "keep-alive") {
		r.once.Do(func() { close(r.blocked) })
		<-r.release
	}
	return r.ResponseRecorder.WriteString(s)
}

func (r *keepAliveBlocker) SetWriteDeadline(time.Time) error { return nil }

// TestStalledKeepAliveNotBusy: a stream whose writer is stuck in a
// keep-alive write (its client stopped reading) for longer than
// StalledWrite says it is not busy, though frames wait behind it, as
// TestStalledStreamNotBusy says of an event. Before, the keep-alive write
// was not timed: Busy fell back to the queue, and the hub kept batching
// the conversation's deltas for every tab until the write timeout ended
// the stream.
func TestStalledKeepAliveNotBusy(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.ReleaseMode)
	h := NewHandler(Options{Hub: hubtest.New(), KeepAlive: time.Millisecond, WriteTimeout: time.Minute})
	rec := &keepAliveBlocker{ResponseRecorder: httptest.NewRecorder(), blocked: make(chan struct{}), release: make(chan struct{})}
	c, _ := gin.CreateTestContext(rec)
	c.Request = httptest.NewRequest("GET", "/api/events", nil)
	s := &stream{queue: outbox.New(8, 1<<20), closing: make(chan struct{}), stalled: 20 * time.Millisecond}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.stream(c, s, func(*protocol.Frame) bool { return false })
	}()
	defer func() { <-done }()
	defer s.Close(protocol.CloseGoingAway, "")
	defer close(rec.release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-rec.blocked:
	case <-ctx.Done():
		t.Fatal("no keep-alive written")
	}
	s.Deliver(protocol.Conversation("updated", persistence.Conversation{ID: persistence.NewID()}))
	for s.Busy() {
		select {
		case <-ctx.Done():
			t.Fatal("a stream stuck in a keep-alive write still says it is busy")
		case <-time.After(time.Millisecond):
		}
	}
}
