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
		reopen := func(t *testing.T) persistence.Store { return wrapMutant(openAt(t, path)) }
		if os.Getenv(mutantEnv) == "forget-on-reopen" {
			reopen = func(t *testing.T) persistence.Store { return openAt(t, filepath.Join(t.TempDir(), "other.db")) }
		}
		return wrapMutant(openAt(t, path)), reopen
	})
}
