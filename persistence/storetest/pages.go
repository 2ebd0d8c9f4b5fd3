package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"chatd/persistence"
)

func pageTests() []storeTest {
	return []storeTest{
		{"ErrorCode", testErrorCode},
		{"MessagePages", testMessagePages},
		{"MessagePageErrors", testMessagePageErrors},
		{"MessagePageBytes", testMessagePageBytes},
		{"Outline", testOutline},
		{"ReadText", testReadText},
		{"ReadTextDeleted", testReadTextDeleted},
		{"ProbeWrite", testProbeWrite},
		{"SearchFinishedAnswer", testSearchFinishedAnswer},
	}
}

func testErrorCode(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "codes")
	c := mkConv(t, s, u.ID, "codes")
	q := mkMsg(t, s, c, "", persistence.RoleUser, "hi")
	a := mkStreaming(t, s, c, q.ID, "")
	if got := getMsg(t, s, u.ID, a.ID).ErrorCode; got != "" {
		t.Fatalf("new message ErrorCode = %q, want empty", got)
	}
	apply(t, s, persistence.MessageUpdate{ID: a.ID, Append: "half", Error: "took too long", ErrorCode: "timeout"})
	apply(t, s, persistence.MessageUpdate{ID: a.ID, Append: "!"})
	if got := getMsg(t, s, u.ID, a.ID).ErrorCode; got != "timeout" {
		t.Fatalf("an update without a code changed it to %q", got)
	}
	apply(t, s, persistence.MessageUpdate{ID: a.ID, Status: persistence.StatusError})
	got := getMsg(t, s, u.ID, a.ID)
	if got.ErrorCode != "timeout" || got.Error != "took too long" || got.Status != persistence.StatusError || got.Content != "half!" {
		t.Fatalf("after the final update: %+v", got)
	}
	m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, ParentID: q.ID, Role: persistence.RoleAssistant,
		Status: persistence.StatusError, Error: "x", ErrorCode: "rate_limited"}
	noErr(t, "InsertMessage", s.InsertMessage(ctx, &m))
	if got := getMsg(t, s, u.ID, m.ID).ErrorCode; got != "rate_limited" {
		t.Fatalf("inserted ErrorCode = %q", got)
	}
}

// mkThread inserts n messages, alternating user and assistant, each the
// reply of the one before, and returns their ids oldest first.
func mkThread(t *testing.T, s persistence.Store, c persistence.Conversation, n int) []string {
	t.Helper()
	var ids []string
	parent := ""
	for i := range n {
		role := persistence.RoleUser
		if i%2 == 1 {
			role = persistence.RoleAssistant
		}
		parent = mkMsg(t, s, c, parent, role, fmt.Sprintf("message %d", i)).ID
		ids = append(ids, parent)
	}
	return ids
}

func testMessagePages(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "pager")
	c := mkConv(t, s, u.ID, "long")
	ids := mkThread(t, s, c, 7)
	cases := []struct {
		before   string
		limit    int
		want     []string
		wantMore bool
	}{
		{"", 3, ids[4:], true},
		{ids[4], 3, ids[1:4], true},
		{ids[1], 3, ids[:1], false},
		{ids[0], 3, nil, false},
		{"", 0, ids, false},
		{"", 7, ids, false},
		{"", 6, ids[1:], true},
		{ids[6], 100, ids[:6], false},
	}
	for _, tc := range cases {
		p, err := s.MessagePage(ctx, u.ID, c.ID, persistence.PageQuery{Before: tc.before, Limit: tc.limit})
		noErr(t, "MessagePage", err)
		what := fmt.Sprintf("page before %q limit %d", tc.before, tc.limit)
		sameIDs(t, what, msgIDs(p.Messages), tc.want)
		if p.HasMore != tc.wantMore {
			t.Fatalf("%s: HasMore = %v, want %v", what, p.HasMore, tc.wantMore)
		}
		if p.Messages == nil {
			t.Fatalf("%s: nil Messages", what)
		}
	}
	p, err := s.MessagePage(ctx, u.ID, c.ID, persistence.PageQuery{Limit: 2})
	noErr(t, "MessagePage", err)
	sameMsg(t, p.Messages[1], getMsg(t, s, u.ID, ids[6]))
}

func testMessagePageErrors(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u, other := mkUser(t, s, "owner"), mkUser(t, s, "other")
	c := mkConv(t, s, u.ID, "mine")
	c2 := mkConv(t, s, u.ID, "second")
	ids := mkThread(t, s, c, 2)
	elsewhere := mkThread(t, s, c2, 1)
	empty := mkConv(t, s, u.ID, "empty")
	p, err := s.MessagePage(ctx, u.ID, empty.ID, persistence.PageQuery{})
	noErr(t, "MessagePage of an empty conversation", err)
	if len(p.Messages) != 0 || p.HasMore {
		t.Fatalf("empty conversation: %+v", p)
	}
	for _, id := range badIDs() {
		if id == "" {
			continue
		}
		_, err := s.MessagePage(ctx, u.ID, id, persistence.PageQuery{})
		wantErr(t, "page of unknown conversation "+id, err, persistence.ErrNotFound)
		_, err = s.MessagePage(ctx, u.ID, c.ID, persistence.PageQuery{Before: id})
		wantErr(t, "page before unknown message "+id, err, persistence.ErrNotFound)
	}
	_, err = s.MessagePage(ctx, other.ID, c.ID, persistence.PageQuery{})
	wantErr(t, "another owner's conversation", err, persistence.ErrNotFound)
	_, err = s.MessagePage(ctx, other.ID, c.ID, persistence.PageQuery{Before: ids[1]})
	wantErr(t, "another owner's message", err, persistence.ErrNotFound)
	_, err = s.MessagePage(ctx, u.ID, c.ID, persistence.PageQuery{Before: elsewhere[0]})
	wantErr(t, "a message of another conversation", err, persistence.ErrNotFound)
}

func testOutline(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u, other := mkUser(t, s, "outliner"), mkUser(t, s, "stranger")
	c := mkConv(t, s, u.ID, "outline")
	thread := mkThread(t, s, c, 5)
	apply(t, s, persistence.MessageUpdate{ID: mkStreaming(t, s, c, thread[4], "").ID,
		Append: "so far", AppendReasoning: "thinking"})
	thinker := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, ParentID: thread[4], Role: persistence.RoleAssistant,
		Content: "answer", Reasoning: "thought", Status: persistence.StatusComplete}
	noErr(t, "InsertMessage", s.InsertMessage(ctx, &thinker))
	full, err := s.Messages(ctx, u.ID, c.ID)
	noErr(t, "Messages", err)
	out, err := s.MessageOutline(ctx, u.ID, c.ID)
	noErr(t, "MessageOutline", err)
	if len(out) != len(full) {
		t.Fatalf("outline has %d messages, want %d", len(out), len(full))
	}
	for i := range full {
		want := full[i]
		want.Content, want.Reasoning = "", ""
		sameMsg(t, out[i], want)
	}
	empty := mkConv(t, s, u.ID, "empty")
	out, err = s.MessageOutline(ctx, u.ID, empty.ID)
	noErr(t, "outline of an empty conversation", err)
	if len(out) != 0 {
		t.Fatalf("empty outline: %v", out)
	}
	_, err = s.MessageOutline(ctx, other.ID, c.ID)
	wantErr(t, "another owner's outline", err, persistence.ErrNotFound)
	_, err = s.MessageOutline(ctx, u.ID, persistence.NewID())
	wantErr(t, "unknown conversation's outline", err, persistence.ErrNotFound)
}

// textField is one of a message's texts as the store reads it in pieces.
type textField struct {
	name   string
	read   func(s persistence.Store) func(ctx context.Context, owner, id string, fn func(string) error) error
	append func(id, text string) persistence.MessageUpdate
	set    func(m *persistence.Message, text string)
}

var textFields = []textField{
	{"ReadContent",
		func(s persistence.Store) func(context.Context, string, string, func(string) error) error {
			return s.ReadContent
		},
		func(id, text string) persistence.MessageUpdate {
			return persistence.MessageUpdate{ID: id, Append: text}
		},
		func(m *persistence.Message, text string) { m.Content = text }},
	{"ReadReasoning",
		func(s persistence.Store) func(context.Context, string, string, func(string) error) error {
			return s.ReadReasoning
		},
		func(id, text string) persistence.MessageUpdate {
			return persistence.MessageUpdate{ID: id, AppendReasoning: text}
		},
		func(m *persistence.Message, text string) { m.Reasoning = text }},
}

// testReadText: ReadContent and ReadReasoning hand over their own text
// (a message's text, its reasoning) whole, in order, in pieces that
// never cut a character: a short one stored with the message, a long
// one appended while the answer streams (read then, and once it ended),
// and none, without a call.
func testReadText(t *testing.T, s persistence.Store) {
	for _, f := range textFields {
		t.Run(f.name, func(t *testing.T) { readTextOf(t, s, f) })
	}
}

func readTextOf(t *testing.T, s persistence.Store, f textField) {
	ctx := testCtx(t)
	u, other := mkUser(t, s, "reader"), mkUser(t, s, "nosy")
	c := mkConv(t, s, u.ID, "big")
	q := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleAssistant, Status: persistence.StatusComplete}
	f.set(&q, "short text é")
	noErr(t, "InsertMessage", s.InsertMessage(ctx, &q))
	none := mkMsg(t, s, c, q.ID, persistence.RoleUser, "")
	a := mkStreaming(t, s, c, none.ID, "")
	// More than two pieces of text whose characters are 1 to 4 bytes long,
	// appended in uneven chunks as checkpoints would be.
	word := "ab 中文 é 🙂 "
	var want strings.Builder
	for want.Len() < 2*persistence.ContentPieceBytes+1000 {
		chunk := strings.Repeat(word, 4000+want.Len()%7) // about 64 KB: few writes, for slow servers
		want.WriteString(chunk)
		apply(t, s, f.append(a.ID, chunk))
	}
	check := func(id, want string) {
		t.Helper()
		var got strings.Builder
		pieces := 0
		err := f.read(s)(ctx, u.ID, id, func(p string) error {
			pieces++
			if !utf8.ValidString(p) || p == "" {
				t.Fatalf("piece %d cuts a character or is empty", pieces)
			}
			got.WriteString(p)
			return nil
		})
		noErr(t, f.name, err)
		if got.String() != want {
			t.Fatalf("%s gave %d bytes, want %d", f.name, got.Len(), len(want))
		}
		if len(want) > 2*persistence.ContentPieceBytes && pieces < 2 {
			t.Fatalf("%d bytes came in %d piece(s)", got.Len(), pieces)
		}
	}
	check(q.ID, "short text é")
	check(none.ID, "")
	check(a.ID, want.String())
	end := persistence.MessageUpdate{ID: a.ID, Status: persistence.StatusComplete, FinishReason: "stop"}
	apply(t, s, end)
	check(a.ID, want.String())
	stop := fmt.Errorf("stop")
	err := f.read(s)(ctx, u.ID, a.ID, func(string) error { return stop })
	wantErr(t, f.name+" with a failing callback", err, stop)
	err = f.read(s)(ctx, other.ID, a.ID, func(string) error { return nil })
	wantErr(t, "another owner's text", err, persistence.ErrNotFound)
	err = f.read(s)(ctx, u.ID, persistence.NewID(), func(string) error { return nil })
	wantErr(t, "unknown message's text", err, persistence.ErrNotFound)
	err = f.read(s)(ctx, u.ID, "not an id", func(string) error { return nil })
	wantErr(t, "malformed id's text", err, persistence.ErrNotFound)
}

// testReadTextDeleted: a text whose message is deleted while it is read
// (its conversation deleted between two pieces) is either handed over
// whole or ends with ErrNotFound, never cut short as if it had ended: an
// export would otherwise save part of an answer as the whole of it.
func testReadTextDeleted(t *testing.T, s persistence.Store) {
	for _, f := range textFields {
		t.Run(f.name, func(t *testing.T) {
			ctx := testCtx(t)
			u := mkUser(t, s, "deleter")
			c := mkConv(t, s, u.ID, "doomed")
			a := mkStreaming(t, s, c, mkMsg(t, s, c, "", persistence.RoleUser, "q").ID, "")
			// More than a piece, in more chunks than one slice of them
			// (the MongoDB store reads 64 at a time).
			chunk := strings.Repeat("abcdefgh", 512)
			for range 80 {
				apply(t, s, f.append(a.ID, chunk)) // one chunk each
			}
			var got strings.Builder
			err := f.read(s)(ctx, u.ID, a.ID, func(p string) error {
				if got.Len() == 0 {
					noErr(t, "DeleteConversation", s.DeleteConversation(ctx, u.ID, c.ID))
				}
				got.WriteString(p)
				return nil
			})
			if err == nil && got.Len() != 80*len(chunk) {
				t.Fatalf("%s of a message deleted while read: %d of %d bytes, and no error", f.name, got.Len(), 80*len(chunk))
			}
			if err != nil {
				wantErr(t, f.name+" of a message deleted while read", err, persistence.ErrNotFound)
			}
		})
	}
}

func testProbeWrite(t *testing.T, s persistence.Store) {
	for range 3 {
		noErr(t, "ProbeWrite", s.ProbeWrite(testCtx(t)))
	}
}

// testSearchFinishedAnswer: an answer's text is found while it streams,
// after its final update (which may carry the last text), and no longer
// once its conversation is deleted.
func testSearchFinishedAnswer(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "finisher")
	c := mkConv(t, s, u.ID, "plain title")
	q := mkMsg(t, s, c, "", persistence.RoleUser, "tell me")
	a := mkStreaming(t, s, c, q.ID, "")
	convs := map[string]persistence.Conversation{"c": c}
	apply(t, s, persistence.MessageUpdate{ID: a.ID, Append: "The axolotl "})
	runSearchCases(t, s, u.ID, convs, []searchCase{{"axolotl", []string{"c"}}, {"regrows", nil}})
	apply(t, s, persistence.MessageUpdate{ID: a.ID, Append: "regrows limbs.",
		Status: persistence.StatusComplete, FinishReason: "stop"})
	runSearchCases(t, s, u.ID, convs, []searchCase{
		{"axolotl", []string{"c"}}, {"REGROWS LIMBS", []string{"c"}}, {"l r", []string{"c"}}, {"limbs!", nil}})
	noErr(t, "DeleteConversation", s.DeleteConversation(ctx, u.ID, c.ID))
	runSearchCases(t, s, u.ID, nil, []searchCase{{"axolotl", nil}})
}
