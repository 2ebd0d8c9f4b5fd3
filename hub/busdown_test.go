package hub

import (
	"context"
	"testing"

	"chatd/hub/protocol"
	"chatd/internal/waitctx"
	"chatd/persistence"
)

// TestClusterRefusedWhileDownLeavesNothing: sends refused because the bus
// is down took no lock (the bus refused the Acquire before sending
// anything: ErrNotSent), so they leave nothing to give up: no goroutine
// per refused send waits for the bus, and the hub's wait for its last
// publishes (a shutdown's) ends at once. Before, each refused send (and a
// second one for the conversation it created) left a goroutine retrying
// the lock's FrameAborted every 2 s until the bus came back, and a
// shutdown meanwhile waited its whole grace and failed.
func TestClusterRefusedWhileDownLeavesNothing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		newConv bool // the send names no conversation: it creates one
	}{
		{name: "into a conversation"},
		{name: "creating its conversation", newConv: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tc := newTestCluster(t, "A")
			a := tc.hubs[0]
			conv := tc.conversation(t)
			tc.mem.SetDown(true)
			t.Cleanup(func() { tc.mem.SetDown(false) })
			for i := range 5 {
				req := SendRequest{ConversationID: conv.ID, Content: "x"}
				if tt.newConv {
					req.ConversationID = ""
				}
				if _, err := a.Send(context.Background(), nil, tc.user.ID, req); errCode(err) != protocol.CodeUnavailable {
					t.Fatalf("send %d with the bus down: %v, want unavailable", i, err)
				}
			}
			// The goroutines the refused sends left before waited until the bus
			// came back, never here: the bound only ends a hang.
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			// The publishers themselves: waitPublished gives up at once on a bus that is down.
			if err := waitctx.Wait(ctx, &a.pubs); err != nil {
				t.Fatalf("the refused sends left work waiting for the bus: %v", err)
			}
		})
	}
}

// TestClusterSendCreatingRefusedWhileDown: a send that names no
// conversation, refused because the bus is down, removes the
// conversation it created: its lock was certainly not taken (the bus
// refused before sending anything), so the removal needs none. It stayed,
// empty, one per repeated send; a later send with the bus back works.
func TestClusterSendCreatingRefusedWhileDown(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A")
	a := tc.hubs[0]
	tc.mem.SetDown(true)
	for i := range 3 {
		if _, err := a.Send(context.Background(), nil, tc.user.ID, SendRequest{Content: "x"}); errCode(err) != protocol.CodeUnavailable {
			t.Fatalf("send %d with the bus down: %v, want unavailable", i, err)
		}
	}
	page, err := tc.store.ListConversations(context.Background(), tc.user.ID, persistence.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Conversations) != 0 {
		t.Fatalf("the refused sends left %d conversations, want none", len(page.Conversations))
	}
	tc.mem.SetDown(false)
	res := tc.send(t, a, nil, "", "back")
	close(a.model.next(t).tokens)
	tc.waitUnlocked(t, res.ConversationID)
}
