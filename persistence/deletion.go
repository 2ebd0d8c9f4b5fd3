package persistence

import (
	"context"
	"log/slog"
	"time"
)

// DeletionFinisher is a store that finishes on its own the account and
// conversation deletions that were cut off (Users.DeleteUser or
// Conversations.DeleteConversation stopped by its context, by the
// process's end or by a failover after its first write), and lets a
// caller run that work now. Both stores implement it; they also run it
// themselves, at Open and every Options.DeletionSweep.
type DeletionFinisher interface {
	// FinishDeletions finishes the cut-off account and conversation
	// deletions it finds, a bounded batch of each, and returns how many it
	// finished; a user Users.MarkUserDeleting marked (and DeleteUser not)
	// only once the mark is DeletionGrace old. Running it beside a DeleteUser of the same user (a
	// DeleteConversation of the same conversation), or on two servers
	// sharing one database, is harmless: every step is done again or found
	// done.
	FinishDeletions(ctx context.Context) (int, error)
}

// DeleteStepMarked is the first step of an account deletion: the user is
// marked as being deleted (gone for every user read, their password no
// longer signs in, every token revoked) before any of their data goes.
const DeleteStepMarked = "marked"

// DeleteStepConversationMarked is the first step of a conversation's
// deletion in stores whose DeleteConversation goes in steps (both): the
// conversation is marked as being deleted, and from then on it is gone
// for its owner (every read of it and of its messages, its client id,
// sends into it), before any of its messages go. DeleteConversation
// returns nil once it is done; FinishDeletions finishes a deletion cut
// off after it.
const DeleteStepConversationMarked = "conversation marked"

// DeletionGrace is how long FinishDeletions leaves a user that
// Users.MarkUserDeleting marked and DeleteUser has not: their deletion
// may still be ending their live work (answers on any instance sharing
// the database), whose snapshot of the running answers must find them in
// the store. It is longer than the deletion's own bound (the account
// routes' DeleteTimeout, a minute) with a margin for the clocks of
// instances sharing a database; a mark older than that was left by a
// deletion cut off (the process's end), and is finished as one. A
// deletion takes its mark back (UnmarkUserDeleting) only well within
// it, and FinishDeletions seals a mark (clears the password hash) before
// deleting, so a taking back that lands later finds it sealed.
const DeletionGrace = 3 * time.Minute

type deleteHookKey struct{}

// WithDeleteHook returns ctx carrying hook, which the account deletions
// run with ctx (DeleteUser, FinishDeletions) call with the name of each
// step once it is done, DeleteStepMarked first; DeleteConversation
// reports its steps too, DeleteStepConversationMarked first, the others
// under names of each store's own. Tests
// cut a deletion off between two steps with it, by cancelling ctx;
// nothing else uses it.
func WithDeleteHook(ctx context.Context, hook func(step string)) context.Context {
	return context.WithValue(ctx, deleteHookKey{}, hook)
}

// DeleteStepDone calls the hook WithDeleteHook put in ctx, if any, with
// step. Stores call it between the steps of an account's or a
// conversation's deletion.
func DeleteStepDone(ctx context.Context, step string) {
	if hook, ok := ctx.Value(deleteHookKey{}).(func(string)); ok {
		hook(step)
	}
}

// FinishAllDeletions runs f.FinishDeletions until a round finishes fewer
// than batch (the store's batch size: no more were found) or fails, and
// returns how many deletions it finished. A failure is logged on log
// unless ctx ended (the next sweep or start tries again) and returned.
func FinishAllDeletions(ctx context.Context, f DeletionFinisher, batch int, log *slog.Logger) (int, error) {
	total := 0
	for {
		n, err := f.FinishDeletions(ctx)
		total += n
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("finishing cut-off account deletions failed; the next sweep or start tries again", "err", err)
			}
			return total, err
		}
		if n < batch {
			return total, nil
		}
	}
}

// SweepDeletions runs FinishAllDeletions every interval until ctx ends:
// the stores' sweep of cut-off account deletions. after, when set, is told
// each round's outcome (tests wait on it).
func SweepDeletions(ctx context.Context, f DeletionFinisher, batch int, every time.Duration, log *slog.Logger, after func(int, error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := FinishAllDeletions(ctx, f, batch, log)
			if after != nil {
				after(n, err)
			}
		}
	}
}
