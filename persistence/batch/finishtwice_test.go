package batch

import (
	"errors"
	"testing"
	"time"

	"chatd/persistence"
)

// TestSecondFinishDuringWrite: a second Finish of a message that comes
// while the first one's write is in flight (its text was not in that
// write) does not report success: it says its update was not applied, as
// the message is no longer streaming; the first reports success, and the
// store holds what the first wrote.
func TestSecondFinishDuringWrite(t *testing.T) {
	ctx := testCtx(t)
	st := newMemStore(t)
	gate := make(chan struct{})
	st.gate = gate
	w := newWriter(t, st, Options{Interval: time.Hour})
	w.Append("m1", "hello ")
	first := make(chan error, 1)
	go func() { first <- w.Finish(ctx, complete("m1")) }()
	eventually(ctx, t, "the first final write in flight", func() bool { c, _ := st.counts(); return c == 1 })
	second := make(chan error, 1)
	go func() {
		second <- w.Finish(ctx, persistence.MessageUpdate{ID: "m1", Append: "world", Status: persistence.StatusComplete})
	}()
	eventually(ctx, t, "the second Finish queued", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		e := w.entries["m1"]
		return e != nil && len(e.waiters) == 2
	})
	close(gate)
	if err := <-first; err != nil {
		t.Fatalf("the first Finish: %v", err)
	}
	if err := <-second; !errors.Is(err, persistence.ErrNotStreaming) {
		t.Fatalf("the second Finish: %v, want ErrNotStreaming (its text %q is not stored)", err, "world")
	}
	if got := st.text("m1"); got != "hello " {
		t.Fatalf("stored %q, want %q", got, "hello ")
	}
}
