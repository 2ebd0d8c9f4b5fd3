package batch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"chatd/persistence"
)

// TestCoalescingWithinOneInterval: however many pieces arrive within one
// interval, the answer costs one bulk write (the final update).
func TestCoalescingWithinOneInterval(t *testing.T) {
	t.Parallel()
	for _, n := range []int{10, 1_000, 10_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			store := newMemStore(t)
			w := newWriter(t, store, Options{Interval: time.Hour})
			pieces, want := tokens("tok", n)
			for _, p := range pieces {
				w.Append("m1", p)
			}
			if err := w.Finish(ctx, complete("m1")); err != nil {
				t.Fatalf("Finish: %v", err)
			}
			if calls, _ := store.counts(); calls != 1 {
				t.Errorf("%d appends cost %d bulk writes, want 1", n, calls)
			}
			if got := store.text("m1"); got != want {
				t.Errorf("stored text differs: %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

// TestCheckpointsBoundedByDuration: while an answer streams, writes grow
// with elapsed time (at most one per interval), not with the token count.
func TestCheckpointsBoundedByDuration(t *testing.T) {
	t.Parallel()
	const interval = 20 * time.Millisecond
	for _, n := range []int{50, 1_000, 5_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			store := newMemStore(t)
			w := newWriter(t, store, Options{Interval: interval})
			pieces, want := tokens("w", n)
			start := time.Now()
			streamFor(pieces, 8*interval, func(p string) { w.Append("m", p) })
			eventually(ctx, t, "a checkpoint", func() bool { c, _ := store.counts(); return c > 0 })
			if err := w.Finish(ctx, complete("m")); err != nil {
				t.Fatalf("Finish: %v", err)
			}
			elapsed := time.Since(start)
			calls, _ := store.counts()
			bound := int(elapsed/interval) + 2 // checkpoints, plus the final write
			if calls > bound || calls < 2 {
				t.Errorf("%d tokens over %v cost %d writes, want 2..%d", n, elapsed, calls, bound)
			}
			if got := store.text("m"); got != want {
				t.Errorf("stored text differs")
			}
			t.Logf("%d tokens over %v: %d writes", n, elapsed.Round(time.Millisecond), calls)
		})
	}
}

// streamFor calls emit with each piece, spreading them over about d.
func streamFor(pieces []string, d time.Duration, emit func(string)) {
	const steps = 16
	per := (len(pieces) + steps - 1) / steps
	for i := 0; i < len(pieces); i += per {
		for _, p := range pieces[i:min(i+per, len(pieces))] {
			emit(p)
		}
		time.Sleep(d / steps)
	}
}

// TestFinishOrdering: the final update comes after every piece, carries the
// rest of the text, and Finish returns only when it is stored.
func TestFinishOrdering(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	store := newMemStore(t)
	w := newWriter(t, store, Options{Interval: 2 * time.Millisecond})
	pieces, want := tokens("p", 300)
	for i, p := range pieces {
		w.Append("m", p)
		if i%50 == 0 {
			time.Sleep(3 * time.Millisecond) // let checkpoints interleave
		}
	}
	eventually(ctx, t, "a checkpoint", func() bool { return len(store.chunkList("m")) > 0 })
	u := complete("m")
	u.Append = "tail."
	if err := w.Finish(ctx, u); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	last, final := store.status("m")
	if !final || last.Status != persistence.StatusComplete || last.FinishReason != "stop" || last.Usage == nil || last.Usage.TotalTokens != 8 {
		t.Errorf("final update not stored as given: %+v", last)
	}
	if got := store.text("m"); got != want+"tail." {
		t.Errorf("stored text %q..., want the concatenation of all appends", got[:min(len(got), 40)])
	}
	if n := len(store.chunkList("m")); n < 2 {
		t.Errorf("expected checkpoints before the final update, got %d chunks", n)
	}
	if s := w.Stats(); s.Messages != 0 || s.PendingBytes != 0 {
		t.Errorf("after Finish: %+v, want nothing tracked", s)
	}
}

// TestWordBoundaries: checkpoints never end inside a word unless the partial
// word is longer than MaxHoldBack.
func TestWordBoundaries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		pieces []string
		hold   int
	}{
		{"words", strings.SplitAfter("the quick brown fox jumps over the lazy dog and keeps running far away", "o"), 256},
		{"newlines", strings.SplitAfter("line one\nline two\nline three\nand the last line", "n"), 256},
		{"long word written past limit", []string{"short ", strings.Repeat("a", 40), strings.Repeat("b", 40), " end"}, 16},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			store := newMemStore(t)
			w := newWriter(t, store, Options{Interval: time.Millisecond, MaxHoldBack: tc.hold})
			for _, p := range tc.pieces {
				w.Append("m", p)
				settle(ctx, t, w)
			}
			if err := w.Finish(ctx, complete("m")); err != nil {
				t.Fatalf("Finish: %v", err)
			}
			chunks := store.chunkList("m")
			if strings.Join(chunks, "") != strings.Join(tc.pieces, "") {
				t.Fatalf("stored text differs: %q", chunks)
			}
			if len(chunks) < 2 {
				t.Fatalf("want checkpoints before the final update, got %q", chunks)
			}
			for _, c := range chunks[:len(chunks)-1] {
				r, _ := utf8.DecodeLastRuneInString(c)
				if !unicode.IsSpace(r) && !hasLongTail(c, tc.hold) {
					t.Errorf("checkpoint %q ends inside a word (chunks %q)", c, chunks)
				}
			}
		})
	}
}

// hasLongTail reports whether c ends with more than hold bytes of non-space.
func hasLongTail(c string, hold int) bool {
	i := strings.LastIndexFunc(c, unicode.IsSpace)
	return len(c)-(i+1) > hold
}

// settle waits until the Writer has no text it could checkpoint: everything
// pending is a held-back partial word.
func settle(ctx context.Context, t *testing.T, w *Writer) {
	t.Helper()
	eventually(ctx, t, "checkpoint", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.drainLocked()
		for _, e := range w.entries {
			if checkpointCut(e.text, w.opts.MaxHoldBack) > 0 {
				return false
			}
		}
		return true
	})
}

// TestUTF8Safety: pieces that split characters, and text without spaces,
// never produce a chunk that is not valid UTF-8.
func TestUTF8Safety(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("数据库存储聊天记录😀é", 20)
	cases := []struct {
		name  string
		split int // bytes per piece, regardless of characters
	}{
		{"1 byte pieces", 1},
		{"2 byte pieces", 2},
		{"5 byte pieces", 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			store := newMemStore(t)
			w := newWriter(t, store, Options{Interval: time.Millisecond, MaxHoldBack: 8})
			for i := 0; i < len(text); i += tc.split {
				w.Append("m", text[i:min(i+tc.split, len(text))])
				if i%7 == 0 {
					settle(ctx, t, w)
				}
			}
			if err := w.Finish(ctx, complete("m")); err != nil {
				t.Fatalf("Finish: %v", err)
			}
			chunks := store.chunkList("m")
			if strings.Join(chunks, "") != text {
				t.Fatal("stored text differs")
			}
			if len(chunks) < 3 {
				t.Errorf("want several checkpoints, got %d", len(chunks))
			}
			for _, c := range chunks {
				if !utf8.ValidString(c) {
					t.Errorf("chunk %q is not valid UTF-8", c)
				}
			}
		})
	}
}

// TestRetryAfterTransientErrors: failed writes are retried with backoff;
// text appended during the outage follows the failed text; nothing is lost
// or written twice.
func TestRetryAfterTransientErrors(t *testing.T) {
	t.Parallel()
	for _, failures := range []int{1, 3, 6} {
		t.Run(fmt.Sprint(failures), func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			store := newMemStore(t)
			down := errors.New("database unavailable")
			store.setFail(func(n int) error {
				if n <= failures {
					return down
				}
				return nil
			})
			w := newWriter(t, store, Options{Interval: time.Millisecond, RetryBase: time.Millisecond, RetryMax: 4 * time.Millisecond})
			pieces, want := tokens("r", 400)
			streamFor(pieces, 30*time.Millisecond, func(p string) { w.Append("m", p) })
			if err := w.Finish(ctx, complete("m")); err != nil {
				t.Fatalf("Finish: %v", err)
			}
			if got := store.text("m"); got != want {
				t.Errorf("stored text differs from the appends:\n got %.80q\nwant %.80q", got, want)
			}
			if s := w.Stats(); s.Failures != uint64(failures) {
				t.Errorf("Stats.Failures = %d, want %d", s.Failures, failures)
			}
		})
	}
}

// TestFinishTimesOutThenRecovers: while the store is down Finish returns
// with ctx's error and the store's error; the update stays queued and is
// written once the store recovers.
func TestFinishTimesOutThenRecovers(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	store := newMemStore(t)
	down := errors.New("database unavailable")
	store.setFail(func(int) error { return down })
	w := newWriter(t, store, Options{Interval: time.Millisecond, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond})
	w.Append("m", "some text ")
	// The Finish below reports the message's last store error: a write of
	// it fails first (the second failure: the first's error is then the
	// message's), which a loaded machine could hold past the 50 ms.
	eventually(ctx, t, "two failed writes", func() bool { return w.Stats().Failures > 1 })
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := w.Finish(short, persistence.MessageUpdate{ID: "m", Status: persistence.StatusError, Error: "upstream failed"})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, down) {
		t.Fatalf("Finish = %v, want deadline exceeded and the store error", err)
	}
	if !errors.Is(w.Err(), down) {
		t.Fatalf("Err while the store is down = %v, want %v", w.Err(), down)
	}
	store.setFail(nil)
	eventually(ctx, t, "the final update after recovery", func() bool {
		_, final := store.status("m")
		return final
	})
	if err := w.Err(); err != nil {
		t.Fatalf("Err after recovery = %v, want nil", err)
	}
	if got := store.text("m"); got != "some text " {
		t.Errorf("stored text %q", got)
	}
}

// TestMaxPending: beyond MaxPending tracked messages, a new message's text is
// dropped whole and its Finish reports ErrOverloaded; tracked messages keep
// every piece, and room frees up when they finish.
func TestMaxPending(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	store := newMemStore(t)
	down := errors.New("database unavailable")
	store.setFail(func(int) error { return down })
	w := newWriter(t, store, Options{Interval: time.Millisecond, MaxPending: 2, RetryBase: time.Millisecond, RetryMax: 2 * time.Millisecond})
	w.Append("a", "alpha ")
	w.Append("b", "beta ")
	w.Append("c", "gamma ") // over the limit: dropped
	w.Append("a", "more ")
	w.Append("c", "delta ") // the rest of c is dropped too
	if s := w.Stats(); s.Dropped != 2 || s.Messages != 2 {
		t.Errorf("Stats = %+v, want 2 dropped and 2 tracked", s)
	}
	if err := w.Finish(ctx, complete("c")); !errors.Is(err, ErrOverloaded) || !errors.Is(err, persistence.ErrDropped) {
		t.Errorf("Finish(c) = %v, want ErrOverloaded, a persistence.ErrDropped", err)
	}
	if err := w.Finish(ctx, complete("d")); !errors.Is(err, ErrOverloaded) {
		t.Errorf("Finish(d) with no room = %v, want ErrOverloaded", err)
	}
	store.setFail(nil)
	for _, id := range []string{"a", "b"} {
		if err := w.Finish(ctx, complete(id)); err != nil {
			t.Fatalf("Finish(%s): %v", id, err)
		}
	}
	if store.text("a") != "alpha more " || store.text("b") != "beta " || store.text("c") != "" {
		t.Errorf("stored a=%q b=%q c=%q", store.text("a"), store.text("b"), store.text("c"))
	}
	if _, final := store.status("c"); final {
		t.Error("the dropped message got a final update")
	}
	w.Append("e", "room again ")
	if err := w.Finish(ctx, complete("e")); err != nil || store.text("e") != "room again " {
		t.Errorf("after room freed: Finish = %v, text %q", err, store.text("e"))
	}
}

// TestDrainOnClose: Close writes every pending piece, partial words
// included, and final updates, before returning.
func TestDrainOnClose(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	store := newMemStore(t)
	w := New(store, Options{Interval: time.Hour})
	w.Append("a", "unfinished answer, partial wo")
	w.Append("b", "finished answer")
	finished := make(chan error, 1)
	go func() { finished <- w.Finish(ctx, complete("b")) }()
	eventually(ctx, t, "final of b", func() bool { _, f := store.status("b"); return f })
	w.Append("c", "another partial")
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-finished; err != nil {
		t.Errorf("Finish(b): %v", err)
	}
	for id, want := range map[string]string{"a": "unfinished answer, partial wo", "b": "finished answer", "c": "another partial"} {
		if got := store.text(id); got != want {
			t.Errorf("after Close, %s = %q, want %q", id, got, want)
		}
	}
	w.Append("a", "late")
	if err := w.Finish(ctx, complete("a")); !errors.Is(err, ErrClosed) {
		t.Errorf("Finish after Close = %v, want ErrClosed", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCloseGivesUp: when the store stays down, Close returns once its ctx
// ends, reports the loss, and releases waiting Finish calls.
func TestCloseGivesUp(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	store := newMemStore(t)
	down := errors.New("database unavailable")
	store.setFail(func(int) error { return down })
	w := New(store, Options{Interval: time.Millisecond, RetryBase: time.Millisecond, RetryMax: 2 * time.Millisecond})
	w.Append("a", "text ")
	finished := make(chan error, 1)
	go func() { finished <- w.Finish(ctx, complete("a")) }()
	eventually(ctx, t, "a failed write", func() bool { return w.Stats().Failures > 0 })
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	err := w.Close(closeCtx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, down) {
		t.Errorf("Close = %v, want deadline exceeded and the store error", err)
	}
	if err := <-finished; !errors.Is(err, ErrClosed) {
		t.Errorf("Finish = %v, want ErrClosed", err)
	}
}

// TestConcurrentGenerations: many answers streaming at once through one
// Writer are each stored whole and in order, in few bulk writes.
func TestConcurrentGenerations(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	store := newMemStore(t)
	w := newWriter(t, store, Options{Interval: 5 * time.Millisecond, MaxBatch: 16})
	const gens, perGen = 40, 500
	want := make(map[string]string)
	var wg sync.WaitGroup
	errs := make(chan error, gens)
	for g := range gens {
		id := fmt.Sprintf("gen%02d", g)
		pieces, text := tokens(id+"-", perGen)
		want[id] = text
		wg.Go(func() {
			streamFor(pieces, 20*time.Millisecond, func(p string) { w.Append(id, p) })
			errs <- w.Finish(ctx, complete(id))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Finish: %v", err)
		}
	}
	for id, text := range want {
		if got := store.text(id); got != text {
			t.Errorf("%s: stored text differs", id)
		}
	}
	calls, _ := store.counts()
	t.Logf("%d generations x %d tokens: %d bulk writes", gens, perGen, calls)
	if calls >= gens*perGen/20 {
		t.Errorf("%d bulk writes for %d tokens: not coalesced", calls, gens*perGen)
	}
}

// TestMaxBatch: a flush with more updates than MaxBatch is split.
func TestMaxBatch(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	store := newMemStore(t)
	var sizes []int
	var mu sync.Mutex
	rec := recorder(func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() })
	w := New(store, Options{Interval: time.Hour, MaxBatch: 4, Metrics: rec})
	for i := range 10 {
		w.Append(fmt.Sprint("m", i), "text ")
	}
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(sizes) != "[4 4 2]" {
		t.Errorf("bulk write sizes %v, want [4 4 2]", sizes)
	}
}

// recorder is a Metrics that reports each successful write's size.
type recorder func(updates int)

func (r recorder) Flushed(updates int, _ time.Duration, err error) {
	if err == nil {
		r(updates)
	}
}

// TestAppendAfterFinishIsDropped: text after Finish never reaches a finished
// message.
func TestAppendAfterFinishIsDropped(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	store := newMemStore(t)
	store.gate = make(chan struct{})
	w := newWriter(t, store, Options{Interval: time.Hour})
	w.Append("m", "body ")
	finished := make(chan error, 1)
	go func() { finished <- w.Finish(ctx, complete("m")) }()
	eventually(ctx, t, "the final write to start", func() bool { c, _ := store.counts(); return c == 1 })
	w.Append("m", "late ")
	store.gate <- struct{}{}
	if err := <-finished; err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if got := store.text("m"); got != "body " {
		t.Errorf("stored %q", got)
	}
	if d := w.Stats().Dropped; d != 1 {
		t.Errorf("Dropped = %d, want 1", d)
	}
}

// TestAppendDoesNotWaitForWriter: Append does not take the Writer's mutex
// (a burst of streams would queue on it), so it returns while the Writer
// holds it (here, the test does), and the text is still written, in
// order, with the final update.
func TestAppendDoesNotWaitForWriter(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(testCtx(t), 5*time.Second)
	defer cancel()
	store := newMemStore(t)
	w := newWriter(t, store, Options{Interval: time.Hour})
	w.Append("m", "one ")
	w.mu.Lock()
	appended := make(chan struct{})
	go func() {
		defer close(appended)
		w.Append("m", "two ")
		w.AppendReasoning("m", "why")
	}()
	select {
	case <-appended:
		w.mu.Unlock()
	case <-ctx.Done():
		w.mu.Unlock()
		t.Fatal("Append waited for the Writer's mutex")
	}
	if err := w.Finish(ctx, complete("m")); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if got := store.text("m"); got != "one two " {
		t.Fatalf("stored %q, want %q", got, "one two ")
	}
}
