package mongo

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"chatd/persistence"
)

// DeleteUser removes the user, their conversations and their messages
// (streaming answers included; a message's chunks and split words are
// fields of its one document). Without transactions the order matters, as
// in DeleteConversation: the messages go first, then the conversations,
// then the user document, so that a failure part-way leaves the user in
// place and deleting them again finishes the job. The messages and
// conversations are then deleted once more: an answer stopped at that
// moment, or a request already past its session check, may have written
// after the first pass. What it does not cover: readers see the user's
// data partly gone while it runs, and a conversation created after the
// second pass stays behind (a message inserted then is removed by
// InsertMessage itself, its conversation being gone).
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
	res, err := s.users.DeleteOne(ctx, bson.D{{Key: "_id", Value: oid}})
	if err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	if res.DeletedCount == 0 {
		// A concurrent DeleteUser took it (and makes its own second pass).
		return fmt.Errorf("delete user %s: %w", id, persistence.ErrNotFound)
	}
	if err := s.deleteOwned(ctx, oid); err != nil {
		return fmt.Errorf("delete user %s: second pass: %w", id, err)
	}
	s.tails.forget(streaming...)
	return nil
}

// deleteOwned deletes every message, then every conversation, of owner.
// The messages are found through the index owner_client_message_unique,
// the conversations through owner_updated.
func (s *Store) deleteOwned(ctx context.Context, owner bson.ObjectID) error {
	filter := bson.D{{Key: "owner_id", Value: owner}}
	if _, err := s.messages.DeleteMany(ctx, filter); err != nil {
		return fmt.Errorf("delete messages: %w", err)
	}
	if _, err := s.conversations.DeleteMany(ctx, filter); err != nil {
		return fmt.Errorf("delete conversations: %w", err)
	}
	return nil
}

// streamingMessages returns the ids of owner's streaming messages, whose
// trailing words the tail cache may hold.
func (s *Store) streamingMessages(ctx context.Context, owner bson.ObjectID) ([]bson.ObjectID, error) {
	cur, err := s.messages.Find(ctx, streamingFilter(owner), options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("find streaming messages: %w", err)
	}
	var docs []struct {
		ID bson.ObjectID `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("find streaming messages: %w", err)
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
