package sqlite

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"chatd/persistence"
)

// TestMigrateWithoutSearchTriggers: a database of the second or third
// schema whose search-index triggers were dropped, as migration 2's
// comment tells a tool that writes messages without chatd_lower to do,
// opens and migrates; its messages are kept and found. Before, migration
// 4 failed on DROP TRIGGER of a trigger that was not there, and the store
// did not open.
func TestMigrateWithoutSearchTriggers(t *testing.T) {
	t.Parallel()
	const owner, convID = "o00000000000000000000001", "c00000000000000000000001"
	for _, version := range []int{2, 3} {
		for _, dropped := range [][]string{
			{"message_fts_insert", "message_fts_update", "message_fts_delete"},
			{"message_fts_update"},
		} {
			t.Run(fmt.Sprint(version, dropped), func(t *testing.T) {
				t.Parallel()
				stmts := append(slices.Clone(migrations[:version]), fmt.Sprintf(`PRAGMA user_version = %d`, version))
				for _, trigger := range dropped {
					stmts = append(stmts, `DROP TRIGGER `+trigger)
				}
				stmts = append(stmts, oldUser(owner),
					`INSERT INTO conversations (id, owner_id, title, model, system_prompt, created_at, updated_at)
						VALUES ('`+convID+`', '`+owner+`', 'old', 'm', '', 1, 2)`,
					`INSERT INTO messages (id, conversation_id, owner_id, parent_id, role, content, model, status,
						finish_reason, error, client_message_id, created_at, updated_at)
						VALUES ('a00000000000000000000001', '`+convID+`', '`+owner+`', '', 'user', 'a wombat digs', 'm',
						'complete', '', '', 'x1', 1, 1)`)
				s := openTest(t, Options{Path: oldDatabase(t, stmts)})
				if s.migratedFrom != version {
					t.Fatalf("migrated from %d, want %d", s.migratedFrom, version)
				}
				page, err := s.ListConversations(context.Background(), owner, persistence.ListQuery{Search: "WOMBAT"})
				if err != nil || len(page.Conversations) != 1 {
					t.Fatalf("search after migration: %+v, %v", page, err)
				}
			})
		}
	}
}
