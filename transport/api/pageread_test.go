package api_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"chatd/persistence"
	"chatd/transport/api"
)

// pagerStore is the routes' store with persistence.ConversationPager, as
// the MongoDB store has it; it counts the reads of each kind.
type pagerStore struct {
	api.ConversationStore
	convs, pages, outlines atomic.Int32
}

func (s *pagerStore) Conversation(ctx context.Context, ownerID, id string) (persistence.Conversation, error) {
	s.convs.Add(1)
	return s.ConversationStore.Conversation(ctx, ownerID, id)
}

func (s *pagerStore) ConversationWithPage(ctx context.Context, ownerID, id string, q persistence.PageQuery) (persistence.Conversation, persistence.MessagePage, error) {
	s.pages.Add(1)
	return persistence.ReadPageApart(ctx, s.ConversationStore, ownerID, id, q)
}

func (s *pagerStore) ConversationWithOutline(ctx context.Context, ownerID, id string) (persistence.Conversation, []persistence.Message, error) {
	s.outlines.Add(1)
	return persistence.ReadOutlineApart(ctx, s.ConversationStore, ownerID, id)
}

// TestReadsTheConversationWithItsMessages: a conversation's read and its
// export read the conversation together with its first page or its
// outline where the store can (persistence.ReadPage, ReadOutline: 2
// round trips on MongoDB, where Conversation then MessagePage or
// MessageOutline took 3), and answer as before: 200 for the user's
// conversation, 404 for another user's (the page's 404 read twice: where
// the store reads by default, then its latest state, TestWritesReadTheLatest).
func TestReadsTheConversationWithItsMessages(t *testing.T) {
	t.Parallel()
	s := &pagerStore{}
	e := newAPIEnvWith(t, api.ConversationOptions{}, func(inner api.ConversationStore) api.ConversationStore {
		s.ConversationStore = inner
		return s
	})
	u, stranger := e.user(t), e.user(t)
	c, _ := e.conversation(t, u, "hello", "hi there")
	for _, tc := range []struct {
		path     string
		calls    *atomic.Int32
		together string
		want     int32
	}{
		{"/api/conversations/" + c.ID, &s.pages, "ConversationWithPage", 3},
		{"/api/conversations/" + c.ID + "/export", &s.outlines, "ConversationWithOutline", 2},
	} {
		s.convs.Store(0)
		tc.calls.Store(0)
		if got := e.status(t, http.MethodGet, u, tc.path, ""); got != http.StatusOK {
			t.Fatalf("GET %s: %d, want 200", tc.path, got)
		}
		if got := e.status(t, http.MethodGet, stranger, tc.path, ""); got != http.StatusNotFound {
			t.Fatalf("GET %s as another user: %d, want 404", tc.path, got)
		}
		if n, convs := tc.calls.Load(), s.convs.Load(); n != tc.want || convs != 0 {
			t.Errorf("GET %s twice: %s called %d times and Conversation %d; want %d and 0", tc.path, tc.together, n, convs, tc.want)
		}
	}
}
