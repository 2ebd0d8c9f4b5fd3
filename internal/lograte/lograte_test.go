package lograte_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"chatd/internal/lograte"
)

// lines is a slog handler keeping each line's message and its count of
// lines left out (-1: none said).
type lines struct {
	mu  *sync.Mutex
	got *[]line
}

type line struct {
	msg     string
	skipped int64
}

func newLines() lines { return lines{mu: &sync.Mutex{}, got: new([]line)} }

func (lines) Enabled(context.Context, slog.Level) bool { return true }
func (l lines) WithAttrs([]slog.Attr) slog.Handler     { return l }
func (l lines) WithGroup(string) slog.Handler          { return l }
func (l lines) Handle(_ context.Context, r slog.Record) error {
	got := line{msg: r.Message, skipped: -1}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == lograte.FailuresNotLogged {
			got.skipped = a.Value.Int64()
		}
		return true
	})
	l.mu.Lock()
	*l.got = append(*l.got, got)
	l.mu.Unlock()
	return nil
}

func (l lines) all() []line {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]line(nil), *l.got...)
}

// clock is a time the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestRepeatsLeftOut: 100 lines of one message in a window are one line
// (the first); the next after the window is logged with the count of
// those left out; another message is counted apart, and a logger made by
// With shares the counts.
func TestRepeatsLeftOut(t *testing.T) {
	t.Parallel()
	out, c := newLines(), &clock{t: time.Unix(1_000_000, 0)}
	log := slog.New(lograte.NewHandler(out, lograte.Options{Now: c.now}))
	with := log.With("user", "u1")
	for i := range 100 {
		if i%2 == 0 {
			log.Warn("connection limit unavailable")
		} else {
			with.Warn("connection limit unavailable")
		}
		c.add(100 * time.Millisecond) // 10 s in all, within the window
	}
	log.Warn("release a connection count")
	c.add(lograte.DefaultEvery)
	log.Warn("connection limit unavailable")
	log.Warn("connection limit unavailable")
	want := []line{
		{"connection limit unavailable", -1},
		{"release a connection count", -1},
		{"connection limit unavailable", 99},
	}
	got := out.all()
	if len(got) != len(want) {
		t.Fatalf("logged %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
