package batch_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"chatd/persistence"
	"chatd/persistence/sqlite"
)

// TestSQLiteStoreWrites runs the Writer against the real SQLite file store.
func TestSQLiteStoreWrites(t *testing.T) {
	t.Parallel()
	runStoreWrites(t, func(t *testing.T) (persistence.Store, writeCounter) {
		s, err := sqlite.Open(ctxFor(t), sqlite.Options{Path: filepath.Join(t.TempDir(), "chatd.db"), Logger: testLogger(t)})
		must(t, "open sqlite", err)
		t.Cleanup(func() { must(t, "close sqlite", s.Close(context.Background())) })
		return s, nil
	})
}

// testLogger writes warnings and errors to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}
