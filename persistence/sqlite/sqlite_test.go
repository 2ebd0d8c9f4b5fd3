package sqlite_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"chatd/persistence"
	"chatd/persistence/sqlite"
	"chatd/persistence/storetest"
)

// quietLogger keeps test output readable.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openAt opens the store at path, failing the test on error.
func openAt(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// No periodic deletion sweep: the suite calls FinishDeletions itself.
	s, err := sqlite.Open(ctx, sqlite.Options{Path: path, Logger: quietLogger(), DeletionSweep: -1})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) persistence.Store {
		return wrapMutant(openAt(t, filepath.Join(t.TempDir(), "chatd.db")))
	})
}

func TestReopen(t *testing.T) {
	t.Parallel()
	storetest.RunReopen(t, func(t *testing.T) (persistence.Store, func(t *testing.T) persistence.Store) {
		path := filepath.Join(t.TempDir(), "data", "chatd.db")
		wrap := func(s *sqlite.Store) persistence.Store {
			if os.Getenv(mutantEnv) == "" {
				return upgradable{s}
			}
			return wrapMutant(s)
		}
		reopen := func(t *testing.T) persistence.Store { return wrap(openAt(t, path)) }
		if os.Getenv(mutantEnv) == "forget-on-reopen" {
			reopen = func(t *testing.T) persistence.Store { return openAt(t, filepath.Join(t.TempDir(), "other.db")) }
		}
		return wrap(openAt(t, path)), reopen
	})
}

// upgradable is a store that can be taken back to before its one-time
// rewrite of emails (storetest.EmailUpgrade).
type upgradable struct{ *sqlite.Store }

func (u upgradable) UndoEmailRewrite(t *testing.T) {
	t.Helper()
	if err := sqlite.UndoEmailRewrite(context.Background(), u.Store); err != nil {
		t.Fatal(err)
	}
}

func (u upgradable) EmailsRewritten() bool { return sqlite.EmailsRewritten(u.Store) }

func TestClocks(t *testing.T) {
	t.Parallel()
	storetest.RunClocks(t, func(t *testing.T) (persistence.Store, func(t *testing.T, d time.Duration)) {
		s := openAt(t, filepath.Join(t.TempDir(), "chatd.db"))
		return s, func(t *testing.T, d time.Duration) {
			t.Helper()
			if err := sqlite.ShiftTimes(context.Background(), s, d); err != nil {
				t.Fatalf("shift the stored times: %v", err)
			}
		}
	})
}
