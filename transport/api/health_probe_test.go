package api_test

import (
	"chatd/internal/syncbuf"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/transport/api"
)

// gatedStore answers pings; its probe writes wait for release (or for
// their context, as a SQLite write queued behind a group commit does) and
// then return result.
type gatedStore struct {
	started chan struct{} // one value per probe write begun
	release chan struct{}
	result  error
	probes  atomic.Int32
}

func newGatedStore(result error) *gatedStore {
	return &gatedStore{started: make(chan struct{}, 16), release: make(chan struct{}), result: result}
}

func (s *gatedStore) Ping(context.Context) error { return nil }

func (s *gatedStore) ProbeWrite(ctx context.Context) error {
	s.probes.Add(1)
	s.started <- struct{}{}
	select {
	case <-s.release:
		return s.result
	case <-ctx.Done():
		return ctx.Err()
	}
}

// healthRouter serves h's routes.
func healthRouter(h *api.Health) *gin.Engine {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	h.Routes(r)
	return r
}

// serveReadyz answers GET /readyz under ctx on its own goroutine; the
// channel gets the status once the handler has returned.
func serveReadyz(ctx context.Context, r http.Handler) <-chan int {
	code := make(chan int, 1)
	go func() {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil).WithContext(ctx))
		code <- w.Code
	}()
	return code
}

// TestReadyzCallerHangingUpDuringProbe: a client that hangs up its own
// /readyz while the probe write is in flight neither fails the probe nor
// has its cancellation cached: the load balancer's /readyz right after is
// 200, and no loss of readiness is logged. Before, the probe ran under the
// caller's context and its context.Canceled was served to every caller
// for ProbeInterval (5 s by default).
func TestReadyzCallerHangingUpDuringProbe(t *testing.T) {
	t.Parallel()
	store, logs := newGatedStore(nil), &syncbuf.Buffer{}
	h := api.NewHealthWith(api.HealthOptions{Store: store, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	r := healthRouter(h)

	ctx, hangUp := context.WithCancel(t.Context())
	anon := serveReadyz(ctx, r)
	<-store.started
	hangUp()
	<-anon // its handler has returned: it saw its own cancellation
	close(store.release)

	if got := readyz(t, h); got != http.StatusOK {
		t.Fatalf("/readyz after another client hung up during the probe = %d, want 200", got)
	}
	if n := store.probes.Load(); n != 1 {
		t.Fatalf("%d probe writes, want 1 (the hung-up one completed and is reused)", n)
	}
	if strings.Contains(logs.String(), "not ready") {
		t.Fatalf("a client hanging up was logged as lost readiness:\n%s", logs)
	}
}

// TestReadyzConcurrentCallersShareOneProbe: callers arriving while a probe
// write is in flight wait for it rather than starting their own, and all
// get its result.
func TestReadyzConcurrentCallersShareOneProbe(t *testing.T) {
	t.Parallel()
	store := newGatedStore(errors.New("disk I/O error: no space left on device"))
	h := api.NewHealthWith(api.HealthOptions{Store: store, ProbeInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	r := healthRouter(h)

	first := serveReadyz(t.Context(), r)
	<-store.started
	const others = 4
	var wg sync.WaitGroup
	codes := make(chan int, others)
	for range others {
		wg.Go(func() { codes <- <-serveReadyz(t.Context(), r) })
	}
	close(store.release)
	wg.Wait()
	close(codes)
	if got := <-first; got != http.StatusServiceUnavailable {
		t.Fatalf("first caller: %d, want 503", got)
	}
	for got := range codes {
		if got != http.StatusServiceUnavailable {
			t.Fatalf("concurrent caller: %d, want the failed probe's 503", got)
		}
	}
	if n := store.probes.Load(); n != 1 {
		t.Fatalf("%d probe writes for %d concurrent callers, want 1", n, others+1)
	}
}
