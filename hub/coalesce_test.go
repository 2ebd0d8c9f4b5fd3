package hub

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// busyRecorder is a recorder that says it is busy while busy is set.
type busyRecorder struct {
	recorder
	busy bool
}

func (r *busyRecorder) Busy() bool { return r.busy }

// nopWriter is a Writer that keeps nothing.
type nopWriter struct{}

func (nopWriter) Append(string, string)                                   {}
func (nopWriter) AppendReasoning(string, string)                          {}
func (nopWriter) Finish(context.Context, persistence.MessageUpdate) error { return nil }

// TestAdaptiveCoalescing: text goes out at once when merging would not pay
// (nothing sent yet, a pause of at least CoalesceMinGap, no busy
// subscriber), and waits, to go out with what follows, when the model is
// fast, a subscriber is busy or CoalesceBytes are not reached yet.
func TestAdaptiveCoalescing(t *testing.T) {
	t.Parallel()
	type token struct {
		atMs float64
		busy bool // the subscriber is writing when the token arrives
	}
	tests := []struct {
		name   string
		live   int64 // answers streaming on the instance (0: this one alone)
		tokens []token
		deltas []string // what the subscriber got, without any timer firing
	}{
		{"slow model, idle tab: every token at once",
			0, []token{{0, false}, {20, false}, {40, false}},
			[]string{"t0", "t1", "t2"}},
		{"fast model: tokens within the minimum gap wait",
			0, []token{{0, false}, {1, false}, {2, false}, {6, false}},
			[]string{"t0", "t1t2t3"}},
		{"busy tab: text waits until the tab is free",
			0, []token{{0, false}, {10, true}, {20, true}, {30, false}},
			[]string{"t0", "t1t2t3"}},
		{"busy tab: never longer than the interval",
			0, []token{{0, false}, {10, true}, {26, true}},
			[]string{"t0", "t1t2"}},
		{"fewer answers than CoalesceStreams: every token at once",
			3, []token{{0, false}, {20, false}, {40, false}},
			[]string{"t0", "t1", "t2"}},
		{"CoalesceStreams answers: idle tabs wait too, a delta per two pieces",
			4, []token{{0, false}, {20, false}, {40, false}, {60, false}, {80, false}},
			[]string{"t0", "t1t2", "t3t4"}},
		{"CoalesceStreams answers, a busy tab: the window, whatever the pieces",
			4, []token{{0, false}, {20, true}, {40, true}, {60, true}},
			[]string{"t0", "t1t2t3"}},
		{"CoalesceStreams answers, a fast model: two pieces, but half the window apart",
			4, []token{{0, false}, {2, false}, {4, false}, {6, false}, {8, false}, {10, false}, {12, false}, {14, false}},
			[]string{"t0", "t1t2t3t4t5t6t7"}},
		{"twice CoalesceStreams: four pieces a delta",
			8, []token{{0, false}, {10, false}, {20, false}, {30, false}, {40, false}, {50, false}, {60, false}, {70, false}, {80, false}},
			[]string{"t0", "t1t2t3t4", "t5t6t7t8"}},
		{"twice CoalesceStreams: the window doubles; the delta goes once the next piece would come after it",
			8, []token{{0, false}, {20, false}, {40, false}, {60, false}, {80, false}, {100, false}},
			[]string{"t0", "t1t2t3"}},
		{"many answers, a model slower than the window: every token at once",
			8, []token{{0, false}, {100, false}, {200, false}, {300, false}},
			[]string{"t0", "t1", "t2", "t3"}},
		{"many answers, pieces that come unevenly still wait for each other",
			8, []token{{0, false}, {20, false}, {40, false}, {60, false}, {130, false}, {135, false}, {150, false}, {170, false}},
			[]string{"t0", "t1t2t3", "t4t5t6t7"}},
		{"many answers, a slow model and a busy tab: the window",
			8, []token{{0, false}, {100, true}, {200, false}},
			[]string{"t0", "t1t2"}},
		{"far more answers: the window stops at CoalesceMaxInterval",
			40, []token{{0, false}, {30, false}, {60, false}, {90, false}, {120, false}},
			[]string{"t0", "t1t2t3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := New(Options{Writer: nopWriter{}, CoalesceInterval: 25 * time.Millisecond,
				CoalesceStreams: 4, CoalesceMaxInterval: 60 * time.Millisecond})
			if h.opts.CoalesceMinGap != 5*time.Millisecond {
				t.Fatalf("CoalesceMinGap defaults to %v, want a fifth of the interval", h.opts.CoalesceMinGap)
			}
			h.live.Store(tt.live)
			rec := &busyRecorder{}
			c := &conv{id: "c1", subs: followersOf(rec)}
			t0 := time.Now()
			g := &generation{hub: h, conv: c, msg: persistence.Message{ID: "m1", ConversationID: c.id}, lastFlush: t0}
			c.gen = g
			for i, tok := range tt.tokens {
				c.mu.Lock()
				rec.busy = tok.busy
				c.mu.Unlock()
				g.onDeltaAt("t"+string(rune('0'+i)), t0.Add(time.Duration(tok.atMs*float64(time.Millisecond))))
			}
			var got []string
			for _, f := range rec.frames {
				if f.Type == "delta" {
					text, err := deltaText(f)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, text)
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.deltas, "|") {
				t.Fatalf("deltas %q, want %q", got, tt.deltas)
			}

		})
	}
}

// clockRecorder records when (on the test's clock) each delta arrives.
type clockRecorder struct {
	recorder
	now *time.Time
	at  []time.Time
}

func (r *clockRecorder) Deliver(f *protocol.Frame) {
	r.recorder.Deliver(f)
	if f.Type == "delta" {
		r.at = append(r.at, *r.now)
	}
}

// TestWidenedCoalescingWithTimer: 49 tokens of a model at 100, 50, 25
// or 16.7 tokens/s (the first alone, then a number every delta size
// divides), with the flusher ticking as Run does. Below CoalesceStreams
// answers every token is its own delta; from CoalesceStreams on, a delta
// carries two pieces per CoalesceStreams answers or what came within the
// window, which grows with the answers, whichever is less, and no token
// waits longer than either. At 100 tokens/s a delta of two pieces goes out
// after 10 ms; before, every token waited for the whole (31 ms) window,
// which a burst of 250 sends paid in lateness. Nor does a delta wait for a
// piece that, at the answer's average pace, would come after the window:
// the same deltas go out sooner (10 ms sooner at 50 tokens/s and a 50 ms
// window), and a model slower than the window gets every piece at once.
func TestWidenedCoalescingWithTimer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		live   int64
		gap    time.Duration // between tokens
		frames int           // the first token alone, then a delta per window or per its pieces
		wait   time.Duration // the longest a token may wait
	}{
		{live: 3, gap: 20 * time.Millisecond, frames: 49, wait: 0},
		{live: 4, gap: 20 * time.Millisecond, frames: 1 + 48/2, wait: 20 * time.Millisecond},   // two pieces
		{live: 5, gap: 10 * time.Millisecond, frames: 1 + 48/2, wait: 10 * time.Millisecond},   // a fast model: two pieces, not the 31 ms window
		{live: 8, gap: 20 * time.Millisecond, frames: 1 + 48/3, wait: 40 * time.Millisecond},   // three pieces: the fourth would come after the window
		{live: 100, gap: 20 * time.Millisecond, frames: 1 + 48/3, wait: 40 * time.Millisecond}, // CoalesceMaxInterval; the fourth piece would come too late
		{live: 100, gap: 40 * time.Millisecond, frames: 1 + 48/2, wait: 40 * time.Millisecond}, // two pieces: the third would come after the window
		{live: 100, gap: 60 * time.Millisecond, frames: 49, wait: 0},                           // a model slower than the window: every piece at once
	}
	const tokens = 49
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.live, " answers, ", tt.gap), func(t *testing.T) {
			t.Parallel()
			frames, text, waits, err := replayAnswer(Options{CoalesceInterval: 25 * time.Millisecond,
				CoalesceStreams: 4, CoalesceMaxInterval: 50 * time.Millisecond}, tt.live, tt.gap, tokens)
			if err != nil {
				t.Fatal(err)
			}
			if want := replayText(tokens); text != want {
				t.Fatalf("got text %q, want %q", text, want)
			}
			if frames != tt.frames {
				t.Errorf("%d deltas for %d tokens, want %d", frames, tokens, tt.frames)
			}
			if longest := slices.Max(waits); longest > tt.wait {
				t.Errorf("a token waited %v, want at most %v", longest, tt.wait)
			}
		})
	}
}

// drainRecorder is a busy recorder that counts the hub's WatchDrain calls.
type drainRecorder struct {
	busyRecorder
	watches int
}

func (r *drainRecorder) WatchDrain() { r.watches++ }

// TestDrainedSendsHeldText: text held back because a tab was busy goes out
// when the busy tabs have drained (Hub.Drained), not when the interval
// ends, and only once no other tab is busy and the model is not fast;
// each busy tab that held the text is asked to say when it drained, and
// every tab gets the same deltas.
func TestDrainedSendsHeldText(t *testing.T) {
	t.Parallel()
	h := New(Options{Writer: nopWriter{}, CoalesceInterval: 25 * time.Millisecond})
	a, b := &drainRecorder{}, &drainRecorder{}
	c := &conv{id: "c1"}
	c.mu.Lock()
	h.followLocked(c, a)
	h.followLocked(c, b)
	c.mu.Unlock()
	t0 := time.Now()
	g := &generation{hub: h, conv: c, msg: persistence.Message{ID: "m1", ConversationID: c.id}, lastFlush: t0}
	c.gen = g
	at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
	deltas := func(r *drainRecorder) string {
		t.Helper()
		var got []string
		for _, f := range r.frames {
			text, err := deltaText(f)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, text)
		}
		return strings.Join(got, "|")
	}
	step := func(what string, do func(), wantA string, watchA, watchB int) {
		t.Helper()
		do()
		if got := deltas(a); got != wantA {
			t.Fatalf("%s: deltas %q, want %q", what, got, wantA)
		}
		if a.watches != watchA || b.watches != watchB {
			t.Fatalf("%s: WatchDrain calls %d and %d, want %d and %d", what, a.watches, b.watches, watchA, watchB)
		}
	}
	busy := func(ra, rb bool) func() { return func() { a.busy, b.busy = ra, rb } }
	step("first token", func() { g.onDeltaAt("t0", at(0)) }, "t0", 0, 0)
	step("a busy", func() { busy(true, false)(); g.onDeltaAt("t1", at(10)) }, "t0", 1, 0)
	step("a drained, b busy", func() { busy(false, true)(); h.drainedAt(a, at(11)) }, "t0", 1, 1)
	step("b drained", func() { busy(false, false)(); h.drainedAt(b, at(12)) }, "t0|t1", 1, 1)
	step("a fast token while a is busy", func() { busy(true, false)(); g.onDeltaAt("t2", at(13)) }, "t0|t1", 1, 1)
	step("drained within the minimum gap", func() { busy(false, false)(); h.drainedAt(a, at(14)) }, "t0|t1", 1, 1)
	step("drained after it", func() { h.drainedAt(a, at(18)) }, "t0|t1|t2", 1, 1)
	step("drained with nothing held", func() { h.drainedAt(a, at(40)) }, "t0|t1|t2", 1, 1)
	if deltas(b) != deltas(a) {
		t.Fatalf("tab b got %q, tab a %q", deltas(b), deltas(a))
	}
}

// replayAnswer streams tokens pieces (replayText's, gap apart) into a
// generation among live answers of a hub with opts, the flusher ticking
// at the start of every bucket as Run does, and returns the deltas sent,
// their text and each token's wait.
func replayAnswer(opts Options, live int64, gap time.Duration, tokens int) (frames int, text string, waits []time.Duration, err error) {
	opts.Writer = nopWriter{}
	h := New(opts)
	h.live.Store(live)
	t0 := h.flush.base
	now := t0
	rec := &clockRecorder{now: &now}
	c := &conv{id: "c1", subs: followersOf(rec)}
	g := &generation{hub: h, conv: c, msg: persistence.Message{ID: "m1", ConversationID: c.id}, lastFlush: t0}
	c.gen = g
	tick := t0
	ticksUntil := func(t time.Time) {
		for ; tick.Before(t); tick = tick.Add(h.flush.step) {
			now = tick
			h.flush.tick(now)
		}
	}
	arrived := make([]time.Time, 0, tokens)
	for i := range tokens {
		at := t0.Add(time.Duration(i) * gap)
		ticksUntil(at)
		now = at
		arrived = append(arrived, at)
		g.onDeltaAt(replayPiece(i), at)
	}
	ticksUntil(now.Add(time.Second))
	var b strings.Builder
	waits = make([]time.Duration, 0, tokens)
	for i, f := range rec.frames {
		d, err := deltaText(f)
		if err != nil {
			return 0, "", nil, err
		}
		b.WriteString(d)
		for range len(d) / len(replayPiece(0)) {
			waits = append(waits, rec.at[i].Sub(arrived[len(waits)]))
		}
	}
	return len(rec.frames), b.String(), waits, nil
}

// replayPiece is replayAnswer's token i: four digits, the same length for each.
func replayPiece(i int) string { return fmt.Sprintf("%04d", i) }

// replayText is the text of replayAnswer's first tokens pieces.
func replayText(tokens int) string {
	var b strings.Builder
	for i := range tokens {
		b.WriteString(replayPiece(i))
	}
	return b.String()
}

// TestCoalesceMaxIntervalDefault: the widened window stops at the
// interval and a fifth unless set (or set below the interval).
func TestCoalesceMaxIntervalDefault(t *testing.T) {
	t.Parallel()
	for _, set := range []time.Duration{0, 10 * time.Millisecond} {
		if d := New(Options{Writer: nopWriter{}, CoalesceInterval: 25 * time.Millisecond, CoalesceMaxInterval: set}).opts.CoalesceMaxInterval; d != 30*time.Millisecond {
			t.Fatalf("CoalesceMaxInterval %v becomes %v, want the interval and a fifth (30ms)", set, d)
		}
	}
}
