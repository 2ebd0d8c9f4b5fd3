package gate

import (
	"context"
	"errors"
	"testing"
)

// TestGate: a call that entered is waited for; once closed nothing
// enters (Enter, Go) and a Wait for a call still under way ends with its
// context.
func TestGate(t *testing.T) {
	t.Parallel()
	var g Gate
	if !g.Enter() {
		t.Fatal("an open gate refused a call")
	}
	release, ran := make(chan struct{}), make(chan struct{})
	if !g.Go(func() { <-release; close(ran) }) {
		t.Fatal("an open gate refused a goroutine")
	}
	g.Close()
	if g.Enter() || g.Go(func() { t.Error("ran after Close") }) {
		t.Fatal("a closed gate let a call in")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := g.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with calls under way and its context ended: %v", err)
	}
	close(release)
	<-ran
	g.Leave()
	if err := g.Wait(t.Context()); err != nil {
		t.Fatalf("Wait once every call left: %v", err)
	}
}
