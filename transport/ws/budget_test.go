package ws_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/hub"
	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/internal/hubtest"
	"chatd/transport/limits"
	"chatd/transport/ws"
)

// TestRetriedSendBudget: a send spends the user's budget of sends per
// minute, and one that would create a conversation the budget of new
// conversations, unless Options.SentBefore says its client message id was
// stored already by a send (a retry, which the hub answers with what the
// first stored). A lookup that fails, a send without a client message id,
// a server without SentBefore and a key a regenerate stored (refused by
// the hub, not a retry) spend them. Before, a retry (a
// client resending after a reconnect) spent the send budget again, so a
// flaky link could lock its user out of sending.
func TestRetriedSendBudget(t *testing.T) {
	t.Parallel()
	stored := hubtest.StoredKeys
	for _, tc := range []struct {
		name       string
		sentBefore ws.SentBefore
		clientID   string
		user       string
		spends     bool
	}{
		{"a retry", stored, "stored", "u", false},
		{"a new send", stored, "new", "u", true},
		{"a regenerate's id", stored, "regenerated", "u", true},
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
				// What the key was found to be reaches the hub, which looks
				// a stored one up before anything is reserved or written.
				if sends := s.hub.Sends(); !tc.spends && (len(sends) != 1 || sends[0].Stored != hub.StoredSend) {
					t.Fatalf("the hub got %+v, want the key found stored by a send", sends)
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
	sentBefore := func(_ context.Context, user, clientID string) (hub.Stored, error) {
		if user == "u" && clientID == "k" && stored.Load() {
			return hub.StoredSend, nil
		}
		return hub.StoredNone, nil
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

// TestRefusedCreatingSendSpendsNeither: sends creating a conversation,
// from tabs released together, refused because one of the user's budgets
// (new conversations, or sends) is spent, in this process or on the
// cluster, leave the other budget as it was. Before, a send refused for
// new conversations had already spent one of the user's sends, here and
// on the cluster: a user refused for creating too many chats lost sends
// they never made.
func TestRefusedCreatingSendSpendsNeither(t *testing.T) {
	t.Parallel()
	const tabs = 6
	for _, tc := range []struct {
		name    string
		cluster bool
		spent   string // "sends" or "conversations"
	}{
		{"new conversations spent", false, "conversations"},
		{"sends spent", false, "sends"},
		{"cluster: new conversations spent", true, "conversations"},
		{"cluster: sends spent", true, "sends"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := limits.Options{SendsPerMinute: 32, ConversationsPerMinute: 8} // bursts of 8
			cluster := &budgetCluster{sharedConns: &sharedConns{conns: map[string]int{}}, sends: 8, convs: 8}
			if tc.cluster {
				opts = limits.Options{SendsPerMinute: 400, ConversationsPerMinute: 100, Shared: cluster}
			}
			lim := limits.New(opts)
			switch {
			case tc.cluster && tc.spent == "sends":
				cluster.sends = 0 // by other instances
			case tc.cluster:
				cluster.convs = 0
			case tc.spent == "sends":
				for lim.AllowSend("u") == nil {
				}
			default:
				for _, ok := lim.AllowConversation("u"); ok; _, ok = lim.AllowConversation("u") {
				}
			}
			s := newServer(t, serverOptions{opts: ws.Options{Limits: lim}})
			var cls []*client
			for range tabs {
				cl := s.dial(dialOptions{user: "u"})
				cl.expect(protocol.TypeHello)
				cls = append(cls, cl)
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, cl := range cls {
				wg.Go(func() {
					<-start
					cl.write(fmt.Sprintf(`{"type":"send","id":"s","content":"hi","clientMessageId":"c%d"}`, i))
				})
			}
			close(start)
			wg.Wait()
			for i, cl := range cls {
				if f := cl.next(); f.Type != protocol.TypeError || f.Code != protocol.CodeRateLimited {
					t.Fatalf("tab %d answered %s, want rate_limited", i, f.raw)
				}
			}
			if n := s.hub.SendCount(); n != 0 {
				t.Fatalf("%d refused sends reached the hub", n)
			}
			if tc.cluster {
				cluster.mu.Lock()
				defer cluster.mu.Unlock()
				if left := map[string]int{"sends": cluster.convs, "conversations": cluster.sends}[tc.spent]; left != 8 {
					t.Fatalf("the cluster's other budget has %d of its 8 left", left)
				}
				return
			}
			for i := range 8 { // the other budget's burst is whole
				if tc.spent == "conversations" {
					if perr := lim.AllowSend("u"); perr != nil {
						t.Fatalf("send %d of a burst of 8 refused: the refused creations spent sends", i+1)
					}
				} else if _, ok := lim.AllowConversation("u"); !ok {
					t.Fatalf("new conversation %d of a burst of 8 refused: the refused sends spent conversations", i+1)
				}
			}
		})
	}
}

// budgetCluster is a limits.Shared holding user u's sends and new
// conversations left across the cluster.
type budgetCluster struct {
	*sharedConns
	mu           sync.Mutex
	sends, convs int
}

func (c *budgetCluster) TakeSend(context.Context, string, int) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sends == 0 {
		return false, nil
	}
	c.sends--
	return true, nil
}

func (c *budgetCluster) GiveSend(context.Context, string, int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sends++
	return nil
}

func (c *budgetCluster) GiveBudget(context.Context, string, string, int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.convs++
	return nil
}

func (c *budgetCluster) TakeBudget(context.Context, string, string, int) (time.Duration, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.convs == 0 {
		return 5 * time.Second, false, nil
	}
	c.convs--
	return 0, true, nil
}

// TestRefusedSendSpendsNothing: a send or regenerate the hub refuses or
// fails started no answer, so it gives back the budgets it spent (the
// user's sends and, for a send creating a conversation, new
// conversations): refused as generation_running, sent to an unknown
// conversation or another user's alike, failed by the store (unavailable
// when the database cannot take the write now: a full disk). Before,
// each kept a send spent, and with a budget of one the user's next send
// was refused rate_limited. An accepted send keeps its budget spent.
func TestRefusedSendSpendsNothing(t *testing.T) {
	t.Parallel()
	mine, theirs := persistence.NewID(), persistence.NewID()
	for _, tc := range []struct {
		name    string
		frame   string
		sendErr error // what the hub's Send returns
		code    string
	}{
		{"generation running", `{"type":"send","id":"s","conversationId":"` + mine + `","content":"hi"}`,
			protocol.Errorf(protocol.CodeGenerationRunning, "an answer is running"), protocol.CodeGenerationRunning},
		{"an unknown conversation", `{"type":"send","id":"s","conversationId":"` + persistence.NewID() + `","content":"hi"}`,
			nil, protocol.CodeNotFound},
		{"another user's conversation", `{"type":"send","id":"s","conversationId":"` + theirs + `","content":"hi"}`,
			nil, protocol.CodeNotFound},
		{"a store that fails", `{"type":"send","id":"s","conversationId":"` + mine + `","content":"hi"}`,
			errors.New("store down"), protocol.CodeInternal},
		{"a new conversation the store fails", `{"type":"send","id":"s","content":"hi"}`,
			errors.New("store down"), protocol.CodeInternal},
		{"a store that cannot take writes now", `{"type":"send","id":"s","conversationId":"` + mine + `","content":"hi"}`,
			fmt.Errorf("store user message: disk full: %w", persistence.ErrUnavailable), protocol.CodeUnavailable},
		{"a regenerate of an unknown conversation", `{"type":"regenerate","id":"s","conversationId":"` + persistence.NewID() + `"}`,
			nil, protocol.CodeNotFound},
		{"an accepted send", `{"type":"send","id":"s","conversationId":"` + mine + `","content":"hi"}`, nil, ""},
		{"an accepted new conversation", `{"type":"send","id":"s","content":"hi"}`, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lim := limits.New(limits.Options{SendsPerMinute: 4, ConversationsPerMinute: 1}) // bursts of one
			s := newServer(t, serverOptions{opts: ws.Options{Limits: lim}})
			s.hub.AddConversation(mine, "u", "")
			s.hub.AddConversation(theirs, "v", "")
			if tc.sendErr != nil {
				s.hub.FailSends(tc.sendErr)
			}
			cl := s.dial(dialOptions{user: "u"})
			cl.expect(protocol.TypeHello)
			cl.write(tc.frame)
			f := cl.next()
			switch {
			case tc.code == "" && f.Type != protocol.TypeAck:
				t.Fatalf("answer %s, want an ack", f.raw)
			case tc.code != "" && (f.Type != protocol.TypeError || f.Code != tc.code):
				t.Fatalf("answer %s, want the error %s", f.raw, tc.code)
			}
			_, convLeft := lim.AllowConversation("u")
			if sendLeft := lim.AllowSend("u") == nil; sendLeft != (tc.code != "") {
				t.Fatalf("a send is left: %v, want %v", sendLeft, tc.code != "")
			}
			creates := !strings.Contains(tc.frame, "conversationId")
			if convLeft != (tc.code != "" || !creates) {
				t.Fatalf("a new conversation is left: %v, want %v", convLeft, tc.code != "" || !creates)
			}
		})
	}
}

// TestSendStoredElsewhereGivesBack: a send or regenerate the hub answers
// as a repeat (its clientMessageId found stored: a copy that reached
// another instance at the same instant was stored first, which ClaimSend
// does not order) gives back the send it spent, as one that started no
// answer. With a budget of one send, the next send is acked. Before, the
// copy kept its send, so the two copies spent two though one was stored.
func TestSendStoredElsewhereGivesBack(t *testing.T) {
	t.Parallel()
	for _, first := range []string{"send", "regenerate"} {
		t.Run(first, func(t *testing.T) {
			t.Parallel()
			lim := limits.New(limits.Options{SendsPerMinute: 4}) // a burst of one send
			s := newServer(t, serverOptions{opts: ws.Options{Limits: lim}})
			conv := persistence.NewID()
			s.hub.AddConversation(conv, "u", "")
			s.hub.RepeatSends()
			cl := s.dial(dialOptions{user: "u"})
			cl.expect(protocol.TypeHello)
			cl.write(fmt.Sprintf(`{"type":%q,"id":"a","conversationId":%q,"content":"hi","clientMessageId":"k"}`, first, conv))
			if f := cl.next(); f.Type != protocol.TypeAck {
				t.Fatalf("the copy: %s, want its ack", f.raw)
			}
			cl.write(fmt.Sprintf(`{"type":"send","id":"b","conversationId":%q,"content":"next","clientMessageId":"k2"}`, conv))
			if f := cl.next(); f.Type != protocol.TypeAck {
				t.Fatalf("the next send: %s, want its ack (the copy stored elsewhere gave its send back)", f.raw)
			}
		})
	}
}
