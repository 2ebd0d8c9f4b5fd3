package transport_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"chatd/persistence"
	"chatd/transport"
	"chatd/transport/auth"
	"chatd/transport/httperr"
)

// requestLines is a slog handler that hands on each request log line and
// keeps every other line at WARN or above.
type requestLines struct {
	lines chan slog.Record
	mu    *sync.Mutex
	loud  *[]string
}

func newRequestLines() requestLines {
	return requestLines{lines: make(chan slog.Record, 4), mu: &sync.Mutex{}, loud: new([]string)}
}

func (requestLines) Enabled(context.Context, slog.Level) bool { return true }
func (h requestLines) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "http request" {
		h.lines <- r
		return nil
	}
	if r.Level >= slog.LevelWarn {
		h.mu.Lock()
		*h.loud = append(*h.loud, r.Level.String()+" "+r.Message)
		h.mu.Unlock()
	}
	return nil
}
func (h requestLines) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h requestLines) WithGroup(string) slog.Handler      { return h }

// others is what was logged at WARN or above besides the request lines.
func (h requestLines) others() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), *h.loud...)
}

// hangingTokenCheck is a store that does not answer the token check's
// read: it says so on entered and waits for the request's context.
type hangingTokenCheck struct{ entered chan struct{} }

func (s hangingTokenCheck) TokenVersion(ctx context.Context, _ string) (int64, error) {
	close(s.entered)
	<-ctx.Done()
	return 0, ctx.Err()
}

func (s hangingTokenCheck) UserByID(ctx context.Context, id string) (persistence.User, error) {
	_, err := s.TokenVersion(ctx, id)
	return persistence.User{}, err
}

// TestClientGoneIsNoServerError: a request whose client left while the
// server waited (on the store, in the route or in the token check in
// front of it) is logged at info level with status 499 and counted so,
// not as a 500 internal error at error level nor as a 503 at warn, which
// let any client fill the log (and page whoever watches it) by closing
// its connections mid-request. The 503 a route or the token check makes
// of a store read that failed (httperr.Unavailable wrapping the cut) is
// no exception: its cause was the client leaving.
func TestClientGoneIsNoServerError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		path  string
		abort func(c *gin.Context, err error) // nil: the route is behind the token check
	}{
		{"route's store call", "/api/wait", func(c *gin.Context, err error) {
			httperr.AbortError(c, fmt.Errorf("load things: %w", err))
		}},
		{"route's 503 of the cut read", "/api/wait", func(c *gin.Context, err error) {
			httperr.AbortError(c, httperr.Unavailable("the model list is unavailable; retry", fmt.Errorf("list models: %w", err)))
		}},
		{"token check", "/api/conversations", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs, entered := newRequestLines(), make(chan struct{})
			registry := prometheus.NewRegistry()
			e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
				o.Logger = slog.New(logs)
				o.Metrics.Registerer, o.Metrics.Gatherer = registry, registry
				if tc.abort == nil {
					authn, err := auth.NewAuthenticator(hangingTokenCheck{entered}, auth.Options{Secret: testSecret})
					if err != nil {
						t.Fatalf("authenticator: %v", err)
					}
					o.Auth = authn
					return
				}
				o.Register = func(r transport.Routes) {
					r.API.GET("/wait", func(c *gin.Context) {
						close(entered)
						<-c.Request.Context().Done() // a store call the client does not wait for
						tc.abort(c, c.Request.Context().Err())
					})
				}
			}})
			authn, err := auth.NewAuthenticator(hangingTokenCheck{}, auth.Options{Secret: testSecret})
			if err != nil {
				t.Fatalf("authenticator: %v", err)
			}
			token, _, err := authn.Issue(persistence.User{ID: persistence.NewID()})
			if err != nil {
				t.Fatalf("issue: %v", err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+tc.path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			go func() {
				<-entered
				cancel()
			}()
			if res, err := e.srv.Client().Do(req); err == nil {
				res.Body.Close()
				t.Fatalf("the request was answered %d", res.StatusCode)
			}
			wantClientGone(t, logs, registry, http.MethodGet, tc.path)
		})
	}
}

// TestClientGoneMidBody: a request whose client left while sending its
// body (Content-Length 100, three bytes, then the connection closed) is
// the client gone: logged at info with status 499 and counted so, as
// docs/api.md says. Before, the cut body was read as JSON that ends too
// soon: 400 "the body is not valid JSON", counted as the client's error.
func TestClientGoneMidBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, path string
		authed     bool
	}{
		{"a body that may be left out", "/api/conversations", true},
		{"a body required", "/api/auth/login", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs, registry := newRequestLines(), prometheus.NewRegistry()
			e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
				o.Logger = slog.New(logs)
				o.Metrics.Registerer, o.Metrics.Gatherer = registry, registry
			}})
			head := "POST " + tc.path + " HTTP/1.1\r\nHost: chatd\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
			if tc.authed {
				u := e.register("Mid")
				<-logs.lines // the registration's
				head += "Authorization: Bearer " + u.token + "\r\n"
			}
			conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write([]byte(head + "\r\n{\"t")); err != nil {
				t.Fatal(err)
			}
			_ = conn.Close()
			wantClientGone(t, logs, registry, http.MethodPost, tc.path)
		})
	}
}

// wantClientGone fails unless the next request line logs, at info, the
// status of a client that left (499), counted so for method route, and
// nothing was logged at WARN or above.
func wantClientGone(t *testing.T, logs requestLines, registry prometheus.Gatherer, method, route string) {
	t.Helper()
	line := <-logs.lines
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
	if n := requestsCounted(t, registry, method, route, "499"); n != 1 {
		t.Errorf("chatd_http_requests_total{route=%q,code=\"499\"} = %v, want 1", route, n)
	}
	if loud := logs.others(); len(loud) > 0 {
		t.Errorf("logged at WARN or above: %q", loud)
	}
}

// requestsCounted is chatd_http_requests_total of method route answered code.
func requestsCounted(t *testing.T, g prometheus.Gatherer, method, route, code string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != "chatd_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["code"] == code && labels["method"] == method {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
