package mongo_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// TestDocLockWaits holds every document lock stripe and runs each update
// that takes one. On FerretDB (locks on) each returns a context error
// once its context ends, rather than waiting for the stripe past it. With
// the locks off (as on MongoDB) each runs without waiting, but
// ApplyMessageUpdates, whose chunk-count condition needs one writer per
// message in the process (see docLocks).
func TestDocLockWaits(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	s := e.store
	mongo.WaitCleanUp(s)
	if !mongo.DocLocksOn(s) {
		t.Fatal("Open did not turn the document locks on, on FerretDB")
	}
	u := mustUser(ctx, t, s, "locks@x")
	c := mustConversation(ctx, t, s, u.ID, "c")
	a := mustMessage(ctx, t, s, c, persistence.RoleAssistant, "")
	title := "renamed"
	ops := []struct {
		name   string
		always bool // waits with the locks off too
		run    func(ctx context.Context) error
	}{
		{"UpdateConversation", false, func(ctx context.Context) error {
			_, err := s.UpdateConversation(ctx, u.ID, c.ID, persistence.ConversationPatch{Title: &title})
			return err
		}},
		{"InsertMessage", false, func(ctx context.Context) error {
			m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleUser,
				Content: "hi", Status: persistence.StatusComplete}
			return s.InsertMessage(ctx, &m)
		}},
		{"BumpTokenVersion", false, func(ctx context.Context) error {
			_, err := s.BumpTokenVersion(ctx, u.ID)
			return err
		}},
		{"RehashPassword", false, func(ctx context.Context) error {
			return s.RehashPassword(ctx, u.ID, "h", "h2")
		}},
		{"SetOmittedMessages", false, func(ctx context.Context) error {
			return s.SetOmittedMessages(ctx, u.ID, a.ID, 1)
		}},
		{"ApplyMessageUpdates", true, func(ctx context.Context) error {
			_, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: a.ID, Append: "x"}})
			return err
		}},
		{"InterruptMessage", false, func(ctx context.Context) error {
			_, err := s.InterruptMessage(ctx, u.ID, a.ID, "", time.Time{})
			return err
		}},
		{"InterruptStreaming", false, func(ctx context.Context) error {
			_, err := s.InterruptStreaming(ctx)
			return err
		}},
		{"DeleteUser", false, func(ctx context.Context) error { return s.DeleteUser(ctx, u.ID) }},
	}
	// run runs op with a context ending after d, and fails the test if it
	// has not returned well after that (a wait that ignores its context).
	run := func(t *testing.T, d time.Duration, op func(context.Context) error) error {
		t.Helper()
		opCtx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- op(opCtx) }()
		select {
		case err := <-done:
			return err
		case <-time.After(d + 30*time.Second):
			t.Fatalf("still running 30s after its context ended")
			return nil
		}
	}
	isLockWait := func(err error) bool {
		return errors.Is(err, context.DeadlineExceeded) && strings.Contains(err.Error(), "document lock")
	}
	for _, on := range []bool{true, false} {
		mongo.SetDocLocks(s, on)
		release := mongo.HoldDocLocks(s)
		for _, op := range ops {
			name := op.name + map[bool]string{true: "/locks on", false: "/locks off"}[on]
			t.Run(name, func(t *testing.T) {
				if on || op.always {
					if err := run(t, time.Second, op.run); !isLockWait(err) {
						t.Fatalf("got %v, want a wait for a document lock ended by its context", err)
					}
					return
				}
				if err := run(t, 20*time.Second, op.run); err != nil {
					t.Fatalf("with the locks off: %v", err)
				}
			})
		}
		release()
	}
}
