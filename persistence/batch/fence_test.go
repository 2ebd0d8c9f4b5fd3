package batch

import (
	"errors"
	"sync"
	"testing"
	"time"

	"chatd/persistence"
)

// TestFencedMessage: when the store skips an update because the message is
// no longer streaming (another instance ended it), the Writer writes
// nothing more of that message, and its Finish says so with
// persistence.ErrNotStreaming, in an UnwrittenError counting the text not
// written (the skipped update's and all after it); other messages of the same bulk writes are
// written as usual.
func TestFencedMessage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		checkpoint bool // the fence is found by a checkpoint, before Finish
	}{
		{name: "final update skipped"},
		{name: "checkpoint skipped", checkpoint: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			store := newMemStore(t)
			var mu sync.Mutex
			var told []string
			w := newWriter(t, store, Options{Interval: 2 * time.Millisecond, OnFenced: func(id string) {
				mu.Lock()
				told = append(told, id)
				mu.Unlock()
			}})
			w.Append("fenced", "before ")
			w.Append("other", "kept ")
			eventually(ctx, t, "the first checkpoint", func() bool {
				return store.text("fenced") == "before " && store.text("other") == "kept "
			})
			store.end("fenced")
			w.Append("other", "more ")
			final := complete("fenced")
			final.Append = "after " // the final update carries the rest: no checkpoint can find the fence first
			if tt.checkpoint {
				final.Append = ""
				w.Append("fenced", "after ")
				eventually(ctx, t, "OnFenced after a skipped checkpoint", func() bool {
					mu.Lock()
					defer mu.Unlock()
					return len(told) > 0
				})
				w.Append("fenced", "dropped ")
				if s := w.Stats(); s.PendingBytes != len("more ") && s.PendingBytes != 0 {
					t.Errorf("pending bytes %d: the fenced message's text is still held", s.PendingBytes)
				}
			}
			err := w.Finish(ctx, final)
			var uw *UnwrittenError
			if !errors.Is(err, persistence.ErrNotStreaming) || !errors.As(err, &uw) {
				t.Fatalf("Finish of a fenced message: %v, want an UnwrittenError wrapping ErrNotStreaming", err)
			}
			want := map[bool]string{false: "after ", true: "after dropped "}[tt.checkpoint]
			if text, reasoning := uw.Unwritten(); text != len(want) || reasoning != 0 {
				t.Errorf("Finish says %d bytes of text and %d of reasoning unwritten, want %d (%q) and 0", text, reasoning, len(want), want)
			}
			if got := store.text("fenced"); got != "before " {
				t.Errorf("stored text of the fenced message %q, want only what came before the fence", got)
			}
			if _, final := store.status("fenced"); final {
				t.Errorf("a final update of the fenced message was applied")
			}
			if n := store.skips("fenced"); n != 1 {
				t.Errorf("%d updates of the fenced message were tried after the fence, want 1", n)
			}
			if err := w.Finish(ctx, complete("other")); err != nil {
				t.Fatalf("Finish of the other message: %v", err)
			}
			if got := store.text("other"); got != "kept more " {
				t.Errorf("other message text %q", got)
			}
			if s := w.Stats(); s.Messages != 0 || s.PendingBytes != 0 || s.Skipped != 1 {
				t.Errorf("stats after both finished: %+v, want nothing tracked and one skipped update", s)
			}
			// OnFenced tells of a fence found before Finish, once; a
			// skipped final update is told by Finish itself.
			mu.Lock()
			defer mu.Unlock()
			if want := map[bool]int{true: 1, false: 0}[tt.checkpoint]; len(told) != want || want == 1 && told[0] != "fenced" {
				t.Errorf("OnFenced told %q, want %d call(s) for the fenced message", told, want)
			}
		})
	}
}
