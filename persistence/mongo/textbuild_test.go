package mongo_test

import (
	"context"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/event"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// TestTextIndexBuiltInTheBackground: Open builds the text index itself
// only where that is quick (an empty messages collection, or FerretDB,
// which refuses it at once); on MongoDB with messages stored (an upgrade
// from the release whose index had no owner_id) it leaves the build to
// the background, which must not hold up a start bounded by
// CHATD_DB_CONNECT_TIMEOUT, and searches go without the index until it is
// built. FerretDB has no text indexes, so the build itself fails here:
// whether MongoDB then uses it is not checked on a real mongod.
func TestTextIndexBuiltInTheBackground(t *testing.T) {
	t.Parallel()
	var creates atomic.Int32 // createIndexes commands naming the text index
	monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName != "createIndexes" {
			return
		}
		indexes, err := e.Command.LookupErr("indexes")
		if err != nil {
			return
		}
		vals, _ := indexes.Array().Values()
		for _, v := range vals {
			if name, ok := v.Document().Lookup("name").StringValueOK(); ok && name == "owner_content_text" {
				creates.Add(1)
			}
		}
	}}
	ctx, e := newEnv(t, monitor)
	if mongo.TextIndexUsed(e.store) {
		t.Fatal("searches use a text index on FerretDB, which has none")
	}
	mongo.SetFerretDB(e.store, false) // from here on the store takes the server for MongoDB
	var user persistence.User

	steps := []struct {
		name   string
		before func()
		later  bool  // left to the background build
		sent   int32 // createIndexes of the text index sent by the decision
	}{
		{name: "no message stored: built at once", sent: 1},
		{name: "messages stored: left to the background", later: true, sent: 0, before: func() {
			user = mustUser(ctx, t, e.store, "text@example.com")
			c := mustConversation(ctx, t, e.store, user.ID, "c")
			mustMessage(ctx, t, e.store, c, persistence.RoleUser, "the quokka is here")
		}},
	}
	for _, s := range steps { // in order: the second step stores the first message
		if s.before != nil {
			s.before()
		}
		creates.Store(0)
		if later := mongo.TextIndexNow(ctx, e.store); later != s.later {
			t.Fatalf("%s: left to the background %v, want %v", s.name, later, s.later)
		}
		if n := creates.Load(); n != s.sent {
			t.Fatalf("%s: %d createIndexes of the text index at Open, want %d", s.name, n, s.sent)
		}
	}
	creates.Store(0)
	mongo.BuildTextIndex(ctx, e.store)
	if n := creates.Load(); n != 1 {
		t.Fatalf("the background build sent %d createIndexes of the text index, want 1", n)
	}
	if mongo.TextIndexUsed(e.store) {
		t.Error("searches use the text index FerretDB refused")
	}
	page, err := e.store.ListConversations(ctx, user.ID, persistence.ListQuery{Search: "the quokka is"})
	if err != nil {
		t.Fatalf("search without the index: %v", err)
	}
	if got := titles(page.Conversations); got != "[c]" {
		t.Errorf("search without the index: got %s, want [c]", got)
	}
}
