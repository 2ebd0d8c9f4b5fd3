package persistence

import "context"

// ConversationPager is implemented by stores that read a conversation
// with a page of its messages, or with their outline, in fewer reads than
// Conversation then MessagePage or MessageOutline. The MongoDB store
// reads the messages, then the conversation's document not being
// deleted, which is the check MessagePage and MessageOutline make with a
// read of their own after reading the messages: two round trips instead
// of three, as for ConversationReader. A conversation's first page (GET
// /api/conversations/:id) and an export's start read both. Use ReadPage
// and ReadOutline, which fall back to the two calls.
type ConversationPager interface {
	// ConversationWithPage returns what Conversation and MessagePage
	// return for the same owner, id and q; ErrNotFound as either would
	// (another owner's, an unknown, a malformed id, one being deleted, a
	// q.Before that is no message of the conversation).
	ConversationWithPage(ctx context.Context, ownerID, id string, q PageQuery) (Conversation, MessagePage, error)
	// ConversationWithOutline returns what Conversation and
	// MessageOutline return for the same owner and id (empty, not nil,
	// for a conversation without messages); ErrNotFound as either would.
	ConversationWithOutline(ctx context.Context, ownerID, id string) (Conversation, []Message, error)
}

// PageStore is what ReadPage and ReadOutline need from a store.
type PageStore interface {
	Conversation(ctx context.Context, ownerID, id string) (Conversation, error)
	MessagePage(ctx context.Context, ownerID, conversationID string, q PageQuery) (MessagePage, error)
	MessageOutline(ctx context.Context, ownerID, conversationID string) ([]Message, error)
}

// ReadPage returns the owner's conversation and the page q of its
// messages: with one call when s implements ConversationPager, else
// ReadPageApart.
func ReadPage(ctx context.Context, s PageStore, ownerID, id string, q PageQuery) (Conversation, MessagePage, error) {
	if cp, ok := s.(ConversationPager); ok {
		return cp.ConversationWithPage(ctx, ownerID, id, q)
	}
	return ReadPageApart(ctx, s, ownerID, id, q)
}

// ReadPageApart is ReadPage's fallback: Conversation, then MessagePage. A
// wrapper of stores that implements ConversationPager uses it when the
// store it wraps does not.
func ReadPageApart(ctx context.Context, s PageStore, ownerID, id string, q PageQuery) (Conversation, MessagePage, error) {
	c, err := s.Conversation(ctx, ownerID, id)
	if err != nil {
		return Conversation{}, MessagePage{}, err
	}
	p, err := s.MessagePage(ctx, ownerID, id, q)
	if err != nil {
		return Conversation{}, MessagePage{}, err
	}
	return c, p, nil
}

// ReadOutline returns the owner's conversation and the outline of its
// messages: with one call when s implements ConversationPager, else
// ReadOutlineApart.
func ReadOutline(ctx context.Context, s PageStore, ownerID, id string) (Conversation, []Message, error) {
	if cp, ok := s.(ConversationPager); ok {
		return cp.ConversationWithOutline(ctx, ownerID, id)
	}
	return ReadOutlineApart(ctx, s, ownerID, id)
}

// ReadOutlineApart is ReadOutline's fallback: Conversation, then
// MessageOutline.
func ReadOutlineApart(ctx context.Context, s PageStore, ownerID, id string) (Conversation, []Message, error) {
	c, err := s.Conversation(ctx, ownerID, id)
	if err != nil {
		return Conversation{}, nil, err
	}
	ms, err := s.MessageOutline(ctx, ownerID, id)
	if err != nil {
		return Conversation{}, nil, err
	}
	if ms == nil {
		ms = []Message{}
	}
	return c, ms, nil
}
