package batch

import (
	"context"
	"errors"
	"testing"
	"time"

	"chatd/persistence"
)

// TestRefusedMessageGivenUp: a message whose update the store refuses
// (persistence.PartialUpdateError.Refused: the database ran it and
// rejected it) MaxRefusals times in a row is given up: its pending text
// is dropped and not written again, its Finish returns ErrRefused at
// once, the rest of its text is dropped, and the Writer no longer reports
// a failing store (Err, which readiness checks read), while the other
// messages are written as usual. Before, it was retried for as long as
// the Writer ran, delaying every other answer's final update to the retry
// backoff and keeping Err set.
func TestRefusedMessageGivenUp(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		finishBad bool // Finish the refused message before it is given up
	}{
		{name: "checkpoints refused"},
		{name: "final update refused", finishBad: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			store := newMemStore(t)
			store.refuse = true
			store.setBroken("bad", true)
			const maxRefusals = 3
			w := newWriter(t, store, Options{Interval: time.Millisecond, RetryBase: time.Millisecond,
				RetryMax: 4 * time.Millisecond, MaxRefusals: maxRefusals})
			badDone := make(chan error, 1)
			w.Append("good", "good starts ")
			w.Append("bad", "bad starts ")
			if tt.finishBad {
				go func() { badDone <- w.Finish(ctx, complete("bad")) }()
			}
			eventually(ctx, t, "the refusals", func() bool { return store.failures("bad") >= maxRefusals })
			if !tt.finishBad {
				w.Append("bad", "more ")
				go func() { badDone <- w.Finish(ctx, complete("bad")) }()
			}
			if err := <-badDone; !errors.Is(err, ErrRefused) || !errors.Is(err, persistence.ErrDropped) {
				t.Fatalf("Finish(bad) = %v, want ErrRefused, a persistence.ErrDropped", err)
			}
			short, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := w.Finish(short, complete("good")); err != nil {
				t.Fatalf("Finish(good): %v", err)
			}
			if err := w.Err(); err != nil {
				t.Errorf("Err after the refused message was given up = %v, want nil", err)
			}
			if got := store.failures("bad"); got != maxRefusals {
				t.Errorf("the refused message's update was tried %d times, want %d", got, maxRefusals)
			}
			if got, want := store.text("good"), "good starts "; got != want {
				t.Errorf("stored text of good = %q, want %q", got, want)
			}
			if _, final := store.status("bad"); final || store.text("bad") != "" {
				t.Errorf("the refused message was stored: %q", store.text("bad"))
			}
			if st := w.Stats(); st.Messages != 0 || st.PendingBytes != 0 {
				t.Errorf("stats after both messages ended: %+v, want no message or byte pending", st)
			}
		})
	}
}

// TestFailedNotRefusedKeptRetrying: a failure the store does not call a
// refusal (a lost reply, the server unreachable) is retried past
// MaxRefusals, and the message's text is stored once the store takes it.
func TestFailedNotRefusedKeptRetrying(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	store := newMemStore(t)
	store.setBroken("bad", true)
	w := newWriter(t, store, Options{Interval: time.Millisecond, RetryBase: time.Millisecond,
		RetryMax: 4 * time.Millisecond, MaxRefusals: 2})
	w.Append("bad", "bad starts ")
	eventually(ctx, t, "failures past MaxRefusals", func() bool { return store.failures("bad") >= 4 })
	store.setBroken("bad", false)
	if err := w.Finish(ctx, complete("bad")); err != nil {
		t.Fatalf("Finish(bad) after the store took it: %v", err)
	}
	if got := store.text("bad"); got != "bad starts " {
		t.Errorf("stored text = %q, want %q", got, "bad starts ")
	}
}
