package transport

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// DefaultBodyReadTimeout is how long a request body may take to arrive.
const DefaultBodyReadTimeout = 30 * time.Second

// bodyDeadline gives a request's body timeout to arrive whole: the
// connection's read deadline is set when the handler starts and cleared
// once the body has been read to its end, so a client sending a body a
// byte at a time is cut off, while the streams that follow a body (an SSE
// answer) and requests without a body (WebSocket upgrades, event streams,
// whose connection the server keeps reading to notice the client leaving)
// are never given one. http.Server.ReadTimeout cannot do this: it would
// cut every long-lived stream too.
func bodyDeadline(timeout time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			c.Next()
			return
		}
		rc := http.NewResponseController(c.Writer)
		if err := rc.SetReadDeadline(time.Now().Add(timeout)); err == nil {
			r.Body = &deadlineBody{ReadCloser: r.Body, clear: func() { _ = rc.SetReadDeadline(time.Time{}) }}
		}
		c.Next()
	}
}

// deadlineBody clears the read deadline when the body ends.
type deadlineBody struct {
	io.ReadCloser
	once  sync.Once
	clear func()
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.once.Do(b.clear)
	}
	return n, err // a timeout wraps os.ErrDeadlineExceeded: httperr.DecodeJSON answers 408
}
