package storetest

import (
	"errors"
	"sync"
	"testing"

	"chatd/persistence"
)

// testConvClientIDGenerated checks that a conversation created without a
// ClientID gets one of its own, by which it is found.
func testConvClientIDGenerated(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "keyless")
	a, b := mkConv(t, s, u.ID, "first"), mkConv(t, s, u.ID, "second")
	if a.ClientID == "" || a.ClientID == b.ClientID {
		t.Fatalf("generated client ids %q and %q, want two different ones", a.ClientID, b.ClientID)
	}
	got, err := s.ConversationByClientID(ctx, u.ID, a.ClientID)
	noErr(t, "ConversationByClientID", err)
	sameConv(t, got, a)
	sameConv(t, getConv(t, s, u.ID, b.ID), b)
}

// testConvClientIDRepeated checks the idempotency key: the same owner's
// repeat stores nothing and finds the first conversation; another owner's
// same key is independent; a deleted conversation frees its key.
func testConvClientIDRepeated(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	alice, bob := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	first := persistence.Conversation{OwnerID: alice.ID, Title: "first", Model: "m", ClientID: "tab-1/new-chat"}
	noErr(t, "CreateConversation", s.CreateConversation(ctx, &first))
	if first.ClientID != "tab-1/new-chat" {
		t.Fatalf("CreateConversation replaced the given client id with %q", first.ClientID)
	}
	again := persistence.Conversation{OwnerID: alice.ID, Title: "retry", Model: "m", ClientID: "tab-1/new-chat"}
	wantErr(t, "CreateConversation with a used client id", s.CreateConversation(ctx, &again), persistence.ErrDuplicate)
	if again.ID != "" {
		t.Fatalf("a refused CreateConversation filled ID %q", again.ID)
	}
	got, err := s.ConversationByClientID(ctx, alice.ID, "tab-1/new-chat")
	noErr(t, "ConversationByClientID", err)
	sameConv(t, got, first)
	sameIDs(t, "alice's list after the repeat", convIDs(listAll(t, s, alice.ID, "", 10)), []string{first.ID})

	// Bob's identical key is his own, and alice's is not his.
	theirs := persistence.Conversation{OwnerID: bob.ID, Title: "bob's", ClientID: "tab-1/new-chat"}
	noErr(t, "CreateConversation with another owner's key", s.CreateConversation(ctx, &theirs))
	got, err = s.ConversationByClientID(ctx, bob.ID, "tab-1/new-chat")
	noErr(t, "ConversationByClientID(bob)", err)
	sameConv(t, got, theirs)
	for _, owner := range badIDs() {
		_, err = s.ConversationByClientID(ctx, owner, "tab-1/new-chat")
		wantErr(t, "ConversationByClientID of owner "+owner, err, persistence.ErrNotFound)
	}
	_, err = s.ConversationByClientID(ctx, alice.ID, "never-used")
	wantErr(t, "ConversationByClientID(unknown key)", err, persistence.ErrNotFound)

	noErr(t, "DeleteConversation", s.DeleteConversation(ctx, alice.ID, first.ID))
	_, err = s.ConversationByClientID(ctx, alice.ID, "tab-1/new-chat")
	wantErr(t, "ConversationByClientID after delete", err, persistence.ErrNotFound)
	reuse := persistence.Conversation{OwnerID: alice.ID, Title: "anew", ClientID: "tab-1/new-chat"}
	noErr(t, "CreateConversation reusing a deleted conversation's key", s.CreateConversation(ctx, &reuse))
}

// testConcSameConversationClientID creates conversations with one key from
// several goroutines at once: exactly one is stored, every other creation
// is ErrDuplicate and finds it.
func testConcSameConversationClientID(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "impatient")
	const n = 8
	var wg sync.WaitGroup
	created := make([]persistence.Conversation, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			created[i] = persistence.Conversation{OwnerID: u.ID, Title: "attempt", ClientID: "same"}
			errs[i] = s.CreateConversation(ctx, &created[i])
		}()
	}
	wg.Wait()
	var winner persistence.Conversation
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
			winner = created[i]
		case !errors.Is(err, persistence.ErrDuplicate):
			t.Fatalf("concurrent CreateConversation: unexpected error %v", err)
		}
	}
	list := listAll(t, s, u.ID, "", 100)
	if ok != 1 || len(list) != 1 {
		t.Fatalf("%d creations succeeded and %d conversations stored, want 1 and 1", ok, len(list))
	}
	got, err := s.ConversationByClientID(ctx, u.ID, "same")
	noErr(t, "ConversationByClientID", err)
	sameConv(t, got, winner)
}
