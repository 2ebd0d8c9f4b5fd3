package storetest

import (
	"testing"
	"time"

	"chatd/persistence"
)

// RunClocks checks that a store orders what it writes after what it has
// stored, whatever the clocks: data written by a clock ahead of this
// process's (the last run's, before the host's clock stepped back; another
// instance's of a cluster) must not make a new message sort before those
// already in its conversation, nor keep a conversation's UpdatedAt from
// moving forward.
//
// open returns a fresh, empty store and ahead, which moves every
// timestamp stored in it (users', conversations' and messages' CreatedAt
// and UpdatedAt) forward by d, as if the clocks that wrote them had been
// d ahead. The suite closes the store.
func RunClocks(t *testing.T, open func(t *testing.T) (s persistence.Store, ahead func(t *testing.T, d time.Duration))) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s persistence.Store, ahead func(t *testing.T, d time.Duration))
	}{
		{"MessagesAfterStored", testClockMessages},
		{"UpdatesAfterStored", testClockUpdates},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, ahead := open(t)
			t.Cleanup(func() { closeStore(t, s) })
			tc.fn(t, s, ahead)
		})
	}
}

// testClockMessages: after an hour's worth of skew, a reply follows its
// question, the latest message and its parent, a regenerated answer
// follows the one it replaces, each moves the conversation forward, and
// the list's pages agree with its order.
func testClockMessages(t *testing.T, s persistence.Store, ahead func(t *testing.T, d time.Duration)) {
	ctx := testCtx(t)
	u := mkUser(t, s, "skewed")
	x := mkConv(t, s, u.ID, "X")
	q1 := mkMsg(t, s, x, "", persistence.RoleUser, "q1")
	a1 := mkMsg(t, s, x, q1.ID, persistence.RoleAssistant, "a1")
	y := mkConv(t, s, u.ID, "Y")
	mkMsg(t, s, y, "", persistence.RoleUser, "in Y")
	ahead(t, time.Hour)
	x = getConv(t, s, u.ID, x.ID)
	y = getConv(t, s, u.ID, y.ID)

	q2 := mkMsg(t, s, x, a1.ID, persistence.RoleUser, "q2")
	a2 := mkStreaming(t, s, x, q2.ID, "")
	a2b := mkMsg(t, s, x, q2.ID, persistence.RoleAssistant, "a2, regenerated")
	ms, err := s.Messages(ctx, u.ID, x.ID)
	noErr(t, "Messages", err)
	sameIDs(t, "messages after a skew", msgIDs(ms), []string{q1.ID, a1.ID, q2.ID, a2.ID, a2b.ID})
	checkMsgOrder(t, ms)
	for i, m := range []persistence.Message{q2, a2, a2b} {
		sameMsg(t, ms[2+i], m) // as InsertMessage returned it
		if !m.CreatedAt.After(x.UpdatedAt) {
			t.Fatalf("message %q at %v, not after its conversation's %v", m.Content, m.CreatedAt, x.UpdatedAt)
		}
	}
	got := getConv(t, s, u.ID, x.ID)
	sameTime(t, "conversation UpdatedAt after the messages", got.UpdatedAt, a2b.CreatedAt)

	m := mkMsg(t, s, y, "", persistence.RoleUser, "back to Y")
	if !m.CreatedAt.After(y.UpdatedAt) {
		t.Fatalf("message in Y at %v, not after Y's %v", m.CreatedAt, y.UpdatedAt)
	}
	// Which of X and Y is first depends on how far apart their stored
	// times were; the list and its pages agree all the same.
	all := listAll(t, s, u.ID, "", 100)
	checkListOrder(t, all)
	sameIDSet(t, "list", convIDs(all), []string{x.ID, y.ID})
	sameIDs(t, "list by pages of one", convIDs(listAll(t, s, u.ID, "", 1)), convIDs(all))
}

// testClockUpdates: after a minute's worth of skew, every update of a
// conversation moves its UpdatedAt forward (no two answer the same time),
// a message after them is later still, and the list's pages agree with
// its order.
func testClockUpdates(t *testing.T, s persistence.Store, ahead func(t *testing.T, d time.Duration)) {
	ctx := testCtx(t)
	u := mkUser(t, s, "renamer")
	c := mkConv(t, s, u.ID, "")
	other := mkConv(t, s, u.ID, "other")
	ahead(t, time.Minute)
	cur := getConv(t, s, u.ID, c.ID)
	steps := []persistence.ConversationPatch{
		{Title: strPtr("first")},
		{Title: strPtr("second")},
		{Title: strPtr("third"), IfTitle: strPtr("second")},
		{},
	}
	for i, p := range steps {
		got, err := s.UpdateConversation(ctx, u.ID, c.ID, p)
		noErr(t, "UpdateConversation", err)
		if !got.UpdatedAt.After(cur.UpdatedAt) {
			t.Fatalf("update %d: UpdatedAt %v, not after the stored %v", i, got.UpdatedAt, cur.UpdatedAt)
		}
		sameConv(t, getConv(t, s, u.ID, c.ID), got)
		cur = got
	}
	_, err := s.UpdateConversation(ctx, u.ID, c.ID, persistence.ConversationPatch{Title: strPtr("x"), IfTitle: strPtr("second")})
	wantErr(t, "UpdateConversation with a stale IfTitle", err, persistence.ErrConflict)
	sameConv(t, getConv(t, s, u.ID, c.ID), cur)

	m := mkMsg(t, s, cur, "", persistence.RoleUser, "after the renames")
	if !m.CreatedAt.After(cur.UpdatedAt) {
		t.Fatalf("message at %v, not after its conversation's %v", m.CreatedAt, cur.UpdatedAt)
	}
	sameTime(t, "conversation UpdatedAt after the message", getConv(t, s, u.ID, c.ID).UpdatedAt, m.CreatedAt)

	all := listAll(t, s, u.ID, "", 100)
	checkListOrder(t, all)
	sameIDSet(t, "list", convIDs(all), []string{c.ID, other.ID})
	sameIDs(t, "list by pages of one", convIDs(listAll(t, s, u.ID, "", 1)), convIDs(all))
}
