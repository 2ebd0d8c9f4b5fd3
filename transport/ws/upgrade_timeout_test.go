package ws_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/transport/internal/hubtest"
	"chatd/transport/ws"
)

// TestUpgradeTokenCheckBounded: the token check of an upgrade waits on
// the store at most DispatchTimeout (CHATD_REQUEST_TIMEOUT), then the
// upgrade is answered 503, as every other request's check is, instead of
// holding the request for as long as the store hangs.
func TestUpgradeTokenCheckBounded(t *testing.T) {
	t.Parallel()
	h := ws.NewHandler(ws.Options{Hub: hubtest.New(), DispatchTimeout: 50 * time.Millisecond,
		Authenticate: func(ctx context.Context, _ string) (ws.Identity, error) {
			<-ctx.Done() // a store that does not answer
			return ws.Identity{}, ctx.Err()
		},
		Recheck: func(context.Context, ws.Identity) error { return nil }})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"),
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer token-a"}}})
	if err == nil {
		c.CloseNow()
		t.Fatal("upgraded")
	}
	if res == nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("answer %v (err %v), want 503", res, err)
	}
}
