package mongo_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// TestDeleteConversationInSteps: DeleteConversation marks the
// conversation in one update (deleting_at set, client_key gone), then
// deletes its messages deleteStep at a time (5 messages, step 2: 3
// steps), its document last. A message sent into it at any step after
// the mark is refused (ErrNotFound) and taken back, while a send into
// another conversation is stored; in the end nothing of it is left. Before,
// the messages went in one DeleteMany with no mark: a send between the
// deletes was accepted, and deleted by the last sweep without a word.
func TestDeleteConversationInSteps(t *testing.T) {
	t.Parallel()
	ctx, e := newEnvWith(t, mongo.WithDeleteStep(mongo.Options{}, 2), func(uri string) string { return uri })
	u := mustUser(ctx, t, e.store, "stepper@example.com")
	kept := mustConversation(ctx, t, e.store, u.ID, "kept")
	doomed := mustConversation(ctx, t, e.store, u.ID, "doomed")
	for range 4 {
		mustMessage(ctx, t, e.store, doomed, persistence.RoleUser, "question")
	}
	a := persistence.Message{ConversationID: doomed.ID, OwnerID: u.ID, Role: persistence.RoleAssistant,
		Content: "answer so far", Status: persistence.StatusStreaming}
	if err := e.store.InsertMessage(ctx, &a); err != nil {
		t.Fatal(err)
	}
	oid, _ := bson.ObjectIDFromHex(doomed.ID)
	convs, msgs := e.raw.Collection("conversations"), e.raw.Collection("messages")

	var steps []string
	var keptIDs []string
	hook := func(step string) {
		steps = append(steps, step)
		if step == persistence.DeleteStepConversationMarked {
			var d bson.M
			if err := convs.FindOne(ctx, bson.D{{Key: "_id", Value: oid}}).Decode(&d); err != nil {
				t.Fatalf("the marked conversation: %v", err)
			}
			if _, ok := d["deleting_at"]; !ok {
				t.Errorf("the marked conversation has no deleting_at: %v", d)
			}
			if k, ok := d["client_key"]; ok {
				t.Errorf("the marked conversation still has its client key %v", k)
			}
		}
		late := persistence.Message{ConversationID: doomed.ID, OwnerID: u.ID, Role: persistence.RoleUser,
			Content: "sent at " + step, Status: persistence.StatusComplete}
		if err := e.store.InsertMessage(ctx, &late); !errors.Is(err, persistence.ErrNotFound) {
			t.Errorf("a send into the conversation after %q: %v, want not found", step, err)
		}
		other := mustMessage(ctx, t, e.store, kept, persistence.RoleUser, "sent beside "+step)
		keptIDs = append(keptIDs, other.ID)
	}
	if err := e.store.DeleteConversation(persistence.WithDeleteHook(ctx, hook), u.ID, doomed.ID); err != nil {
		t.Fatalf("DeleteConversation: %v", err)
	}
	step := "a step of a conversation's messages deleted"
	if want := []string{persistence.DeleteStepConversationMarked, step, step, step}; !slices.Equal(steps, want) {
		t.Errorf("steps %q, want %q", steps, want)
	}
	if n, err := msgs.CountDocuments(ctx, bson.D{{Key: "conversation_id", Value: oid}}); err != nil || n != 0 {
		t.Errorf("messages of the deleted conversation left: %d, %v", n, err)
	}
	if n, err := convs.CountDocuments(ctx, bson.D{{Key: "_id", Value: oid}}); err != nil || n != 0 {
		t.Errorf("the deleted conversation left: %d, %v", n, err)
	}
	ms, err := e.store.Messages(ctx, u.ID, kept.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.ID)
	}
	if !slices.Equal(got, keptIDs) {
		t.Errorf("messages of the kept conversation %q, want %q", got, keptIDs)
	}
}

// TestCutConversationDeletionFinishedAtOpen: a DeleteConversation cut
// off after its mark (and after a step) returns nil and leaves the marked
// document with the rest of its messages; the next Open finishes it in
// the background. Before, nothing marked was left, and nothing finished a
// deletion cut part-way.
func TestCutConversationDeletionFinishedAtOpen(t *testing.T) {
	t.Parallel()
	ctx, e := newEnvWith(t, mongo.WithDeleteStep(mongo.Options{DeletionSweep: -1}, 2), func(uri string) string { return uri })
	u := mustUser(ctx, t, e.store, "cut@example.com")
	c := mustConversation(ctx, t, e.store, u.ID, "cut")
	for range 5 {
		mustMessage(ctx, t, e.store, c, persistence.RoleUser, "question")
	}
	cut, cancel := context.WithCancel(ctx)
	defer cancel()
	cut = persistence.WithDeleteHook(cut, func(step string) {
		if step != persistence.DeleteStepConversationMarked {
			cancel()
		}
	})
	if err := e.store.DeleteConversation(cut, u.ID, c.ID); err != nil {
		t.Fatalf("DeleteConversation cut after a step: %v, want nil", err)
	}
	oid, _ := bson.ObjectIDFromHex(c.ID)
	convs, msgs := e.raw.Collection("conversations"), e.raw.Collection("messages")
	if n, err := msgs.CountDocuments(ctx, bson.D{{Key: "conversation_id", Value: oid}}); err != nil || n != 3 {
		t.Fatalf("messages left by the cut: %d, %v; want 3", n, err)
	}
	if _, err := e.store.Conversation(ctx, u.ID, c.ID); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("Conversation of one being deleted: %v, want not found", err)
	}

	s2, err := mongo.Open(ctx, mongo.Options{URI: e.uri, Logger: testLogger(t), DeletionSweep: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Close(context.Background()) })
	mongo.WaitCleanUp(s2)
	if n, err := msgs.CountDocuments(ctx, bson.D{{Key: "conversation_id", Value: oid}}); err != nil || n != 0 {
		t.Errorf("messages left after Open: %d, %v", n, err)
	}
	if n, err := convs.CountDocuments(ctx, bson.D{{Key: "_id", Value: oid}}); err != nil || n != 0 {
		t.Errorf("the conversation left after Open: %d, %v", n, err)
	}
}
