package storetest

import (
	"encoding/base64"
	"fmt"
	"testing"

	"chatd/persistence"
)

func listTests() []storeTest {
	return []storeTest{
		{"NewestFirst", testListNewestFirst},
		{"ActivityMovesToTop", testListActivityMovesToTop},
		{"Pagination", testListPagination},
		{"LimitClamp", testListLimitClamp},
		{"InvalidCursor", testListInvalidCursor},
		{"Empty", testListEmpty},
	}
}

// mkConvs creates n conversations of owner titled prefix-0.. and returns their ids in creation order.
func mkConvs(t *testing.T, s persistence.Store, owner, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = mkConv(t, s, owner, fmt.Sprintf("%s-%d", prefix, i)).ID
	}
	return ids
}

func testListNewestFirst(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "lister")
	other := mkUser(t, s, "other")
	ids := mkConvs(t, s, u.ID, "conv", 12)
	mkConvs(t, s, other.ID, "foreign", 3)

	p, err := s.ListConversations(ctx, u.ID, persistence.ListQuery{Limit: 100})
	noErr(t, "ListConversations", err)
	if p.NextCursor != "" {
		t.Fatalf("single page has NextCursor %q, want empty", p.NextCursor)
	}
	checkListOrder(t, p.Conversations)
	sameIDs(t, "list order (newest created first)", convIDs(p.Conversations), reversed(ids))
	for _, c := range p.Conversations {
		sameConv(t, c, getConv(t, s, u.ID, c.ID))
	}
}

func testListActivityMovesToTop(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "active")
	ids := mkConvs(t, s, u.ID, "conv", 5) // list order: 4 3 2 1 0

	m := mkMsg(t, s, getConv(t, s, u.ID, ids[0]), "", persistence.RoleUser, "wake up")
	c0 := getConv(t, s, u.ID, ids[0])
	sameTime(t, "conversation UpdatedAt after InsertMessage", c0.UpdatedAt, m.CreatedAt)
	sameIDs(t, "after a message in the oldest", convIDs(listAll(t, s, u.ID, "", 100)),
		[]string{ids[0], ids[4], ids[3], ids[2], ids[1]})

	_, err := s.UpdateConversation(ctx, u.ID, ids[2], persistence.ConversationPatch{Title: strPtr("renamed")})
	noErr(t, "UpdateConversation", err)
	sameIDs(t, "after renaming one", convIDs(listAll(t, s, u.ID, "", 100)),
		[]string{ids[2], ids[0], ids[4], ids[3], ids[1]})
}

func testListPagination(t *testing.T, s persistence.Store) {
	u := mkUser(t, s, "pager")
	other := mkUser(t, s, "noise")
	ids := mkConvs(t, s, u.ID, "conv", 23)
	mkConvs(t, s, other.ID, "noise", 5)
	// Activity reorders them so that list order differs from creation order.
	for _, i := range []int{3, 17, 0} {
		mkMsg(t, s, getConv(t, s, u.ID, ids[i]), "", persistence.RoleUser, "bump")
	}
	want := convIDs(listAll(t, s, u.ID, "", 100))
	if len(want) != 23 || want[0] != ids[0] || want[1] != ids[17] || want[2] != ids[3] {
		t.Fatalf("full list = %v, want 23 starting with %s %s %s", want, ids[0], ids[17], ids[3])
	}
	for _, limit := range []int{1, 2, 3, 5, 7, 10, 11, 22, 23, 24, 100} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			got := listAll(t, s, u.ID, "", limit)
			sameIDs(t, "paged list", convIDs(got), want)
		})
	}
}

func testListLimitClamp(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "many")
	mkConvs(t, s, u.ID, "conv", 105)
	cases := []struct{ limit, want int }{
		{0, 30},
		{-5, 1},
		{1, 1},
		{100, 100},
		{101, 100},
		{1000, 100},
	}
	for _, tc := range cases {
		p, err := s.ListConversations(ctx, u.ID, persistence.ListQuery{Limit: tc.limit})
		noErr(t, fmt.Sprintf("ListConversations(limit %d)", tc.limit), err)
		if len(p.Conversations) != tc.want || p.NextCursor == "" {
			t.Fatalf("limit %d: got %d conversations, cursor %q; want %d and a cursor",
				tc.limit, len(p.Conversations), p.NextCursor, tc.want)
		}
	}
}

func testListInvalidCursor(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "cursor")
	mkConvs(t, s, u.ID, "conv", 3)
	p, err := s.ListConversations(ctx, u.ID, persistence.ListQuery{Limit: 1})
	noErr(t, "ListConversations", err)
	good := p.NextCursor
	if good == "" {
		t.Fatalf("no cursor after a full page")
	}
	bad := []string{
		"!!!not base64!!!",
		"garbage",
		base64.StdEncoding.EncodeToString([]byte("hello world")),
		base64.RawURLEncoding.EncodeToString([]byte("{}")),
		good[:len(good)/2],
		good + "x",
	}
	for _, c := range bad {
		_, err := s.ListConversations(ctx, u.ID, persistence.ListQuery{Cursor: c, Limit: 10})
		wantErr(t, fmt.Sprintf("ListConversations(cursor %q)", c), err, persistence.ErrInvalidCursor)
		_, err = s.ListConversations(ctx, u.ID, persistence.ListQuery{Cursor: c, Limit: 10, Search: "conv"})
		wantErr(t, fmt.Sprintf("ListConversations(cursor %q, search)", c), err, persistence.ErrInvalidCursor)
	}
}

func testListEmpty(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "lonely")
	for _, q := range []persistence.ListQuery{{}, {Limit: 5}, {Search: "anything"}} {
		p, err := s.ListConversations(ctx, u.ID, q)
		noErr(t, "ListConversations", err)
		if len(p.Conversations) != 0 || p.NextCursor != "" {
			t.Fatalf("empty store listed %d conversations, cursor %q", len(p.Conversations), p.NextCursor)
		}
	}
	// An owner that does not exist at all is simply empty.
	p, err := s.ListConversations(ctx, persistence.NewID(), persistence.ListQuery{})
	noErr(t, "ListConversations(unknown owner)", err)
	if len(p.Conversations) != 0 {
		t.Fatalf("unknown owner listed %d conversations", len(p.Conversations))
	}
}
