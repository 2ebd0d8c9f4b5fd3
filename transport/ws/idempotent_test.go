package ws_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"chatd/hub"
	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/internal/hubtest"
	"chatd/transport/limits"
	"chatd/transport/ws"
)

// TestCancelNamesItsAnswer: a cancel frame's messageId reaches the hub
// (which stops only that answer); without it the cancel names none, and
// one that is no id is refused before the hub sees it.
func TestCancelNamesItsAnswer(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	conv, answer := persistence.NewID(), persistence.NewID()
	s.hub.AddConversation(conv, "u", answer)
	cl := s.dial(dialOptions{user: "u"})
	cl.expect(protocol.TypeHello)
	cl.write(fmt.Sprintf(`{"type":"cancel","id":"a","conversationId":%q,"messageId":%q}`, conv, answer))
	cl.expect(protocol.TypeAck)
	cl.write(fmt.Sprintf(`{"type":"cancel","id":"b","conversationId":%q}`, conv))
	cl.expect(protocol.TypeAck)
	cl.write(fmt.Sprintf(`{"type":"cancel","id":"c","conversationId":%q,"messageId":"nope"}`, conv))
	if f := cl.next(); f.Type != protocol.TypeError || f.Code != protocol.CodeInvalidField {
		t.Fatalf("cancel naming no id: %s, want invalid_field", f.raw)
	}
	want := []hubtest.Cancel{{ConversationID: conv, MessageID: answer}, {ConversationID: conv}}
	if got := s.hub.Cancels(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the hub was asked %+v, want %+v", got, want)
	}
}

// TestRetriedRegenerateBudget: a regenerate spends the user's budget of
// sends unless Options.SentBefore says its clientMessageId was stored
// already by a regenerate (a retry, which the hub answers with what the
// first made); the key reaches the hub either way. A send's key (refused
// by the hub, not a retry) spends. Before, a regenerate carried no key and
// every retry spent.
func TestRetriedRegenerateBudget(t *testing.T) {
	t.Parallel()
	stored := func(_ context.Context, user, clientID string) (hub.Stored, error) {
		switch {
		case user == "u" && clientID == "stored":
			return hub.StoredRegenerate, nil
		case user == "u" && clientID == "sent":
			return hub.StoredSend, nil
		}
		return hub.StoredNone, nil
	}
	for _, tc := range []struct {
		clientID string
		spends   bool
	}{{"stored", false}, {"new", true}, {"", true}, {"sent", true}} {
		t.Run(tc.clientID, func(t *testing.T) {
			t.Parallel()
			lim := limits.New(limits.Options{SendsPerMinute: 4}) // a burst of one
			s := newServer(t, serverOptions{opts: ws.Options{Limits: lim, SentBefore: stored}})
			conv := persistence.NewID()
			s.hub.AddConversation(conv, "u", "")
			if perr := lim.AllowSend("u"); perr != nil {
				t.Fatal("the budget is empty from the start")
			}
			cl := s.dial(dialOptions{user: "u"})
			cl.expect(protocol.TypeHello)
			cl.write(fmt.Sprintf(`{"type":"regenerate","id":"r","conversationId":%q,"clientMessageId":%q}`, conv, tc.clientID))
			f := cl.next()
			if spent := f.Type == protocol.TypeError && f.Code == protocol.CodeRateLimited; spent != tc.spends || !spent && f.Type != protocol.TypeAck {
				t.Fatalf("answer %s; want it refused for the budget: %v", f.raw, tc.spends)
			}
			if regens := s.hub.Regenerates(); !tc.spends && (len(regens) != 1 || regens[0].ClientMessageID != tc.clientID) {
				t.Fatalf("the hub got %+v, want the key %q", regens, tc.clientID)
			}
		})
	}
}

// TestRegenerateCopiesAtOnceSpendOnce: two copies of a regenerate (one
// clientMessageId) arriving at once over two tabs are handled one after
// the other: the second waits for the first, then finds it stored
// (SentBefore) and reaches the hub as a repeat without spending. With a
// budget of one send, both are acked.
func TestRegenerateCopiesAtOnceSpendOnce(t *testing.T) {
	t.Parallel()
	waited := make(chan struct{}, 4)
	var stored atomic.Bool
	lim := limits.New(limits.Options{SendsPerMinute: 4, OnSendWait: func() { waited <- struct{}{} }})
	sentBefore := func(_ context.Context, user, clientID string) (hub.Stored, error) {
		if user == "u" && clientID == "k" && stored.Load() {
			return hub.StoredRegenerate, nil
		}
		return hub.StoredNone, nil
	}
	s := newServer(t, serverOptions{opts: ws.Options{Limits: lim, SentBefore: sentBefore}})
	conv := persistence.NewID()
	s.hub.AddConversation(conv, "u", "")
	s.hub.Block() // the first copy is being stored
	defer s.hub.Unblock()
	tabs := []*client{s.dial(dialOptions{user: "u"}), s.dial(dialOptions{user: "u"})}
	regen := fmt.Sprintf(`{"type":"regenerate","id":"r","conversationId":%q,"clientMessageId":"k"}`, conv)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, cl := range tabs {
		cl.expect(protocol.TypeHello)
		wg.Go(func() {
			<-start
			cl.write(regen)
		})
	}
	close(start)
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
	if n := len(s.hub.Regenerates()); n != 2 {
		t.Fatalf("%d regenerates reached the hub, want 2 (the second a repeat it answers)", n)
	}
}
