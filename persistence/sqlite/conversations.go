package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"chatd/persistence"
)

const convCols = `id, owner_id, title, model, system_prompt, created_at, updated_at, params, client_id`

var (
	// qInsertConv inserts a conversation only if its owner (?2) is a user
	// not being deleted (DeleteUser's mark: a deletion cut off after it
	// leaves the user's row until FinishDeletions): one statement, so the
	// check and the insert see the same state, and one lookup of users by
	// primary key.
	qInsertConv = writeQ(`INSERT INTO conversations (` + convCols + `)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?2 AND deleting_at IS NULL)`)
	// Every read and write of a conversation but its deletion's skips one
	// being deleted (deleting_at set: see DeleteConversation).
	qConvByID   = readQ(`SELECT ` + convCols + ` FROM conversations WHERE id = ? AND owner_id = ? AND deleting_at IS NULL`)
	qConvByCID  = readQ(`SELECT ` + convCols + ` FROM conversations WHERE owner_id = ? AND client_id = ? AND deleting_at IS NULL`)
	qConvExists = readQ(`SELECT 1 FROM conversations WHERE id = ? AND owner_id = ? AND deleting_at IS NULL`)
	// qUpdateConv applies a patch; with ?8 (ConversationPatch.IfTitle)
	// not NULL, only to a conversation whose title is still ?8: the check
	// and the write are one statement.
	qUpdateConv = writeQ(`UPDATE conversations SET
		title = coalesce(?1, title),
		model = coalesce(?2, model),
		system_prompt = coalesce(?3, system_prompt),
		params = coalesce(?4, params),
		updated_at = max(updated_at + 1, ?5)
	WHERE id = ?6 AND owner_id = ?7 AND deleting_at IS NULL AND (?8 IS NULL OR title = ?8)
	RETURNING ` + convCols)
)

// CreateConversation stores c, filling ID and ClientID (when empty) and
// timestamps; ErrUnknownOwner, and nothing stored, when no user has
// c.OwnerID or DeleteUser marked that user; ErrDuplicate when the owner has a conversation with that
// ClientID (the unique index decides, for creations at once too; one
// being deleted no longer holds it). The
// owner check is part of the insert, and every write goes through the one
// writer: DeleteUser runs wholly before it (the insert is refused) or
// wholly after it (the conversation is deleted with the user).
func (s *Store) CreateConversation(ctx context.Context, c *persistence.Conversation) error {
	v := *c
	if err := fillID(&v.ID); err != nil {
		return fmt.Errorf("sqlite: create conversation: %w", err)
	}
	if v.ClientID == "" {
		v.ClientID = persistence.NewID()
	}
	now := s.clock.now()
	v.CreatedAt, v.UpdatedAt = fromNanos(now), fromNanos(now)
	params, err := encodeParams(v.Params)
	if err != nil {
		return fmt.Errorf("sqlite: create conversation: %w", err)
	}
	n, err := s.exec(ctx, qInsertConv, v.ID, v.OwnerID, v.Title, v.Model, v.SystemPrompt, now, now, params, v.ClientID)
	if err != nil {
		return fmt.Errorf("sqlite: create conversation: %w", mapErr(err))
	}
	if n == 0 {
		return fmt.Errorf("sqlite: create conversation of user %s: %w", v.OwnerID, persistence.ErrUnknownOwner)
	}
	*c = v
	return nil
}

// Conversation returns one of the owner's conversations.
func (s *Store) Conversation(ctx context.Context, ownerID, id string) (persistence.Conversation, error) {
	return s.oneConv(ctx, "conversation "+id, qConvByID, id, ownerID)
}

// ConversationByClientID returns the owner's conversation with that ClientID.
func (s *Store) ConversationByClientID(ctx context.Context, ownerID, clientID string) (persistence.Conversation, error) {
	return s.oneConv(ctx, fmt.Sprintf("conversation by client id %q", clientID), qConvByCID, ownerID, clientID)
}

// oneConv reads the conversation the read query q selects with args
// (ErrNotFound: none); what names it in the errors.
func (s *Store) oneConv(ctx context.Context, what, q string, args ...any) (persistence.Conversation, error) {
	row, err := s.queryRow(ctx, q, args...)
	if err != nil {
		return persistence.Conversation{}, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	c, err := scanConv(row)
	if err != nil {
		return c, fmt.Errorf("sqlite: %s: %w", what, s.readErr(err))
	}
	return c, nil
}

// UpdateConversation applies p and moves UpdatedAt forward; with
// p.IfTitle set, only if the title is still *p.IfTitle (ErrConflict
// otherwise), checked in the update's own statement.
func (s *Store) UpdateConversation(ctx context.Context, ownerID, id string, p persistence.ConversationPatch) (persistence.Conversation, error) {
	params, err := patchParams(p.Params)
	if err != nil {
		return persistence.Conversation{}, fmt.Errorf("sqlite: update conversation %s: %w", id, err)
	}
	row, err := s.writeRow(ctx, qUpdateConv, nullable(p.Title), nullable(p.Model), nullable(p.SystemPrompt),
		params, s.clock.now(), id, ownerID, nullable(p.IfTitle))
	if err != nil {
		return persistence.Conversation{}, fmt.Errorf("sqlite: update conversation %s: %w", id, err)
	}
	c, err := scanConv(row)
	if errors.Is(err, sql.ErrNoRows) && p.IfTitle != nil {
		err = s.conflictOrNotFound(ctx, ownerID, id)
	}
	if err != nil {
		return c, fmt.Errorf("sqlite: update conversation %s: %w", id, mapErr(err))
	}
	return c, nil
}

// conflictOrNotFound tells why a conditional update changed no row:
// ErrConflict when the owner has the conversation (its state was not the
// one expected), else ErrNotFound.
func (s *Store) conflictOrNotFound(ctx context.Context, ownerID, id string) error {
	ok, err := s.convExists(ctx, ownerID, id)
	switch {
	case err != nil:
		return err
	case ok:
		return persistence.ErrConflict
	}
	return persistence.ErrNotFound
}

// convExists reports whether the owner has the conversation.
func (s *Store) convExists(ctx context.Context, ownerID, id string) (bool, error) {
	row, err := s.queryRow(ctx, qConvExists, id, ownerID)
	if err != nil {
		return false, err
	}
	var one int
	err = row.Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// scanConv reads one conversation row in convCols order.
func scanConv(r rowScanner) (persistence.Conversation, error) {
	var c persistence.Conversation
	var created, updated int64
	var params string
	if err := r.Scan(&c.ID, &c.OwnerID, &c.Title, &c.Model, &c.SystemPrompt, &created, &updated, &params, &c.ClientID); err != nil {
		return persistence.Conversation{}, err
	}
	if err := decodeParams(params, &c.Params); err != nil {
		return persistence.Conversation{}, err
	}
	c.CreatedAt, c.UpdatedAt = fromNanos(created), fromNanos(updated)
	return c, nil
}

// nullable turns a nil pointer into SQL NULL.
func nullable(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}
