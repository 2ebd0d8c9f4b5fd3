package storetest

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"chatd/persistence"
)

func latestTests() []storeTest {
	return []storeTest{
		{"ReadsAnswerAlike", testLatestAlike},
	}
}

// testLatestAlike: a read made with persistence.WithLatest answers what the
// same read answers without it, found or not (a store may send it
// elsewhere, to a replication's primary, but reads the same data).
func testLatestAlike(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "latest")
	c := mkConv(t, s, u.ID, "latest reads")
	q := mkMsg(t, s, c, "", persistence.RoleUser, "question")
	a := mkStreaming(t, s, c, q.ID, "answer so far")
	for _, tc := range []struct {
		name string
		read func(ctx context.Context) (any, error)
	}{
		{"Conversation", func(ctx context.Context) (any, error) { return s.Conversation(ctx, u.ID, c.ID) }},
		{"Conversation unknown", func(ctx context.Context) (any, error) { return s.Conversation(ctx, u.ID, q.ID) }},
		{"Messages", func(ctx context.Context) (any, error) { return s.Messages(ctx, u.ID, c.ID) }},
		{"Messages of another owner", func(ctx context.Context) (any, error) { return s.Messages(ctx, persistence.NewID(), c.ID) }},
		{"Message", func(ctx context.Context) (any, error) { return s.Message(ctx, u.ID, a.ID) }},
		{"MessageByClientID", func(ctx context.Context) (any, error) { return s.MessageByClientID(ctx, u.ID, q.ClientMessageID) }},
		{"MessagePage", func(ctx context.Context) (any, error) {
			return s.MessagePage(ctx, u.ID, c.ID, persistence.PageQuery{Limit: 1})
		}},
		{"MessageOutline", func(ctx context.Context) (any, error) { return s.MessageOutline(ctx, u.ID, c.ID) }},
		{"ReadContent", func(ctx context.Context) (any, error) {
			var b strings.Builder
			err := s.ReadContent(ctx, u.ID, a.ID, func(p string) error { b.WriteString(p); return nil })
			return b.String(), err
		}},
		{"ReadConversation", func(ctx context.Context) (any, error) {
			c, ms, err := persistence.ReadConversation(ctx, s, u.ID, c.ID)
			return []any{c, ms}, err
		}},
		{"ListConversations", func(ctx context.Context) (any, error) {
			return s.ListConversations(ctx, u.ID, persistence.ListQuery{Search: "so far"})
		}},
		{"StreamingConversations", func(ctx context.Context) (any, error) { return s.StreamingConversations(ctx, u.ID) }},
	} {
		want, wantErr := tc.read(ctx)
		got, err := tc.read(persistence.WithLatest(ctx))
		if (err == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s with WithLatest = %+v, %v; without = %+v, %v", tc.name, got, err, want, wantErr)
		}
	}
}
