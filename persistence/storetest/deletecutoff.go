package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"chatd/persistence"
)

// mkSmallAccount creates an account named name whose messages hold word:
// a chat with a question and an answer still streaming, with appended
// text; the question holds sharedWord too. Smaller than mkAccount, for the tests that make many.
func mkSmallAccount(t *testing.T, s persistence.Store, name, word string) account {
	t.Helper()
	u := mkUser(t, s, name)
	chat := mkConv(t, s, u.ID, name+" chat")
	q := mkMsg(t, s, chat, "", persistence.RoleUser, "tell me of the "+word+" and the "+sharedWord)
	a := mkStreaming(t, s, chat, q.ID, "")
	apply(t, s, persistence.MessageUpdate{ID: a.ID, Append: "The " + word + " digs"})
	return readAccount(t, s, u, word, chat.ID)
}

// finisher returns s as a persistence.DeletionFinisher, which every store
// must be.
func finisher(t *testing.T, s persistence.Store) persistence.DeletionFinisher {
	t.Helper()
	f, ok := s.(persistence.DeletionFinisher)
	if !ok {
		t.Fatalf("%T does not finish cut-off account deletions (persistence.DeletionFinisher)", s)
	}
	return f
}

// deleteSteps returns the steps the store reports for one whole DeleteUser
// (of an account made for it), DeleteStepMarked first.
func deleteSteps(t *testing.T, s persistence.Store) []string {
	t.Helper()
	a := mkSmallAccount(t, s, "steps", "aardvark")
	var steps []string
	ctx := persistence.WithDeleteHook(testCtx(t), func(step string) { steps = append(steps, step) })
	noErr(t, "DeleteUser", s.DeleteUser(ctx, a.user.ID))
	checkGone(t, s, a)
	if len(steps) == 0 || steps[0] != persistence.DeleteStepMarked {
		t.Fatalf("DeleteUser reported the steps %q, want %q first", steps, persistence.DeleteStepMarked)
	}
	return steps
}

// deleteCutAfter runs DeleteUser of id with its context cancelled once
// step is done, and returns its error.
func deleteCutAfter(t *testing.T, s persistence.Store, id, step string) error {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	ctx = persistence.WithDeleteHook(ctx, func(done string) {
		if done == step {
			cancel()
		}
	})
	return s.DeleteUser(ctx, id)
}

// checkSignedOut fails unless the user of a, whose deletion was cut off,
// is gone for every user read and write: no sign-in by email, no token
// check, no revocation or password change.
func checkSignedOut(t *testing.T, s persistence.Store, a account) {
	t.Helper()
	ctx, id := testCtx(t), a.user.ID
	_, err := s.UserByID(ctx, id)
	wantErr(t, "UserByID of a user being deleted", err, persistence.ErrNotFound)
	_, err = s.UserByEmail(ctx, a.user.Email)
	wantErr(t, "UserByEmail of a user being deleted", err, persistence.ErrNotFound)
	_, err = tokenVersion(ctx, t, s, id)
	wantErr(t, "UserTokenVersion of a user being deleted", err, persistence.ErrNotFound)
	_, err = s.BumpTokenVersion(ctx, id)
	wantErr(t, "BumpTokenVersion of a user being deleted", err, persistence.ErrNotFound)
	_, err = s.ChangePassword(ctx, id, "new-hash", a.user.TokenVersion)
	wantErr(t, "ChangePassword of a user being deleted", err, persistence.ErrNotFound)
	// A request past its session check before the mark: refused as for
	// a user no longer there, nothing stored.
	c := persistence.Conversation{OwnerID: id, Title: "after the mark", Model: "m"}
	wantErr(t, "CreateConversation of a user being deleted", s.CreateConversation(ctx, &c), persistence.ErrUnknownOwner)
	// A send or regenerate storing its answer after the mark, in a
	// conversation not yet deleted: refused as for a conversation being
	// deleted, nothing stored (the callers compare the messages), so the
	// deletion's snapshot of running answers, read after the mark, misses
	// none.
	for _, conv := range a.convs {
		m := persistence.Message{ConversationID: conv.ID, OwnerID: id, Role: persistence.RoleAssistant,
			Model: "m", Status: persistence.StatusStreaming}
		wantErr(t, "InsertMessage for a user being deleted", s.InsertMessage(ctx, &m), persistence.ErrNotFound)
	}
}

// testUserDeleteCutOff: a DeleteUser cut off after any of its steps
// (its context cancelled there: a time limit, a shutdown, a failover)
// fails with ErrDeleting and leaves a user no read finds and who cannot
// sign in, change their password or be revoked, never a live account
// with part of its data gone; FinishDeletions then finishes it (everything gone, the email free
// again, the other user untouched), and a second FinishDeletions finds
// nothing left.
func testUserDeleteCutOff(t *testing.T, s persistence.Store) {
	ctx, f := testCtx(t), finisher(t, s)
	kept := mkSmallAccount(t, s, "kept", "quokka")
	for _, step := range deleteSteps(t, s) {
		doomed := mkSmallAccount(t, s, "doomed", "wombat")
		err := deleteCutAfter(t, s, doomed.user.ID, step)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, persistence.ErrDeleting) {
			t.Fatalf("DeleteUser cut after %q: got error %v, want context.Canceled and ErrDeleting", step, err)
		}
		checkSignedOut(t, s, doomed)
		checkAccount(t, s, kept)

		n, err := f.FinishDeletions(ctx)
		noErr(t, "FinishDeletions after a cut after "+step, err)
		if n != 1 {
			t.Fatalf("FinishDeletions after a cut after %q finished %d deletions, want 1", step, n)
		}
		checkGone(t, s, doomed)
		checkAccount(t, s, kept)
		again := persistence.User{Email: doomed.user.Email, Name: "again", PasswordHash: "h"}
		noErr(t, "CreateUser with the email of a user whose deletion was finished", s.CreateUser(ctx, &again))
		checkNothingListed(t, s, again.ID, doomed.word)
		if n, err := f.FinishDeletions(ctx); err != nil || n != 0 {
			t.Fatalf("second FinishDeletions = %d, %v; want nothing left to finish", n, err)
		}
		got, err := s.UserByID(ctx, again.ID)
		noErr(t, "UserByID of the new user", err)
		sameUser(t, got, again)
	}
}

// testUserDeleteFinishTwice: two FinishDeletions at once over the same
// cut-off deletions, and one beside a DeleteUser of the same user, finish
// them without an error, as two servers sharing a database would.
func testUserDeleteFinishTwice(t *testing.T, s persistence.Store) {
	ctx, f := testCtx(t), finisher(t, s)
	kept := mkSmallAccount(t, s, "kept", "quokka")
	var doomed []account
	for range 3 {
		a := mkSmallAccount(t, s, "doomed", "wombat")
		if err := deleteCutAfter(t, s, a.user.ID, persistence.DeleteStepMarked); !errors.Is(err, context.Canceled) {
			t.Fatalf("DeleteUser cut after the mark: got error %v, want context.Canceled", err)
		}
		doomed = append(doomed, a)
	}
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { _, errs[i] = f.FinishDeletions(ctx) })
	}
	wg.Go(func() {
		if err := s.DeleteUser(ctx, doomed[0].user.ID); !errors.Is(err, persistence.ErrNotFound) {
			errs[2] = err // nil: this one finished it; ErrNotFound: another did first
		}
	})
	wg.Wait()
	noErr(t, "FinishDeletions or DeleteUser at once", errors.Join(errs...))
	for _, a := range doomed {
		checkGone(t, s, a)
	}
	checkAccount(t, s, kept)
	if n, err := f.FinishDeletions(ctx); err != nil || n != 0 {
		t.Fatalf("FinishDeletions afterwards = %d, %v; want nothing left to finish", n, err)
	}
}
