package mongo_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// TestDeleteConversationRacingInsert: a message inserted while
// DeleteConversation runs, between its delete of the messages and its
// delete of the conversation (its insert found the conversation still
// there), is deleted too: nothing of the conversation is left, and its
// reads answer not found. Before, the message stayed behind, and
// Messages and MessageByClientID of the deleted conversation returned it.
func TestDeleteConversationRacingInsert(t *testing.T) {
	t.Parallel()
	var (
		store    atomic.Pointer[mongo.Store]
		racing   atomic.Pointer[persistence.Conversation]
		inserted atomic.Pointer[persistence.Message]
		raceErr  atomic.Pointer[error]
	)
	monitor := &event.CommandMonitor{Started: func(ctx context.Context, e *event.CommandStartedEvent) {
		if e.CommandName != "delete" || e.Command.Lookup("delete").StringValue() != "conversations" {
			return
		}
		c := racing.Swap(nil)
		if c == nil {
			return
		}
		// The messages are deleted, the conversation not yet.
		m := persistence.Message{ConversationID: c.ID, OwnerID: c.OwnerID, Role: persistence.RoleUser,
			Content: "sent at that moment", Status: persistence.StatusComplete, ClientMessageID: "late"}
		err := store.Load().InsertMessage(context.WithoutCancel(ctx), &m)
		raceErr.Store(&err)
		inserted.Store(&m)
	}}
	ctx, e := newEnv(t, monitor)
	store.Store(e.store)
	u := mustUser(ctx, t, e.store, "racer@example.com")
	c := mustConversation(ctx, t, e.store, u.ID, "going")
	mustMessage(ctx, t, e.store, c, persistence.RoleUser, "before")

	racing.Store(&c)
	if err := e.store.DeleteConversation(ctx, u.ID, c.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if p := raceErr.Load(); p == nil || *p != nil {
		t.Fatalf("the racing insert did not run, or failed: %v (it found the conversation: it must succeed)", p)
	}
	if _, err := e.store.Messages(ctx, u.ID, c.ID); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("Messages of the deleted conversation: %v, want not found", err)
	}
	if m, err := e.store.MessageByClientID(ctx, u.ID, "late"); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("the racing message by client id: %+v, %v, want not found", m, err)
	}
	oid, _ := bson.ObjectIDFromHex(c.ID)
	if n, err := e.raw.Collection("messages").CountDocuments(ctx, bson.D{{Key: "conversation_id", Value: oid}}); err != nil || n != 0 {
		t.Errorf("messages of the deleted conversation left: %d, %v", n, err)
	}
}
