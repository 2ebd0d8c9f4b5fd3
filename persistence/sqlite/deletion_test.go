package sqlite

import (
	"chatd/internal/syncbuf"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatd/persistence"
)

// cutDelete runs DeleteUser of id with its context cancelled once the user
// is marked, as its time limit or the process's end would cut it, and
// fails unless it was cut there.
func cutDelete(t *testing.T, s *Store, id string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx = persistence.WithDeleteHook(ctx, func(step string) {
		if step == persistence.DeleteStepMarked {
			cancel()
		}
	})
	if err := s.DeleteUser(ctx, id); !errors.Is(err, persistence.ErrDeleting) {
		t.Fatalf("DeleteUser cut after the mark: %v, want ErrDeleting", err)
	}
}

// userRows counts the rows of user id, marked or not.
func userRows(t *testing.T, s *Store, id string) int64 {
	t.Helper()
	return readInt(t, s, `SELECT count(*) FROM users WHERE id = ?`, id)
}

// TestOpenFinishesCutDeletions: a deletion cut off after the mark (the
// process ended there) leaves the marked row, with the user's
// conversation; the next Open deletes both before it returns.
func TestOpenFinishesCutDeletions(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "chatd.db")
	s, err := Open(context.Background(), Options{Path: path, DeletionSweep: -1})
	if err != nil {
		t.Fatal(err)
	}
	f := newSearchFixtureFor(t, s, "cut@example.test")
	cutDelete(t, s, f.user.ID)
	if n := userRows(t, s, f.user.ID); n != 1 {
		t.Fatalf("%d rows of the user after the cut, want the marked 1", n)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, Options{Path: path, DeletionSweep: -1})
	if n := userRows(t, s, f.user.ID); n != 0 {
		t.Fatalf("%d rows of the user after the next Open, want 0", n)
	}
	if n := readInt(t, s, `SELECT count(*) FROM conversations WHERE owner_id = ?`, f.user.ID); n != 0 {
		t.Fatalf("%d conversations of the user after the next Open, want 0", n)
	}
}

// TestDeletionSweepFinishesCutDeletions: a deletion cut off by its time
// limit, the server still running, is finished by the store's periodic
// look (DeletionSweep) without a restart.
func TestDeletionSweepFinishesCutDeletions(t *testing.T) {
	t.Parallel()
	type result struct {
		n   int
		err error
	}
	// Only the looks that found something (or failed) are reported: the
	// empty ones before the cut must not fill the channel and push out
	// the one that finished it.
	swept := make(chan result, 1)
	s := openTest(t, Options{DeletionSweep: 10 * time.Millisecond, afterSweep: func(n int, err error) {
		if n == 0 && err == nil {
			return
		}
		select {
		case swept <- result{n, err}:
		default:
		}
	}})
	f := newSearchFixtureFor(t, s, "cut@example.test")
	cutDelete(t, s, f.user.ID)
	select {
	case r := <-swept:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if n := userRows(t, s, f.user.ID); n != 0 {
			t.Fatalf("%d rows of the user after the sweep finished it (n=%d), want 0", n, r.n)
		}
	case <-time.After(time.Minute):
		t.Fatal("no periodic look finished the deletion")
	}
}

// TestFinishDeletionsLogsOnlyItsOwn: a cut-off deletion that another run
// finishes after FinishDeletions found it (a DeleteUser retried, another
// sweep) is counted but not logged as finished by this run, which deleted
// nothing: the log said "finished" for it.
func TestFinishDeletionsLogsOnlyItsOwn(t *testing.T) {
	t.Parallel()
	logs := &syncbuf.Buffer{}
	s := openTest(t, Options{DeletionSweep: -1, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	f := newSearchFixtureFor(t, s, "cut@example.test")
	cutDelete(t, s, f.user.ID)
	ctx := persistence.WithDeleteHook(context.Background(), func(step string) {
		if step != stepMarkedFound {
			return
		}
		if err := s.deleteMarked(context.Background(), f.user.ID); err != nil { // the other run
			t.Errorf("the other run: %v", err)
		}
	})
	n, err := s.FinishDeletions(ctx)
	if err != nil || n != 1 {
		t.Fatalf("FinishDeletions = %d, %v; want 1, nil", n, err)
	}
	if strings.Contains(logs.String(), "finished a cut-off account deletion") {
		t.Errorf("logged as finished by this run:\n%s", logs.String())
	}
	if n := userRows(t, s, f.user.ID); n != 0 {
		t.Errorf("%d rows of the user, want 0", n)
	}
}
