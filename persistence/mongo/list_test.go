package mongo_test

import (
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"chatd/persistence"
)

// listAll follows cursors through every page of q.
func listAll(t *testing.T, list func(persistence.ListQuery) (persistence.ConversationPage, error), q persistence.ListQuery) []string {
	t.Helper()
	var ids []string
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
		page, err := list(q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Conversations) > max(q.Limit, 1) {
			t.Fatalf("page of %d over limit %d", len(page.Conversations), q.Limit)
		}
		for _, c := range page.Conversations {
			ids = append(ids, c.ID)
		}
		if page.NextCursor == "" {
			return ids
		}
		q.Cursor = page.NextCursor
	}
}

func TestListConversationsPaginatesNewestFirst(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	s := e.store
	u, other := mustUser(ctx, t, s, "a@x"), mustUser(ctx, t, s, "b@x")
	mustConversation(ctx, t, s, other.ID, "not mine")

	// Created in a burst: many share a millisecond, so the _id tie-break matters.
	var convs []persistence.Conversation
	for i := range 23 {
		convs = append(convs, mustConversation(ctx, t, s, u.ID, fmt.Sprint("c", i)))
	}
	// A newer message moves the oldest conversation to the top.
	bump := persistence.Message{ConversationID: convs[0].ID, OwnerID: u.ID, Role: persistence.RoleUser,
		Content: "bump", CreatedAt: time.Now().Add(time.Second)}
	if err := s.InsertMessage(ctx, &bump); err != nil {
		t.Fatal(err)
	}

	// Expected order from the stored values: updated_at, then id, descending.
	for i := range convs {
		c, err := s.Conversation(ctx, u.ID, convs[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		convs[i] = c
	}
	sort.Slice(convs, func(i, j int) bool {
		a, b := convs[i], convs[j]
		if !a.UpdatedAt.Equal(b.UpdatedAt) {
			return a.UpdatedAt.After(b.UpdatedAt)
		}
		return a.ID > b.ID
	})
	if convs[0].Title != "c0" {
		t.Fatalf("the conversation with the newest message is %q, want c0", convs[0].Title)
	}
	var want []string
	for _, c := range convs {
		want = append(want, c.ID)
	}
	list := func(q persistence.ListQuery) (persistence.ConversationPage, error) {
		return s.ListConversations(ctx, u.ID, q)
	}
	for _, limit := range []int{1, 5, 23, 100} {
		got := listAll(t, list, persistence.ListQuery{Limit: limit})
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("limit %d:\n got %v\nwant %v", limit, got, want)
		}
	}
	page, err := list(persistence.ListQuery{})
	if err != nil || len(page.Conversations) != 23 || page.NextCursor != "" {
		t.Errorf("default limit: %d conversations, cursor %q, %v", len(page.Conversations), page.NextCursor, err)
	}
	for _, bad := range []string{"x", "!!!", "AAAA"} {
		if _, err := list(persistence.ListQuery{Cursor: bad}); !errors.Is(err, persistence.ErrInvalidCursor) {
			t.Errorf("cursor %q: %v, want ErrInvalidCursor", bad, err)
		}
	}
}

func TestListConversationsSearch(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	s := e.store
	u, other := mustUser(ctx, t, s, "a@x"), mustUser(ctx, t, s, "b@x")
	byTitle := mustConversation(ctx, t, s, u.ID, "Trip to Kyoto")
	byUser := mustConversation(ctx, t, s, u.ID, "untitled")
	mustMessage(ctx, t, s, byUser, persistence.RoleUser, "Tell me about KYOTO temples")
	byAnswer := mustConversation(ctx, t, s, u.ID, "untitled")
	a := mustMessage(ctx, t, s, byAnswer, persistence.RoleAssistant, "")
	// Checkpoints flushed at whitespace boundaries, as the batching writer does.
	for _, chunk := range []string{"The price is ", "(a+b)*2 in kyōto ", "yen."} {
		if _, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: a.ID, Append: chunk}}); err != nil {
			t.Fatal(err)
		}
	}
	unrelated := mustConversation(ctx, t, s, u.ID, "groceries")
	mustMessage(ctx, t, s, unrelated, persistence.RoleUser, "milk")
	theirs := mustConversation(ctx, t, s, other.ID, "kyoto too")
	mustMessage(ctx, t, s, theirs, persistence.RoleUser, "kyoto")

	tests := []struct {
		q    string
		want []persistence.Conversation
	}{
		{"kyoto", []persistence.Conversation{byUser, byTitle}},
		{"TEMPLES", []persistence.Conversation{byUser}},
		{"(a+b)*2", []persistence.Conversation{byAnswer}},  // regex syntax is literal
		{"KYŌTO", []persistence.Conversation{byAnswer}},    // case folding beyond ASCII
		{"price is", []persistence.Conversation{byAnswer}}, // inside one chunk
		{".*", nil}, // not a pattern
		{"nothing like this", nil},
	}
	for _, tt := range tests {
		var want []string
		for _, c := range tt.want {
			want = append(want, c.ID)
		}
		for _, limit := range []int{1, 30} {
			got := listAll(t, func(q persistence.ListQuery) (persistence.ConversationPage, error) {
				return s.ListConversations(ctx, u.ID, q)
			}, persistence.ListQuery{Search: tt.q, Limit: limit})
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("search %q limit %d: got %v, want %v", tt.q, limit, got, want)
			}
		}
	}
}
