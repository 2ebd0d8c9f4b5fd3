package sqlite_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"chatd/persistence"
	"chatd/persistence/sqlite"
)

// TestClockAfterRestart: a run whose clock is an hour behind the last
// one's (the host's clock stepped back) still writes after what is
// stored. Its new message follows the latest one of its conversation,
// that conversation goes to the top of the list, and a new conversation
// above it.
func TestClockAfterRestart(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "chatd.db")
	s := openAt(t, path)
	u := persistence.User{Email: "clock@example.test", Name: "c", PasswordHash: "h"}
	must(t, s.CreateUser(ctx, &u))
	conv := func(title string) persistence.Conversation {
		c := persistence.Conversation{OwnerID: u.ID, Title: title}
		must(t, s.CreateConversation(ctx, &c))
		return c
	}
	msg := func(c persistence.Conversation, parent, content string) persistence.Message {
		m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, ParentID: parent, Role: persistence.RoleUser,
			Content: content, Status: persistence.StatusComplete}
		must(t, s.InsertMessage(ctx, &m))
		return m
	}
	x := conv("X")
	q1 := msg(x, "", "q1")
	a1 := msg(x, q1.ID, "a1")
	y := conv("Y")
	msg(y, "", "in Y")
	must(t, sqlite.ShiftTimes(ctx, s, time.Hour))
	must(t, s.Close(ctx))

	s = openAt(t, path)
	closeOnCleanup(t, s)
	q2 := msg(x, a1.ID, "q2")
	ms, err := s.Messages(ctx, u.ID, x.ID)
	must(t, err)
	if got, want := ids(ms), []string{q1.ID, a1.ID, q2.ID}; !slices.Equal(got, want) {
		t.Errorf("messages of X: %v, want %v (the reply last)", got, want)
	}
	z := conv("Z")
	p, err := s.ListConversations(ctx, u.ID, persistence.ListQuery{})
	must(t, err)
	var list []string
	for _, c := range p.Conversations {
		list = append(list, c.Title)
	}
	if want := []string{"Z", "X", "Y"}; !slices.Equal(list, want) {
		t.Errorf("list: %v, want %v (X with the latest message above Y, Z created last first)", list, want)
	}
	if z.CreatedAt.Before(q2.CreatedAt) {
		t.Errorf("Z created at %v, before the message q2 stored before it (%v)", z.CreatedAt, q2.CreatedAt)
	}
}

func ids(ms []persistence.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
