package sqlite

import (
	"context"
	"errors"
	"fmt"

	"chatd/persistence"
)

// Deleting a conversation (schema migration 12). One transaction deleting
// every message of a conversation held the store's only writer, and with
// it every other user's sends and checkpoints, for as long as it took:
// each deleted message also queues its removal from the search index (and
// a streaming one's chunks go with it), so a conversation of 100,000
// messages was seconds of nobody else writing. A deletion now marks the
// conversation (deleting_at) in a write of its own, then deletes its
// messages deleteStep at a time, each step a write of its own, and the
// conversation's row last.
//
// From the mark on the conversation is gone for its owner: every read of a
// conversation skips it (the list and its search too), every read of
// messages skips its messages (convLive, msgConvLive), an update of it or
// a message sent into it answers ErrNotFound as for an unknown id (which
// also means no message enters it while its steps run), and its client id
// is free again (the unique index leaves out rows being deleted). A
// deletion cut off after the mark (its context, the process's end) leaves
// the marked row with what is left of its messages, which no read reaches;
// FinishDeletions finishes it (at Open and every Options.DeletionSweep),
// as it finishes account deletions.

var (
	qMarkConv = writeQ(`UPDATE conversations SET deleting_at = ?1 WHERE id = ?2 AND owner_id = ?3 AND deleting_at IS NULL`)
	// A bounded step: up to ?2 messages of conversation ?1, found by rowid
	// through the messages' conversation index.
	qDeleteConvMsgsStep = writeQ(`DELETE FROM messages WHERE rowid IN (
		SELECT rowid FROM messages WHERE conversation_id = ? LIMIT ?)`)
	// The last step: the marked row (the foreign key's cascade would take
	// any message left; none can enter after the mark).
	qDeleteMarkedConv = writeQ(`DELETE FROM conversations WHERE id = ? AND deleting_at IS NOT NULL`)
	qMarkedConvs      = readQ(`SELECT id FROM conversations WHERE deleting_at IS NOT NULL LIMIT ?`)
)

// convLive is SQL for: conversation p (a parameter such as ?1) is not
// being deleted. Uncorrelated, it is evaluated once per statement.
func convLive(p string) string {
	return `EXISTS (SELECT 1 FROM conversations WHERE id = ` + p + ` AND deleting_at IS NULL)`
}

// msgConvLive is SQL for: the conversation of the messages row t is not
// being deleted (a lookup by primary key per row: for reads of a few
// messages).
func msgConvLive(t string) string {
	return `EXISTS (SELECT 1 FROM conversations lc WHERE lc.id = ` + t + `.conversation_id AND lc.deleting_at IS NULL)`
}

// The steps (persistence.DeleteStepDone) of a conversation's deletion.
const (
	stepConvMarked      = persistence.DeleteStepConversationMarked
	stepConvMsgsDeleted = "a step of a conversation's messages deleted"
	// stepMarkedConvsFound: FinishDeletions has read the marked
	// conversations it finishes.
	stepMarkedConvsFound = "marked conversations found"
)

// DeleteConversation removes the owner's conversation and its messages:
// it marks the conversation, which from then on is gone for every read
// and write, then deletes its messages in bounded steps, each a write of
// its own so that other writes go on between them, and its row last (see
// above). An unknown id, another owner's, or one already being deleted
// is ErrNotFound and changes nothing. Once the mark is written the
// deletion is as good as done: a step that fails or is cut off (ctx) is
// logged and left to FinishDeletions, and DeleteConversation returns nil.
func (s *Store) DeleteConversation(ctx context.Context, ownerID, id string) error {
	n, err := s.exec(ctx, qMarkConv, s.clock.now(), id, ownerID)
	if err == nil && n == 0 {
		err = persistence.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlite: delete conversation %s: %w", id, err)
	}
	persistence.DeleteStepDone(ctx, stepConvMarked)
	switch err := s.deleteMarkedConv(ctx, id); {
	case err == nil, errors.Is(err, persistence.ErrNotFound): // done, here or by a run beside it
	case ctx.Err() != nil:
		s.log.Info("a conversation's deletion was cut off after its mark; the deletion sweep finishes it",
			"conversation_id", id, "err", err)
	default:
		s.log.Warn("a conversation's deletion failed after its mark; the deletion sweep finishes it",
			"conversation_id", id, "err", err)
	}
	return nil
}

// deleteMarkedConv deletes the marked conversation id: its messages up to
// s.deleteStep a write, then its row, and has the write-ahead log
// scrubbed of them (deletionDone); ErrNotFound when another run deleted
// it meanwhile.
func (s *Store) deleteMarkedConv(ctx context.Context, id string) error {
	if err := s.deleteSteps(ctx, qDeleteConvMsgsStep, stepConvMsgsDeleted, id); err != nil {
		return err
	}
	n, err := s.exec(ctx, qDeleteMarkedConv, id)
	if err == nil && n == 0 {
		err = persistence.ErrNotFound
	}
	if err == nil {
		s.deletionDone(context.WithoutCancel(ctx)) // bounded by scrubBusy (scrub.go)
	}
	return err
}

// finishConvDeletions deletes up to deletionBatch marked conversations
// (see FinishDeletions) and returns how many it found finished.
func (s *Store) finishConvDeletions(ctx context.Context) (int, error) {
	ids, err := s.queryStrings(ctx, qMarkedConvs, deletionBatch)
	if err != nil {
		return 0, fmt.Errorf("sqlite: finish conversation deletions: %w", err)
	}
	persistence.DeleteStepDone(ctx, stepMarkedConvsFound)
	for i, id := range ids {
		switch err := s.deleteMarkedConv(ctx, id); {
		case errors.Is(err, persistence.ErrNotFound):
			s.log.Debug("a cut-off conversation deletion was finished by another run", "conversation_id", id)
		case err != nil:
			return i, fmt.Errorf("sqlite: finish the deletion of conversation %s: %w", id, err)
		default:
			s.log.Info("finished a cut-off conversation deletion", "conversation_id", id)
		}
	}
	return len(ids), nil
}
