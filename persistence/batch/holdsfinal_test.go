package batch

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestHoldsFinal: the Writer holds a message's final update from its
// Finish until the update is written, given up or skipped (the message no
// longer streams), also once Finish returned as its ctx ended while the
// store failed: the hub's sweep of answers left streaming leaves such an
// answer's end to the Writer (it stored the answer interrupted, the
// retried final update then skipped).
func TestHoldsFinal(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		after func(store *memStore) // with the final update held
		check func(t *testing.T, store *memStore)
	}{
		{"written once the store takes it", func(store *memStore) { store.setBroken("m", false) },
			func(t *testing.T, store *memStore) {
				if text := store.text("m"); text != "written held" {
					t.Fatalf("stored %q, want the whole text", text)
				}
			}},
		{"given up", func(store *memStore) {
			store.mu.Lock()
			store.refuse = true
			store.mu.Unlock()
		}, nil},
		{"skipped, ended elsewhere", func(store *memStore) {
			store.end("m")
			store.setBroken("m", false)
		}, nil},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			store := newMemStore(t)
			w := newWriter(t, store, Options{Interval: time.Millisecond, RetryBase: time.Millisecond,
				RetryMax: 4 * time.Millisecond, MaxRefusals: 2})
			w.Append("m", "written ")
			eventually(ctx, t, "the checkpoint", func() bool { return store.text("m") == "written " })
			if w.HoldsFinal("m") {
				t.Fatal("holds the final update of a message not finished")
			}
			store.setBroken("m", true)
			w.Append("m", "held")
			fctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			defer cancel()
			var nd *NotDurableError
			if err := w.Finish(fctx, complete("m")); !errors.As(err, &nd) {
				t.Fatalf("Finish = %v, want a NotDurableError", err)
			}
			if !w.HoldsFinal("m") {
				t.Fatal("does not hold the final update it retries")
			}
			tt.after(store)
			eventually(ctx, t, "the final update let go", func() bool { return !w.HoldsFinal("m") })
			if tt.check != nil {
				tt.check(t, store)
			}
		})
	}
}
