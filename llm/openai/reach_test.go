package openai_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"chatd/llm"
)

// TestUnreachableSaysWhy: a provider that cannot be reached says why
// when the cause is one its operator can fix: a TLS certificate the
// client does not trust (a self-signed one), or https:// to a server
// that speaks plain HTTP; neither is retried (no wait cures it), where
// both were "Could not reach the model provider." after two retries. A
// refused connection says so and is still retried (a server starting).
func TestUnreachableSaysWhy(t *testing.T) {
	t.Parallel()
	counting := func(n *atomic.Int32) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) })
	}
	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		var n atomic.Int32
		srv := httptest.NewUnstartedServer(counting(&n))
		var handshakes atomic.Int32
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				handshakes.Add(1)
			}
		}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		r := stream(testCtx(t), newClient(srv.URL+"/v1", nil), "hi", 0)
		checkUnreachable(t, r.err, "TLS certificate was not accepted (x509: certificate signed by unknown authority)")
		if got := handshakes.Load(); got != 1 {
			t.Fatalf("%d connections, want 1: not retried", got)
		}
	})
	t.Run("https to plain HTTP", func(t *testing.T) {
		t.Parallel()
		var n, conns atomic.Int32
		srv := httptest.NewUnstartedServer(counting(&n))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		r := stream(testCtx(t), newClient(strings.Replace(srv.URL, "http://", "https://", 1)+"/v1", nil), "hi", 0)
		checkUnreachable(t, r.err, "http://")
		if got := conns.Load(); got != 1 {
			t.Fatalf("%d connections, want 1: not retried", got)
		}
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String() + "/v1"
		ln.Close()
		r := stream(testCtx(t), newClient(url, nil), "hi", 0)
		checkUnreachable(t, r.err, "refused")
	})
}

func checkUnreachable(t *testing.T, err error, says string) {
	t.Helper()
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindConnection || !strings.HasPrefix(e.Message, "Could not reach the model provider") ||
		!strings.Contains(e.Message, says) {
		t.Fatalf("err %v, want connection saying %q", err, says)
	}
}
