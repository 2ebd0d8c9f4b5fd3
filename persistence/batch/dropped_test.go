package batch

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDroppedFinalReported: a final update the Writer drops after its
// Finish returned (its ctx ended while the store was failing) is reported
// to Options.OnDropped, once, with why: the Writer gave up on the message
// (the store then refused it MaxRefusals times) or Close abandoned it.
// Nothing else would end such a message. A drop a waiting Finish reports
// (ErrRefused) is not reported again. Before, nothing was told. The report
// carries the final update's owner, so that the message can be ended with
// nothing remembered of it.
func TestDroppedFinalReported(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		waiting bool // a Finish still waits when the update is dropped
		closed  bool // Close abandons it, instead of the store refusing it
		want    error
	}{
		{name: "given up after its Finish returned", want: ErrRefused},
		{name: "abandoned by Close after its Finish returned", closed: true, want: ErrClosed},
		{name: "given up while its Finish waits", waiting: true},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			store := newMemStore(t)
			store.setBroken("bad", true) // failing, not yet refused
			reported := make(chan error, 4)
			w := New(store, Options{Interval: time.Millisecond, RetryBase: time.Millisecond, RetryMax: 4 * time.Millisecond,
				MaxRefusals: 2, OnDropped: func(id, owner string, err error) {
					if id != "bad" || owner != "alice" {
						t.Errorf("OnDropped(%q, %q), want bad of alice", id, owner)
					}
					reported <- err
				}})
			w.Append("bad", "some text ")
			fctx, stop := context.WithCancel(ctx)
			finished := make(chan error, 1)
			final := complete("bad")
			final.OwnerID = "alice"
			go func() { finished <- w.Finish(fctx, final) }()
			eventually(ctx, t, "a failed final update", func() bool { return store.failures("bad") >= 2 })
			if !tt.waiting {
				stop()
				if err := <-finished; !errors.Is(err, context.Canceled) {
					t.Fatalf("Finish after its ctx ended = %v", err)
				}
			}
			if tt.closed {
				cctx, cancel := context.WithCancel(ctx)
				cancel() // Close gives up at once
				if err := w.Close(cctx); err == nil {
					t.Fatal("Close with a failing update = nil")
				}
			} else {
				store.mu.Lock()
				store.refuse = true
				store.mu.Unlock()
			}
			if tt.waiting {
				if err := <-finished; !errors.Is(err, ErrRefused) {
					t.Fatalf("waiting Finish = %v, want ErrRefused", err)
				}
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_ = w.Close(cctx) // the flush goroutine has returned: every report is in
			stop()
			close(reported)
			var got []error
			for err := range reported {
				got = append(got, err)
			}
			switch {
			case tt.want == nil && len(got) != 0:
				t.Fatalf("OnDropped called %d times (%v) for a drop its Finish reported", len(got), got)
			case tt.want != nil && (len(got) != 1 || !errors.Is(got[0], tt.want)):
				t.Fatalf("OnDropped got %v, want one call with %v", got, tt.want)
			}
		})
	}
}

// TestNotDurableSaysWhatIsWritten: a Finish whose ctx ends while the
// store fails says how much of the message's text and reasoning was not
// written (NotDurableError), so that its caller claims only what is
// stored: the text checkpointed before the store failed. It said nothing.
func TestNotDurableSaysWhatIsWritten(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	store := newMemStore(t)
	w := newWriter(t, store, Options{Interval: time.Millisecond, RetryBase: time.Millisecond, RetryMax: 4 * time.Millisecond})
	w.Append("m", "written ")
	eventually(ctx, t, "the checkpoint", func() bool { return store.text("m") == "written " })
	store.setBroken("m", true)
	w.Append("m", "not yet ")
	w.AppendReasoning("m", "thought")
	final := complete("m")
	final.Append = "end"
	fctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	err := w.Finish(fctx, final)
	var nd *NotDurableError
	if !errors.As(err, &nd) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Finish = %v, want a NotDurableError wrapping the deadline", err)
	}
	if text, reasoning := nd.Unwritten(); text != len("not yet end") || reasoning != len("thought") {
		t.Fatalf("unwritten %d bytes of text and %d of reasoning, want %d and %d", text, reasoning, len("not yet end"), len("thought"))
	}
	store.setBroken("m", false)
}

// TestRefusedSaysWhatIsDropped: the Finish of a message the Writer gave
// up on (the store kept rejecting its update) returns an UnwrittenError
// that says how many bytes of its text and reasoning were dropped, the
// text appended after the give-up and the final update's own included:
// all before them is stored, so the caller claims only that. Before, it
// was ErrRefused alone, and the hub's done claimed all the text streamed.
func TestRefusedSaysWhatIsDropped(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		finishBad bool // Finish waits while the Writer gives up
	}{
		{name: "given up before Finish"},
		{name: "given up while Finish waits", finishBad: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			store := newMemStore(t)
			store.refuse = true
			w := newWriter(t, store, Options{Interval: time.Millisecond, RetryBase: time.Millisecond,
				RetryMax: 4 * time.Millisecond, MaxRefusals: 2})
			w.Append("m", "written ")
			eventually(ctx, t, "the checkpoint", func() bool { return store.text("m") == "written " })
			store.setBroken("m", true)
			w.Append("m", "dropped ")
			w.AppendReasoning("m", "thought")
			final := complete("m")
			final.Append = "end"
			finished := make(chan error, 1)
			if tt.finishBad {
				go func() { finished <- w.Finish(ctx, final) }()
			}
			eventually(ctx, t, "the refusals", func() bool { return store.failures("m") >= 2 })
			if !tt.finishBad {
				w.Append("m", "after ")
				go func() { finished <- w.Finish(ctx, final) }()
			}
			err := <-finished
			var re *UnwrittenError
			if !errors.As(err, &re) || !errors.Is(err, ErrRefused) || !errors.Is(err, errBroken) {
				t.Fatalf("Finish = %v, want an UnwrittenError wrapping ErrRefused and the rejection", err)
			}
			want := "dropped end"
			if !tt.finishBad {
				want = "dropped after end"
			}
			if text, reasoning := re.Unwritten(); text != len(want) || reasoning != len("thought") {
				t.Fatalf("dropped %d bytes of text and %d of reasoning, want %d (%q) and %d", text, reasoning, len(want), want, len("thought"))
			}
			if got := store.text("m"); got != "written " {
				t.Fatalf("stored %q, want the checkpoint", got)
			}
		})
	}
}
