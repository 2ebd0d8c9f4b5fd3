package ws_test

import (
	"fmt"
	"testing"

	"chatd/hub/protocol"
	"chatd/transport/ws"
)

// TestFollowedBounded: a connection follows at most MaxFollowed
// conversations. A subscribe, send or regenerate that would follow one
// more is refused with rate_limited before it reaches the hub; one
// naming a conversation it follows already passes; an unsubscribe makes
// room; an unknown conversation, another user's alike, takes none.
// Before, a connection could subscribe to every conversation of its user,
// each kept by the hub for as long as the connection lived.
func TestFollowedBounded(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{opts: ws.Options{MaxFollowed: 2}})
	conv := func(i int) string { return fmt.Sprintf("%024x", i+1) }
	for i := range 4 {
		s.hub.AddConversation(conv(i), "u", "")
	}
	s.hub.AddConversation(conv(9), "other", "")
	cl := s.dial(dialOptions{user: "u"})
	cl.expect("hello")
	frame := func(typ, id, convID string) string {
		extra := ""
		if typ == protocol.TypeSend {
			extra = `,"content":"hi"`
		}
		return fmt.Sprintf(`{"type":%q,"id":%q,"conversationId":%q%s}`, typ, id, convID, extra)
	}
	steps := []struct {
		typ, conv, want, code string
	}{
		{protocol.TypeSubscribe, conv(9), "error", protocol.CodeNotFound}, // another user's: takes no room
		{protocol.TypeSubscribe, conv(0), "ack", ""},
		{protocol.TypeSend, conv(1), "ack", ""},
		{protocol.TypeSubscribe, conv(2), "error", protocol.CodeRateLimited},
		{protocol.TypeSend, conv(2), "error", protocol.CodeRateLimited},
		{protocol.TypeRegenerate, conv(2), "error", protocol.CodeRateLimited},
		{protocol.TypeSubscribe, conv(1), "ack", ""}, // followed already
		{protocol.TypeSend, conv(0), "ack", ""},
		{protocol.TypeUnsubscribe, conv(0), "ack", ""},
		{protocol.TypeSubscribe, conv(2), "ack", ""},
		{protocol.TypeSubscribe, conv(3), "error", protocol.CodeRateLimited},
	}
	for i, st := range steps {
		id := fmt.Sprint(i)
		cl.write(frame(st.typ, id, st.conv))
		f := cl.expect(st.want)
		if string(f.ID) != `"`+id+`"` || f.Code != st.code {
			t.Fatalf("step %d (%s %s): got %s, want %s %s", i, st.typ, st.conv, f.raw, st.want, st.code)
		}
	}
	if n := len(s.hub.SubscribeRequests()); n != 3 { // conv 0, 1, 2, never 3
		t.Fatalf("the hub got %d subscribes, want 3", n)
	}
	if n := len(s.hub.Sends()); n != 2 {
		t.Fatalf("the hub got %d sends, want 2", n)
	}
}
