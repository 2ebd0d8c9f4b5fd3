package sse_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"chatd/transport/sse"
)

// TestStreamEndsAtTokenExpiry: an event stream ends when the token it was
// opened with expires, with a last closed event saying so (4401, "token
// expired"), as a WebSocket is closed with 4401 then. Before, the stream
// went on delivering the user's frames for as long as the client kept it
// open.
func TestStreamEndsAtTokenExpiry(t *testing.T) {
	t.Parallel()
	const want = `{"type":"closed","closeCode":4401,"reason":"token expired"}`
	for _, tc := range []struct {
		name      string
		expiresIn time.Duration
	}{
		{"expires while open", 50 * time.Millisecond},
		{"no longer accepted as it opens", -time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, sse.Options{}, false)
			// Bounds the wait on the code before, whose stream never ends.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.srv.URL+"/api/events", nil)
			req.Header.Set("Authorization", "Bearer token-u")
			req.Header.Set("X-Expires-In", tc.expiresIn.String())
			res, err := s.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET /api/events: %d", res.StatusCode)
			}
			r := bufio.NewReader(res.Body)
			if ev, err := readEvent(t, r); err != nil || ev.name != "closed" || ev.data != want {
				t.Fatalf("event %+v, %v; want closed %s", ev, err, want)
			}
			if _, err := readEvent(t, r); err != io.EOF {
				t.Fatalf("stream still open after its closed event: %v", err)
			}
		})
	}
}
