package sse_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"chatd/persistence"
	"chatd/transport/limits"
	"chatd/transport/sse"
)

// TestRetriedSendBudget: a send spends one of the user's sends per minute
// unless Options.SentBefore says its client message id was stored already
// (a retry after a lost answer or a reconnect, which the hub answers with
// what the first stored): with the budget spent, the retry is answered,
// a new send is refused 429. A lookup that fails, a send without a client
// message id and a server without SentBefore spend it. Before, every
// retry spent the budget again, so a flaky link could lock its user out.
// A regenerate always spends it.
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
		sentBefore func(context.Context, string, string) (bool, error)
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
			res := s.request(tc.user, http.MethodPost, "/api/conversations/"+conv+"/"+tc.path,
				fmt.Sprintf(`{"content":"hi","clientMessageId":%q}`, tc.clientID))
			if res.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.want)
			}
		})
	}
}

// TestSendCopiesAtOnceSpendOnce: two copies of a new send (one client
// message id) posted at the same instant spend the user's send budget
// once: the second waits until the hub has stored the first, then finds
// it stored (SentBefore) and is answered as a repeat. With a budget of
// one send, both are answered 202. Before, both found nothing stored,
// both spent, and the second was refused 429.
func TestSendCopiesAtOnceSpendOnce(t *testing.T) {
	t.Parallel()
	waited := make(chan struct{}, 4)
	var stored atomic.Bool
	lim := limits.New(limits.Options{SendsPerMinute: 4, OnSendWait: func() { waited <- struct{}{} }}) // a burst of one
	sentBefore := func(_ context.Context, user, clientID string) (bool, error) {
		return user == "u" && clientID == "k" && stored.Load(), nil
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
			req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/api/conversations/"+conv+"/messages",
				strings.NewReader(`{"content":"hi","clientMessageId":"k"}`))
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
