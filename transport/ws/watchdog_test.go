package ws

import (
	"testing"
	"time"
)

// TestWatchdog: the watchdog fires for a write that outlives its limit,
// never earlier, also for a write that starts after the timer went off and
// found no write (it re-arms); and never for writes that each end in time,
// however long they go on one after the other, or after stop.
func TestWatchdog(t *testing.T) {
	t.Parallel()
	const deadline = 10 * time.Second // bounds every wait: the test never waits it out
	cases := []struct {
		name  string
		limit time.Duration
		run   func(t *testing.T, w *watchdog) time.Time // returns when the long write began (zero: none)
	}{
		{"one long write", 50 * time.Millisecond, func(t *testing.T, w *watchdog) time.Time {
			began := time.Now()
			w.start()
			return began
		}},
		{"long write after short ones", 50 * time.Millisecond, func(t *testing.T, w *watchdog) time.Time {
			for range 100 {
				w.start()
				w.done()
			}
			began := time.Now()
			w.start()
			return began
		}},
		{"long write after the timer found none", 50 * time.Millisecond, func(t *testing.T, w *watchdog) time.Time {
			w.start()
			w.done()
			waitFor(t, deadline, "the timer to go off and disarm", func() bool { return !w.armed.Load() })
			began := time.Now()
			w.start()
			return began
		}},
		{"short writes for three limits", 200 * time.Millisecond, func(t *testing.T, w *watchdog) time.Time {
			for end := time.Now().Add(600 * time.Millisecond); time.Now().Before(end); {
				w.start()
				w.done()
				time.Sleep(time.Millisecond) // the pace of the writes, not synchronisation
			}
			return time.Time{}
		}},
		{"stopped", 50 * time.Millisecond, func(t *testing.T, w *watchdog) time.Time {
			w.stop()
			w.start()
			time.Sleep(150 * time.Millisecond) // three limits: a fire would come in this window
			return time.Time{}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fired := make(chan time.Time, 1)
			w := newWatchdog(tc.limit, func() { fired <- time.Now() })
			defer w.stop()
			began := tc.run(t, w)
			if began.IsZero() {
				select {
				case <-fired:
					t.Fatal("fired without a write longer than the limit")
				default:
				}
				return
			}
			select {
			case at := <-fired:
				if at.Sub(began) < tc.limit {
					t.Fatalf("fired %v after the write began, before the limit %v", at.Sub(began), tc.limit)
				}
			case <-time.After(deadline):
				t.Fatalf("a write outlived the limit %v and the watchdog never fired", tc.limit)
			}
		})
	}
}

// waitFor polls cond until it holds, or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling, with the deadline above
	}
}
