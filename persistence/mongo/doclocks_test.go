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
// that takes one. On FerretDB (locks on) each waits for its stripe and
// returns a context error once its context ends, rather than waiting for
// the stripe past it; the context is cancelled as soon as the update
// waits (OnDocLockWait), not after a deadline waited out. With the locks
// off (as on MongoDB) each runs without waiting, but ApplyMessageUpdates,
// whose chunk-count condition needs one writer per message in the
// process (see docLocks).
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
	// waits is where OnDocLockWait tells an op, by its context, that it
	// waits for a stripe.
	type waitsKey struct{}
	mongo.OnDocLockWait(s, func(ctx context.Context) {
		if waits, ok := ctx.Value(waitsKey{}).(chan struct{}); ok {
			select {
			case waits <- struct{}{}:
			default:
			}
		}
	})
	defer mongo.OnDocLockWait(s, nil)
	// waitThenCancel runs op, cancels its context once it waits for a
	// stripe, and returns its error; it fails the test if op returns
	// without waiting, or not at once once cancelled (a wait that ignores
	// its context).
	waitThenCancel := func(t *testing.T, op func(context.Context) error) error {
		t.Helper()
		waits := make(chan struct{}, 1)
		opCtx, cancel := context.WithCancel(context.WithValue(ctx, waitsKey{}, waits))
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- op(opCtx) }()
		select {
		case <-waits:
			cancel()
		case err := <-done:
			t.Fatalf("returned %v without waiting for a document lock", err)
		case <-ctx.Done():
			t.Fatal("never waited for a document lock")
		}
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatalf("still running 30s after its context was cancelled")
			return nil
		}
	}
	isLockWait := func(err error) bool {
		return errors.Is(err, context.Canceled) && strings.Contains(err.Error(), "document lock")
	}
	for _, on := range []bool{true, false} {
		mongo.SetDocLocks(s, on)
		release := mongo.HoldDocLocks(s)
		for _, op := range ops {
			name := op.name + map[bool]string{true: "/locks on", false: "/locks off"}[on]
			t.Run(name, func(t *testing.T) {
				if on || op.always {
					if err := waitThenCancel(t, op.run); !isLockWait(err) {
						t.Fatalf("got %v, want a wait for a document lock ended by its context", err)
					}
					return
				}
				opCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				if err := op.run(opCtx); err != nil {
					t.Fatalf("with the locks off: %v", err)
				}
			})
		}
		release()
	}
}
