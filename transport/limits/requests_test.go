package limits

import (
	"context"
	"errors"
	"testing"
)

// TestRequestsWaitEnds: a waiting request whose context ends gives its
// place back (another may wait), a request past the waiting ones is
// refused, and a user whose requests all ended is forgotten.
func TestRequestsWaitEnds(t *testing.T) {
	t.Parallel()
	r := NewRequests(RequestOptions{InFlight: 1, Waiting: 1})
	release, err := r.Enter(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Enter(ended, "alice"); !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting with an ended context: %v, want context.Canceled", err)
	}
	waiting := make(chan error, 1)
	r.opts.OnWait = func() { waiting <- nil }
	got := make(chan func(), 1)
	go func() {
		rel, err := r.Enter(context.Background(), "alice")
		if err != nil {
			waiting <- err
			return
		}
		got <- rel
	}()
	if err := <-waiting; err != nil {
		t.Fatalf("second request: %v, want it waiting", err)
	}
	if _, err := r.Enter(context.Background(), "alice"); !errors.Is(err, ErrTooManyRequests) {
		t.Fatalf("third request: %v, want ErrTooManyRequests", err)
	}
	if _, err := r.Enter(context.Background(), "bob"); err != nil {
		t.Fatalf("another user's request: %v", err)
	}
	release()
	(<-got)()
	if n := r.Len(); n != 1 {
		t.Fatalf("%d users tracked, want 1 (bob)", n)
	}
}
