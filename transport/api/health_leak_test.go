package api_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"chatd/internal/syncbuf"
	"chatd/transport/api"
)

// failingPinger fails every ping with err.
type failingPinger struct{ err error }

func (p failingPinger) Ping(context.Context) error { return p.err }

// TestReadyzKeepsDetailsInTheLog: a 503 of /readyz, which anyone who
// reaches the server may read (nginx proxies it), names the reason only
// (the database, its writes, the cluster bus), never the error behind it,
// which may name internal addresses, instance names or a user; the log
// line keeps it whole for the operator. Before, the bus's error was in
// the answer ("not ready: the cluster bus is unavailable: <error>").
func TestReadyzKeepsDetailsInTheLog(t *testing.T) {
	t.Parallel()
	const secret = "dial tcp 10.0.0.7:4222: connection refused (user chatd)"
	for _, tc := range []struct {
		name, reason string
		opts         api.HealthOptions
		bus          error
	}{
		{"bus", "not ready: the cluster bus is unavailable", api.HealthOptions{Store: &flakyStore{}}, errors.New(secret)},
		{"ping", "not ready: the database does not answer", api.HealthOptions{Store: failingPinger{errors.New(secret)}}, nil},
		{"writes", "not ready: the database does not accept writes", api.HealthOptions{Store: &flakyStore{},
			Writes: writerFailed(errors.New(secret))}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := &syncbuf.Buffer{}
			tc.opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
			h := api.NewHealthWith(tc.opts)
			h.SetBusCheck(func(context.Context) error { return tc.bus })
			gin.SetMode(gin.TestMode)
			r := gin.New()
			h.Routes(r)
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			body := w.Body.String()
			if w.Code != 503 || !strings.Contains(body, `"message":"`+tc.reason+`"`) {
				t.Fatalf("/readyz = %d %s, want 503 with the message %q", w.Code, body, tc.reason)
			}
			if strings.Contains(body, "10.0.0.7") {
				t.Fatalf("/readyz shows the error behind it: %s", body)
			}
			if !strings.Contains(logs.String(), secret) {
				t.Fatalf("the log lacks the error:\n%s", logs)
			}
		})
	}
}

// writerFailed is a WriteStatus whose last write failed with err.
func writerFailed(err error) *writerStatus {
	w := &writerStatus{}
	w.err.Store(&err)
	return w
}
