package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"chatd/persistence"
)

// Deleting a conversation. One DeleteMany of a conversation's messages
// can outlast its request's deadline (the driver sends it as maxTimeMS)
// on a large conversation, and stops part-way; without transactions
// nothing made the rest certain to go. A deletion now marks the
// conversation first, in one update of its document: deleting_at set and
// client_key removed. From the mark on the conversation is gone for its
// owner: every read of a conversation skips it (notDeleting: by id, the
// list and its search, an update), every read of messages checks their
// conversation by its id (convLive) and finds none, a message sent into
// it is refused (touchConversation finds no conversation: ErrNotFound,
// and the message inserted is taken back), and its client id is free at
// once (the unique index client_key_unique is sparse: the document is no
// longer in it). Then its messages go deleteStep at a time, found by id
// through the index conversation_created, and its document last.
//
// A deletion cut off after the mark (its context, the process's end, a
// failover) leaves the marked document with what is left of its messages,
// which no read reaches; FinishDeletions finds it through the sparse index
// deleting and finishes it (at Open and every Options.DeletionSweep).
// DeleteConversation returns nil once the mark is written.
//
// No message enters a marked conversation: an insert whose
// touchConversation came before the mark was stored before it, so the
// steps that follow find it; one whose touchConversation comes after
// finds the conversation marked and takes its message back. On FerretDB
// the mark and touchConversation take the conversation's document lock
// (its updates are not atomic: docLocks), which holds within the process
// only: another instance's touch landing at the same moment can write the
// conversation back unmarked (the deletion then stops with its document
// there, live again: the owner deletes it again).

// The steps (persistence.DeleteStepDone) of a conversation's deletion,
// after persistence.DeleteStepConversationMarked.
const (
	stepConvMsgsDeleted = "a step of a conversation's messages deleted"
	// stepMarkedConvsFound: FinishDeletions has read the marked
	// conversations it finishes.
	stepMarkedConvsFound = "marked conversations found"
)

// deleteStep bounds how many messages one delete of a conversation's
// deletion removes: a few thousand documents a command keeps each well
// inside a request's deadline on a busy replica set.
const deleteStep = 1000

// DeleteConversation removes the owner's conversation and its messages:
// it marks the conversation, which from then on is gone for every read
// and write, then deletes its messages in bounded steps and its document
// last (see above). An unknown id, another owner's, or one already being
// deleted is ErrNotFound and changes nothing. Once the mark is written the
// deletion is as good as done: a step that fails or is cut off (ctx) is
// logged and left to FinishDeletions, and DeleteConversation returns nil.
func (s *Store) DeleteConversation(ctx context.Context, ownerID, id string) error {
	ref, ok := parseOwned(ownerID, id)
	if !ok {
		return fmt.Errorf("delete conversation %s: %w", id, persistence.ErrNotFound)
	}
	if err := s.markConversation(ctx, ref); err != nil {
		return fmt.Errorf("delete conversation %s: %w", id, err)
	}
	persistence.DeleteStepDone(ctx, persistence.DeleteStepConversationMarked)
	switch err := s.deleteMarkedConv(ctx, ref.id); {
	case err == nil, errors.Is(err, persistence.ErrNotFound): // done, here or by a run beside it
	case ctx.Err() != nil:
		s.log.Info("mongodb: a conversation's deletion was cut off after its mark; the deletion sweep finishes it",
			"conversation_id", id, "err", err)
	default:
		s.log.Warn("mongodb: a conversation's deletion failed after its mark; the deletion sweep finishes it",
			"conversation_id", id, "err", err)
	}
	return nil
}

// markConversation marks the conversation ref as being deleted and takes
// its client id off it, in one update; ErrNotFound when the owner has no
// such conversation or it is marked already.
func (s *Store) markConversation(ctx context.Context, ref ownedRef) error {
	unlock, err := s.locks.lock(ctx, ref.id)
	if err != nil {
		return fmt.Errorf("mark as being deleted: %w", err)
	}
	res, err := s.conversations.UpdateOne(ctx, append(ref.filter(), notDeleting), bson.D{
		{Key: "$set", Value: bson.D{{Key: "deleting_at", Value: now()}}},
		{Key: "$unset", Value: bson.D{{Key: "client_key", Value: ""}}},
	})
	unlock()
	if err != nil {
		return fmt.Errorf("mark as being deleted: %w", err)
	}
	if res.MatchedCount == 0 {
		return persistence.ErrNotFound
	}
	return nil
}

// deleteMarkedConv deletes the marked conversation id: its messages up to
// s.deleteStep a delete (their ids read on the primary first), until a
// read finds fewer, then its document; ErrNotFound when another run
// deleted the document meanwhile.
func (s *Store) deleteMarkedConv(ctx context.Context, id bson.ObjectID) error {
	for {
		ids, err := findIDs(ctx, s.messagesPrimary, bson.D{{Key: "conversation_id", Value: id}},
			options.Find().SetLimit(int64(s.deleteStep)))
		if err != nil {
			return fmt.Errorf("find messages to delete: %w", err)
		}
		if len(ids) > 0 {
			if _, err := s.messages.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}); err != nil {
				return fmt.Errorf("delete messages: %w", err)
			}
			s.tails.forget(ids...)
			persistence.DeleteStepDone(ctx, stepConvMsgsDeleted)
		}
		if len(ids) < s.deleteStep {
			break
		}
	}
	res, err := s.conversations.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "deleting_at", Value: bson.D{{Key: "$exists", Value: true}}}})
	if err != nil {
		return fmt.Errorf("delete the conversation: %w", err)
	}
	if res.DeletedCount == 0 {
		return persistence.ErrNotFound
	}
	return nil
}

// markedConversations returns the ids of up to limit conversations
// DeleteConversation marked, on the primary. The range on deleting_at
// (every mark is past 1970) lets MongoDB read the sparse index deleting
// alone.
func (s *Store) markedConversations(ctx context.Context, limit int64) ([]bson.ObjectID, error) {
	filter := bson.D{{Key: "deleting_at", Value: bson.D{{Key: "$gte", Value: time.Unix(0, 0).UTC()}}}}
	ids, err := findIDs(ctx, s.convsPrimary, filter, options.Find().SetLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("find conversations being deleted: %w", err)
	}
	return ids, nil
}

// finishConvDeletions deletes up to deletionBatch marked conversations
// (see FinishDeletions) and returns how many it found finished.
func (s *Store) finishConvDeletions(ctx context.Context) (int, error) {
	ids, err := s.markedConversations(ctx, deletionBatch)
	if err != nil {
		return 0, fmt.Errorf("finish conversation deletions: %w", err)
	}
	persistence.DeleteStepDone(ctx, stepMarkedConvsFound)
	for i, id := range ids {
		switch err := s.deleteMarkedConv(ctx, id); {
		case errors.Is(err, persistence.ErrNotFound):
			s.log.Debug("mongodb: a cut-off conversation deletion was finished by another run", "conversation_id", id.Hex())
		case err != nil:
			return i, fmt.Errorf("finish the deletion of conversation %s: %w", id.Hex(), err)
		default:
			s.log.Info("mongodb: finished a cut-off conversation deletion", "conversation_id", id.Hex())
		}
	}
	return len(ids), nil
}

// convLive returns nil when owner has the conversation conv and it is not
// being deleted, ErrNotFound otherwise: one read of its id. The reads of
// messages check their conversation with it, after reading them. found
// says such messages were read: then a conversation missing where ctx
// reads (a secondary behind the one that served the messages) is looked
// for on the primary before it is taken for gone.
func (s *Store) convLive(ctx context.Context, owner, conv bson.ObjectID, found bool) error {
	filter := bson.D{{Key: "_id", Value: conv}, {Key: "owner_id", Value: owner}, notDeleting}
	proj := options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})
	coll := s.convsFor(ctx)
	err := coll.FindOne(ctx, filter, proj).Err()
	if errors.Is(err, mongo.ErrNoDocuments) && found && coll != s.convsPrimary {
		err = s.convsPrimary.FindOne(ctx, filter, proj).Err()
	}
	return mapErr(err)
}

// msgLive returns m, or ErrNotFound when its conversation is being
// deleted (convLive).
func (s *Store) msgLive(ctx context.Context, m persistence.Message) (persistence.Message, error) {
	owner, ok1 := objectID(m.OwnerID)
	conv, ok2 := objectID(m.ConversationID)
	if !ok1 || !ok2 {
		return persistence.Message{}, persistence.ErrNotFound
	}
	if err := s.convLive(ctx, owner, conv, true); err != nil {
		return persistence.Message{}, err
	}
	return m, nil
}
