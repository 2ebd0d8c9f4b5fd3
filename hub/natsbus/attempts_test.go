package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"chatd/hub"
	"chatd/hub/natsbus/natstest"
)

func TestAttemptLog(t *testing.T) {
	t.Parallel()
	refused := errors.New("nats: authorization violation")
	unreachable := errors.New("dial tcp 10.0.0.11:4222: connect: connection refused")
	type step struct {
		connected   bool // the connection came up before this step
		err         error
		after       time.Duration // since the start
		wantLog     bool
		wantSkipped int
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"the first failure is logged, its repeats are not", []step{
			{err: refused, wantLog: true},
			{err: refused, after: time.Second},
			{err: refused, after: 3 * time.Second},
		}},
		{"the same failure again after the interval, with the count passed over", []step{
			{err: refused, wantLog: true},
			{err: refused, after: 10 * time.Second},
			{err: refused, after: 20 * time.Second},
			{err: refused, after: attemptLogEvery, wantLog: true, wantSkipped: 2},
			{err: refused, after: attemptLogEvery + time.Second},
		}},
		{"another reason is logged at once", []step{
			{err: unreachable, wantLog: true},
			{err: unreachable, after: time.Second},
			{err: refused, after: 2 * time.Second, wantLog: true, wantSkipped: 1},
			{err: unreachable, after: 3 * time.Second, wantLog: true},
		}},
		{"after a connection the first failure is logged again", []step{
			{err: refused, wantLog: true},
			{err: refused, after: time.Second},
			{connected: true, err: refused, after: 2 * time.Second, wantLog: true},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var a attemptLog
			start := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
			for i, s := range c.steps {
				if s.connected {
					a.connected()
				}
				skipped, log := a.failed(s.err, start.Add(s.after))
				if log != s.wantLog || skipped != s.wantSkipped {
					t.Errorf("step %d (%v at %s): log %v with %d passed over, want %v with %d",
						i, s.err, s.after, log, skipped, s.wantLog, s.wantSkipped)
				}
			}
		})
	}
}

// logRecords is a slog.Handler that hands each record to a channel.
type logRecords chan slog.Record

func (l logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l logRecords) Handle(_ context.Context, r slog.Record) error {
	select {
	case l <- r:
	default: // a full channel drops records; the test reads what it needs
	}
	return nil
}
func (l logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l logRecords) WithGroup(string) slog.Handler      { return l }

// logAttr is the value of r's attribute key, "" when it has none.
func logAttr(r slog.Record, key string) string {
	var v string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
		}
		return true
	})
	return v
}

// TestRefusedConnectionLogged: an instance the NATS servers refuse says
// why in its log (not only that the bus is unavailable), once for a run
// of attempts failing the same way.
func TestRefusedConnectionLogged(t *testing.T) {
	c := natstest.Start(t, natstest.Options{Nodes: 1, User: "chatd", Password: "pw"})
	logs := make(logRecords, 256)
	b, err := New(Options{URLs: c.URLs(), InstanceID: "refused", User: "chatd", Password: "not-the-password",
		OutageGrace: 100 * time.Millisecond, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	failed := 0
	for failed == 0 {
		select {
		case r := <-logs:
			if r.Message != "NATS connection attempt failed" {
				continue
			}
			failed++
			if reason := logAttr(r, "err"); !strings.Contains(strings.ToLower(reason), "authorization violation") {
				t.Errorf("logged reason %q, want the server's authorization violation", reason)
			}
		case <-ctx.Done():
			t.Fatal("no failed connection attempt was logged")
		}
	}
	if err := b.Health(ctx); !errors.Is(err, hub.ErrBusUnavailable) {
		t.Errorf("health %v, want unavailable", err)
	}
}

// TestReconnectAfterAuthRefused: NATS refusing this instance's
// credentials for a while (a server reloaded with another password, then
// with the right one again, as a wrong bcrypt hash put right) does not end
// its connection: the bus is usable again once the credentials are taken.
// nats.go closed the connection for good after the same server refused
// them twice in a row, and the instance stayed unavailable until restarted.
func TestReconnectAfterAuthRefused(t *testing.T) {
	t.Parallel()
	c := natstest.Start(t, natstest.Options{Nodes: 1, User: "chatd", Password: "pw"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, _ := newBusWith(t, c, Options{InstanceID: "refused-then-back", LeaseTTL: time.Second})
	waitHealthy(t, ctx, b)

	c.SetPassword("another")
	// Its attempts to reconnect with the old password, refused.
	const refusals = 3 // more than the two in a row nats.go gave up after
	from := c.AuthRefusals()
	waitOpen(t, ctx, b, "refused attempts", func() bool { return c.AuthRefusals() >= from+refusals })
	c.SetPassword("pw")
	waitOpen(t, ctx, b, "healthy again", func() bool { return b.Health(ctx) == nil })
}

// waitOpen polls cond until it holds, failing at once if b's connection
// is closed for good meanwhile, or when ctx ends.
func waitOpen(t *testing.T, ctx context.Context, b *Bus, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-b.closed:
			t.Fatalf("waiting for %s: the NATS connection was closed for good: %v", what, b.nc.LastError())
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (health: %v)", what, ctx.Err(), b.Health(ctx))
		case <-time.After(20 * time.Millisecond): // polling the bus's state
		}
	}
}

// TestConnectionClosedLogged: a connection nats.go closes by itself is
// logged as an error (the instance will not come back without a
// restart); one Close or Kill closes is not.
func TestConnectionClosedLogged(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	cases := []struct {
		name      string
		close     func(b *Bus)
		wantError bool
	}{
		{"nats.go gives up", func(b *Bus) { b.nc.Close() }, true},
		{"Close", func(b *Bus) { _ = b.Close(context.Background()) }, false},
		{"Kill", func(b *Bus) { b.Kill() }, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			logs := make(logRecords, 1024)
			b, _ := newBusWith(t, c, Options{InstanceID: fmt.Sprintf("closed-%d", i), LeaseTTL: time.Second, Logger: slog.New(logs)})
			waitHealthy(t, ctx, b)
			tc.close(b)
			<-b.closed // the ClosedHandler ran
			gotError := false
			for drained := false; !drained; {
				select {
				case r := <-logs:
					gotError = gotError || r.Level == slog.LevelError
				default:
					drained = true
				}
			}
			if gotError != tc.wantError {
				t.Errorf("error logged: %v, want %v", gotError, tc.wantError)
			}
		})
	}
}
