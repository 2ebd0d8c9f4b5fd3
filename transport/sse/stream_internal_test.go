package sse

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/hub/protocol"
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
