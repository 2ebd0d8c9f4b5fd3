package openai

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// fakeClock is a deadlineClock whose time moves and whose timer goes off
// only when the test says so.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Duration
	timer *fakeTimer // the last one made
}

type fakeTimer struct {
	c     *fakeClock
	f     func()
	armed bool
	after time.Duration // the last Reset's duration
}

func (c *fakeClock) since() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) afterFunc(d time.Duration, f func()) deadlineTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timer = &fakeTimer{c: c, f: f, armed: true, after: d}
	return c.timer
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now += d
}

// fire runs the timer's function in the calling goroutine, as its
// goroutine would when it goes off; false when it is not armed.
func (c *fakeClock) fire() bool {
	c.mu.Lock()
	t := c.timer
	ok := t != nil && t.armed
	if ok {
		t.armed = false
	}
	c.mu.Unlock()
	if ok {
		t.f()
	}
	return ok
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.armed, t.after = true, d
	return was
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.armed = false
	return was
}

// TestStreamDeadlineOrder: a chunk and the timer are decided by the one
// that comes first, whatever the order: a chunk claimed before the timer
// goes off keeps the attempt going (the timer waits again), a timer that
// went off first ends it with the cause it saw, and the chunk after it is
// refused.
func TestStreamDeadlineOrder(t *testing.T) {
	t.Parallel()
	const first, idle = 10 * time.Second, 2 * time.Second
	tests := []struct {
		name  string
		steps string // c: a chunk, f: the timer goes off, +: the clock moves past idle
		cause error  // nil: the attempt goes on
		last  bool   // what the last chunk's claim reports
	}{
		{"first chunk then timer", "cf", nil, true},
		{"timer then first chunk", "fc", errFirstTokenTimeout, false},
		{"chunk, silence past idle, timer, chunk", "c+fc", errIdleTimeout, false},
		{"chunk, silence past idle, chunk, timer", "c+cf", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			clk := &fakeClock{}
			d := newStreamDeadline(ctx, cancel, clk, first, idle)
			if clk.timer.after != first {
				t.Fatalf("first timer %v, want %v", clk.timer.after, first)
			}
			var claimed bool
			for _, s := range tc.steps {
				switch s {
				case 'c':
					claimed = d.chunk()
				case 'f':
					if !clk.fire() {
						t.Fatal("the timer was not armed")
					}
				case '+':
					clk.advance(idle + time.Millisecond)
				}
			}
			if got := context.Cause(ctx); !errors.Is(got, tc.cause) || (tc.cause == nil && got != nil) {
				t.Fatalf("cause %v, want %v", got, tc.cause)
			}
			if claimed != tc.last {
				t.Fatalf("last chunk claimed %v, want %v", claimed, tc.last)
			}
			if tc.cause == nil && !clk.timer.armed {
				t.Fatal("the attempt goes on but its timer is not armed again")
			}
		})
	}
}

// TestTimerAsTextArrives: the timer going off exactly as a chunk of text
// arrives (here: while its text is being delivered, the moment the
// attempt's claim and the timer's check meet) does not end the answer:
// the first token with a first-token timer, or a token after a pause past
// the idle timeout counted from the one before. Before, the text was
// delivered first and claimed after, so the timer found no claim (first
// token: "did not start answering"; later: the previous token's time) and
// failed an answer whose text had come.
func TestTimerAsTextArrives(t *testing.T) {
	t.Parallel()
	const idle = time.Minute
	tests := []struct {
		name  string
		delta int  // the delta (0-based) during which the timer goes off
		pause bool // the clock moves past idle after the delta before it
	}{
		{"first token", 0, false},
		{"token after a pause past idle", 3, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{})
			c := New(Options{BaseURL: srv.URL, FirstTokenTimeout: time.Minute, IdleTimeout: idle,
				Logger: slog.New(slog.DiscardHandler)})
			clk := &fakeClock{}
			c.clock = clk
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var deltas []string
			req := llm.Request{Model: "fake-mini", Messages: []llm.Message{{Role: llm.RoleUser, Content: "[[fake tokens=6]]"}}}
			_, err := c.Stream(ctx, req, func(s string) {
				if tc.pause && len(deltas) == tc.delta-1 {
					clk.advance(idle + time.Second) // the pause before the next token
				}
				if len(deltas) == tc.delta {
					if !clk.fire() {
						t.Error("the timer was not armed")
					}
				}
				deltas = append(deltas, s)
			})
			if err != nil {
				t.Fatalf("err %v, want the whole answer", err)
			}
			if got, want := strings.Join(deltas, ""), fakeai.ExpectedText(fakeai.Config{Tokens: 6}); got != want {
				t.Fatalf("text %q, want %q", got, want)
			}
		})
	}
}
