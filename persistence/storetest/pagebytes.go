package storetest

import (
	"fmt"
	"strings"
	"testing"

	"chatd/persistence"
)

// mkSizedThread inserts a thread whose messages' texts have the given
// sizes in bytes, oldest first: the sixth has 200 bytes of reasoning
// besides its text, the last is a streaming answer whose text came in two
// appends (chunks, on SQLite), the fifth is in a two-byte letter.
func mkSizedThread(t *testing.T, s persistence.Store, c persistence.Conversation) []string {
	t.Helper()
	sizes := []int{400, 400, 400, 1500, 300, 300}
	var ids []string
	parent := ""
	for i, n := range sizes {
		text := strings.Repeat("a", n)
		if i == 4 {
			text = strings.Repeat("é", n/2)
		}
		m := persistence.Message{ConversationID: c.ID, OwnerID: c.OwnerID, ParentID: parent, Role: persistence.RoleUser,
			Content: text, Status: persistence.StatusComplete}
		if i%2 == 1 {
			m.Role = persistence.RoleAssistant
		}
		if i == 5 {
			m.Reasoning = strings.Repeat("r", 200)
		}
		noErr(t, "InsertMessage", s.InsertMessage(testCtx(t), &m))
		parent = m.ID
		ids = append(ids, m.ID)
	}
	a := mkStreaming(t, s, c, parent, "")
	apply(t, s, persistence.MessageUpdate{ID: a.ID, Append: strings.Repeat("s", 100)})
	apply(t, s, persistence.MessageUpdate{ID: a.ID, Append: strings.Repeat("t", 200)})
	return append(ids, a.ID)
}

// testMessagePageBytes: a page stops before the message that would take
// its text and reasoning past PageQuery.MaxBytes, in bytes, and says older
// messages exist; a message larger than the bound alone is a page of its
// own; paging on reaches every message in order.
func testMessagePageBytes(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "bytes")
	c := mkConv(t, s, u.ID, "large")
	// Text bytes, oldest first: 400 400 400 1500 300 (150 é) 300+200 300.
	ids := mkSizedThread(t, s, c)
	cases := []struct {
		before   string
		limit    int
		maxBytes int
		want     []string
		wantMore bool
	}{
		{"", 0, 1000, ids[5:], true}, // 300 + 500; the fifth would make 1100
		{"", 0, 1100, ids[4:], true}, // exactly 1100; the 1500 would pass it
		{"", 0, 299, ids[6:], true},  // the newest alone, over the bound
		{"", 1, 1000, ids[6:], true}, // the limit still counts
		{ids[5], 0, 1000, ids[4:5], true},
		{ids[4], 0, 1000, ids[3:4], true}, // 1500 alone: a page moves on
		{ids[3], 0, 1000, ids[1:3], true},
		{ids[1], 0, 1000, ids[:1], false},
		{"", 0, 0, ids, false}, // the default bound holds them all
		{"", 0, 5000, ids, false},
	}
	for _, tc := range cases {
		q := persistence.PageQuery{Before: tc.before, Limit: tc.limit, MaxBytes: tc.maxBytes}
		_, p, err := readPage(ctx, t, s, u.ID, c.ID, q)
		what := fmt.Sprintf("page before %q limit %d bytes %d", tc.before, tc.limit, tc.maxBytes)
		noErr(t, what, err)
		sameIDs(t, what, msgIDs(p.Messages), tc.want)
		if p.HasMore != tc.wantMore {
			t.Fatalf("%s: HasMore = %v, want %v", what, p.HasMore, tc.wantMore)
		}
	}
	for _, maxBytes := range []int{1, 700, 1500} {
		sameIDs(t, fmt.Sprintf("every page of at most %d bytes", maxBytes), pageBack(t, s, u.ID, c.ID, maxBytes), ids)
	}
}

// pageBack reads every message of the conversation page by page, newest
// page first, each of at most maxBytes (or one message), and returns
// their ids oldest first.
func pageBack(t *testing.T, s persistence.Store, owner, id string, maxBytes int) []string {
	t.Helper()
	var got []string
	q := persistence.PageQuery{MaxBytes: maxBytes}
	for range 100 {
		p, err := s.MessagePage(testCtx(t), owner, id, q)
		noErr(t, "MessagePage", err)
		if len(p.Messages) == 0 {
			t.Fatalf("page before %q: empty, HasMore %v", q.Before, p.HasMore)
		}
		if n := pageBytes(p.Messages); n > maxBytes && len(p.Messages) > 1 {
			t.Fatalf("page before %q: %d bytes in %d messages, bound %d", q.Before, n, len(p.Messages), maxBytes)
		}
		got = append(msgIDs(p.Messages), got...)
		if !p.HasMore {
			return got
		}
		q.Before = p.Messages[0].ID
	}
	t.Fatalf("no last page in 100")
	return nil
}

func pageBytes(ms []persistence.Message) int {
	n := 0
	for _, m := range ms {
		n += persistence.TextBytes(m)
	}
	return n
}
