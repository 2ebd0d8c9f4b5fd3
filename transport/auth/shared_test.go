package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"
)

// memWindows is an in-memory SharedWindows: the windows of every instance
// of a cluster in one map (hub/natsbus tests the NATS one against a real
// server).
type memWindows struct {
	mu   sync.Mutex
	m    map[string]*window
	down bool
	// changing: while down, each error's text differs from the last, as
	// natsbus's does ("no NATS connection for 12.345s").
	changing bool
	failed   int // calls refused while down
}

// downErr is the error of a call while w is down; w.mu is held.
func (w *memWindows) downErr() error {
	w.failed++
	if w.changing {
		return fmt.Errorf("bus down for %dms", 1000+w.failed)
	}
	return errors.New("bus down")
}

func (w *memWindows) Take(_ context.Context, key string, max int, length time.Duration) (time.Duration, bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.down {
		return 0, false, w.downErr()
	}
	now := time.Now()
	c := w.m[key]
	if c == nil || now.Sub(c.start) >= length {
		c = &window{start: now}
		w.m[key] = c
	}
	if c.count >= max {
		return c.start.Add(length).Sub(now), false, nil
	}
	c.count++
	return 0, true, nil
}

func (w *memWindows) Refund(_ context.Context, key string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.down {
		return w.downErr()
	}
	if c := w.m[key]; c != nil && c.count > 0 {
		c.count--
	}
	return nil
}

func (w *memWindows) Reset(_ context.Context, key string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.down {
		return w.downErr()
	}
	delete(w.m, key)
	return nil
}

// TestSharedWindowsAcrossInstances: with a SharedWindows, failed logins
// and registrations are limited for the cluster as a whole, not per
// instance; a success on one instance clears the account's failures on
// all; with the shared windows unreachable each instance keeps its own
// limit.
func TestSharedWindowsAcrossInstances(t *testing.T) {
	t.Parallel()
	shared := &memWindows{m: map[string]*window{}}
	opts := AccountOptions{MaxFailuresPerAccount: 3, MaxFailuresPerIP: 1000, RegistrationsPerHourIP: 3, Shared: shared}
	a := newAccountsEnv(t, opts)
	b := newAccountsEnvOn(t, a.store, opts)
	instances := []*accountsEnv{a, b}
	a.register("target@example.com", "the right password")
	login := func(e *accountsEnv, password string) int {
		t.Helper()
		status, _, _ := e.post("/api/auth/login", map[string]string{"email": "target@example.com", "password": password})
		return status
	}
	steps := []struct {
		name     string
		on       *accountsEnv
		password string
		want     int
	}{
		{"guess 1 on a", a, "guess 1", http.StatusUnauthorized},
		{"guess 2 on b", b, "guess 2", http.StatusUnauthorized},
		{"right password on b clears the account everywhere", b, "the right password", http.StatusOK},
		{"guess 3 on a", a, "guess 3", http.StatusUnauthorized},
		{"guess 4 on b", b, "guess 4", http.StatusUnauthorized},
		{"guess 5 on a", a, "guess 5", http.StatusUnauthorized},
		{"guess 6 on b: the cluster's limit", b, "guess 6", http.StatusTooManyRequests},
		{"the right password on a waits too", a, "the right password", http.StatusTooManyRequests},
	}
	for _, s := range steps {
		if got := login(s.on, s.password); got != s.want {
			t.Fatalf("%s: %d, want %d", s.name, got, s.want)
		}
	}
	// Registrations: the hourly limit per address (both see 127.0.0.1;
	// register above used one).
	for i, want := range []int{http.StatusCreated, http.StatusCreated, http.StatusTooManyRequests} {
		e := instances[i%2]
		status, _, _ := e.post("/api/auth/register", map[string]string{
			"email": "new" + string(rune('a'+i)) + "@example.com", "password": "12345678", "name": "N"})
		if status != want {
			t.Fatalf("registration %d: %d, want %d", i, status, want)
		}
	}

	// Unreachable: each instance counts on its own, and lets the
	// attempts its own limit allows through.
	shared.mu.Lock()
	shared.down = true
	shared.mu.Unlock()
	c := newAccountsEnvOn(t, a.store, opts)
	d := newAccountsEnvOn(t, a.store, opts)
	for _, e := range []*accountsEnv{c, d} {
		for i, want := range []int{http.StatusUnauthorized, http.StatusUnauthorized, http.StatusUnauthorized, http.StatusTooManyRequests} {
			if got := login(e, "outage guess"); got != want {
				t.Fatalf("attempt %d with the shared windows down: %d, want %d", i, got, want)
			}
		}
	}
}

// TestSharedWindowsOutageLogsOnce: with the shared windows unreachable
// every sign-in that goes through on the instance's limits fails alike
// at each of its limits; 30 of them log each failure of each limit once
// (lograte, by limit: then once per 30 s, with the count left out), not
// a warning per limit per sign-in, also when the error's text changes
// on every call as natsbus's did ("no NATS connection for 12.345s").
func TestSharedWindowsOutageLogsOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		changing bool
	}{
		{"one error text", false},
		{"a text that changes on every call", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log := &limitLines{}
			shared := &memWindows{m: map[string]*window{}, down: true, changing: tc.changing}
			e := newAccountsEnv(t, AccountOptions{MaxFailuresPerAccount: 1000, MaxFailuresPerIP: 1000,
				MaxChecksPerAccount: 1000, MaxChecksPerIP: 1000, Logger: slog.New(log), Shared: shared})
			e.register("target@example.com", "the right password")
			for i := range 30 {
				password := "a guess"
				if i%10 == 9 {
					password = "the right password" // resets the account's windows
				}
				status, _, _ := e.post("/api/auth/login", map[string]string{"email": "target@example.com", "password": password})
				if status != http.StatusUnauthorized && status != http.StatusOK {
					t.Fatalf("sign-in %d with the shared windows down: %d", i, status)
				}
			}
			lines := log.all()
			if len(lines) == 0 {
				t.Fatal("the outage was not logged")
			}
			for what, n := range lines {
				if n != 1 {
					t.Errorf("%s logged %d times in %d failed calls, want once", what, n, shared.failed)
				}
			}
		})
	}
}

// limitLines counts the lines at WARN or above by message and limit.
type limitLines struct {
	mu    sync.Mutex
	lines map[string]int
}

func (*limitLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *limitLines) WithAttrs([]slog.Attr) slog.Handler     { return l }
func (l *limitLines) WithGroup(string) slog.Handler          { return l }
func (l *limitLines) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return nil
	}
	what := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "limit" {
			what = fmt.Sprintf("%q on %s", r.Message, a.Value)
		}
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lines == nil {
		l.lines = map[string]int{}
	}
	l.lines[what]++
	return nil
}

func (l *limitLines) all() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.lines)
}
