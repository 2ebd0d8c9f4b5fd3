package mongo_test

import (
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
)

// TestClientKeyBesideOlderConversations: conversations written without a
// client_key (before this release, or by an older instance during a
// rolling upgrade), two of one owner, stay readable and listable beside
// new ones, which are idempotent by key. (FerretDB leaves documents without
// the field out of a unique index anyway; on MongoDB the index's sparse
// option does, which TestClientKeyIndexSparse checks.)
func TestClientKeyBesideOlderConversations(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	u := mustUser(ctx, t, e.store, "old@x")
	owner, _ := bson.ObjectIDFromHex(u.ID)
	for range 2 {
		old := bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "owner_id", Value: owner}, {Key: "title", Value: "old"},
			{Key: "model", Value: "m"}, {Key: "system_prompt", Value: ""}, {Key: "created_at", Value: time.Now()},
			{Key: "updated_at", Value: time.Now()}}
		if _, err := e.raw.Collection("conversations").InsertOne(ctx, old); err != nil {
			t.Fatalf("insert an older conversation: %v", err)
		}
	}
	c := persistence.Conversation{OwnerID: u.ID, ClientID: "k"}
	if err := e.store.CreateConversation(ctx, &c); err != nil {
		t.Fatal(err)
	}
	again := persistence.Conversation{OwnerID: u.ID, ClientID: "k"}
	if err := e.store.CreateConversation(ctx, &again); !errors.Is(err, persistence.ErrDuplicate) {
		t.Fatalf("repeat: %v, want ErrDuplicate", err)
	}
	if _, err := e.store.ConversationByClientID(ctx, u.ID, ""); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("ConversationByClientID(\"\"): %v, want ErrNotFound (older conversations have no key)", err)
	}
	page, err := e.store.ListConversations(ctx, u.ID, persistence.ListQuery{})
	if err != nil || len(page.Conversations) != 3 {
		t.Fatalf("list: %d conversations, %v, want 3", len(page.Conversations), err)
	}
	for _, got := range page.Conversations {
		if got.ID != c.ID && got.ClientID != "" {
			t.Errorf("an older conversation reads client id %q, want none", got.ClientID)
		}
	}

}
