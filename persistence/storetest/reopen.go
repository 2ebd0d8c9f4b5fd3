package storetest

import (
	"errors"
	"testing"
	"time"

	"chatd/persistence"
)

// RunReopen checks that data survives closing the store and opening the same
// database again, the way a server restart does (including crash recovery
// with InterruptStreaming and cursors handed out before the restart).
//
// open returns a fresh, empty store and a reopen function that opens the
// same underlying database again. The suite closes the first store before it
// calls reopen, and closes the reopened store at the end; open should
// register any other cleanup itself.
func RunReopen(t *testing.T, open func(t *testing.T) (persistence.Store, func(t *testing.T) persistence.Store)) {
	t.Helper()
	t.Run("Reopen", func(t *testing.T) {
		t.Parallel()
		first, reopen := open(t)
		f := writeReopenFixture(t, first)
		closeStore(t, first)

		s := reopen(t)
		t.Cleanup(func() { closeStore(t, s) })
		f.check(t, s)
	})
	t.Run("ReopenNormalizesEmails", func(t *testing.T) {
		t.Parallel()
		first, reopen := open(t)
		ctx := testCtx(t)
		// As older releases stored them: lower case, not case-folded
		// (the final sigma ς kept), and lower case before NFKC (a
		// fullwidth digit kept).
		plant := func(email string) persistence.User {
			u := persistence.User{Email: email, Name: "N", PasswordHash: "hash-of-" + email}
			noErr(t, "CreateUser", first.CreateUser(ctx, &u))
			return u
		}
		alone := plant("νικος@example.gr")
		taken := plant("ελενης@example.gr") // its σ spelling registered after it
		holder := plant("ελενησ@example.gr")
		older := plant("ας1@example.gr") // two older forms of one normal form
		younger := plant("ας\uff11@example.gr")
		plain := plant("ada@example.com")
		upgrade, ok := first.(EmailUpgrade)
		if !ok {
			closeStore(t, first)
			t.Skip("the store cannot be taken back to before its rewrite of emails (EmailUpgrade)")
		}
		upgrade.UndoEmailRewrite(t)
		closeStore(t, first)
		s := reopen(t) // the first start of the release that rewrites
		rewritten := func(s persistence.Store) bool { u, ok := s.(EmailUpgrade); return ok && u.EmailsRewritten() }
		if !rewritten(s) {
			t.Error("the first open after the upgrade did not rewrite the emails")
		}
		closeStore(t, s)
		s = reopen(t) // a second start does nothing, not even a scan
		t.Cleanup(func() { closeStore(t, s) })
		if rewritten(s) {
			t.Error("a second open ran the rewrite of emails again")
		}
		for _, c := range []struct {
			email string
			want  persistence.User
		}{
			{"νικοσ@example.gr", alone},
			{"ελενης@example.gr", taken},
			{"ελενησ@example.gr", holder},
			{"ασ1@example.gr", older},
			{"ας\uff11@example.gr", younger},
			{"ada@example.com", plain},
		} {
			got, err := s.UserByEmail(ctx, c.email)
			noErr(t, "UserByEmail "+c.email, err)
			if got.ID != c.want.ID || got.Email != c.email {
				t.Errorf("UserByEmail(%q) = %s %q, want %s (stored as %q before)", c.email, got.ID, got.Email, c.want.ID, c.want.Email)
			}
		}
		for _, gone := range []string{"νικος@example.gr", "ας1@example.gr"} {
			if _, err := s.UserByEmail(ctx, gone); !errors.Is(err, persistence.ErrNotFound) {
				t.Errorf("UserByEmail(%q) after its account was rewritten: %v, want ErrNotFound", gone, err)
			}
		}
		// The normal form is now taken: no second account in it.
		dup := persistence.User{Email: "νικοσ@example.gr", Name: "M", PasswordHash: "h"}
		if err := s.CreateUser(ctx, &dup); !errors.Is(err, persistence.ErrDuplicate) {
			t.Errorf("CreateUser in the normal form of a rewritten email: %v, want ErrDuplicate", err)
		}
	})
}

// EmailUpgrade is what a store given to RunReopen implements (a test
// wrapper, with access to its internals) for ReopenNormalizesEmails: the
// one-time rewrite of stored emails in their normal form runs at the
// first open after an upgrade, and never again.
type EmailUpgrade interface {
	// UndoEmailRewrite takes the store's database back to before its
	// one-time rewrite of emails was recorded, as an older release left it.
	UndoEmailRewrite(t *testing.T)
	// EmailsRewritten says whether the store's Open ran that rewrite.
	EmailsRewritten() bool
}

// reopenFixture is what was written before the restart.
type reopenFixture struct {
	user      persistence.User
	convs     []persistence.Conversation // newest first, as listed
	messages  []persistence.Message      // of convs[0], oldest first
	streaming persistence.Message        // left streaming by the "crash"
	cursor    string                     // after the first page of one
}

func writeReopenFixture(t *testing.T, s persistence.Store) reopenFixture {
	t.Helper()
	ctx := testCtx(t)
	u := mkUser(t, s, "durable")
	_, err := s.BumpTokenVersion(ctx, u.ID)
	noErr(t, "BumpTokenVersion", err)
	_, err = s.ChangePassword(ctx, u.ID, "hash-after-change", 1)
	noErr(t, "ChangePassword", err)
	u, err = s.UserByID(ctx, u.ID)
	noErr(t, "UserByID", err)
	if u.TokenVersion != 2 || u.PasswordHash != "hash-after-change" {
		t.Fatalf("TokenVersion %d, PasswordHash %q after a bump and a password change", u.TokenVersion, u.PasswordHash)
	}

	older := mkConv(t, s, u.ID, "older")
	mkMsg(t, s, older, "", persistence.RoleUser, "old words")
	c := mkConv(t, s, u.ID, "Durable 🚀")
	q := mkMsg(t, s, c, "", persistence.RoleUser, "question")
	done := mkStreaming(t, s, c, q.ID, "")
	at := time.Now().UTC()
	for _, chunk := range []string{"An ", "answer ", "with ", "ünïcødé ✓"} {
		apply(t, s, persistence.MessageUpdate{ID: done.ID, Append: chunk, At: at})
	}
	apply(t, s, persistence.MessageUpdate{ID: done.ID, Status: persistence.StatusComplete, FinishReason: "stop",
		Usage: &persistence.Usage{PromptTokens: 5, CompletionTokens: 7, TotalTokens: 12}, At: at})
	streaming := mkStreaming(t, s, c, q.ID, "")
	apply(t, s, persistence.MessageUpdate{ID: streaming.ID, Append: "cut off mid", At: at})

	f := reopenFixture{user: u}
	f.convs = listAll(t, s, u.ID, "", 100)
	f.messages, err = s.Messages(ctx, u.ID, c.ID)
	noErr(t, "Messages", err)
	if len(f.convs) != 2 || len(f.messages) != 3 {
		t.Fatalf("fixture: %d conversations, %d messages", len(f.convs), len(f.messages))
	}
	f.streaming = f.messages[2]
	p, err := s.ListConversations(ctx, u.ID, persistence.ListQuery{Limit: 1})
	noErr(t, "ListConversations", err)
	f.cursor = p.NextCursor
	return f
}

func (f reopenFixture) check(t *testing.T, s persistence.Store) {
	t.Helper()
	ctx := testCtx(t)
	got, err := s.UserByEmail(ctx, f.user.Email)
	noErr(t, "UserByEmail after reopen", err)
	sameUser(t, got, f.user)

	convs := listAll(t, s, f.user.ID, "", 100)
	if len(convs) != len(f.convs) {
		t.Fatalf("after reopen: %d conversations, want %d", len(convs), len(f.convs))
	}
	for i := range convs {
		sameConv(t, convs[i], f.convs[i])
	}
	p, err := s.ListConversations(ctx, f.user.ID, persistence.ListQuery{Cursor: f.cursor, Limit: 1})
	noErr(t, "ListConversations with a cursor from before the restart", err)
	sameIDs(t, "second page after reopen", convIDs(p.Conversations), []string{f.convs[1].ID})
	sameIDs(t, "search after reopen", convIDs(listAll(t, s, f.user.ID, "ÜNÏCØDÉ", 10)), []string{f.convs[0].ID})

	ms, err := s.Messages(ctx, f.user.ID, f.convs[0].ID)
	noErr(t, "Messages after reopen", err)
	sameIDs(t, "messages after reopen", msgIDs(ms), msgIDs(f.messages))
	for i := range ms {
		sameMsg(t, ms[i], f.messages[i])
	}

	n, err := s.InterruptStreaming(ctx)
	noErr(t, "InterruptStreaming after reopen", err)
	if n != 1 {
		t.Fatalf("InterruptStreaming after reopen = %d, want 1", n)
	}
	m := getMsg(t, s, f.user.ID, f.streaming.ID)
	if m.Status != persistence.StatusInterrupted || m.Content != "cut off mid" {
		t.Fatalf("left-over streaming message: status %q content %q", m.Status, m.Content)
	}

	// The reopened store keeps working.
	more := mkMsg(t, s, f.convs[1], "", persistence.RoleUser, "after restart")
	sameMsg(t, getMsg(t, s, f.user.ID, more.ID), more)
	sameIDs(t, "list after a new message", convIDs(listAll(t, s, f.user.ID, "", 100)), []string{f.convs[1].ID, f.convs[0].ID})
}
