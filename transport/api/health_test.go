package api_test

import (
	"bytes"
	"chatd/internal/syncbuf"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/persistence"
	"chatd/persistence/sqlite"
	"chatd/transport/api"
)

// readyz answers GET /readyz of h.
func readyz(t *testing.T, h *api.Health) int {
	t.Helper()
	gin.SetMode(gin.TestMode)
	r := gin.New()
	h.Routes(r)
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return w.Code
}

// flakyStore answers pings and fails probe writes while broken is set.
type flakyStore struct {
	broken atomic.Bool
	probes atomic.Int32
}

func (s *flakyStore) Ping(context.Context) error { return nil }
func (s *flakyStore) ProbeWrite(context.Context) error {
	s.probes.Add(1)
	if s.broken.Load() {
		return errors.New("disk I/O error: no space left on device")
	}
	return nil
}

// writerStatus is a batch writer's Err.
type writerStatus struct{ err atomic.Pointer[error] }

func (w *writerStatus) Err() error {
	if p := w.err.Load(); p != nil {
		return *p
	}
	return nil
}

// TestReadyzFollowsWrites (issue 10, item 10): /readyz is 503 while the
// store refuses writes (the probe write, or the batch writer's last write)
// and 200 again once it recovers; readiness lost and regained log one line
// each.
func TestReadyzFollowsWrites(t *testing.T) {
	t.Parallel()
	store, writes, logs := &flakyStore{}, &writerStatus{}, &syncbuf.Buffer{}
	h := api.NewHealthWith(api.HealthOptions{Store: store, Writes: writes, ProbeInterval: time.Nanosecond,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	steps := []struct {
		name         string
		probeBroken  bool
		writerFailed bool
		want         int
	}{
		{"healthy", false, false, 200},
		{"probe write fails", true, false, 503},
		{"still failing", true, false, 503},
		{"probe recovers", false, false, 200},
		{"batch writes fail", false, true, 503},
		{"batch writes recover", false, false, 200},
	}
	for _, st := range steps {
		store.broken.Store(st.probeBroken)
		var werr error
		if st.writerFailed {
			werr = errors.New("database or disk is full")
		}
		writes.err.Store(&werr)
		if got := readyz(t, h); got != st.want {
			t.Fatalf("%s: /readyz = %d, want %d", st.name, got, st.want)
		}
	}
	if n := strings.Count(logs.String(), "not ready"); n != 2 {
		t.Fatalf("%d 'not ready' log lines, want 2 (one per outage):\n%s", n, logs)
	}
}

// TestReadyzProbesAtMostOncePerInterval: polling /readyz does not write
// more than once per ProbeInterval.
func TestReadyzProbesAtMostOncePerInterval(t *testing.T) {
	t.Parallel()
	store := &flakyStore{}
	h := api.NewHealthWith(api.HealthOptions{Store: store, ProbeInterval: time.Hour})
	for range 20 {
		if got := readyz(t, h); got != 200 {
			t.Fatalf("/readyz = %d", got)
		}
	}
	if n := store.probes.Load(); n != 1 {
		t.Fatalf("%d probe writes for 20 checks within the interval, want 1", n)
	}
}

// TestReadyzCorruptedDatabase (issue 10, item 10): a SQLite file whose
// pages are damaged still opens, but /readyz answers 503 and one clear line
// is logged.
func TestReadyzCorruptedDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "chatd.db")
	quiet := slog.New(slog.NewTextHandler(&syncbuf.Buffer{}, nil))
	s, err := sqlite.Open(ctx, sqlite.Options{Path: path, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	u := persistence.User{Email: "a@example.com", Name: "A", PasswordHash: "x"}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	corrupt(t, path, "users", "probe")

	s, err = sqlite.Open(ctx, sqlite.Options{Path: path, Logger: quiet})
	if err != nil {
		t.Fatalf("the damaged file does not open (the test wants one that opens): %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	logs := &syncbuf.Buffer{}
	h := api.NewHealthWith(api.HealthOptions{Store: s, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	for range 3 {
		if got := readyz(t, h); got != 503 {
			t.Fatalf("/readyz on a corrupted database = %d, want 503", got)
		}
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 || !strings.Contains(logs.String(), "corrupted") {
		t.Fatalf("%d lines about the corruption, want 1:\n%s", n, logs)
	}
}

// lostLease is a store whose single-process lease does not hold: its Ping
// fails with err, as the MongoDB store's does.
type lostLease struct {
	flakyStore
	err error
}

func (l *lostLease) Ping(context.Context) error { return l.err }

// TestReadyzLostLease: a store that lost its single-process lease to
// another chatd makes /readyz 503 with that reason, logged with its cause;
// it said "the database does not answer", which sent operators looking at
// a database that answered. A lease that only lapsed (renewals unanswered,
// nobody known to have taken it) says so: it said another chatd took it.
func TestReadyzLostLease(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.TestMode)
	for _, tc := range []struct {
		name, want, not string
		err             error
	}{
		{"taken", "another chatd took this database's single-process lease", "",
			fmt.Errorf("%w: held by another chatd on host b", persistence.ErrLeaseLost)},
		{"lapsed", "lease on the database expired unrenewed", "another chatd took this database's",
			fmt.Errorf("%w: %w at 2026-12-07T07:00:00Z", persistence.ErrLeaseLost, persistence.ErrLeaseLapsed)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := &syncbuf.Buffer{}
			h := api.NewHealthWith(api.HealthOptions{Store: &lostLease{err: tc.err}, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			r := gin.New()
			h.Routes(r)
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), tc.want) {
				t.Fatalf("/readyz = %d %s, want 503 saying %q", w.Code, w.Body, tc.want)
			}
			if tc.not != "" && strings.Contains(w.Body.String(), tc.not) {
				t.Fatalf("/readyz = %s, must not say %q", w.Body, tc.not)
			}
			if !strings.Contains(logs.String(), tc.want) || !strings.Contains(logs.String(), tc.err.Error()) {
				t.Fatalf("log, want the reason and its cause:\n%s", logs)
			}
		})
	}
}

// corrupt overwrites the root pages of the named tables with garbage: the
// file still opens (its header and schema are intact), but reading or
// writing those tables answers "database disk image is malformed".
func corrupt(t *testing.T, path string, tables ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var pageSize int64
	if err := db.QueryRow("PRAGMA page_size").Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	var pages []int64
	for _, name := range tables {
		var root int64
		if err := db.QueryRow("SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = ?", name).Scan(&root); err != nil {
			t.Fatalf("root page of %s: %v", name, err)
		}
		pages = append(pages, root)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	garbage := bytes.Repeat([]byte{0x5a}, int(pageSize))
	for _, p := range pages {
		if _, err := f.WriteAt(garbage, (p-1)*pageSize); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadyzLogsBusOutage: readiness lost because the cluster bus is
// unusable logs one line, and one when it is back, as for the database
// (the log is where an operator learns why a load balancer took the
// instance out). Before, a bus outage turned /readyz 503 without a line.
func TestReadyzLogsBusOutage(t *testing.T) {
	t.Parallel()
	logs := &syncbuf.Buffer{}
	h := api.NewHealthWith(api.HealthOptions{Store: &flakyStore{}, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	var busDown atomic.Bool
	h.SetBusCheck(func(context.Context) error {
		if busDown.Load() {
			return errors.New("nats: no servers available for connection")
		}
		return nil
	})
	for _, st := range []struct {
		name string
		down bool
		want int
	}{
		{"healthy", false, 200},
		{"bus down", true, 503},
		{"still down", true, 503},
		{"bus back", false, 200},
	} {
		busDown.Store(st.down)
		if got := readyz(t, h); got != st.want {
			t.Fatalf("%s: /readyz = %d, want %d", st.name, got, st.want)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "not ready: the cluster bus is unavailable"); n != 1 {
		t.Fatalf("%d 'not ready' lines for one bus outage, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "ready again"); n != 1 {
		t.Fatalf("%d 'ready again' lines, want 1:\n%s", n, out)
	}
}
