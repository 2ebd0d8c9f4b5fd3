package batch

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestNoGoroutineLeak: after Close, no goroutine of this package is left,
// including when Close interrupts a write the store is stuck in.
func TestNoGoroutineLeak(t *testing.T) {
	ctx := testCtx(t)
	for _, stuck := range []bool{false, true} {
		store := newMemStore(t)
		if stuck {
			store.gate = make(chan struct{}) // never opened: writes end only through ctx
		}
		w := New(store, Options{Interval: time.Millisecond})
		for i := range 100 {
			w.Append("m", "piece ")
			if i == 50 {
				eventually(ctx, t, "a write", func() bool { c, _ := store.counts(); return c > 0 })
			}
		}
		// A stuck store's write ends only through Close's ctx, 50 ms; the
		// other's Close has all the time it needs, so that a loaded
		// machine's pause does not cut its flush.
		bound := 30 * time.Second
		if stuck {
			bound = 50 * time.Millisecond
		}
		closeCtx, cancel := context.WithTimeout(ctx, bound)
		err := w.Close(closeCtx)
		cancel()
		if stuck != (err != nil) {
			t.Errorf("stuck=%v: Close = %v", stuck, err)
		}
		eventually(ctx, t, "the flush goroutine to end", func() bool { return packageGoroutines() == 0 })
	}
}

// packageGoroutines counts goroutines running code of this package, other
// than tests.
func packageGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "persistence/batch.(*Writer)") && !strings.Contains(g, "testing.tRunner") {
			n++
		}
	}
	return n
}

// TestAppendDoesNotWaitForTheStore: Append returns while a write hangs.
func TestAppendDoesNotWaitForTheStore(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	store := newMemStore(t)
	store.gate = make(chan struct{})
	w := newWriter(t, store, Options{Interval: time.Millisecond})
	w.Append("m", "first ")
	eventually(ctx, t, "a write to hang", func() bool { c, _ := store.counts(); return c == 1 })
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10_000 {
			w.Append("m", "more ")
		}
	}()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("Append blocked on a hanging store")
	}
	close(store.gate)
	if err := w.Finish(ctx, complete("m")); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if got := store.text("m"); got != "first "+strings.Repeat("more ", 10_000) {
		t.Errorf("stored %d bytes", len(got))
	}
}
