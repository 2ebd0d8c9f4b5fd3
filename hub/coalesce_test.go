package hub

import (
	"context"
	"strings"
	"testing"
	"time"

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
		{"as many answers as CoalesceStreams: every token at once",
			4, []token{{0, false}, {20, false}, {40, false}},
			[]string{"t0", "t1", "t2"}},
		{"twice CoalesceStreams: the window doubles, idle tabs wait too",
			8, []token{{0, false}, {20, false}, {40, false}, {60, false}, {80, false}, {100, false}, {120, false}},
			[]string{"t0", "t1t2t3", "t4t5t6"}},
		{"far more answers: the window stops at CoalesceMaxInterval",
			40, []token{{0, false}, {30, false}, {60, false}, {90, false}, {120, false}},
			[]string{"t0", "t1t2", "t3t4"}},
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
