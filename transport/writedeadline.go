package transport

import (
	"bufio"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/transport/sse"
)

// DefaultResponseWriteTimeout is how long each piece of a REST response
// may take to reach the connection.
const DefaultResponseWriteTimeout = 30 * time.Second

// responseWriteChunk is the most of a response written under one write
// deadline: a response of many megabytes to a slow but reading client
// goes on for as long as each piece is taken in time.
const responseWriteChunk = 64 << 10

// writeDeadline gives every write of a REST response timeout to reach the
// connection, each piece of at most responseWriteChunk bytes under a
// deadline of its own: a client that sends a request and stops reading the
// answer (a page of 500 messages, an export) has its connection cut, and
// the handler, with the answer it holds in memory, returns. After the
// handler a last deadline covers what net/http still buffers. The live
// channel's streams manage their own deadlines while they run (each event
// or frame has the live channel's write timeout) and get none here; a
// deadline left by an earlier response on the same connection is cleared
// for them. Once their handler returns they get the same last deadline:
// what net/http writes then (a JSON error such as the authentication's
// 401, the end of a stream) is bounded too, or a client that pipelines
// requests and never reads the answers would hold the connection, its
// goroutine and its listener slot for ever. A WebSocket's connection,
// hijacked, belongs to the WebSocket library by then and is left alone.
// Requests without a route (the web client) are REST responses too.
func writeDeadline(timeout time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		rc := http.NewResponseController(c.Writer)
		if liveStream(c) {
			_ = rc.SetWriteDeadline(time.Time{})
			w := &hijackWatch{ResponseWriter: c.Writer}
			c.Writer = w
			c.Next()
			c.Writer = w.ResponseWriter
			if !w.hijacked {
				_ = rc.SetWriteDeadline(time.Now().Add(timeout))
			}
			return
		}
		if rc.SetWriteDeadline(time.Now().Add(timeout)) != nil { // a writer without deadlines (tests)
			c.Next()
			return
		}
		w := &deadlineWriter{ResponseWriter: c.Writer, rc: rc, timeout: timeout}
		c.Writer = w
		c.Next()
		c.Writer = w.ResponseWriter
		// For the rest net/http writes once the handler returns; the next
		// request on the connection sets its own.
		_ = rc.SetWriteDeadline(time.Now().Add(timeout))
	}
}

// liveStream reports whether the request is one of the live channel's
// streams (docs/protocol.md): the WebSocket, the event streams, and sends
// and regenerates (POST) that ask for an event stream. A GET of
// /api/conversations/:id/messages is the REST page of older messages,
// whatever its Accept header says: its route pattern is the send's.
func liveStream(c *gin.Context) bool {
	switch c.FullPath() {
	case "/ws", "/api/events", "/api/conversations/:id/stream":
		return true
	case "/api/conversations/:id/messages", "/api/conversations/:id/regenerate":
		// as the SSE handler decides to stream
		return c.Request.Method == http.MethodPost && sse.AcceptsEvents(c.Request)
	}
	return false
}

// deadlineWriter sets the connection's write deadline before each piece
// of the response it writes.
type deadlineWriter struct {
	gin.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	return writePieces(w, p, w.ResponseWriter.Write)
}

func (w *deadlineWriter) WriteString(s string) (int, error) {
	return writePieces(w, s, w.ResponseWriter.WriteString)
}

// writePieces writes p with write, responseWriteChunk bytes at a time,
// each under a write deadline of its own.
func writePieces[T string | []byte](w *deadlineWriter, p T, write func(T) (int, error)) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), responseWriteChunk)
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
		m, err := write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// hijackWatch records whether the connection was taken over (a WebSocket
// upgrade): its deadlines are then no longer net/http's to set.
type hijackWatch struct {
	gin.ResponseWriter
	hijacked bool
}

func (w *hijackWatch) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := w.ResponseWriter.Hijack()
	if err == nil {
		w.hijacked = true
	}
	return conn, brw, err
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *hijackWatch) Unwrap() http.ResponseWriter { return w.ResponseWriter }
