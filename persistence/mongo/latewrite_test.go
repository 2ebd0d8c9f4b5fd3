package mongo_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// TestApplyMessageUpdatesLateWrite has the server apply a checkpoint after
// its store gave it up: a proxy holds the update command back and closes
// the store's connection, so the store reads back that nothing applied
// and reports the update failed; the test then delivers the held command
// to the server itself, before or after the retry the batching writer
// sends (the failed text followed by text produced meanwhile). Each
// answer must hold every text exactly once, in order: the late statement
// and its retry must not both append. On FerretDB, whose statements are
// filtered by _id alone, only a late statement that lands before the
// retry is caught (see ApplyMessageUpdates).
func TestApplyMessageUpdatesLateWrite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		ferretDB  bool
		lateFirst bool // the held statement applies before the retry, else after it
	}{
		{"MongoDB path, late statement before the retry", false, true},
		{"MongoDB path, late statement after the retry", false, false},
		{"FerretDB, late statement before the retry", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var proxy *replyDropper
			ctx, e := newEnvVia(t, nil, viaReplyDropper(t, &proxy))
			s := e.store
			mongo.SetFerretDB(s, tt.ferretDB)
			mongo.WaitCleanUp(s)
			u := mustUser(ctx, t, s, "a@x")
			c := mustConversation(ctx, t, s, u.ID, "chat")
			m := mustMessage(ctx, t, s, c, persistence.RoleAssistant, "start ")
			first := persistence.MessageUpdate{ID: m.ID, Append: "more ", AppendReasoning: "why ", At: time.Now()}

			held := proxy.holdRequest("update", false)
			if _, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{first}); err == nil {
				t.Fatal("the update whose command was held back succeeded")
			}
			var late []byte
			select {
			case late = <-held:
			default:
				t.Fatal("the proxy held no update")
			}
			deliver := func() {
				reply, err := proxy.replay(late)
				if err != nil {
					t.Fatalf("deliver the held update: %v", err)
				}
				t.Logf("the held update's reply: %v", replyBody(reply))
			}
			if tt.lateFirst {
				deliver()
			}
			retry := first
			retry.Append += "next "
			if skipped, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{retry}); err != nil || skipped != nil {
				t.Fatalf("retry: skipped %v, err %v", skipped, err)
			}
			if !tt.lateFirst {
				deliver()
			}
			// The store still knows where the message stands: later
			// checkpoints (reasoning alone, then text alone) apply once.
			for _, next := range []persistence.MessageUpdate{
				{ID: m.ID, AppendReasoning: "because ", At: time.Now()},
				{ID: m.ID, Append: "end ", At: time.Now()},
			} {
				if skipped, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{next}); err != nil || skipped != nil {
					t.Fatalf("next checkpoint: skipped %v, err %v", skipped, err)
				}
			}
			got, err := s.Message(ctx, u.ID, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if want, wantR := "start more next end ", "why because "; got.Content != want || got.Reasoning != wantR {
				t.Errorf("content %q, reasoning %q; want %q, %q", got.Content, got.Reasoning, want, wantR)
			}
		})
	}
}

// replyBody is the body of an OP_MSG reply, for the log.
func replyBody(msg []byte) bson.Raw {
	const header = 16 + 4 + 1 // the header, flagBits and section kind 0
	if len(msg) <= header {
		return nil
	}
	return bson.Raw(msg[header:])
}

// TestApplyMessageUpdatesUnknownOutcome loses a checkpoint's write and
// the read back of which statements applied: a proxy holds the update
// command back and cuts the store off from the server, so the store
// returns an error that leaves it unknown whether the update applied
// (not a *persistence.PartialUpdateError), and the batching writer
// retries it whole. The held command is delivered before the retry: the
// update applied after all, and the retry, which repeats its text, must
// not append it again.
func TestApplyMessageUpdatesUnknownOutcome(t *testing.T) {
	t.Parallel()
	for _, ferretDB := range []bool{false, true} {
		t.Run(fmt.Sprintf("ferretDB=%v", ferretDB), func(t *testing.T) {
			t.Parallel()
			var proxy *replyDropper
			ctx, e := newEnvWith(t, mongo.Options{ReadBackTimeout: 300 * time.Millisecond}, viaReplyDropper(t, &proxy))
			s := e.store
			mongo.SetFerretDB(s, ferretDB)
			mongo.WaitCleanUp(s)
			u := mustUser(ctx, t, s, "a@x")
			c := mustConversation(ctx, t, s, u.ID, "chat")
			m := mustMessage(ctx, t, s, c, persistence.RoleAssistant, "start ")
			first := persistence.MessageUpdate{ID: m.ID, Append: "more ", AppendReasoning: "why ", At: time.Now()}

			held := proxy.holdRequest("update", true)
			_, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{first})
			var partial *persistence.PartialUpdateError
			if err == nil || errors.As(err, &partial) {
				t.Fatalf("update cut off with its read back: err %v, want an error that leaves the outcome unknown", err)
			}
			proxy.unblock()
			select {
			case late := <-held:
				if _, err := proxy.replay(late); err != nil {
					t.Fatalf("deliver the held update: %v", err)
				}
			default:
				t.Fatal("the proxy held no update")
			}
			retry := first
			retry.Append += "next "
			if skipped, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{retry}); err != nil || skipped != nil {
				t.Fatalf("retry: skipped %v, err %v", skipped, err)
			}
			got, err := s.Message(ctx, u.ID, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Content != "start more next " || got.Reasoning != "why " {
				t.Errorf("content %q, reasoning %q; want %q, %q", got.Content, got.Reasoning, "start more next ", "why ")
			}
		})
	}
}
