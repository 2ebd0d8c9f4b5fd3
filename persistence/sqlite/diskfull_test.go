package sqlite

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"chatd/persistence"
)

// TestProbeFailsWhileTheDiskIsFull: on a disk full for every write that
// needs a new page (a max_page_count reached stands in for it), the
// probe's own write, which rewrites its row in place, still fits; once a
// write failed for the full disk, the probe (what /readyz asks) fails with
// that write's error, as long as no write succeeds after it, and passes
// again once one does, or once the failure is diskHold old. Before, the
// probe passed all along: /readyz answered 200 while every send failed.
func TestProbeFailsWhileTheDiskIsFull(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// No indexer write (a success) between the refused write and the probe.
	s, owner, conv := openWithConversation(t, Options{IndexQuiet: time.Hour, IndexMaxLag: time.Hour})
	if err := s.ProbeWrite(ctx); err != nil {
		t.Fatal(err)
	}
	unblock := fillDatabase(t, s)
	if err := s.ProbeWrite(ctx); err != nil {
		t.Fatalf("the probe's write on the full database: %v; want it to fit (its row is rewritten in place)", err)
	}
	insert := func() error {
		m := persistence.Message{ConversationID: conv, OwnerID: owner, Role: persistence.RoleUser,
			Content: strings.Repeat("a long message ", 8<<10)}
		return s.InsertMessage(ctx, &m)
	}
	if err := insert(); err == nil {
		t.Fatal("a message stored on the full database")
	}
	for range 2 { // the probe's failure does not end itself
		err := s.ProbeWrite(ctx)
		var se *sqlite.Error
		if !errors.Is(err, persistence.ErrUnavailable) || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_FULL {
			t.Fatalf("probe after a write the full disk refused: %v; want its SQLITE_FULL (persistence.ErrUnavailable)", err)
		}
	}
	if err := s.disk.failing(time.Now().Add(diskHold)); err != nil {
		t.Errorf("the failure %s later: %v; want it forgotten", diskHold, err)
	}

	unblock()
	if err := insert(); err != nil {
		t.Fatalf("a message once there is room: %v", err)
	}
	if err := s.ProbeWrite(ctx); err != nil {
		t.Fatalf("probe after a write succeeded: %v; want it to pass", err)
	}
}
