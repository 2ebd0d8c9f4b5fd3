package mongo

import (
	"context"
	"time"
)

// Undoing a create. Without transactions, InsertMessage and
// CreateConversation write their document first and check after it what
// it depends on (the conversation, the owner); when that is gone, or the
// check fails, the document is deleted again. A delete failing once (a
// dropped connection, an election) must not leave it: a message of a
// conversation that is gone stays visible to its sender (MessageByClientID,
// Message, Messages of that conversation id), and nothing else would ever
// remove it. So the delete is tried again, with a growing pause, until it
// succeeds or the undo's bound (Options.UndoTimeout) ends; then the
// create's error says what was left.

// The pauses between two tries of an undo.
const (
	undoFirstPause = 50 * time.Millisecond
	undoMaxPause   = time.Second
)

// undo runs del within the undo's bound, from ctx's values but not its
// end (the create's ctx may be what ended), until it succeeds or the
// bound ends, and returns the error of its last try when none succeeded.
func (s *Store) undo(ctx context.Context, del func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.undoTimeout)
	defer cancel()
	pause := undoFirstPause
	for {
		err := del(ctx)
		if err == nil {
			return nil
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		pause = min(2*pause, undoMaxPause)
	}
}
