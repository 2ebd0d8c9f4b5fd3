package sse_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"chatd/hub"
	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/internal/hubtest"
	"chatd/transport/limits"
	"chatd/transport/sse"
)

// TestRetriedSendBudget: a send spends one of the user's sends per minute
// unless Options.SentBefore says its client message id was stored already
// by a send (a retry after a lost answer or a reconnect, which the hub
// answers with what the first stored): with the budget spent, the retry is
// answered, a new send is refused 429. A lookup that fails, a send without
// a client message id, a server without SentBefore and a key the other
// kind of request stored (refused by the hub, not a retry) spend it. Before, every
// retry spent the budget again, so a flaky link could lock its user out.
// A regenerate is the same by its clientMessageId (before, it had none and
// always spent).
func TestRetriedSendBudget(t *testing.T) {
	t.Parallel()
	stored := hubtest.StoredKeys
	for _, tc := range []struct {
		name       string
		sentBefore func(context.Context, string, string) (hub.Stored, error)
		path       string
		clientID   string
		user       string
		want       int
	}{
		{"a retry", stored, "messages", "stored", "u", http.StatusAccepted},
		{"a new send", stored, "messages", "new", "u", http.StatusTooManyRequests},
		{"another user's id", stored, "messages", "stored", "v", http.StatusTooManyRequests},
		{"no client message id", stored, "messages", "", "u", http.StatusTooManyRequests},
		{"a lookup that fails", stored, "messages", "broken", "u", http.StatusTooManyRequests},
		{"no SentBefore", nil, "messages", "stored", "u", http.StatusTooManyRequests},
		{"a regenerate", stored, "regenerate", "", "u", http.StatusTooManyRequests},
		{"a retried regenerate", stored, "regenerate", "regenerated", "u", http.StatusAccepted},
		{"a send repeating a regenerate's id", stored, "messages", "regenerated", "u", http.StatusTooManyRequests},
		{"a regenerate repeating a send's id", stored, "regenerate", "stored", "u", http.StatusTooManyRequests},
		{"a new regenerate", stored, "regenerate", "new", "u", http.StatusTooManyRequests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lim := limits.New(limits.Options{SendsPerMinute: 4}) // a burst of one
			s := newServer(t, sse.Options{Limits: lim, SentBefore: tc.sentBefore}, false)
			conv := persistence.NewID()
			s.hub.AddConversation(conv, tc.user, "")
			if perr := lim.AllowSend(tc.user); perr != nil {
				t.Fatal("the budget is empty from the start")
			}
			body := fmt.Sprintf(`{"content":"hi","clientMessageId":%q}`, tc.clientID)
			if tc.path == "regenerate" {
				body = fmt.Sprintf(`{"clientMessageId":%q}`, tc.clientID)
			}
			res := s.request(tc.user, http.MethodPost, "/api/conversations/"+conv+"/"+tc.path, body)
			if res.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.want)
			}
			if regens := s.hub.Regenerates(); tc.want == http.StatusAccepted && tc.path == "regenerate" &&
				(len(regens) != 1 || regens[0].ClientMessageID != tc.clientID) {
				t.Fatalf("the hub got %+v, want the key %q", regens, tc.clientID)
			}
		})
	}
}

// TestSendCopiesAtOnceSpendOnce: two copies of a new send (one client
// message id) posted at the same instant spend the user's send budget
// once: the second waits until the hub has stored the first, then finds
// it stored (SentBefore) and is answered as a repeat. With a budget of
// one send, both are answered 202. Before, both found nothing stored,
// both spent, and the second was refused 429. Two copies of a regenerate
// (before, without a key, both spent) are the same.
func TestSendCopiesAtOnceSpendOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ path, body string }{
		{"messages", `{"content":"hi","clientMessageId":"k"}`},
		{"regenerate", `{"clientMessageId":"k"}`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			copiesAtOnce(t, tc.path, tc.body)
		})
	}
}

// copiesAtOnce posts body to the route path of a conversation twice at once.
func copiesAtOnce(t *testing.T, path, body string) {
	waited := make(chan struct{}, 4)
	var stored atomic.Bool
	lim := limits.New(limits.Options{SendsPerMinute: 4, OnSendWait: func() { waited <- struct{}{} }}) // a burst of one
	kind := hub.StoredSend
	if path == "regenerate" {
		kind = hub.StoredRegenerate
	}
	sentBefore := func(_ context.Context, user, clientID string) (hub.Stored, error) {
		if user == "u" && clientID == "k" && stored.Load() {
			return kind, nil
		}
		return hub.StoredNone, nil
	}
	s := newServer(t, sse.Options{Limits: lim, SentBefore: sentBefore}, false)
	conv := persistence.NewID()
	s.hub.AddConversation(conv, "u", "")
	s.hub.Block() // the first copy is being stored
	defer s.hub.Unblock()
	statuses := make(chan int, 2)
	start := make(chan struct{})
	for range 2 {
		go func() {
			<-start
			req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/api/conversations/"+conv+"/"+path,
				strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer token-u")
			req.Header.Set("Content-Type", "application/json")
			res, err := s.srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				statuses <- 0
				return
			}
			res.Body.Close()
			statuses <- res.StatusCode
		}()
	}
	close(start) // both copies at once
	<-s.hub.Entered()
	select {
	case <-waited: // the other copy waits for this one
	case st := <-statuses:
		t.Fatalf("a copy answered %d while the first was being handled", st)
	}
	stored.Store(true)
	s.hub.Unblock()
	for range 2 {
		if st := <-statuses; st != http.StatusAccepted {
			t.Fatalf("a copy answered %d, want 202", st)
		}
	}
}

// TestRefusedSendSpendsNothing: a send or regenerate over SSE that starts
// no answer gives back the send it spent: refused by the hub as
// generation_running, for an unknown conversation or another user's
// alike, failed by the store, or refused before the hub because no event
// stream could be opened (the server is shutting down); a regenerate with
// a malformed body spends none. Before, each kept it spent, and with a
// budget of one the user's next send was refused 429. An accepted send
// keeps it spent, one asking for a stream while the user's connections
// are all in use too (answered 202: TestSendWithoutSlotAccepted). Once
// Shutdown has begun, a send answered without a stream of its own is
// refused 503 like one whose stream cannot open, and spends none: before,
// it started an answer on the instance going away (202).
func TestRefusedSendSpendsNothing(t *testing.T) {
	t.Parallel()
	mine, theirs := persistence.NewID(), persistence.NewID()
	stream := []string{"Accept", "text/event-stream"}
	for _, tc := range []struct {
		name     string
		path     string // after /api/conversations/
		body     string
		sendErr  error
		header   []string
		fullUser bool // the user's connections are all in use
		shutdown bool // the handler's Shutdown has begun
		want     int
	}{
		{"generation running", mine + "/messages", `{"content":"hi"}`,
			protocol.Errorf(protocol.CodeGenerationRunning, "an answer is running"), nil, false, false, http.StatusConflict},
		{"an unknown conversation", persistence.NewID() + "/messages", `{"content":"hi"}`, nil, nil, false, false, http.StatusNotFound},
		{"another user's conversation", theirs + "/messages", `{"content":"hi"}`, nil, nil, false, false, http.StatusNotFound},
		{"a store that fails", mine + "/messages", `{"content":"hi"}`, errors.New("store down"), nil, false, false, http.StatusInternalServerError},
		{"a stream that cannot open", mine + "/messages", `{"content":"hi"}`, nil, stream, false, true, http.StatusServiceUnavailable},
		{"a regenerate of an unknown conversation", persistence.NewID() + "/regenerate", `{}`, nil, nil, false, false, http.StatusNotFound},
		{"a regenerate with a malformed body", mine + "/regenerate", `{"messageId":"x"}`, nil, nil, false, false, http.StatusBadRequest},
		{"an accepted send", mine + "/messages", `{"content":"hi"}`, nil, nil, false, false, http.StatusAccepted},
		{"a send without a connection slot", mine + "/messages", `{"content":"hi"}`, nil, stream, true, false, http.StatusAccepted},
		{"a send without a connection slot, shutting down", mine + "/messages", `{"content":"hi"}`, nil, stream, true, true, http.StatusServiceUnavailable},
		{"a send asking no stream, shutting down", mine + "/messages", `{"content":"hi"}`, nil, nil, false, true, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lim := limits.New(limits.Options{SendsPerMinute: 4, MaxConns: 1}) // a burst of one send
			s := newServer(t, sse.Options{Limits: lim}, false)
			s.hub.AddConversation(mine, "u", "")
			s.hub.AddConversation(theirs, "v", "")
			if tc.sendErr != nil {
				s.hub.FailSends(tc.sendErr)
			}
			if tc.fullUser && !lim.AcquireConn("u") {
				t.Fatal("the user's one connection was refused")
			}
			if tc.shutdown {
				s.h.Shutdown()
			}
			res := s.request("u", http.MethodPost, "/api/conversations/"+tc.path, tc.body, tc.header...)
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.want)
			}
			accepted := tc.want == http.StatusAccepted
			if left := lim.AllowSend("u") == nil; left == accepted {
				t.Fatalf("a send is left: %v, want %v", left, !accepted)
			}
		})
	}
}

// TestSendStoredElsewhereGivesBack: a send or regenerate over SSE the hub
// answers as a repeat (its clientMessageId found stored: a copy that
// reached another instance at the same instant was stored first) gives
// back the send it spent (streamed or not: startSpent's one path).
// Before, it kept it, and with a budget of one the user's next send was
// refused 429.
func TestSendStoredElsewhereGivesBack(t *testing.T) {
	t.Parallel()
	conv := persistence.NewID()
	for _, tc := range []struct{ name, path, body string }{
		{"send", "/messages", `{"content":"hi","clientMessageId":"k"}`},
		{"regenerate", "/regenerate", `{"clientMessageId":"k"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lim := limits.New(limits.Options{SendsPerMinute: 4}) // a burst of one send
			s := newServer(t, sse.Options{Limits: lim}, false)
			s.hub.AddConversation(conv, "u", "")
			s.hub.RepeatSends()
			res := s.request("u", http.MethodPost, "/api/conversations/"+conv+tc.path, tc.body)
			res.Body.Close()
			if res.StatusCode != http.StatusAccepted {
				t.Fatalf("the copy: status %d", res.StatusCode)
			}
			if lim.AllowSend("u") != nil {
				t.Fatal("the copy stored elsewhere kept its send")
			}
		})
	}
}

// TestCancelNamesItsAnswer: POST .../cancel passes the messageId of its
// optional body to the hub (which stops only that answer), none without a
// body; an id that is not one is refused 400 before the hub sees it.
func TestCancelNamesItsAnswer(t *testing.T) {
	t.Parallel()
	s := newServer(t, sse.Options{}, false)
	conv, answer := persistence.NewID(), persistence.NewID()
	s.hub.AddConversation(conv, "u", answer)
	path := "/api/conversations/" + conv + "/cancel"
	for _, tc := range []struct {
		body string
		want int
	}{
		{fmt.Sprintf(`{"messageId":%q}`, answer), http.StatusNoContent},
		{"", http.StatusNoContent},
		{`{"messageId":"nope"}`, http.StatusBadRequest},
	} {
		if res := s.request("u", http.MethodPost, path, tc.body); res.StatusCode != tc.want {
			t.Fatalf("cancel with body %q: status %d, want %d", tc.body, res.StatusCode, tc.want)
		}
	}
	want := []hubtest.Cancel{{ConversationID: conv, MessageID: answer}, {ConversationID: conv}}
	if got := s.hub.Cancels(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the hub was asked %+v, want %+v", got, want)
	}
}
