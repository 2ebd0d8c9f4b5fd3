package transport_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"chatd/llm"
	"chatd/transport"
	"chatd/transport/api"
	"chatd/transport/limits"
)

// heldCatalog is a catalog whose every call reports itself on entered and
// then waits for release (or its request's end).
type heldCatalog struct {
	entered chan struct{}
	release chan struct{}
}

func (h heldCatalog) Models(ctx context.Context) ([]llm.ModelInfo, error) {
	h.entered <- struct{}{}
	select {
	case <-h.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return testModels, nil
}

// TestUserRequestTurns: one user's parallel REST requests run at most
// RequestOptions.InFlight at once, the next ones wait (holding no
// connection: their token is not checked yet), and past
// RequestOptions.Waiting waiting ones a request is refused 429 with
// Retry-After; meanwhile another user's request runs at once, not behind
// the flood. Every waiting request is then served.
func TestUserRequestTurns(t *testing.T) {
	t.Parallel()
	const inFlight, waiting = 2, 3
	cat := heldCatalog{entered: make(chan struct{}, 16), release: make(chan struct{})}
	waits := make(chan struct{}, 16)
	e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
		o.Models = api.NewModels(cat)
		o.Requests = limits.NewRequests(limits.RequestOptions{InFlight: inFlight, Waiting: waiting,
			OnWait: func() { waits <- struct{}{} }})
	}})
	alice, bob := e.register("Alice"), e.register("Bob")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	statuses := make(chan int, inFlight+waiting)
	for range inFlight + waiting {
		go func() { statuses <- getStatus(ctx, e, alice.token) }()
	}
	for i := range inFlight + waiting {
		ch, what := cat.entered, "running"
		if i >= inFlight {
			ch, what = waits, "waiting"
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("alice's request %d: not %s (%d ran, %d waited)", i+1, what, len(cat.entered), len(waits))
		}
	}
	r := e.do("GET", "/api/models", alice.token, nil)
	expect(t, "alice's request past the waiting ones", r, http.StatusTooManyRequests, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}

	bobs := make(chan int, 1)
	go func() { bobs <- getStatus(ctx, e, bob.token) }()
	select {
	case <-cat.entered:
	case <-ctx.Done():
		t.Fatal("bob's request waits behind alice's")
	}
	if n := len(cat.entered); n != 0 {
		t.Fatalf("%d more of alice's requests ran past the bound of %d", n, inFlight)
	}

	close(cat.release)
	for range inFlight + waiting {
		if s := <-statuses; s != http.StatusOK {
			t.Fatalf("alice's request: status %d, want 200", s)
		}
	}
	if s := <-bobs; s != http.StatusOK {
		t.Fatalf("bob's request: status %d, want 200", s)
	}
}

// getStatus sends GET /api/models with token and returns its status (0
// when the request failed).
func getStatus(ctx context.Context, e *env, token string) int {
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/models", nil)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		return 0
	}
	_ = res.Body.Close()
	return res.StatusCode
}
