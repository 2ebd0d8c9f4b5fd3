package counting

import (
	"context"
	"errors"
	"fmt"
	"time"

	"chatd/persistence"
)

// CreateUser counts one write.
func (s *Store) CreateUser(ctx context.Context, u *persistence.User) error {
	return s.wrote("CreateUser", s.inner.CreateUser(ctx, u))
}

// UserByEmail counts one read.
func (s *Store) UserByEmail(ctx context.Context, email string) (persistence.User, error) {
	s.read()
	return s.inner.UserByEmail(ctx, email)
}

// UserByID counts one read.
func (s *Store) UserByID(ctx context.Context, id string) (persistence.User, error) {
	s.read()
	return s.inner.UserByID(ctx, id)
}

// TokenVersion counts one read; a wrapped store without it
// (persistence.TokenVersionReader) answers through UserByID.
func (s *Store) TokenVersion(ctx context.Context, id string) (int64, error) {
	s.read()
	return persistence.UserTokenVersion(ctx, s.inner, id)
}

// BumpTokenVersion counts one write.
func (s *Store) BumpTokenVersion(ctx context.Context, id string) (int64, error) {
	v, err := s.inner.BumpTokenVersion(ctx, id)
	return v, s.wrote("BumpTokenVersion", err)
}

// ChangePassword counts one write.
func (s *Store) ChangePassword(ctx context.Context, id, passwordHash string, fromVersion int64) (int64, error) {
	v, err := s.inner.ChangePassword(ctx, id, passwordHash, fromVersion)
	return v, s.wrote("ChangePassword", err)
}

// RehashPassword counts one write; a wrapped store without it
// (persistence.PasswordRehasher) answers errors.ErrUnsupported.
func (s *Store) RehashPassword(ctx context.Context, id, oldHash, newHash string) error {
	r, ok := s.inner.(persistence.PasswordRehasher)
	if !ok {
		return fmt.Errorf("rehash password of %s: %w", id, errors.ErrUnsupported)
	}
	return s.wrote("RehashPassword", r.RehashPassword(ctx, id, oldHash, newHash))
}

// DeleteUser counts one write.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.wrote("DeleteUser", s.inner.DeleteUser(ctx, id))
}

// MarkUserDeleting counts one write.
func (s *Store) MarkUserDeleting(ctx context.Context, id string) error {
	return s.wrote("MarkUserDeleting", s.inner.MarkUserDeleting(ctx, id))
}

// UnmarkUserDeleting counts one write.
func (s *Store) UnmarkUserDeleting(ctx context.Context, id string) error {
	return s.wrote("UnmarkUserDeleting", s.inner.UnmarkUserDeleting(ctx, id))
}

// CreateConversation counts one write.
func (s *Store) CreateConversation(ctx context.Context, c *persistence.Conversation) error {
	return s.wrote("CreateConversation", s.inner.CreateConversation(ctx, c))
}

// ConversationByClientID counts one read.
func (s *Store) ConversationByClientID(ctx context.Context, ownerID, clientID string) (persistence.Conversation, error) {
	s.read()
	return s.inner.ConversationByClientID(ctx, ownerID, clientID)
}

// Conversation counts one read.
func (s *Store) Conversation(ctx context.Context, ownerID, id string) (persistence.Conversation, error) {
	s.read()
	return s.inner.Conversation(ctx, ownerID, id)
}

// ListConversations counts one read.
func (s *Store) ListConversations(ctx context.Context, ownerID string, q persistence.ListQuery) (persistence.ConversationPage, error) {
	s.read()
	return s.inner.ListConversations(ctx, ownerID, q)
}

// UpdateConversation counts one write.
func (s *Store) UpdateConversation(ctx context.Context, ownerID, id string, p persistence.ConversationPatch) (persistence.Conversation, error) {
	c, err := s.inner.UpdateConversation(ctx, ownerID, id, p)
	return c, s.wrote("UpdateConversation", err)
}

// DeleteConversation counts one write.
func (s *Store) DeleteConversation(ctx context.Context, ownerID, id string) error {
	return s.wrote("DeleteConversation", s.inner.DeleteConversation(ctx, ownerID, id))
}

// InsertMessage counts one write.
func (s *Store) InsertMessage(ctx context.Context, m *persistence.Message) error {
	return s.wrote("InsertMessage", s.inner.InsertMessage(ctx, m))
}

// InsertMessages counts one write when the wrapped store inserts several
// messages in one call (persistence.MessagesInserter). Otherwise it passes
// each message to InsertMessage, counting one write each, as the hub does
// with such a store: then a failure leaves the messages before it stored.
func (s *Store) InsertMessages(ctx context.Context, ms ...*persistence.Message) error {
	if mi, ok := s.inner.(persistence.MessagesInserter); ok {
		return s.wrote("InsertMessages", mi.InsertMessages(ctx, ms...))
	}
	for _, m := range ms {
		if err := s.InsertMessage(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// InsertTouching counts as InsertMessages does when the wrapped store
// returns the conversation with its inserts (persistence.TouchingInserter);
// otherwise it calls InsertMessages, then reads the conversation (one read
// more). A failed read does not fail the stored messages: it returns the
// zero Conversation and nil, as persistence.TouchingInserter allows.
func (s *Store) InsertTouching(ctx context.Context, ms ...*persistence.Message) (persistence.Conversation, error) {
	ti, ok := s.inner.(persistence.TouchingInserter)
	if !ok || len(ms) == 0 {
		if err := s.InsertMessages(ctx, ms...); err != nil || len(ms) == 0 {
			return persistence.Conversation{}, err
		}
		last := ms[len(ms)-1]
		c, err := s.Conversation(persistence.WithLatest(ctx), last.OwnerID, last.ConversationID)
		if err != nil {
			return persistence.Conversation{}, nil // stored all the same
		}
		return c, nil
	}
	if _, all := s.inner.(persistence.MessagesInserter); all {
		c, err := ti.InsertTouching(ctx, ms...)
		return c, s.wrote("InsertMessages", err)
	}
	var c persistence.Conversation
	for _, m := range ms {
		var err error
		if c, err = ti.InsertTouching(ctx, m); s.wrote("InsertMessage", err) != nil {
			return persistence.Conversation{}, err
		}
	}
	return c, nil
}

// ConversationWithMessages counts one read when the wrapped store reads
// both in one call (persistence.ConversationReader); otherwise it calls
// Conversation and Messages, counting two reads.
func (s *Store) ConversationWithMessages(ctx context.Context, ownerID, id string) (persistence.Conversation, []persistence.Message, error) {
	if cr, ok := s.inner.(persistence.ConversationReader); ok {
		s.read()
		return cr.ConversationWithMessages(ctx, ownerID, id)
	}
	return persistence.ReadConversationApart(ctx, s, ownerID, id)
}

// ConversationWithPage counts one read when the wrapped store reads both
// in one call (persistence.ConversationPager); otherwise it calls
// Conversation and MessagePage, counting two reads.
func (s *Store) ConversationWithPage(ctx context.Context, ownerID, id string, q persistence.PageQuery) (persistence.Conversation, persistence.MessagePage, error) {
	if cp, ok := s.inner.(persistence.ConversationPager); ok {
		s.read()
		return cp.ConversationWithPage(ctx, ownerID, id, q)
	}
	return persistence.ReadPageApart(ctx, s, ownerID, id, q)
}

// ConversationWithOutline counts as ConversationWithPage does.
func (s *Store) ConversationWithOutline(ctx context.Context, ownerID, id string) (persistence.Conversation, []persistence.Message, error) {
	if cp, ok := s.inner.(persistence.ConversationPager); ok {
		s.read()
		return cp.ConversationWithOutline(ctx, ownerID, id)
	}
	return persistence.ReadOutlineApart(ctx, s, ownerID, id)
}

// Message counts one read.
func (s *Store) Message(ctx context.Context, ownerID, id string) (persistence.Message, error) {
	s.read()
	return s.inner.Message(ctx, ownerID, id)
}

// MessageByClientID counts one read.
func (s *Store) MessageByClientID(ctx context.Context, ownerID, clientMessageID string) (persistence.Message, error) {
	s.read()
	return s.inner.MessageByClientID(ctx, ownerID, clientMessageID)
}

// Messages counts one read.
func (s *Store) Messages(ctx context.Context, ownerID, conversationID string) ([]persistence.Message, error) {
	s.read()
	return s.inner.Messages(ctx, ownerID, conversationID)
}

// ApplyMessageUpdates counts one write, plus the updates and the bytes of
// appended text it carries.
func (s *Store) ApplyMessageUpdates(ctx context.Context, updates []persistence.MessageUpdate) ([]string, error) {
	skipped, err := s.inner.ApplyMessageUpdates(ctx, updates)
	var bytes int64
	for _, u := range updates {
		bytes += int64(len(u.Append))
	}
	s.mu.Lock()
	s.counts.MessageUpdates += int64(len(updates))
	s.counts.AppendedBytes += bytes
	s.mu.Unlock()
	return skipped, s.wrote("ApplyMessageUpdates", err)
}

// InterruptStreaming counts one write.
func (s *Store) InterruptStreaming(ctx context.Context) (int, error) {
	n, err := s.inner.InterruptStreaming(ctx)
	return n, s.wrote("InterruptStreaming", err)
}

// InterruptMessage counts one write.
func (s *Store) InterruptMessage(ctx context.Context, ownerID, id, reason string, at time.Time) (persistence.Message, error) {
	m, err := s.inner.InterruptMessage(ctx, ownerID, id, reason, at)
	return m, s.wrote("InterruptMessage", err)
}

// SetOmittedMessages counts one write.
func (s *Store) SetOmittedMessages(ctx context.Context, ownerID, id string, n int) error {
	return s.wrote("SetOmittedMessages", s.inner.SetOmittedMessages(ctx, ownerID, id, n))
}

// StreamingConversations counts one read.
func (s *Store) StreamingConversations(ctx context.Context, ownerID string) ([]string, error) {
	s.read()
	return s.inner.StreamingConversations(ctx, ownerID)
}

// StreamingBefore counts one read.
func (s *Store) StreamingBefore(ctx context.Context, before time.Time, after persistence.StreamingMessage, limit int) ([]persistence.StreamingMessage, error) {
	s.read()
	return s.inner.StreamingBefore(ctx, before, after, limit)
}

// Ping is passed through uncounted.
func (s *Store) Ping(ctx context.Context) error { return s.inner.Ping(ctx) }

// Close is passed through uncounted.
func (s *Store) Close(ctx context.Context) error { return s.inner.Close(ctx) }

// MessagePage counts one read.
func (s *Store) MessagePage(ctx context.Context, ownerID, conversationID string, q persistence.PageQuery) (persistence.MessagePage, error) {
	s.read()
	return s.inner.MessagePage(ctx, ownerID, conversationID, q)
}

// LatestAnswer counts one read.
func (s *Store) LatestAnswer(ctx context.Context, ownerID, conversationID, parentID string) (persistence.Message, error) {
	s.read()
	return s.inner.LatestAnswer(ctx, ownerID, conversationID, parentID)
}

// MessageOutline counts one read.
func (s *Store) MessageOutline(ctx context.Context, ownerID, conversationID string) ([]persistence.Message, error) {
	s.read()
	return s.inner.MessageOutline(ctx, ownerID, conversationID)
}

// ReadContent counts one read.
func (s *Store) ReadContent(ctx context.Context, ownerID, id string, fn func(string) error) error {
	s.read()
	return s.inner.ReadContent(ctx, ownerID, id, fn)
}

// ReadReasoning counts one read.
func (s *Store) ReadReasoning(ctx context.Context, ownerID, id string, fn func(string) error) error {
	s.read()
	return s.inner.ReadReasoning(ctx, ownerID, id, fn)
}

// ProbeWrite is passed through uncounted, like Ping.
func (s *Store) ProbeWrite(ctx context.Context) error { return s.inner.ProbeWrite(ctx) }

var _ persistence.DeletionFinisher = (*Store)(nil)

// FinishDeletions counts one write; a wrapped store that is no
// persistence.DeletionFinisher finishes none.
func (s *Store) FinishDeletions(ctx context.Context) (int, error) {
	f, ok := s.inner.(persistence.DeletionFinisher)
	if !ok {
		return 0, nil
	}
	n, err := f.FinishDeletions(ctx)
	return n, s.wrote("FinishDeletions", err)
}
