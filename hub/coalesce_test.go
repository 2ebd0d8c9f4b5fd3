package hub

import (
	"context"
	"fmt"
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
		{"CoalesceStreams answers: idle tabs wait too, each token at most the interval",
			4, []token{{0, false}, {20, false}, {40, false}, {60, false}, {80, false}},
			[]string{"t0", "t1t2t3"}},
		{"twice CoalesceStreams: the window doubles",
			8, []token{{0, false}, {20, false}, {40, false}, {60, false}, {80, false}, {100, false}},
			[]string{"t0", "t1t2t3t4"}},
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
			c := &conv{id: "c1", subs: map[Subscriber]struct{}{rec: {}}}
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

// TestWidenedCoalescingWithTimer: a model at 50 tokens/s for one second,
// with the flusher ticking as Run does. Below CoalesceStreams answers every
// token is its own delta; from CoalesceStreams on, the window grows with
// the answers, a delta carries several tokens, and no token waits longer
// than the window (plus the flusher's tick, by which it may be early).
func TestWidenedCoalescingWithTimer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		live   int64
		frames int // the first token alone, then a delta per window
		window time.Duration
	}{
		{live: 3, frames: 50, window: 0},
		{live: 4, frames: 1 + 49/2 + 1, window: 25 * time.Millisecond},
		{live: 8, frames: 1 + 49/3 + 1, window: 50 * time.Millisecond},
		{live: 100, frames: 1 + 49/3 + 1, window: 50 * time.Millisecond}, // CoalesceMaxInterval
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.live, " answers"), func(t *testing.T) {
			t.Parallel()
			h := New(Options{Writer: nopWriter{}, CoalesceInterval: 25 * time.Millisecond,
				CoalesceStreams: 4, CoalesceMaxInterval: 50 * time.Millisecond})
			h.live.Store(tt.live)
			t0 := h.flush.base
			now := t0
			rec := &clockRecorder{now: &now}
			c := &conv{id: "c1", subs: map[Subscriber]struct{}{rec: {}}}
			g := &generation{hub: h, conv: c, msg: persistence.Message{ID: "m1", ConversationID: c.id}, lastFlush: t0}
			c.gen = g
			tick := t0 // the Run loop ticks at the start of every bucket
			ticksUntil := func(t time.Time) {
				for ; tick.Before(t); tick = tick.Add(h.flush.step) {
					now = tick
					h.flush.tick(now)
				}
			}
			var arrived []time.Time
			for i := range 50 {
				at := t0.Add(time.Duration(i) * 20 * time.Millisecond)
				ticksUntil(at)
				now = at
				arrived = append(arrived, at)
				g.onDeltaAt(fmt.Sprintf("%02d", i), at)
			}
			ticksUntil(now.Add(time.Second))
			text, waits := "", time.Duration(0)
			for i, f := range rec.frames {
				d, err := deltaText(f)
				if err != nil {
					t.Fatal(err)
				}
				for range len(d) / 2 {
					waits = max(waits, rec.at[i].Sub(arrived[len(text)/2]))
					text += d[:2]
					d = d[2:]
				}
			}
			if len(text) != 100 {
				t.Fatalf("got %d bytes of text, want 100", len(text))
			}
			if len(rec.frames) != tt.frames {
				t.Errorf("%d deltas for 50 tokens, want %d", len(rec.frames), tt.frames)
			}
			if waits > tt.window {
				t.Errorf("a token waited %v, want at most %v", waits, tt.window)
			}
		})
	}
}
