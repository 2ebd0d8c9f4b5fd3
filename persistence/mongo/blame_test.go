package mongo_test

import (
	"errors"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// TestRejectedBlamesOnlyItsStatement writes, on the MongoDB path, a batch
// where one statement matches nothing (another writer appended to its
// message, so the chunk count it is conditioned on no longer holds) and
// another is rejected by the server (its message's reasoning is a string).
// Only the rejected one may be reported refused: the batching writer gives
// up on a message refused MaxRefusals times in a row and drops its text,
// and the one that merely matched nothing must not count.
func TestRejectedBlamesOnlyItsStatement(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	s := e.store
	mongo.SetFerretDB(s, false)
	u := mustUser(ctx, t, s, "a@x")
	c := mustConversation(ctx, t, s, u.ID, "chat")
	other := mustMessage(ctx, t, s, c, persistence.RoleAssistant, "start ")
	bad := mustMessage(ctx, t, s, c, persistence.RoleAssistant, "start ")
	oid, err := bson.ObjectIDFromHex(other.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.raw.Collection("messages").UpdateByID(ctx, oid,
		bson.D{{Key: "$push", Value: bson.D{{Key: "content", Value: "elsewhere "}}}}); err != nil {
		t.Fatal(err)
	}
	setReasoning(ctx, t, e, bad.ID, "not an array")

	skipped, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{
		{ID: other.ID, Append: "more "},
		{ID: bad.ID, Append: "more ", AppendReasoning: "why "},
	})
	var partial *persistence.PartialUpdateError
	if !errors.As(err, &partial) {
		t.Fatalf("err %v; want a *PartialUpdateError", err)
	}
	if !slices.Equal(partial.Refused, []string{bad.ID}) {
		t.Errorf("refused %v, want [%s] alone (%s only matched nothing)", partial.Refused, bad.ID, other.ID)
	}
	if !slices.Equal(partial.IDs, []string{bad.ID}) || !slices.Equal(skipped, []string{other.ID}) {
		t.Errorf("failed %v, skipped %v; want failed [%s], skipped [%s] (text it did not append)", partial.IDs, skipped, bad.ID, other.ID)
	}
}
