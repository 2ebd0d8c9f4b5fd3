package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"chatd/persistence/sqlite"
	"chatd/persistence/storetest"
)

// TestOldMarkFinished: a MarkUserDeleting mark left by a deletion cut off
// is finished once older than persistence.DeletionGrace, not before
// (storetest.CheckOldMarkFinished).
func TestOldMarkFinished(t *testing.T) {
	t.Parallel()
	s := openAt(t, filepath.Join(t.TempDir(), "chatd.db"))
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	storetest.CheckOldMarkFinished(t, s, func(ctx context.Context, id string, d time.Duration) error {
		return sqlite.AgeDeletionMark(ctx, s, id, d)
	})
}
