package app

import (
	"net/http"
	"testing"

	"chatd/persistence/counting"
)

// TestKeyOfAnotherConversation: a send or regenerate whose clientMessageId
// the user stored in another conversation stores nothing and fails no
// write. Repeating a key of its own kind it is answered as the retry it
// claims to be (the ack of the request that stored it, spending nothing);
// repeating the other kind's it is refused as a new request is, spending
// the budget of sends: with that spent, rate_limited. Before, the
// transports took any stored key for a retry and spent nothing, while the
// hub looked the key up in the named conversation only, so each such
// frame reserved that conversation and had its insert refused by the
// store (a failed write, then an interrupt of the answer row never
// written) before being answered, as often as frames came.
func TestKeyOfAnotherConversation(t *testing.T) {
	t.Parallel()
	// A burst of three sends: one into A with key "K", one into B, one
	// regenerate in A with key "R".
	e := newEnv(t, envOptions{tweak: func(c *Config) { c.Limits.SendsPerMinute = 12 }})
	u := e.register(t)
	cl := e.dial(t, u)
	first := sendFrame("first", "", "the first [[fake tokens=2]]")
	first["clientMessageId"] = "K"
	cl.write(first)
	sent := cl.expect("ack")
	cl.until(isDone(sent.MessageID))
	cl.write(map[string]any{"type": "regenerate", "id": "again", "conversationId": sent.ConversationID, "clientMessageId": "R"})
	regen := cl.expect("ack")
	cl.until(isDone(regen.MessageID))
	var created struct{ Conversation struct{ ID string } }
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{}, http.StatusCreated, &created)
	b := created.Conversation
	cl.write(sendFrame("inB", b.ID, "in B [[fake tokens=2]]"))
	inB := cl.expect("ack")
	cl.until(isDone(inB.MessageID))

	before := e.store.Writes()
	for i := range 6 {
		f := sendFrame("s", b.ID, "again")
		f["clientMessageId"] = "K"
		cl.write(f)
		got := cl.expect("ack")
		if got.ConversationID != sent.ConversationID || got.UserMessageID != sent.UserMessageID {
			t.Fatalf("send %d into B with A's send key: %s, want the ack of the first send", i, got.raw)
		}
		cl.until(isDone(got.MessageID)) // its latest answer, ended, sent whole
		cl.write(map[string]any{"type": "regenerate", "id": "r", "conversationId": b.ID, "clientMessageId": "R"})
		if got := cl.expect("ack"); got.ConversationID != sent.ConversationID || got.MessageID != regen.MessageID {
			t.Fatalf("regenerate %d in B with A's regenerate key: %s, want the ack of the first regenerate", i, got.raw)
		}
		cl.until(isDone(regen.MessageID))
	}
	noWrites(t, e, before, "retries naming another conversation")
	// The other kind's key is no retry: it spends, and the budget is spent.
	before = e.store.Writes()
	refused := sendFrame("x", b.ID, "again")
	refused["clientMessageId"] = "R"
	for _, f := range []map[string]any{refused,
		{"type": "regenerate", "id": "y", "conversationId": b.ID, "clientMessageId": "K"}} {
		cl.write(f)
		if got := cl.expect("error"); got.Code != "rate_limited" {
			t.Fatalf("%v: %s, want rate_limited", f, got.raw)
		}
	}
	noWrites(t, e, before, "the other kind's keys")
}

// noWrites fails unless the store took no message insert or interrupt,
// and failed no write, since before (for what).
func noWrites(t *testing.T, e *env, before counting.Counts, what string) {
	t.Helper()
	after := e.store.Writes()
	for _, m := range []string{"InsertMessage", "InsertMessages", "InterruptMessage"} {
		if n := after.ByMethod[m] - before.ByMethod[m]; n != 0 {
			t.Errorf("%s: %d calls of %s", what, n, m)
		}
	}
	if n := after.Errors - before.Errors; n != 0 {
		t.Errorf("%s: %d failed store writes", what, n)
	}
}
