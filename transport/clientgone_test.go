package transport_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"

	"chatd/transport"
	"chatd/transport/httperr"
)

// requestLines is a slog handler that hands on each request log line.
type requestLines chan slog.Record

func (requestLines) Enabled(context.Context, slog.Level) bool { return true }
func (h requestLines) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "http request" {
		h <- r
	}
	return nil
}
func (h requestLines) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h requestLines) WithGroup(string) slog.Handler      { return h }

// TestClientGoneIsNoServerError: a request whose client left while the
// handler waited (the store call ends with context.Canceled) is logged at
// info level with status 499, not as a 500 internal error at error level,
// which let any client fill the error log (and page whoever watches it)
// by closing its connections mid-request.
func TestClientGoneIsNoServerError(t *testing.T) {
	t.Parallel()
	lines := make(requestLines, 4)
	entered := make(chan struct{})
	e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
		o.Logger = slog.New(lines)
		o.Register = func(r transport.Routes) {
			r.API.GET("/wait", func(c *gin.Context) {
				close(entered)
				<-c.Request.Context().Done() // a store call the client does not wait for
				httperr.AbortError(c, fmt.Errorf("load things: %w", c.Request.Context().Err()))
			})
		}
	}})
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/api/wait", nil)
	go func() {
		<-entered
		cancel()
	}()
	if res, err := e.srv.Client().Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("the request was answered %d", res.StatusCode)
	}
	line := <-lines
	var status int64
	line.Attrs(func(a slog.Attr) bool {
		if a.Key == "status" {
			status = a.Value.Int64()
		}
		return true
	})
	if line.Level != slog.LevelInfo || status != httperr.StatusClientClosed {
		t.Fatalf("request of a client that left logged at %v with status %d, want INFO and %d", line.Level, status, httperr.StatusClientClosed)
	}
}
