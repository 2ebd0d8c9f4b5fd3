package inflight_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"chatd/transport/internal/inflight"
)

// TestClaimWaitsForTheHolder: a second claim of a held key waits until the
// holder releases it; other keys are not held up; a release twice is one.
func TestClaimWaitsForTheHolder(t *testing.T) {
	t.Parallel()
	waiting := make(chan struct{}, 1)
	k := inflight.Keys{OnWait: func() { waiting <- struct{}{} }}
	ctx := context.Background()
	release, err := k.Claim(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	other, err := k.Claim(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	other()
	got := make(chan error, 1)
	go func() {
		r, err := k.Claim(ctx, "a")
		r()
		got <- err
	}()
	select { // the second claim waits: it neither returns nor fails to wait
	case err := <-got:
		t.Fatalf("second claim returned (%v) while the key was held", err)
	case <-waiting:
	}
	release()
	release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if n := k.Len(); n != 0 {
		t.Fatalf("%d keys still held", n)
	}
}

// TestClaimEndsWithItsContext: a waiting claim ends with its context.
func TestClaimEndsWithItsContext(t *testing.T) {
	t.Parallel()
	var k inflight.Keys
	release, err := k.Claim(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := k.Claim(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("claim of a held key: %v, want the context's deadline", err)
	}
}
