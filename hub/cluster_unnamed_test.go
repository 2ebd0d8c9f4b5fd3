package hub

import (
	"context"
	"testing"

	"chatd/hub/protocol"
)

// TestClusterResumeUnnamed: a resume with lastSeq and no messageId (the
// SSE stream's Last-Event-ID alone) applies lastSeq to the answer running
// now on another instance, as it does to one running here
// (docs/protocol.md): one message frame naming the answer, then exactly
// the text after lastSeq, then the live deltas and one done; on an
// instance that mirrors the answer already and on one that did not follow
// it. Before, the cursor was ignored there and the tab got the whole text
// again from the start.
func TestClusterResumeUnnamed(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B", "C")
	a, b, c := tc.hubs[0], tc.hubs[1], tc.hubs[2]
	conv := tc.conversation(t)
	onB := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, nil, conv.ID, "hi")
	run := a.model.next(t)
	run.say(t, "naïve ", "café ")
	onB.waitText(t, res.MessageID, "naïve café ")
	from := int64(len("naïve "))

	tests := []struct {
		name     string
		hub      *testHub
		announce bool // named for a client that named none (GET .../stream)
	}{
		{"mirrored here already", b, false},
		{"not followed here", c, false},
		{"named for the client, mirrored here already", b, true},
		{"named for the client, not followed here", c, true},
	}
	tabs := make([]*tab, len(tests))
	for i, tt := range tests {
		s := newTab(tc.user.ID, "resumed-"+tt.hub.name)
		t.Cleanup(func() { tt.hub.Detach(s) })
		seq := from
		req := SubscribeRequest{ConversationID: conv.ID, LastSeq: &seq}
		if tt.announce {
			req.MessageID, req.Announce = res.MessageID, true
		}
		if err := tt.hub.Subscribe(context.Background(), s, tc.user.ID, req); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		s.waitUntil(t, "the text after lastSeq", func(fs []*protocol.Frame, _ protocol.CloseCode) bool {
			text, _, err := answerOf(fs, res.MessageID, from)
			return err != nil || text == "café "
		})
		tabs[i] = s
	}
	run.say(t, "日本語")
	close(run.tokens)
	for i, s := range tabs {
		s.waitDone(t, res.MessageID)
		frames, _ := s.snapshot()
		text, dones, err := answerOf(frames, res.MessageID, from)
		if want := "café 日本語"; err != nil || text != want || dones != 1 {
			t.Errorf("%s: text %q (want %q) dones %d err %v\n%s", tests[i].name, text, want, dones, err, dump(frames))
		}
		if n := countType(frames, res.MessageID, protocol.TypeMessage); n != 1 {
			t.Errorf("%s: %d message frames, want 1 naming the answer\n%s", tests[i].name, n, dump(frames))
		}
	}
}
