package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"chatd/internal/emailform"
	"chatd/persistence"
)

const userCols = `id, email, name, password_hash, token_version, created_at, updated_at`

var (
	qInsertUser = writeQ(`INSERT INTO users (` + userCols + `) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	// Every user read and write but the deletion's skips a user marked as
	// being deleted (deleting_at set: see DeleteUser, MarkUserDeleting).
	qUserByID   = readQ(`SELECT ` + userCols + ` FROM users WHERE id = ? AND deleting_at IS NULL`)
	qTokenVer   = readQ(`SELECT token_version FROM users WHERE id = ? AND deleting_at IS NULL`)
	qUserByMail = readQ(`SELECT ` + userCols + ` FROM users WHERE email = ? AND deleting_at IS NULL`)
	qBumpToken  = writeQ(`UPDATE users SET token_version = token_version + 1 WHERE id = ? AND deleting_at IS NULL RETURNING token_version`)
	qChangePass = writeQ(`UPDATE users SET password_hash = ?, token_version = token_version + 1, updated_at = ? WHERE id = ? AND token_version = ? AND deleting_at IS NULL RETURNING token_version`)
	qRehash     = writeQ(`UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ? AND deleting_at IS NULL`)
	qMarkUser   = writeQ(`UPDATE users SET deleting_at = COALESCE(deleting_at, ?), password_hash = '', token_version = token_version + 1 WHERE id = ?`)
	// qMarkLive marks a user as MarkUserDeleting does: deleting_at set,
	// the token version moved, the password hash kept (what tells this
	// mark from DeleteUser's, which clears it).
	qMarkLive   = writeQ(`UPDATE users SET deleting_at = ?, token_version = token_version + 1 WHERE id = ? AND deleting_at IS NULL`)
	qUnmarkLive = writeQ(`UPDATE users SET deleting_at = NULL WHERE id = ? AND deleting_at IS NOT NULL AND password_hash != ''`)
	// qMarked finds up to ?2 users to finish: DeleteUser's marks (the
	// password hash cleared) at once, MarkUserDeleting's once older than
	// ?1 (persistence.DeletionGrace).
	qMarked = readQ(`SELECT id FROM users WHERE deleting_at IS NOT NULL AND (password_hash = '' OR deleting_at < ?) LIMIT ?`)
	// qSealMark turns the mark of a user qMarked found into DeleteUser's
	// (the password hash cleared) while it still stands as qMarked read
	// it (?2 its bound on a MarkUserDeleting mark): UnmarkUserDeleting
	// no longer takes it back, so nothing is deleted of a user whose
	// mark could still be taken back.
	qSealMark = writeQ(`UPDATE users SET password_hash = '' WHERE id = ? AND deleting_at IS NOT NULL AND (password_hash = '' OR deleting_at < ?)`)
	// qUserRow finds a user's row, marked or not (finishMarked's look
	// after a seal that matched nothing).
	qUserRow = readQ(`SELECT id FROM users WHERE id = ?`)
	// qDeleteUserMsgs deletes the messages of the owner's conversations
	// through the conversations' owner index and the messages'
	// conversation index (messages have no index on their owner). The
	// triggers on messages queue each one's removal from the search index
	// and delete the chunks of those still streaming (schema.go).
	qDeleteUserMsgs  = writeQ(`DELETE FROM messages WHERE conversation_id IN (SELECT id FROM conversations WHERE owner_id = ?)`)
	qDeleteUserConvs = writeQ(`DELETE FROM conversations WHERE owner_id = ?`)
	qDeleteUser      = writeQ(`DELETE FROM users WHERE id = ?`)
	// A bounded step of deleteMarked: up to ?2 of the owner's messages
	// (a message's owner is its conversation's: touchConv), found by
	// rowid through the messages' owner index; then, likewise, up to ?2
	// of the owner's conversations (their messages are gone by then).
	qDeleteUserMsgsStep  = writeQ(`DELETE FROM messages WHERE rowid IN (SELECT rowid FROM messages WHERE owner_id = ? LIMIT ?)`)
	qDeleteUserConvsStep = writeQ(`DELETE FROM conversations WHERE rowid IN (SELECT rowid FROM conversations WHERE owner_id = ? LIMIT ?)`)
)

// CreateUser stores u, filling ID (when empty) and timestamps; the email is
// stored as given (callers lower-case it) and must be unique.
func (s *Store) CreateUser(ctx context.Context, u *persistence.User) error {
	v := *u
	if err := fillID(&v.ID); err != nil {
		return fmt.Errorf("sqlite: create user: %w", err)
	}
	now := s.clock.now()
	v.CreatedAt, v.UpdatedAt = fromNanos(now), fromNanos(now)
	_, err := s.exec(ctx, qInsertUser, v.ID, v.Email, v.Name, v.PasswordHash, v.TokenVersion, now, now)
	if err != nil {
		return fmt.Errorf("sqlite: create user: %w", mapErr(err))
	}
	*u = v
	return nil
}

// UserByEmail finds a user by (lower-cased) email.
func (s *Store) UserByEmail(ctx context.Context, email string) (persistence.User, error) {
	u, err := s.userBy(ctx, qUserByMail, email)
	if err != nil {
		return u, fmt.Errorf("sqlite: user by email: %w", err)
	}
	return u, nil
}

// UserByID finds a user by id.
func (s *Store) UserByID(ctx context.Context, id string) (persistence.User, error) {
	u, err := s.userBy(ctx, qUserByID, id)
	if err != nil {
		return u, fmt.Errorf("sqlite: user %s: %w", id, err)
	}
	return u, nil
}

var _ persistence.TokenVersionReader = (*Store)(nil)

// TokenVersion returns the user's token version without loading the rest
// of the row (persistence.TokenVersionReader).
func (s *Store) TokenVersion(ctx context.Context, id string) (int64, error) {
	var v int64
	row, err := s.queryRow(ctx, qTokenVer, id)
	if err == nil {
		err = row.Scan(&v)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: token version of user %s: %w", id, s.readErr(err))
	}
	return v, nil
}

// userBy runs a one-user query.
func (s *Store) userBy(ctx context.Context, q, arg string) (persistence.User, error) {
	var u persistence.User
	row, err := s.queryRow(ctx, q, arg)
	if err != nil {
		return u, err
	}
	var created, updated int64
	err = row.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &u.TokenVersion, &created, &updated)
	if err != nil {
		return persistence.User{}, s.readErr(err)
	}
	u.CreatedAt, u.UpdatedAt = fromNanos(created), fromNanos(updated)
	return u, nil
}

// BumpTokenVersion increments the user's token version and returns the new one.
func (s *Store) BumpTokenVersion(ctx context.Context, id string) (int64, error) {
	var v int64
	row, err := s.writeRow(ctx, qBumpToken, id)
	if err == nil {
		err = row.Scan(&v)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: bump token version of %s: %w", id, mapErr(err))
	}
	return v, nil
}

// ChangePassword replaces the user's password hash, increments their token
// version and moves UpdatedAt forward in one statement, while the token
// version is fromVersion; it returns the new token version.
func (s *Store) ChangePassword(ctx context.Context, id, passwordHash string, fromVersion int64) (int64, error) {
	var v int64
	row, err := s.writeRow(ctx, qChangePass, passwordHash, s.clock.now(), id, fromVersion)
	if err == nil {
		err = row.Scan(&v)
	}
	if errors.Is(err, sql.ErrNoRows) {
		err = s.changedMeanwhile(ctx, id)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: change password of %s: %w", id, mapErr(err))
	}
	return v, nil
}

// RehashPassword sets the user's password hash to newHash while it is
// oldHash (persistence.PasswordRehasher); the token version and UpdatedAt
// stay.
func (s *Store) RehashPassword(ctx context.Context, id, oldHash, newHash string) error {
	n, err := s.exec(ctx, qRehash, newHash, id, oldHash)
	if err == nil && n == 0 {
		err = s.changedMeanwhile(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("sqlite: rehash password of %s: %w", id, mapErr(err))
	}
	return nil
}

// changedMeanwhile tells why a write conditioned on user id's state
// matched nothing: ErrConflict when the user exists, else ErrNotFound.
func (s *Store) changedMeanwhile(ctx context.Context, id string) error {
	if _, err := s.UserByID(ctx, id); err != nil {
		return err
	}
	return persistence.ErrConflict
}

// DeleteUser removes the user, their conversations and every message of
// them (streaming answers with their chunks). It first marks the user as
// being deleted, in a write of its own: from then on no read finds them,
// their password is cleared and their token version moved, while their
// email stays taken. Then it deletes everything in bounded steps, each a
// write of its own (deleteMarked), so other users' writes go on between
// them. A deletion cut off after the mark (its context, the process's
// end) leaves the marked user, with what of their data is left, whom
// FinishDeletions deletes (Open runs it, and
// so does the sweep every Options.DeletionSweep); its error then holds
// persistence.ErrDeleting. An unknown id is ErrNotFound and changes
// nothing. The search index drops the messages in the background;
// searches never find them meanwhile (they check each hit against its
// row).
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	n, err := s.exec(ctx, qMarkUser, s.clock.now(), id)
	if err == nil && n == 0 {
		err = persistence.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlite: delete user %s: mark: %w", id, err)
	}
	persistence.DeleteStepDone(ctx, persistence.DeleteStepMarked)
	switch err := s.deleteMarked(ctx, id); {
	case errors.Is(err, persistence.ErrNotFound): // a concurrent run finished it
		return fmt.Errorf("sqlite: delete user %s: %w", id, err)
	case err != nil:
		return fmt.Errorf("sqlite: delete user %s: %w (%w)", id, err, persistence.ErrDeleting)
	}
	return nil
}

// MarkUserDeleting marks the user as being deleted, keeping their data
// and password hash (persistence.Users): one write, after which no read
// finds them and their token version is moved. FinishDeletions leaves
// the mark until it is Options.DeletionGrace old. ErrNotFound for an
// unknown or already marked user.
func (s *Store) MarkUserDeleting(ctx context.Context, id string) error {
	n, err := s.exec(ctx, qMarkLive, s.clock.now(), id)
	if err == nil && n == 0 {
		err = persistence.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlite: mark user %s as being deleted: %w", id, err)
	}
	return nil
}

// UnmarkUserDeleting takes back MarkUserDeleting's mark while DeleteUser
// has not marked the user (persistence.Users); ErrNotFound otherwise.
func (s *Store) UnmarkUserDeleting(ctx context.Context, id string) error {
	n, err := s.exec(ctx, qUnmarkLive, id)
	if err == nil && n == 0 {
		err = persistence.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlite: take back the deletion mark of user %s: %w", id, err)
	}
	return nil
}

// deleteStep bounds how many rows one write of deleteMarked (or
// deleteMarkedConv) deletes before its last: every deleted message also
// queues its removal from the search index (and a streaming one's chunks
// go with it), so a user (or a conversation) with 100,000 messages
// deleted in one transaction would hold the only writer, and every other
// user's sends, for the whole of it.
const deleteStep = 2000

// The steps (persistence.DeleteStepDone) of deleteMarked: a write of up
// to deleteStep of the user's messages, or conversations, committed.
const (
	stepMsgsDeleted  = "a step of messages deleted"
	stepConvsDeleted = "a step of conversations deleted"
)

// deleteMarked deletes user id, marked as being deleted, with their
// conversations and messages: the messages, then the conversations, up
// to s.deleteStep rows a write (other writes go in between), then what
// is left (what came in meanwhile) and the user in one transaction;
// ErrNotFound when the user was deleted meanwhile. Once it is done, the
// write-ahead log is scrubbed of the deleted rows (deletionDone). Cut off between two
// writes, it leaves the marked user with part of their data, which no
// read reaches, and a later run (FinishDeletions) goes on from there.
func (s *Store) deleteMarked(ctx context.Context, id string) error {
	if err := s.deleteSteps(ctx, qDeleteUserMsgsStep, stepMsgsDeleted, id); err != nil {
		return err
	}
	if err := s.deleteSteps(ctx, qDeleteUserConvsStep, stepConvsDeleted, id); err != nil {
		return err
	}
	err := s.write(ctx, func(tx *writeTx) error {
		for _, q := range []string{qDeleteUserMsgs, qDeleteUserConvs} {
			if _, err := tx.exec(ctx, q, id); err != nil {
				return err
			}
		}
		n, err := tx.exec(ctx, qDeleteUser, id)
		if err == nil && n == 0 {
			err = persistence.ErrNotFound // another run finished it: rolled back
		}
		return err
	})
	if err == nil {
		s.deletionDone(context.WithoutCancel(ctx)) // bounded by scrubBusy (scrub.go)
	}
	return err
}

// deleteSteps runs q (a bounded step of deleteMarked or of
// deleteMarkedConv) for id, each time in a write of its own, until a run
// deletes fewer than s.deleteStep rows (or none); it reports step after
// each.
func (s *Store) deleteSteps(ctx context.Context, q, step, id string) error {
	for {
		var n int64
		err := s.write(ctx, func(tx *writeTx) error {
			var err error
			n, err = tx.exec(ctx, q, id, s.deleteStep)
			return err
		})
		if err != nil {
			return err
		}
		persistence.DeleteStepDone(ctx, step)
		if n == 0 || n < int64(s.deleteStep) {
			return nil
		}
	}
}

// deletionBatch bounds how many marked users, and how many marked
// conversations, one FinishDeletions reads.
const deletionBatch = 100

var _ persistence.DeletionFinisher = (*Store)(nil)

// FinishDeletions deletes up to deletionBatch users whose DeleteUser was
// cut off after marking them (persistence.DeletionFinisher), or whose
// MarkUserDeleting is older than Options.DeletionGrace, then up to
// deletionBatch conversations whose DeleteConversation was cut off after
// marking them (deleteconv.go), and returns how many it found finished,
// by itself or by a run beside it (a DeleteUser, another sweep). Only
// those it finished itself are logged as finished. A user's data goes
// only once their mark is sealed as DeleteUser's (finishMarked), so a
// MarkUserDeleting mark is never taken back while it is deleted.
func (s *Store) FinishDeletions(ctx context.Context) (int, error) {
	users, err := s.finishUserDeletions(ctx)
	if err != nil {
		return users, err
	}
	convs, err := s.finishConvDeletions(ctx)
	return users + convs, err
}

// finishUserDeletions deletes up to deletionBatch marked users (see
// FinishDeletions) and returns how many it found finished.
func (s *Store) finishUserDeletions(ctx context.Context) (int, error) {
	before := s.clock.now() - s.deletionGrace.Nanoseconds()
	ids, err := s.markedUsers(ctx, before)
	if err != nil {
		return 0, fmt.Errorf("sqlite: finish account deletions: %w", err)
	}
	persistence.DeleteStepDone(ctx, stepMarkedFound)
	n := 0
	for _, id := range ids {
		switch err := s.finishMarked(ctx, id, before); {
		case errors.Is(err, errNotMarked):
			s.log.Debug("a cut-off account deletion was taken back before its mark was sealed", "user_id", id)
			continue
		case errors.Is(err, persistence.ErrNotFound):
			s.log.Debug("a cut-off account deletion was finished by another run", "user_id", id)
		case err != nil:
			return n, fmt.Errorf("sqlite: finish the deletion of user %s: %w", id, err)
		default:
			s.log.Info("finished a cut-off account deletion", "user_id", id)
		}
		n++
	}
	return n, nil
}

// finishMarked finishes the deletion of user id, whom markedUsers found
// marked (before: its bound on a MarkUserDeleting mark). First it seals
// the mark (qSealMark: the password hash cleared, in a write of its own),
// so that an UnmarkUserDeleting landing afterwards (a deletion taking its
// mark back late) is ErrNotFound instead of bringing back a user whose
// data is going; only then does it delete (deleteMarked). errNotMarked
// when the user is there but no longer stands marked (the mark taken
// back); ErrNotFound when another run finished them.
func (s *Store) finishMarked(ctx context.Context, id string, before int64) error {
	n, err := s.exec(ctx, qSealMark, id, before)
	if err == nil && n == 0 {
		err = errNotMarked
		if ids, rerr := s.queryStrings(ctx, qUserRow, id); rerr != nil {
			err = rerr
		} else if len(ids) == 0 {
			err = persistence.ErrNotFound
		}
	}
	if err != nil {
		return err
	}
	return s.deleteMarked(ctx, id)
}

// errNotMarked is finishMarked's error for a user whose mark no longer
// stands as markedUsers read it.
var errNotMarked = errors.New("the user is no longer marked as being deleted")

// stepMarkedFound is the step (persistence.DeleteStepDone) of
// FinishDeletions once it has read the marked users it finishes.
const stepMarkedFound = "marked users found"

// markedUsers returns the ids of up to deletionBatch marked users to
// finish: those DeleteUser marked, and those MarkUserDeleting marked
// before before, s.deletionGrace ago (whose deletion may still be ending
// their live work until then).
func (s *Store) markedUsers(ctx context.Context, before int64) ([]string, error) {
	return s.queryStrings(ctx, qMarked, before, deletionBatch)
}

// fillID sets an empty *id to a new id and rejects a malformed given one.
func fillID(id *string) error {
	if *id == "" {
		*id = persistence.NewID()
		return nil
	}
	if !persistence.ValidID(*id) {
		return fmt.Errorf("invalid id %q", *id)
	}
	return nil
}

// normalizeEmails rewrites each stored email that is not in the normal
// form of today (emailform.Normalize) into it, once per database: it is
// schema step 11 (goSteps), run in the migration's transaction by the
// first Open of a release that has it, and never again (an Open after it
// neither scans nor sorts the users). An account an older release stored
// as "νικος@example.gr" (lower case, no case folding) becomes
// "νικοσ@example.gr", so the unique email index refuses a second account
// in any spelling of it. Accounts are taken oldest first, so of two
// stored emails of one normal form the older account gets it; one whose
// normal form another account already holds keeps its stored form,
// logged, and signs in with its own password (the account routes look
// every form up). Any other error fails the step: the transaction is
// rolled back, nothing is recorded, and the next Open runs it again (one
// file on one disk: such an error is the disk's, which every other write
// would meet too). Two processes opening one file at once take the
// writer's lock in turn: the second finds the step recorded.
func (s *Store) normalizeEmails(ctx context.Context, tx *sql.Tx) error {
	s.emailsRewritten = true
	type stored struct{ id, email, form string }
	rows, err := tx.QueryContext(ctx, `SELECT id, email FROM users ORDER BY created_at, id`)
	if err != nil {
		return fmt.Errorf("normalize emails: %w", err)
	}
	var todo []stored
	for rows.Next() {
		var u stored
		if err := rows.Scan(&u.id, &u.email); err != nil {
			_ = rows.Close()
			return fmt.Errorf("normalize emails: %w", err)
		}
		if u.form = emailform.Normalize(u.email); u.form != u.email {
			todo = append(todo, u)
		}
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("normalize emails: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("normalize emails: %w", err)
	}
	for _, u := range todo {
		_, err := tx.ExecContext(ctx, `UPDATE users SET email = ? WHERE id = ? AND email = ?`, u.form, u.id, u.email)
		switch {
		case errors.Is(mapErr(err), persistence.ErrDuplicate):
			s.log.Warn("account email left in an older form: another account holds its normal form",
				"user_id", u.id)
		case err != nil:
			return fmt.Errorf("normalize email of user %s: %w", u.id, err)
		default:
			s.log.Info("account email rewritten in its normal form", "user_id", u.id)
		}
	}
	return nil
}
