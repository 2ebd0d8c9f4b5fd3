package hub

import (
	"context"
	"testing"

	"chatd/hub/protocol"
)

// TestSubscribeAnnouncedEndedAnswer: GET .../stream names the answer
// running as it opened (Announce); when that answer ends before Subscribe,
// its stored rest still comes after its message frame, as a running
// answer's catch-up does, so the client learns which answer it is. A
// client that named the answer itself gets no message frame.
func TestSubscribeAnnouncedEndedAnswer(t *testing.T) {
	t.Parallel()
	for _, announce := range []bool{true, false} {
		feed := make(tap)
		e := newEnv(t, Options{}, feed.script)
		first := newSub("u")
		res := e.send(t, first, "hi")
		feed <- "hello"
		close(feed)
		first.textUntilDone(t, res.MessageID, 0) // ended: its generation is gone
		sub := newSub("u")
		req := SubscribeRequest{ConversationID: res.ConversationID, MessageID: res.MessageID, Announce: announce}
		if err := e.h.Subscribe(context.Background(), sub, "u", req); err != nil {
			t.Fatal(err)
		}
		sub.expect(t, protocol.TypeAck)
		if announce {
			if m := sub.expect(t, protocol.TypeMessage).Message; m.ID != res.MessageID {
				t.Fatalf("announced %s, want %s", m.ID, res.MessageID)
			}
		}
		if f := sub.next(t); f.Type != protocol.TypeDelta {
			t.Fatalf("announce %v: got a %s frame %s, want the first delta", announce, f.Type, f.Data)
		}
		if text, done := sub.textUntilDone(t, res.MessageID, int64(len("hello"))); text != "" || done.Status != "complete" {
			t.Fatalf("announce %v: after the delta %q, done %+v", announce, text, done)
		}
	}
}
