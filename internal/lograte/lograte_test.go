package lograte_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"chatd/internal/lograte"
)

// lines is a slog handler keeping each line's message, error, count of
// lines left out (-1: none said) and whether it stands for other errors.
type lines struct {
	mu  *sync.Mutex
	got *[]line
}

type line struct {
	msg     string
	err     string
	skipped int64
	other   bool
}

func newLines() lines { return lines{mu: &sync.Mutex{}, got: new([]line)} }

func (lines) Enabled(context.Context, slog.Level) bool { return true }
func (l lines) WithAttrs([]slog.Attr) slog.Handler     { return l }
func (l lines) WithGroup(string) slog.Handler          { return l }
func (l lines) Handle(_ context.Context, r slog.Record) error {
	got := line{msg: r.Message, skipped: -1}
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case lograte.FailuresNotLogged:
			got.skipped = a.Value.Int64()
		case lograte.ErrKey:
			got.err = a.Value.String()
		case lograte.OtherErrors:
			got.other = a.Value.Bool()
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
		{msg: "connection limit unavailable", skipped: -1},
		{msg: "release a connection count", skipped: -1},
		{msg: "connection limit unavailable", skipped: 99},
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

// failure is a line logged by the test at after since the one before, as
// the sign-in gates log theirs.
type failure struct {
	after time.Duration
	gate  string
	err   string
}

const unavailable = "cluster-wide limit unavailable; this server's limit only"

// TestFailuresKeptApart: a Handler logs the first line of each message
// and error, so a new fault is not hidden behind another of the same
// message; folds the same error repeated within a window, counted by the
// first line of the window after; and starts afresh after a window
// without that error, the count of the window before dropped.
func TestFailuresKeptApart(t *testing.T) {
	t.Parallel()
	const timeout, denied = "nats: timeout", "nats: permissions violation"
	tests := []struct {
		name     string
		failures []failure
		want     []line
	}{
		{
			name:     "another error on another gate within the window is logged",
			failures: []failure{{0, "login-ip", timeout}, {5 * time.Second, "signup-ip", denied}},
			want:     []line{{unavailable, timeout, -1, false}, {unavailable, denied, -1, false}},
		},
		{
			name: "an error back after another is still folded",
			failures: []failure{{0, "login-ip", timeout}, {time.Second, "login-ip", denied},
				{time.Second, "login-ip", timeout}, {30 * time.Second, "login-ip", timeout}},
			want: []line{{unavailable, timeout, -1, false}, {unavailable, denied, -1, false},
				{unavailable, timeout, 1, false}},
		},
		{
			name: "the same error within the window is folded, counted on the next line",
			failures: []failure{{0, "login-ip", timeout}, {time.Second, "signup-ip", timeout},
				{10 * time.Second, "login-ip", timeout}, {18 * time.Second, "checks-ip", timeout},
				{time.Second, "login-ip", timeout}},
			want: []line{{unavailable, timeout, -1, false}, {unavailable, timeout, 3, false}},
		},
		{
			name: "the count of a window is said by the first line of the window after",
			failures: []failure{{0, "login-ip", timeout}, {10 * time.Second, "login-ip", timeout},
				{29 * time.Second, "login-ip", timeout}},
			want: []line{{unavailable, timeout, -1, false}, {unavailable, timeout, 1, false}},
		},
		{
			name: "a failure after a window without one is a first one",
			failures: []failure{{0, "login-ip", timeout}, {10 * time.Second, "login-ip", timeout},
				{10 * time.Second, "login-ip", timeout}, {45 * time.Second, "login-ip", timeout}},
			want: []line{{unavailable, timeout, -1, false}, {unavailable, timeout, -1, false}},
		},
		{
			name: "a failure days after an outage carries nothing of it",
			failures: append(outage("login-ip", timeout, 500),
				failure{72 * time.Hour, "login-ip", timeout}),
			want: []line{{unavailable, timeout, -1, false}, {unavailable, timeout, 498, false},
				{unavailable, timeout, -1, false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, c := newLines(), &clock{t: time.Unix(1_000_000, 0)}
			log := slog.New(lograte.NewHandler(out, lograte.Options{Now: c.now}))
			for _, f := range tt.failures {
				c.add(f.after)
				log.Warn(unavailable, slog.String("limit", f.gate), slog.Any("err", errors.New(f.err)))
			}
			assertLines(t, out.all(), tt.want)
		})
	}
}

// outage is n failures alike, 50 ms apart (25 s: within a window), one
// more a window after the first and 10 after it, a second apart.
func outage(gate, err string, n int) []failure {
	f := []failure{{0, gate, err}}
	for range n - 2 {
		f = append(f, failure{50 * time.Millisecond, gate, err})
	}
	f = append(f, failure{lograte.DefaultEvery - time.Duration(n-2)*50*time.Millisecond, gate, err})
	for range 10 {
		f = append(f, failure{time.Second, gate, err})
	}
	return f
}

// TestErrorsBounded: errors naming users (the bus's keys) are kept apart
// up to MaxKeys; the others of a message are then folded together, said
// once and then with their count, and the handler holds no more than
// MaxKeys. Once they are quiet for a window they make room again.
func TestErrorsBounded(t *testing.T) {
	t.Parallel()
	out, c := newLines(), &clock{t: time.Unix(1_000_000, 0)}
	h := lograte.NewHandler(out, lograte.Options{Now: c.now, MaxKeys: 4})
	log := slog.New(h)
	userErr := func(i int) error { return fmt.Errorf("read limit user-%d: timeout", i) }
	for i := range 1000 {
		log.Warn("cluster-wide budget unavailable", slog.Any("err", userErr(i)))
		if h.Keys() > 4 {
			t.Fatalf("after %d errors the handler holds %d, want at most 4", i+1, h.Keys())
		}
		c.add(10 * time.Millisecond) // 10 s in all
	}
	// The first 4 have nothing left to say a window after their line; a
	// new error of a message that spilled over still has a line of its own
	// (FreshPerWindow a window).
	c.add(lograte.DefaultEvery - 5*time.Second)
	log.Warn("cluster-wide budget unavailable", slog.Any("err", userErr(1000)))
	log.Warn("cluster-wide budget unavailable", slog.Any("err", userErr(1001)))
	want := []line{}
	for i := range 4 {
		want = append(want, line{"cluster-wide budget unavailable", userErr(i).Error(), -1, false})
	}
	want = append(want, line{"cluster-wide budget unavailable", userErr(4).Error(), -1, true},
		line{"cluster-wide budget unavailable", userErr(1000).Error(), -1, false},
		line{"cluster-wide budget unavailable", userErr(1001).Error(), -1, false})
	assertLines(t, out.all(), want)
	// A whole window without any: a new error has a run of its own again.
	c.add(2 * lograte.DefaultEvery)
	log.Warn("cluster-wide budget unavailable", slog.Any("err", userErr(2000)))
	assertLines(t, out.all()[len(want):], []line{{"cluster-wide budget unavailable", userErr(2000).Error(), -1, false}})
	if h.Keys() > 4 {
		t.Errorf("the handler holds %d, want at most 4", h.Keys())
	}
}

// TestSpilledOverStaysFolded: a fault whose error text changes every
// time (naming a user or a key), sustained for many windows, is logged
// a few times a window once it spilled over (its other errors' line and
// FreshPerWindow new errors), not as a new run of its own for every new
// error each window (63 lines a window before).
func TestSpilledOverStaysFolded(t *testing.T) {
	t.Parallel()
	out, c := newLines(), &clock{t: time.Unix(1_000_000, 0)}
	log := slog.New(lograte.NewHandler(out, lograte.Options{Now: c.now, MaxKeys: 4}))
	perWindow := map[int]int{}
	for i := range 6000 { // 10 minutes at 10 a second
		before := len(out.all())
		log.Warn("cluster-wide budget unavailable", slog.Any("err", fmt.Errorf("read limit user-%d: timeout", i)))
		perWindow[i/300] += len(out.all()) - before
		c.add(100 * time.Millisecond)
	}
	if perWindow[0] > 5 {
		t.Errorf("first window: %d lines, want at most 5 (4 runs and the other errors')", perWindow[0])
	}
	for w := 1; w < 20; w++ {
		if perWindow[w] > 1+lograte.FreshPerWindow {
			t.Errorf("window %d: %d lines, want at most %d", w, perWindow[w], 1+lograte.FreshPerWindow)
		}
	}
}

// TestNewKindAfterSpill: once a message spilled over and its fault goes
// on (a new error text every 10 s keeps its other errors' line with a
// count to say), a new kind of failure of that message is logged at once.
func TestNewKindAfterSpill(t *testing.T) {
	t.Parallel()
	out, c := newLines(), &clock{t: time.Unix(1_000_000, 0)}
	log := slog.New(lograte.NewHandler(out, lograte.Options{Now: c.now, MaxKeys: 64}))
	const msg = "cluster-wide limit unavailable"
	for i := range 70 { // a burst spills it over
		log.Warn(msg, slog.Any("err", fmt.Errorf("read limit key-%d: timeout", i)))
	}
	for i := range 42 { // 7 minutes of a trickle
		c.add(10 * time.Second)
		log.Warn(msg, slog.Any("err", fmt.Errorf("read limit key-%d: timeout", 100+i)))
	}
	before := len(out.all())
	log.Warn(msg, slog.Any("err", errors.New("nats: permissions violation")))
	got := out.all()[before:]
	if len(got) != 1 || got[0].err != "nats: permissions violation" || got[0].other {
		t.Fatalf("the new kind logged as %+v, want a line of its own", got)
	}
}

func assertLines(t *testing.T, got, want []line) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("logged %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestErrorOfWith: the error given to a logger's With tells its lines
// apart as one given to the line does.
func TestErrorOfWith(t *testing.T) {
	t.Parallel()
	out, c := newLines(), &clock{t: time.Unix(1_000_000, 0)}
	log := slog.New(lograte.NewHandler(out, lograte.Options{Now: c.now}))
	for range 3 {
		log.With("err", errors.New("nats: timeout")).Warn(unavailable)
		log.With("err", errors.New("nats: permissions violation")).Warn(unavailable)
	}
	if got := out.all(); len(got) != 2 {
		t.Errorf("logged %+v, want one line per error", got)
	}
}

// TestRunsBy: with Options.By, the lines of a message are told apart by
// that attribute, whatever their error: an error whose text changes on
// every line (a duration in it, as natsbus's "no NATS connection for
// ...") is one run per limit, not a line each.
func TestRunsBy(t *testing.T) {
	t.Parallel()
	out, c := newLines(), &clock{t: time.Unix(1_000_000, 0)}
	log := slog.New(lograte.NewHandler(out, lograte.Options{Now: c.now, By: "limit"}))
	for i := range 20 {
		for _, limit := range []string{"login-ip", "checks-account"} {
			log.Warn(unavailable, slog.String("limit", limit),
				slog.Any("err", fmt.Errorf("no NATS connection for %dms", 1000+i)))
		}
		c.add(time.Second)
	}
	c.add(lograte.DefaultEvery)
	log.Warn(unavailable, slog.String("limit", "login-ip"), slog.Any("err", errors.New("no NATS connection for 60s")))
	want := []line{
		{msg: unavailable, err: "no NATS connection for 1000ms", skipped: -1},
		{msg: unavailable, err: "no NATS connection for 1000ms", skipped: -1},
		{msg: unavailable, err: "no NATS connection for 60s", skipped: 19},
	}
	got := out.all()
	if len(got) != len(want) {
		t.Fatalf("logged %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
