package storetest

import (
	"testing"
	"time"

	"chatd/persistence"
)

// testMsgStreamingConversations: StreamingConversations lists exactly the
// owner's conversations with a streaming message, each once however many
// stream in it, and follows their answers as they end: not a conversation
// whose answers completed or were interrupted, not another owner's; none
// for an unknown or malformed owner id.
func testMsgStreamingConversations(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u, other := mkUser(t, s, "streams"), mkUser(t, s, "other")
	twice := mkConv(t, s, u.ID, "two streaming")
	q := mkMsg(t, s, twice, "", persistence.RoleUser, "question")
	a1, a2 := mkStreaming(t, s, twice, q.ID, ""), mkStreaming(t, s, twice, q.ID, "")
	apply(t, s, persistence.MessageUpdate{ID: a1.ID, Append: "partial"})
	mixed := mkConv(t, s, u.ID, "one streaming, one complete")
	mkMsg(t, s, mixed, "", persistence.RoleUser, "done")
	m1 := mkStreaming(t, s, mixed, "", "")
	completed := mkConv(t, s, u.ID, "answer completed")
	c1 := mkStreaming(t, s, completed, "", "")
	apply(t, s, persistence.MessageUpdate{ID: c1.ID, Append: "all of it", Status: persistence.StatusComplete})
	interrupted := mkConv(t, s, u.ID, "answer interrupted")
	i1 := mkStreaming(t, s, interrupted, "", "")
	_, err := s.InterruptMessage(ctx, u.ID, i1.ID, "stopped", time.Time{})
	noErr(t, "InterruptMessage", err)
	mkConv(t, s, u.ID, "empty")
	elsewhere := mkConv(t, s, other.ID, "another owner's")
	mkStreaming(t, s, elsewhere, "", "")

	steps := []struct {
		name  string
		end   []string // messages completed before the step
		owner string
		want  []string
	}{
		{"the owner's", nil, u.ID, []string{twice.ID, mixed.ID}},
		{"another owner's", nil, other.ID, []string{elsewhere.ID}},
		{"unknown owner", nil, persistence.NewID(), nil},
		{"malformed owner", nil, "not-an-id", nil},
		{"empty owner", nil, "", nil},
		{"one of two answers ended", []string{a1.ID}, u.ID, []string{twice.ID, mixed.ID}},
		{"both answers ended", []string{a2.ID}, u.ID, []string{mixed.ID}},
		{"every answer ended", []string{m1.ID}, u.ID, nil},
	}
	for _, st := range steps {
		for _, id := range st.end {
			apply(t, s, persistence.MessageUpdate{ID: id, Status: persistence.StatusComplete})
		}
		got, err := s.StreamingConversations(ctx, st.owner)
		noErr(t, "StreamingConversations: "+st.name, err)
		sameIDSet(t, "StreamingConversations: "+st.name, got, st.want)
	}
}

// testMsgStreamingBefore: StreamingBefore lists the messages of every
// owner still streaming whose last checkpoint is older than its bound,
// oldest first (ties by id), in pages of at most limit that follow each
// other from the last one of the page before; not a message whose last
// checkpoint is recent (however old an earlier one), nor one that
// completed or was interrupted, nor once ended.
func testMsgStreamingBefore(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	u, other := mkUser(t, s, "sweep"), mkUser(t, s, "other")
	c, co := mkConv(t, s, u.ID, "left streaming"), mkConv(t, s, other.ID, "another owner's")
	old := func(c persistence.Conversation, age time.Duration) persistence.Message {
		m := mkStreaming(t, s, c, "", "")
		apply(t, s, persistence.MessageUpdate{ID: m.ID, Append: "text", At: now.Add(-age)})
		return m
	}
	tied1, tied2 := old(co, 2*time.Hour), old(c, 2*time.Hour)
	oldest := old(c, 3*time.Hour) // inserted last: the order is by age, not id
	if tied2.ID < tied1.ID {
		tied1, tied2 = tied2, tied1
	}
	mkStreaming(t, s, c, "", "") // inserted now
	revived := old(c, 3*time.Hour)
	apply(t, s, persistence.MessageUpdate{ID: revived.ID, Append: " more", At: now})
	completed := old(c, 3*time.Hour)
	apply(t, s, persistence.MessageUpdate{ID: completed.ID, Status: persistence.StatusComplete, At: now.Add(-3 * time.Hour)})
	stopped := old(c, 3*time.Hour)
	_, err := s.InterruptMessage(ctx, u.ID, stopped.ID, "stopped", now.Add(-3*time.Hour))
	noErr(t, "InterruptMessage", err)

	ids := func(ms []persistence.StreamingMessage) []string {
		out := make([]string, len(ms))
		for i, m := range ms {
			out[i] = m.ID
		}
		return out
	}
	page := func(what string, before time.Time, after persistence.StreamingMessage, limit int) []persistence.StreamingMessage {
		t.Helper()
		ms, err := s.StreamingBefore(ctx, before, after, limit)
		noErr(t, "StreamingBefore: "+what, err)
		return ms
	}
	hourAgo := now.Add(-time.Hour)
	all := page("all", hourAgo, persistence.StreamingMessage{}, 100)
	sameIDs(t, "StreamingBefore an hour ago", ids(all), []string{oldest.ID, tied1.ID, tied2.ID})
	for _, m := range all {
		want := c
		if m.ID == tied1.ID && tied1.ConversationID == co.ID || m.ID == tied2.ID && tied2.ConversationID == co.ID {
			want = co
		}
		if m.ConversationID != want.ID || m.OwnerID != want.OwnerID || m.UpdatedAt.After(hourAgo) {
			t.Fatalf("StreamingBefore returned %+v, want conversation %s of owner %s, updated before %s",
				m, want.ID, want.OwnerID, hourAgo)
		}
	}
	first := page("first page", hourAgo, persistence.StreamingMessage{}, 2)
	sameIDs(t, "StreamingBefore: first page of 2", ids(first), []string{oldest.ID, tied1.ID})
	second := page("second page", hourAgo, first[1], 2)
	sameIDs(t, "StreamingBefore: second page", ids(second), []string{tied2.ID})
	sameIDs(t, "StreamingBefore: past the last", ids(page("past the last", hourAgo, second[0], 2)), nil)
	sameIDs(t, "StreamingBefore 2.5 hours ago", ids(page("older", now.Add(-150*time.Minute), persistence.StreamingMessage{}, 100)),
		[]string{oldest.ID})
	_, err = s.InterruptMessage(ctx, u.ID, oldest.ID, "swept", now)
	noErr(t, "InterruptMessage", err)
	sameIDs(t, "StreamingBefore once the oldest ended", ids(page("ended", hourAgo, persistence.StreamingMessage{}, 100)),
		[]string{tied1.ID, tied2.ID})
	// The last of the page before may have ended since: the next page
	// still starts after it.
	sameIDs(t, "StreamingBefore after a message ended since", ids(page("after an ended one", hourAgo, first[0], 100)),
		[]string{tied1.ID, tied2.ID})
	// An after.ID that is no id at all is no page's last: ErrNotFound.
	for _, bad := range badIDs()[1:] {
		if bad == "" {
			continue // the zero value: from the oldest
		}
		_, err := s.StreamingBefore(ctx, hourAgo, persistence.StreamingMessage{ID: bad, UpdatedAt: oldest.UpdatedAt}, 100)
		wantErr(t, "StreamingBefore after a malformed id "+bad, err, persistence.ErrNotFound)
	}
}
