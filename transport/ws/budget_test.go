package ws_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/limits"
	"chatd/transport/ws"
)

// TestRetriedSendBudget: a send spends the user's budget of sends per
// minute, and one that would create a conversation the budget of new
// conversations, unless Options.SentBefore says its client message id was
// stored already (a retry, which the hub answers with what the first
// stored). A lookup that fails, a send without a client message id and a
// server without SentBefore spend them as before. Before, a retry (a
// client resending after a reconnect) spent the send budget again, so a
// flaky link could lock its user out of sending.
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
		for _, budget := range []string{"new conversations", "sends", "cluster sends"} {
			t.Run(budget+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				// A budget of one, spent before the send; the cluster's
				// sends are all spent (by other instances).
				opts := limits.Options{ConversationsPerMinute: 1, SendsPerMinute: 4}
				if budget == "cluster sends" {
					opts = limits.Options{Shared: spentSends{&sharedConns{conns: map[string]int{}}}}
				}
				lim := limits.New(opts)
				s := newServer(t, serverOptions{opts: ws.Options{Limits: lim, SentBefore: tc.sentBefore}})
				conv := ""
				if budget == "cluster sends" {
					conv = persistence.NewID()
					s.hub.AddConversation(conv, tc.user, "")
				} else if budget == "sends" {
					conv = persistence.NewID()
					s.hub.AddConversation(conv, tc.user, "")
					if perr := lim.AllowSend(tc.user); perr != nil {
						t.Fatal("the budget is empty from the start")
					}
				} else if _, ok := lim.AllowConversation(tc.user); !ok {
					t.Fatal("the budget is empty from the start")
				}
				cl := s.dial(dialOptions{user: tc.user})
				cl.expect(protocol.TypeHello)
				cl.write(fmt.Sprintf(`{"type":"send","id":"s","conversationId":%q,"content":"hi","clientMessageId":%q}`, conv, tc.clientID))
				f := cl.next()
				if spent := f.Type == protocol.TypeError && f.Code == protocol.CodeRateLimited; spent != tc.spends || !spent && f.Type != protocol.TypeAck {
					t.Fatalf("answer %s; want it refused for the budget: %v", f.raw, tc.spends)
				}
			})
		}
	}
}

// spentSends is a cluster whose every send of the minute was spent.
type spentSends struct{ *sharedConns }

func (spentSends) TakeSend(context.Context, string, int) (bool, error) { return false, nil }

// TestSendCopiesAtOnceSpendOnce: two copies of a new send (one client
// message id) arriving at the same instant over two tabs spend the user's
// send budget once: the second waits for the first to be handled, then
// finds it stored (SentBefore) and goes to the hub as a repeat. With a
// budget of one send, both are acked. Before, both found nothing stored,
// both spent, and the second was refused rate_limited though the hub
// would have answered it with the first's message.
func TestSendCopiesAtOnceSpendOnce(t *testing.T) {
	t.Parallel()
	waited := make(chan struct{}, 4)
	var stored atomic.Bool
	lim := limits.New(limits.Options{SendsPerMinute: 4, OnSendWait: func() { waited <- struct{}{} }}) // a burst of one send
	sentBefore := func(_ context.Context, user, clientID string) (bool, error) {
		return user == "u" && clientID == "k" && stored.Load(), nil
	}
	s := newServer(t, serverOptions{opts: ws.Options{Limits: lim, SentBefore: sentBefore}})
	conv := persistence.NewID()
	s.hub.AddConversation(conv, "u", "")
	s.hub.Block() // the first copy is being stored
	defer s.hub.Unblock()
	tabs := []*client{s.dial(dialOptions{user: "u"}), s.dial(dialOptions{user: "u"})}
	send := fmt.Sprintf(`{"type":"send","id":"s","conversationId":%q,"content":"hi","clientMessageId":"k"}`, conv)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, cl := range tabs {
		cl.expect(protocol.TypeHello)
		wg.Go(func() {
			<-start
			cl.write(send)
		})
	}
	close(start) // both copies at once
	wg.Wait()
	<-s.hub.Entered()
	select {
	case <-waited: // the other copy waits for this one
	case f := <-tabs[0].frames:
		t.Fatalf("a copy answered %s while the first was being handled", f.raw)
	case f := <-tabs[1].frames:
		t.Fatalf("a copy answered %s while the first was being handled", f.raw)
	}
	stored.Store(true)
	s.hub.Unblock()
	for i, cl := range tabs {
		if f := cl.next(); f.Type != protocol.TypeAck {
			t.Fatalf("tab %d answered %s, want an ack", i, f.raw)
		}
	}
	if n := s.hub.SendCount(); n != 2 {
		t.Fatalf("%d sends reached the hub, want 2 (the second a repeat it answers)", n)
	}
}
