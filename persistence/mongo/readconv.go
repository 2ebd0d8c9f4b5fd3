package mongo

import (
	"context"
	"fmt"

	"chatd/persistence"
)

var _ persistence.ConversationReader = (*Store)(nil)

// ConversationWithMessages returns the owner's conversation and every
// message of it, oldest first (persistence.ConversationReader), in two
// reads: its messages, then its document, which must not be marked for
// deletion (notDeleting). Conversation then Messages took three: Messages
// checks after its read that the conversation is not being deleted
// (convLive), which the read of the document here does. Another owner's,
// an unknown, a malformed id or one being deleted is ErrNotFound.
//
// The two reads are not one snapshot, as SQLite's are; their order makes
// the answer one a caller could have had from a read just before a
// deletion. A document found unmarked after the messages were read was
// marked, if at all, after that read, so before any step of its deletion
// (which starts at the mark) removed a message: the history is whole.
// Read the other way round, a mark and a step landing between the reads
// would hand over the conversation with part of its history. A mark
// landing after the document's read leaves the caller a conversation
// marked a moment ago, as any read racing a deletion does; every write
// into it is then refused (touchConversation and UpdateConversation
// filter on the mark: ErrNotFound), so a send or regenerate working from
// it stores nothing and sends nothing upstream. The order holds where
// both reads go to the same server (the primary, under
// persistence.WithLatest, as the hub reads a send's history), as
// Messages' check does.
func (s *Store) ConversationWithMessages(ctx context.Context, ownerID, id string) (persistence.Conversation, []persistence.Message, error) {
	c, ms, err := s.conversationWithMessages(ctx, ownerID, id)
	if err != nil {
		return persistence.Conversation{}, nil, fmt.Errorf("conversation %s with its messages: %w", id, err)
	}
	return c, ms, nil
}

func (s *Store) conversationWithMessages(ctx context.Context, ownerID, id string) (persistence.Conversation, []persistence.Message, error) {
	ref, ok := parseOwned(ownerID, id)
	if !ok {
		return persistence.Conversation{}, nil, persistence.ErrNotFound
	}
	ms, err := s.findMessages(ctx, ref.owner, ref.id)
	if err != nil {
		return persistence.Conversation{}, nil, err
	}
	c, err := s.liveConversation(ctx, ref)
	if err != nil {
		return persistence.Conversation{}, nil, err
	}
	return c, ms, nil
}

// liveConversation reads the document of conversation ref, which must
// not be marked for deletion (notDeleting): after a read of its messages,
// it is the check convLive makes, and the conversation besides.
func (s *Store) liveConversation(ctx context.Context, ref ownedRef) (persistence.Conversation, error) {
	var d conversationDoc
	if err := s.convsFor(ctx).FindOne(ctx, append(ref.filter(), notDeleting)).Decode(&d); err != nil {
		return persistence.Conversation{}, mapErr(err)
	}
	return d.conversation(), nil
}

var _ persistence.ConversationPager = (*Store)(nil)

// ConversationWithPage returns the owner's conversation and the page q of
// its messages (persistence.ConversationPager) in the reads of the page
// (pageOf: the messages, after the read of q.Before when it is set), then
// the conversation's document not being deleted (liveConversation), which
// is the check MessagePage makes after the page (convLive): a first page
// costs two round trips, where Conversation then MessagePage took three.
// The order is ConversationWithMessages' and for its reason: a document
// found unmarked after the page was read had none of its messages
// deleted before that read. ErrNotFound as Conversation or MessagePage
// would answer it.
func (s *Store) ConversationWithPage(ctx context.Context, ownerID, id string, q persistence.PageQuery) (persistence.Conversation, persistence.MessagePage, error) {
	ref, ok := parseOwned(ownerID, id)
	if !ok {
		return persistence.Conversation{}, persistence.MessagePage{}, fmt.Errorf("conversation %s with its page: %w", id, persistence.ErrNotFound)
	}
	page, err := s.pageOf(ctx, ref, q)
	var c persistence.Conversation
	if err == nil {
		c, err = s.liveConversation(ctx, ref)
	}
	if err != nil {
		return persistence.Conversation{}, persistence.MessagePage{}, fmt.Errorf("conversation %s with its page before %q: %w", id, q.Before, err)
	}
	return c, page, nil
}

// ConversationWithOutline returns the owner's conversation and the
// outline of its messages (persistence.ConversationPager): the outline
// (outlineOf), then the conversation's document not being deleted, the
// check MessageOutline makes after it (convLive). Two round trips, where
// Conversation then MessageOutline took three; the order is
// ConversationWithPage's.
func (s *Store) ConversationWithOutline(ctx context.Context, ownerID, id string) (persistence.Conversation, []persistence.Message, error) {
	ref, ok := parseOwned(ownerID, id)
	if !ok {
		return persistence.Conversation{}, nil, fmt.Errorf("conversation %s with its outline: %w", id, persistence.ErrNotFound)
	}
	ms, err := s.outlineOf(ctx, ref)
	var c persistence.Conversation
	if err == nil {
		c, err = s.liveConversation(ctx, ref)
	}
	if err != nil {
		return persistence.Conversation{}, nil, fmt.Errorf("conversation %s with its outline: %w", id, err)
	}
	return c, ms, nil
}
