package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"chatd/persistence"
)

// checkKeptMarked fails unless a's conversations and messages are all
// still stored while their user is marked (their owner's reads of them
// do not look at the user).
func checkKeptMarked(t *testing.T, s persistence.Store, a account) {
	t.Helper()
	for _, c := range a.convs {
		ms, err := s.Messages(testCtx(t), a.user.ID, c.ID)
		noErr(t, "Messages of a user marked by MarkUserDeleting", err)
		sameIDs(t, "messages of a user marked by MarkUserDeleting", msgIDs(ms), msgIDs(a.msgs[c.ID]))
	}
}

// testUserMarkDeleting: MarkUserDeleting signs the user out for every
// user read and write as DeleteUser's mark does, keeps their data, and
// is left alone by FinishDeletions while it is young; a second mark, an
// unknown or malformed id are ErrNotFound. UnmarkUserDeleting puts the
// user back as they were (their password hash kept, their token version
// moved by the mark); a second one is ErrNotFound. DeleteUser of a
// marked user removes them, and a DeleteUser cut after its own mark is
// never taken back: FinishDeletions finishes it at once.
func testUserMarkDeleting(t *testing.T, s persistence.Store) {
	ctx, f := testCtx(t), finisher(t, s)
	kept := mkSmallAccount(t, s, "kept", "quokka")
	a := mkSmallAccount(t, s, "leaving", "wombat")

	noErr(t, "MarkUserDeleting", s.MarkUserDeleting(ctx, a.user.ID))
	checkSignedOut(t, s, a)
	wantErr(t, "MarkUserDeleting of a marked user", s.MarkUserDeleting(ctx, a.user.ID), persistence.ErrNotFound)
	for _, id := range append(badIDs(), persistence.NewID()) {
		wantErr(t, "MarkUserDeleting of "+id, s.MarkUserDeleting(ctx, id), persistence.ErrNotFound)
		wantErr(t, "UnmarkUserDeleting of "+id, s.UnmarkUserDeleting(ctx, id), persistence.ErrNotFound)
	}
	wantErr(t, "UnmarkUserDeleting of a user not marked", s.UnmarkUserDeleting(ctx, kept.user.ID), persistence.ErrNotFound)
	if n, err := f.FinishDeletions(ctx); err != nil || n != 0 {
		t.Fatalf("FinishDeletions beside a fresh MarkUserDeleting = %d, %v; want it left alone", n, err)
	}
	checkKeptMarked(t, s, a)

	noErr(t, "UnmarkUserDeleting", s.UnmarkUserDeleting(ctx, a.user.ID))
	wantErr(t, "a second UnmarkUserDeleting", s.UnmarkUserDeleting(ctx, a.user.ID), persistence.ErrNotFound)
	a.user.TokenVersion++ // the mark revoked the sessions, and they stay revoked
	checkAccount(t, s, a)

	noErr(t, "MarkUserDeleting again", s.MarkUserDeleting(ctx, a.user.ID))
	noErr(t, "DeleteUser of a marked user", s.DeleteUser(ctx, a.user.ID))
	checkGone(t, s, a)

	b := mkSmallAccount(t, s, "cut", "numbat")
	noErr(t, "MarkUserDeleting", s.MarkUserDeleting(ctx, b.user.ID))
	if err := deleteCutAfter(t, s, b.user.ID, persistence.DeleteStepMarked); !errors.Is(err, persistence.ErrDeleting) {
		t.Fatalf("DeleteUser of a marked user cut after its mark: %v, want ErrDeleting", err)
	}
	wantErr(t, "UnmarkUserDeleting after DeleteUser's mark", s.UnmarkUserDeleting(ctx, b.user.ID), persistence.ErrNotFound)
	if n, err := f.FinishDeletions(ctx); err != nil || n != 1 {
		t.Fatalf("FinishDeletions after DeleteUser's mark = %d, %v; want it finished", n, err)
	}
	checkGone(t, s, b)
	checkAccount(t, s, kept)
}

// CheckOldMarkFinished checks that FinishDeletions finishes a user that
// MarkUserDeleting marked once the mark is older than
// persistence.DeletionGrace (a deletion cut off by the process's end
// while it ended the user's live work), and leaves it until then. age
// moves the stored mark of a user back by d, as if it was written d
// earlier. s is a store opened with the default Options.DeletionGrace.
func CheckOldMarkFinished(t *testing.T, s persistence.Store, age func(ctx context.Context, id string, d time.Duration) error) {
	t.Helper()
	ctx, f := testCtx(t), finisher(t, s)
	kept := mkSmallAccount(t, s, "kept", "quokka")
	a := mkSmallAccount(t, s, "cut", "wombat")
	noErr(t, "MarkUserDeleting", s.MarkUserDeleting(ctx, a.user.ID))
	noErr(t, "moving the mark back", age(ctx, a.user.ID, persistence.DeletionGrace-time.Minute))
	if n, err := f.FinishDeletions(ctx); err != nil || n != 0 {
		t.Fatalf("FinishDeletions beside a mark younger than DeletionGrace = %d, %v; want it left alone", n, err)
	}
	checkKeptMarked(t, s, a)
	noErr(t, "moving the mark back", age(ctx, a.user.ID, 2*time.Minute))
	if n, err := f.FinishDeletions(ctx); err != nil || n != 1 {
		t.Fatalf("FinishDeletions beside a mark older than DeletionGrace = %d, %v; want it finished", n, err)
	}
	checkGone(t, s, a)
	checkLateUnmark(t, s, age)
	checkAccount(t, s, kept)
}

// checkLateUnmark checks that a MarkUserDeleting mark taken back late
// (UnmarkUserDeleting landing while FinishDeletions finishes the old
// mark, after any of its steps) either finds the account whole (the
// taking back came first, nothing deleted) or is ErrNotFound, the
// deletion then finished (by the next FinishDeletions when the cut
// sweep had not): never a live user
// with part of their data gone. The sweep is cut off right after the
// taking back, as a process's end would. At least one taking back comes
// once the data began to go (ErrNotFound).
func checkLateUnmark(t *testing.T, s persistence.Store, age func(ctx context.Context, id string, d time.Duration) error) {
	t.Helper()
	f, tooLate := finisher(t, s), 0
	for k := 0; ; k++ {
		if k > 20 {
			t.Fatal("FinishDeletions reported more than 20 steps for one small account")
		}
		a := mkSmallAccount(t, s, "late", "wombat")
		noErr(t, "MarkUserDeleting", s.MarkUserDeleting(testCtx(t), a.user.ID))
		noErr(t, "moving the mark back", age(testCtx(t), a.user.ID, persistence.DeletionGrace+time.Minute))
		ctx, cancel := context.WithCancel(testCtx(t))
		steps, unmark := 0, errors.New("never taken back")
		ctx = persistence.WithDeleteHook(ctx, func(step string) {
			if steps++; steps == k+1 {
				unmark = s.UnmarkUserDeleting(testCtx(t), a.user.ID)
				cancel()
			}
		})
		_, _ = f.FinishDeletions(ctx) // cut off: its error is the cut's
		cancel()
		switch {
		case steps <= k: // the whole sweep ran: every step was tried
			checkGone(t, s, a)
			if tooLate == 0 {
				t.Fatal("no UnmarkUserDeleting came after the data began to go; want ErrNotFound there")
			}
			return
		case unmark == nil:
			a.user.TokenVersion++ // the mark revoked the sessions
			checkAccount(t, s, a)
			noErr(t, "DeleteUser of the account taken back", s.DeleteUser(testCtx(t), a.user.ID))
		default:
			wantErr(t, fmt.Sprintf("UnmarkUserDeleting after step %d of FinishDeletions", k+1), unmark, persistence.ErrNotFound)
			tooLate++
			checkSignedOut(t, s, a)
			if _, err := f.FinishDeletions(testCtx(t)); err != nil {
				t.Fatalf("FinishDeletions after a sweep cut off: %v", err)
			}
		}
		checkGone(t, s, a)
	}
}
