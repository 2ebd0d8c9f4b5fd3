package ws_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"chatd/hub/protocol"
	"chatd/transport/limits"
	"chatd/transport/ws"
)

// TestRetriedSendBudget: a send that would create a conversation spends
// the user's budget of new conversations unless Options.SentBefore says
// its client message id was stored already (a retry, which the hub answers
// with what the first created). A lookup that fails, a send without a
// client message id and a server without SentBefore spend it as before.
func TestRetriedSendBudget(t *testing.T) {
	t.Parallel()
	stored := func(_ context.Context, user, clientID string) (bool, error) {
		switch clientID {
		case "stored":
			return user == "u", nil // another user's ids are not this one's
		case "broken":
			return false, errors.New("store down")
		}
		return false, nil
	}
	for _, tc := range []struct {
		name       string
		sentBefore ws.SentBefore
		clientID   string
		user       string
		spends     bool
	}{
		{"a retry", stored, "stored", "u", false},
		{"a new send", stored, "new", "u", true},
		{"another user's id", stored, "stored", "v", true},
		{"no client message id", stored, "", "u", true},
		{"a lookup that fails", stored, "broken", "u", true},
		{"no SentBefore", nil, "stored", "u", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A budget of one, spent by the first send.
			lim := limits.New(limits.Options{ConversationsPerMinute: 1})
			s := newServer(t, serverOptions{opts: ws.Options{Limits: lim, SentBefore: tc.sentBefore}})
			if _, ok := lim.AllowConversation(tc.user); !ok {
				t.Fatal("the budget is empty from the start")
			}
			cl := s.dial(dialOptions{user: tc.user})
			cl.expect(protocol.TypeHello)
			cl.write(fmt.Sprintf(`{"type":"send","id":"s","content":"hi","clientMessageId":%q}`, tc.clientID))
			f := cl.next()
			if spent := f.Type == protocol.TypeError && f.Code == protocol.CodeRateLimited; spent != tc.spends || !spent && f.Type != protocol.TypeAck {
				t.Fatalf("answer %s; want it refused for the budget: %v", f.raw, tc.spends)
			}
		})
	}
}
