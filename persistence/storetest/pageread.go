package storetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"chatd/persistence"
)

func pageReadTests() []storeTest {
	return []storeTest{
		{"SameAsSeparateReads", testPageReadSame},
		{"NotFoundLikeUnknown", testPageReadNotFound},
	}
}

// readPage is persistence.ReadPage, checked against its fallback
// (Conversation then MessagePage) and, when the store has one, its own
// ConversationWithPage: all three must agree, errors included.
func readPage(ctx context.Context, t *testing.T, s persistence.Store, owner, id string, q persistence.PageQuery) (persistence.Conversation, persistence.MessagePage, error) {
	t.Helper()
	c, p, err := persistence.ReadPage(ctx, s, owner, id, q)
	c2, p2, err2 := persistence.ReadPageApart(ctx, s, owner, id, q)
	if (err == nil) != (err2 == nil) || !reflect.DeepEqual(c, c2) || !reflect.DeepEqual(p, p2) {
		t.Fatalf("ReadPage(%q) = %+v, %+v, %v; Conversation then MessagePage = %+v, %+v, %v", q.Before, c, p, err, c2, p2, err2)
	}
	if cp, ok := s.(persistence.ConversationPager); ok {
		c2, p2, err2 = cp.ConversationWithPage(ctx, owner, id, q)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(c, c2) || !reflect.DeepEqual(p, p2) {
			t.Fatalf("ReadPage(%q) = %+v, %+v, %v; the store's ConversationWithPage = %+v, %+v, %v", q.Before, c, p, err, c2, p2, err2)
		}
	}
	return c, p, err
}

// readOutline is persistence.ReadOutline, checked as readPage.
func readOutline(ctx context.Context, t *testing.T, s persistence.Store, owner, id string) (persistence.Conversation, []persistence.Message, error) {
	t.Helper()
	c, ms, err := persistence.ReadOutline(ctx, s, owner, id)
	c2, ms2, err2 := persistence.ReadOutlineApart(ctx, s, owner, id)
	if (err == nil) != (err2 == nil) || !reflect.DeepEqual(c, c2) || !reflect.DeepEqual(ms, ms2) {
		t.Fatalf("ReadOutline = %+v, %+v, %v; Conversation then MessageOutline = %+v, %+v, %v", c, ms, err, c2, ms2, err2)
	}
	if cp, ok := s.(persistence.ConversationPager); ok {
		c2, ms2, err2 = cp.ConversationWithOutline(ctx, owner, id)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(c, c2) || !reflect.DeepEqual(ms, ms2) {
			t.Fatalf("ReadOutline = %+v, %+v, %v; the store's ConversationWithOutline = %+v, %+v, %v", c, ms, err, c2, ms2, err2)
		}
	}
	return c, ms, err
}

// testPageReadSame: a conversation read with a page of its messages (the
// first, one in the middle, the last, one past the oldest message, every
// message at once) or with its outline is what Conversation and
// MessagePage or MessageOutline return apart; a conversation without
// messages is found with an empty page and outline.
func testPageReadSame(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "pager")
	c := mkConv(t, s, u.ID, "paged")
	other := mkConv(t, s, u.ID, "other")
	mkThread(t, s, other, 2)
	ids := mkThread(t, s, c, 5)
	apply(t, s, persistence.MessageUpdate{ID: mkStreaming(t, s, c, ids[4], "").ID, Append: "so far", AppendReasoning: "thinking"})
	c = getConv(t, s, u.ID, c.ID)
	cases := []struct {
		before   string
		limit    int
		n        int
		wantMore bool
	}{
		{"", 2, 2, true},
		{ids[3], 2, 2, true},
		{ids[1], 2, 1, false},
		{ids[0], 2, 0, false},
		{"", 0, 6, false},
	}
	for _, tc := range cases {
		q := persistence.PageQuery{Before: tc.before, Limit: tc.limit}
		got, p, err := readPage(ctx, t, s, u.ID, c.ID, q)
		noErr(t, fmt.Sprintf("ReadPage before %q", tc.before), err)
		sameConv(t, got, c)
		if len(p.Messages) != tc.n || p.HasMore != tc.wantMore || p.Messages == nil {
			t.Fatalf("page before %q limit %d: %d messages, more %v; want %d, %v", tc.before, tc.limit, len(p.Messages), p.HasMore, tc.n, tc.wantMore)
		}
	}
	got, ms, err := readOutline(ctx, t, s, u.ID, c.ID)
	noErr(t, "ReadOutline", err)
	sameConv(t, got, c)
	if len(ms) != 6 {
		t.Fatalf("outline of %d messages, want 6", len(ms))
	}

	empty := mkConv(t, s, u.ID, "empty")
	got, p, err := readPage(ctx, t, s, u.ID, empty.ID, persistence.PageQuery{})
	noErr(t, "ReadPage of an empty conversation", err)
	sameConv(t, got, empty)
	if len(p.Messages) != 0 || p.HasMore {
		t.Fatalf("page of an empty conversation = %+v", p)
	}
	got, ms, err = readOutline(ctx, t, s, u.ID, empty.ID)
	noErr(t, "ReadOutline of an empty conversation", err)
	sameConv(t, got, empty)
	if ms == nil || len(ms) != 0 {
		t.Fatalf("outline of an empty conversation = %#v, want empty", ms)
	}
}

// testPageReadNotFound: another owner's conversation, a deleted one, one
// being deleted (its deletion cut off after its mark, its messages left),
// an unknown or malformed id, and a page before a message of another
// conversation or an unknown one: ErrNotFound and nothing else, as
// Conversation then MessagePage or MessageOutline answer.
func testPageReadNotFound(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	owner, stranger := mkUser(t, s, "owner"), mkUser(t, s, "stranger")
	c := mkConv(t, s, owner.ID, "private")
	ids := mkThread(t, s, c, 2)
	gone := mkConv(t, s, owner.ID, "deleted")
	mkThread(t, s, gone, 2)
	noErr(t, "DeleteConversation", s.DeleteConversation(ctx, owner.ID, gone.ID))
	marked := mkConv(t, s, owner.ID, "being deleted")
	markedIDs := mkThread(t, s, marked, 2)
	cut, cancel := context.WithCancel(ctx)
	cut = persistence.WithDeleteHook(cut, func(step string) {
		if step == persistence.DeleteStepConversationMarked {
			cancel()
		}
	})
	noErr(t, "DeleteConversation cut after its mark", s.DeleteConversation(cut, owner.ID, marked.ID))
	cancel()
	elsewhere := mkThread(t, s, mkConv(t, s, owner.ID, "elsewhere"), 1)

	type find struct{ what, owner, id, before string }
	cases := []find{
		{"another owner's", stranger.ID, c.ID, ""},
		{"another owner's, before its message", stranger.ID, c.ID, ids[1]},
		{"a deleted", owner.ID, gone.ID, ""},
		{"a marked", owner.ID, marked.ID, ""},
		{"a marked, before its message", owner.ID, marked.ID, markedIDs[1]},
		{"the owner's, before another conversation's message", owner.ID, c.ID, elsewhere[0]},
		{"the owner's, before an unknown message", owner.ID, c.ID, persistence.NewID()},
	}
	for _, id := range badIDs() {
		cases = append(cases, find{"unknown " + id, owner.ID, id, ""})
	}
	for _, tc := range cases {
		got, p, err := readPage(ctx, t, s, tc.owner, tc.id, persistence.PageQuery{Before: tc.before})
		wantErr(t, "ReadPage of "+tc.what+" conversation", err, persistence.ErrNotFound)
		if !reflect.DeepEqual(got, persistence.Conversation{}) || p.Messages != nil || p.HasMore {
			t.Fatalf("%s conversation: read %+v and %+v with the error, want nothing", tc.what, got, p)
		}
		if tc.before != "" {
			continue
		}
		got, ms, err := readOutline(ctx, t, s, tc.owner, tc.id)
		wantErr(t, "ReadOutline of "+tc.what+" conversation", err, persistence.ErrNotFound)
		if !reflect.DeepEqual(got, persistence.Conversation{}) || ms != nil {
			t.Fatalf("%s conversation: read %+v and %d messages of its outline with the error, want nothing", tc.what, got, len(ms))
		}
	}
}
