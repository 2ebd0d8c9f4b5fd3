package mongo

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"chatd/persistence"
)

// DeleteUser removes the user, their conversations and their messages
// (streaming answers included; a message's chunks and split words are
// fields of its one document). Without transactions the order matters, as
// in DeleteConversation: the messages go first, then the conversations,
// then the user document, so that a failure part-way leaves the user in
// place and deleting them again finishes the job.
//
// Then a last sweep, of the conversations and after them the messages,
// removes what requests already past their session check wrote meanwhile
// (an answer stopped at that moment writes to messages the sweep finds).
// Nothing written concurrently stays behind, because each create checks,
// after its insert, what this deletes before the sweep:
//
//   - CreateConversation inserts, then looks up the owner, and removes its
//     conversation when the user is gone. If it found the user, its look-up
//     came before the user was deleted here, so its insert did too, and
//     the sweep, which starts after the user is deleted, finds the
//     conversation.
//   - InsertMessage inserts, then moves its conversation's updated_at, and
//     removes its message when the conversation is gone. If it found the
//     conversation, that came before the sweep deleted the conversation,
//     so its insert came before the sweep of messages that follows. (With
//     the messages swept first, a message inserted between the two deletes
//     would stay behind: hence conversations first in this pass.)
//
// A record of the deletion in the meta collection, written before the
// user document is deleted and removed after the last sweep, covers a
// failure of that sweep, or the process's end, after the user is gone,
// where a new DeleteUser cannot reach the rest (ErrNotFound): the next
// Open of the store, on any instance, has the sweep run in the background
// (finishDeletions).
// What it does not cover: readers see the user's data partly gone while
// it runs.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	oid, ok := objectID(id)
	if !ok {
		return fmt.Errorf("delete user %s: %w", id, persistence.ErrNotFound)
	}
	if err := s.users.FindOne(ctx, bson.D{{Key: "_id", Value: oid}}).Err(); err != nil {
		return fmt.Errorf("delete user %s: %w", id, mapErr(err))
	}
	streaming, err := s.streamingMessages(ctx, oid)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	if err := s.deleteOwned(ctx, oid); err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	if err := s.recordDeletion(ctx, oid); err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	res, err := s.users.DeleteOne(ctx, bson.D{{Key: "_id", Value: oid}})
	if err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	if res.DeletedCount == 0 {
		// A concurrent DeleteUser took it (and makes its own last sweep).
		return fmt.Errorf("delete user %s: %w", id, persistence.ErrNotFound)
	}
	if err := s.sweepOwned(ctx, oid); err != nil {
		return fmt.Errorf("delete user %s: last sweep (the next start finishes it): %w", id, err)
	}
	s.tails.forget(streaming...)
	if err := s.forgetDeletion(ctx, oid); err != nil {
		// Done all the same; the next start sweeps again and finds nothing.
		s.log.Warn("mongodb: account deleted, its deletion record left", "user_id", id, "err", err)
	}
	return nil
}

// ownerFilter selects the documents of owner. The messages are found
// through the index owner_client_message_unique, the conversations
// through owner_updated.
func ownerFilter(owner bson.ObjectID) bson.D {
	return bson.D{{Key: "owner_id", Value: owner}}
}

// deleteOwned deletes every message, then every conversation, of owner:
// a failure between the two leaves conversations to find the rest by.
func (s *Store) deleteOwned(ctx context.Context, owner bson.ObjectID) error {
	if _, err := s.messages.DeleteMany(ctx, ownerFilter(owner)); err != nil {
		return fmt.Errorf("delete messages: %w", err)
	}
	if _, err := s.conversations.DeleteMany(ctx, ownerFilter(owner)); err != nil {
		return fmt.Errorf("delete conversations: %w", err)
	}
	return nil
}

// sweepOwned deletes every conversation, then every message, of owner
// whose user document is already deleted (DeleteUser's last sweep: see
// there why in this order).
func (s *Store) sweepOwned(ctx context.Context, owner bson.ObjectID) error {
	if _, err := s.conversations.DeleteMany(ctx, ownerFilter(owner)); err != nil {
		return fmt.Errorf("delete conversations: %w", err)
	}
	if _, err := s.messages.DeleteMany(ctx, ownerFilter(owner)); err != nil {
		return fmt.Errorf("delete messages: %w", err)
	}
	return nil
}

// streamingMessages returns the ids of owner's streaming messages, whose
// trailing words the tail cache may hold.
func (s *Store) streamingMessages(ctx context.Context, owner bson.ObjectID) ([]bson.ObjectID, error) {
	ids, err := findIDs(ctx, s.messages, streamingFilter(owner))
	if err != nil {
		return nil, fmt.Errorf("find streaming messages: %w", err)
	}
	return ids, nil
}

// findIDs returns the _id of every document of c matching filter.
func findIDs(ctx context.Context, c *mongo.Collection, filter bson.D) ([]bson.ObjectID, error) {
	cur, err := c.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	var docs []struct {
		ID bson.ObjectID `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	ids := make([]bson.ObjectID, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids, nil
}

// streamingFilter selects owner's streaming messages.
func streamingFilter(owner bson.ObjectID) bson.D {
	return bson.D{{Key: "owner_id", Value: owner}, {Key: "status", Value: string(persistence.StatusStreaming)}}
}
