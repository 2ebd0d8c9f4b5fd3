package sqlite

import "context"

// UndoEmailRewrite takes s's database back to the schema version before
// the one-time rewrite of emails (step 11), as an older release left it.
func UndoEmailRewrite(ctx context.Context, s *Store) error {
	_, err := s.w.ExecContext(ctx, "PRAGMA user_version = 10")
	return err
}

// EmailsRewritten says whether s's Open ran the rewrite of emails.
func EmailsRewritten(s *Store) bool { return s.emailsRewritten }
