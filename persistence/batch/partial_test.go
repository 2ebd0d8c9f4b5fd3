package batch

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestPartialFailure: when a bulk write fails for one message only
// (persistence.PartialUpdateError), the other messages' updates in it
// applied: their text is not written again and their Finish returns,
// while the failed message's updates are retried until the store takes
// them, and its text too ends up stored exactly once.
func TestPartialFailure(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		atFinish  bool // the message breaks after its first checkpoint, so its final update fails
		finishBad bool // Finish the broken message while it is broken
	}{
		{name: "checkpoints fail"},
		{name: "final update fails", atFinish: true, finishBad: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			store := newMemStore(t)
			if !tt.atFinish {
				store.setBroken("bad", true)
			}
			w := newWriter(t, store, Options{Interval: time.Millisecond, RetryBase: time.Millisecond, RetryMax: 4 * time.Millisecond})
			ids := []string{"good1", "bad", "good2"}
			for _, id := range ids {
				w.Append(id, id+" starts ")
			}
			if tt.atFinish {
				eventually(ctx, t, "the first checkpoint", func() bool { return store.text("bad") == "bad starts " })
				store.setBroken("bad", true)
			}
			for _, id := range ids {
				w.Append(id, id+" ends.")
			}
			// Checkpoints carrying every message fail for bad and are retried.
			eventually(ctx, t, "retries of the failed message", func() bool { return store.failures("bad") >= 2 })
			badDone := make(chan error, 1)
			if tt.finishBad {
				go func() { badDone <- w.Finish(ctx, complete("bad")) }()
			}
			short, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			for _, id := range []string{"good1", "good2"} {
				if err := w.Finish(short, complete(id)); err != nil {
					t.Fatalf("Finish(%s) while another message fails: %v", id, err)
				}
			}
			eventually(ctx, t, "more retries of the failed message", func() bool { return store.failures("bad") >= 4 })
			if !errors.Is(w.Err(), errBroken) {
				t.Errorf("Err while a message fails = %v, want %v", w.Err(), errBroken)
			}
			store.setBroken("bad", false)
			if !tt.finishBad {
				go func() { badDone <- w.Finish(ctx, complete("bad")) }()
			}
			if err := <-badDone; err != nil {
				t.Fatalf("Finish(bad) after the store took it: %v", err)
			}
			for _, id := range ids {
				if got, want := store.text(id), id+" starts "+id+" ends."; got != want {
					t.Errorf("stored text of %s = %q, want %q (each piece once)", id, got, want)
				}
				if _, final := store.status(id); !final {
					t.Errorf("%s has no final status", id)
				}
			}
		})
	}
}
