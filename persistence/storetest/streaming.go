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
