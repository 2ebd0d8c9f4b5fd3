package sqlite

import (
	"context"
	"time"
)

// UndoEmailRewrite takes s's database back to the schema version before
// the one-time rewrite of emails (step 11), as an older release left it:
// what step 12 added (the conversations' deletion mark) is taken out too.
func UndoEmailRewrite(ctx context.Context, s *Store) error {
	_, err := s.w.ExecContext(ctx, `DROP INDEX conversations_deleting;
		DROP INDEX conversations_owner_client_id;
		ALTER TABLE conversations DROP COLUMN deleting_at;
		CREATE UNIQUE INDEX conversations_owner_client_id ON conversations (owner_id, client_id);
		PRAGMA user_version = 10;`)
	return err
}

// EmailsRewritten says whether s's Open ran the rewrite of emails.
func EmailsRewritten(s *Store) bool { return s.emailsRewritten }

// ShiftTimes moves every timestamp stored in s's users, conversations and
// messages forward by d, as if the clocks that wrote them had been d ahead.
func ShiftTimes(ctx context.Context, s *Store, d time.Duration) error {
	for _, table := range []string{"users", "conversations", "messages"} {
		_, err := s.w.ExecContext(ctx, `UPDATE `+table+` SET created_at = created_at + ?1, updated_at = updated_at + ?1`, d.Nanoseconds())
		if err != nil {
			return err
		}
	}
	return nil
}

// AgeDeletionMark moves user id's deletion mark (deleting_at) back by d,
// as if it was written d earlier.
func AgeDeletionMark(ctx context.Context, s *Store, id string, d time.Duration) error {
	_, err := s.w.ExecContext(ctx, `UPDATE users SET deleting_at = deleting_at - ? WHERE id = ?`, d.Nanoseconds(), id)
	return err
}
