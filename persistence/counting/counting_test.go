package counting_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"chatd/persistence"
	"chatd/persistence/counting"
	"chatd/persistence/sqlite"
)

// open returns a counting store over a fresh SQLite file store.
func open(t *testing.T) (context.Context, *counting.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	inner, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "chatd.db"), Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	s := counting.Wrap(inner)
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return ctx, s
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestCountsEveryMethod: each write method call is one write, reads are
// counted apart, and results pass through unchanged.
func TestCountsEveryMethod(t *testing.T) {
	t.Parallel()
	ctx, s := open(t)
	u := persistence.User{Email: "a@example.test", Name: "A", PasswordHash: "h"}
	must(t, "CreateUser", s.CreateUser(ctx, &u))
	_, err := s.BumpTokenVersion(ctx, u.ID)
	must(t, "BumpTokenVersion", err)
	if v, err := s.ChangePassword(ctx, u.ID, "h2", 1); err != nil || v != 2 {
		t.Fatalf("ChangePassword = %d, %v; want 2", v, err)
	}
	c := persistence.Conversation{OwnerID: u.ID, Title: "t", Model: "m"}
	must(t, "CreateConversation", s.CreateConversation(ctx, &c))
	title := "renamed"
	got, err := s.UpdateConversation(ctx, u.ID, c.ID, persistence.ConversationPatch{Title: &title})
	must(t, "UpdateConversation", err)
	if got.Title != title {
		t.Errorf("UpdateConversation returned %q, want %q", got.Title, title)
	}
	m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleAssistant, Status: persistence.StatusStreaming}
	must(t, "InsertMessage", s.InsertMessage(ctx, &m))
	updates := []persistence.MessageUpdate{{ID: m.ID, Append: "hello ", At: time.Now()}, {ID: "unknown", Append: "ignored"}}
	skipped, err := s.ApplyMessageUpdates(ctx, updates)
	must(t, "ApplyMessageUpdates", err)
	if len(skipped) != 1 || skipped[0] != "unknown" {
		t.Errorf("ApplyMessageUpdates skipped %q, want the unknown id", skipped)
	}
	n, err := s.InterruptStreaming(ctx)
	must(t, "InterruptStreaming", err)
	if n != 1 {
		t.Errorf("InterruptStreaming changed %d, want 1", n)
	}
	stored, err := s.Message(ctx, u.ID, m.ID)
	must(t, "Message", err)
	if stored.Content != "hello " || stored.Status != persistence.StatusInterrupted {
		t.Errorf("stored message %q %s", stored.Content, stored.Status)
	}
	_, err = s.UserByEmail(ctx, u.Email)
	must(t, "UserByEmail", err)
	_, err = s.ListConversations(ctx, u.ID, persistence.ListQuery{})
	must(t, "ListConversations", err)
	must(t, "DeleteConversation", s.DeleteConversation(ctx, u.ID, c.ID))
	streaming, err := s.StreamingConversations(ctx, u.ID)
	must(t, "StreamingConversations", err)
	if len(streaming) != 0 {
		t.Errorf("StreamingConversations = %v, want none", streaming)
	}
	must(t, "DeleteUser", s.DeleteUser(ctx, u.ID))
	if _, err := s.Unwrap().UserByID(ctx, u.ID); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("UserByID after DeleteUser = %v, want ErrNotFound", err)
	}
	must(t, "Ping", s.Ping(ctx))

	want := map[string]int64{"CreateUser": 1, "BumpTokenVersion": 1, "ChangePassword": 1, "CreateConversation": 1,
		"UpdateConversation": 1, "InsertMessage": 1, "ApplyMessageUpdates": 1, "InterruptStreaming": 1,
		"DeleteConversation": 1, "DeleteUser": 1}
	w := s.Writes()
	if fmt.Sprint(w.ByMethod) != fmt.Sprint(want) {
		t.Errorf("ByMethod = %v, want %v", w.ByMethod, want)
	}
	if w.Writes != 10 || w.Reads != 4 || w.Errors != 0 || w.MessageUpdates != 2 || w.AppendedBytes != int64(len("hello ignored")) {
		t.Errorf("Counts = %+v", w)
	}
}

// TestCountsErrors: failed writes count as writes and as errors, and the
// store's error passes through for errors.Is.
func TestCountsErrors(t *testing.T) {
	t.Parallel()
	ctx, s := open(t)
	u := persistence.User{Email: "dup@example.test", Name: "A", PasswordHash: "h"}
	must(t, "CreateUser", s.CreateUser(ctx, &u))
	again := persistence.User{Email: "dup@example.test", Name: "B", PasswordHash: "h"}
	if err := s.CreateUser(ctx, &again); !errors.Is(err, persistence.ErrDuplicate) {
		t.Fatalf("duplicate CreateUser = %v, want ErrDuplicate", err)
	}
	if err := s.DeleteConversation(ctx, u.ID, persistence.NewID()); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("DeleteConversation of unknown id = %v, want ErrNotFound", err)
	}
	if err := s.DeleteUser(ctx, persistence.NewID()); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("DeleteUser of unknown id = %v, want ErrNotFound", err)
	}
	if w := s.Writes(); w.Writes != 4 || w.Errors != 3 || w.ByMethod["CreateUser"] != 2 || w.ByMethod["DeleteUser"] != 1 {
		t.Errorf("Counts = %+v", w)
	}
	s.Reset()
	if w := s.Writes(); w.Writes != 0 || w.Errors != 0 || len(w.ByMethod) != 0 {
		t.Errorf("after Reset: %+v", w)
	}
}

// TestConcurrentCounting: counts are exact under concurrent use, and a
// snapshot does not change when the store is used afterwards.
func TestConcurrentCounting(t *testing.T) {
	t.Parallel()
	ctx, s := open(t)
	u := persistence.User{Email: "c@example.test", Name: "C", PasswordHash: "h"}
	must(t, "CreateUser", s.CreateUser(ctx, &u))
	c := persistence.Conversation{OwnerID: u.ID, Title: "t", Model: "m"}
	must(t, "CreateConversation", s.CreateConversation(ctx, &c))
	m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleAssistant, Status: persistence.StatusStreaming}
	must(t, "InsertMessage", s.InsertMessage(ctx, &m))
	s.Reset()
	const goroutines, calls = 8, 25
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range calls {
				if _, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: m.ID, Append: "ab "}}); err != nil {
					t.Errorf("ApplyMessageUpdates: %v", err)
				}
			}
		})
	}
	wg.Wait()
	snap := s.Writes()
	if snap.Writes != goroutines*calls || snap.AppendedBytes != 3*goroutines*calls {
		t.Errorf("Counts = %+v", snap)
	}
	_, err := s.ApplyMessageUpdates(ctx, nil)
	must(t, "ApplyMessageUpdates", err)
	if snap.ByMethod["ApplyMessageUpdates"] != goroutines*calls {
		t.Errorf("snapshot changed after further use: %v", snap.ByMethod)
	}
	stored, err := s.Message(ctx, u.ID, m.ID)
	must(t, "Message", err)
	if len(stored.Content) != 3*goroutines*calls {
		t.Errorf("stored %d bytes", len(stored.Content))
	}
}

// testLogger writes warnings and errors to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// TestFinishDeletionsPassesThrough: the wrapper finishes a cut-off account
// deletion through the wrapped store and counts it as one write.
func TestFinishDeletionsPassesThrough(t *testing.T) {
	t.Parallel()
	ctx, s := open(t)
	u := persistence.User{Email: "a@example.test", Name: "A", PasswordHash: "h"}
	must(t, "CreateUser", s.CreateUser(ctx, &u))
	cut, cancel := context.WithCancel(ctx)
	cut = persistence.WithDeleteHook(cut, func(string) { cancel() })
	if err := s.DeleteUser(cut, u.ID); !errors.Is(err, context.Canceled) {
		t.Fatalf("DeleteUser cut after its mark: %v, want context.Canceled", err)
	}
	before := s.Writes().ByMethod["FinishDeletions"]
	if n, err := s.FinishDeletions(ctx); n != 1 || err != nil {
		t.Fatalf("FinishDeletions = %d, %v; want 1 finished", n, err)
	}
	if got := s.Writes().ByMethod["FinishDeletions"]; got != before+1 {
		t.Fatalf("FinishDeletions counted %d times, want %d", got, before+1)
	}
	if _, err := s.Unwrap().UserByEmail(ctx, u.Email); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("UserByEmail after the deletion was finished: %v, want ErrNotFound", err)
	}
}
