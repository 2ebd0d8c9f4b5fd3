package mongo

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"chatd/persistence"
)

// DeleteUser removes the user, their conversations and their messages
// (streaming answers included; a message's chunks and split words are
// fields of its one document). Without transactions it goes in steps, and
// the first one makes the rest certain to end:
//
//  1. mark: one findAndModify sets deleting_at on the user document,
//     clears its password hash and increments its token version. From
//     then on every user read skips the user (UserByID, UserByEmail, the
//     token check, CreateConversation's owner check: see notDeleting), no
//     password signs in and no token is valid, while the email stays taken
//     (the unique index) until the document is gone.
//  2. finishUser: the messages, then the conversations, then the user
//     document, then a last sweep (see there).
//
// A deletion cut off after the mark (its context, the process's end, a
// failover) is finished by FinishDeletions, which every Open runs in the
// background and which repeats every Options.DeletionSweep; calling
// DeleteUser again finishes it too; the error of a DeleteUser failing
// after the mark holds persistence.ErrDeleting. An unknown id, or a user
// already gone, is ErrNotFound.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	oid, ok := objectID(id)
	if !ok {
		return fmt.Errorf("delete user %s: %w", id, persistence.ErrNotFound)
	}
	if err := s.markDeleting(ctx, oid); err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	persistence.DeleteStepDone(ctx, persistence.DeleteStepMarked)
	switch err := s.finishUser(ctx, oid); {
	case errors.Is(err, persistence.ErrNotFound): // a concurrent run finished it
		return fmt.Errorf("delete user %s: %w", id, err)
	case err != nil:
		return fmt.Errorf("delete user %s: %w (%w)", id, err, persistence.ErrDeleting)
	}
	return nil
}

// MarkUserDeleting marks the user as being deleted, keeping their data
// and password hash (persistence.Users): one findAndModify sets
// deleting_at and increments the token version, after which no user read
// finds them (notDeleting). FinishDeletions leaves the mark until it is
// Options.DeletionGrace old (markedUsers). ErrNotFound for an unknown or
// malformed id, or a user already marked.
func (s *Store) MarkUserDeleting(ctx context.Context, id string) error {
	if _, err := s.newTokenVersion(ctx, id, bson.D{{Key: "deleting_at", Value: now()}}); err != nil {
		return fmt.Errorf("mark user %s as being deleted: %w", id, err)
	}
	return nil
}

// UnmarkUserDeleting takes back MarkUserDeleting's mark while DeleteUser
// has not marked the user (its mark clears the password hash), in one
// update under the document's lock (persistence.Users); ErrNotFound
// otherwise.
func (s *Store) UnmarkUserDeleting(ctx context.Context, id string) error {
	oid, ok := objectID(id)
	if !ok {
		return fmt.Errorf("take back the deletion mark of user %s: %w", id, persistence.ErrNotFound)
	}
	unlock, err := s.locks.lock(ctx, oid)
	if err != nil {
		return fmt.Errorf("take back the deletion mark of user %s: %w", id, err)
	}
	defer unlock()
	filter := bson.D{{Key: "_id", Value: oid}, {Key: "deleting_at", Value: bson.D{{Key: "$exists", Value: true}}},
		{Key: "password_hash", Value: bson.D{{Key: "$ne", Value: ""}}}}
	r, err := s.users.UpdateOne(ctx, filter, bson.D{{Key: "$unset", Value: bson.D{{Key: "deleting_at", Value: ""}}}})
	if err == nil && r.MatchedCount == 0 {
		err = persistence.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("take back the deletion mark of user %s: %w", id, mapErr(err))
	}
	return nil
}

// markDeleting marks user oid as being deleted (DeleteUser's step 1), or
// marks them again; ErrNotFound when there is no such user document.
func (s *Store) markDeleting(ctx context.Context, oid bson.ObjectID) error {
	update := bson.D{
		{Key: "$set", Value: bson.D{{Key: "deleting_at", Value: now()}, {Key: "password_hash", Value: ""}}},
		{Key: "$inc", Value: bson.D{{Key: "token_version", Value: int64(1)}}},
	}
	unlock, err := s.locks.lock(ctx, oid)
	if err != nil {
		return fmt.Errorf("mark as being deleted: %w", err)
	}
	defer unlock()
	if err := s.users.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: oid}}, update).Err(); err != nil {
		return fmt.Errorf("mark as being deleted: %w", mapErr(err))
	}
	return nil
}

// finishUser deletes everything of owner, a user marked as being deleted,
// and the user document: the messages go first, then the conversations,
// then the user document, so that a cut part-way leaves the marked user
// for FinishDeletions to find again.
//
// Then a last sweep, of the conversations and after them the messages,
// removes what requests already past their session check wrote meanwhile
// (an answer stopped at that moment writes to messages the sweep finds).
// Nothing written concurrently stays behind, because each create checks,
// after its insert, what this deletes before the sweep:
//
//   - CreateConversation inserts, then looks up the owner, and removes its
//     conversation when the user is marked or gone. If it found the user
//     unmarked, its look-up came before the mark, so its insert did too,
//     and the deletes that follow the mark find the conversation.
//   - InsertMessage inserts, then moves its conversation's updated_at, and
//     removes its message when the conversation is gone. If it found the
//     conversation, that came before the sweep deleted the conversation,
//     so its insert came before the sweep of messages that follows. (With
//     the messages swept first, a message inserted between the two deletes
//     would stay behind: hence conversations first in this pass.)
//
// A record of the deletion in the meta collection, written before the
// user document is deleted and removed after the last sweep, covers a cut
// of that sweep after the user document is gone, where nothing marked is
// left to find: FinishDeletions sweeps the owner of each record left.
//
// Two runs for the same user (DeleteUser beside FinishDeletions, two
// servers) are harmless: every delete and the record are idempotent, and
// the run that finds the user document already deleted still sweeps.
func (s *Store) finishUser(ctx context.Context, owner bson.ObjectID) error {
	streaming, err := s.streamingMessages(ctx, owner)
	if err != nil {
		return err
	}
	if err := s.deleteOwned(ctx, owner); err != nil {
		return err
	}
	if err := s.recordDeletion(ctx, owner); err != nil {
		return err
	}
	res, err := s.users.DeleteOne(ctx, bson.D{{Key: "_id", Value: owner}})
	if err != nil {
		return fmt.Errorf("delete the user document: %w", err)
	}
	persistence.DeleteStepDone(ctx, stepUserDeleted)
	if err := s.sweepOwned(ctx, owner); err != nil {
		return fmt.Errorf("last sweep (FinishDeletions finishes it): %w", err)
	}
	s.tails.forget(streaming...)
	if err := s.forgetDeletion(ctx, owner); err != nil {
		// Done all the same; FinishDeletions sweeps again and finds nothing.
		s.log.Warn("mongodb: account deleted, its deletion record left", "user_id", owner.Hex(), "err", err)
	}
	if res.DeletedCount == 0 {
		// A concurrent run deleted the user document first.
		return persistence.ErrNotFound
	}
	return nil
}

// The steps of finishUser that DeleteStepDone reports, after
// persistence.DeleteStepMarked.
const (
	stepMessagesDeleted      = "messages deleted"
	stepConversationsDeleted = "conversations deleted"
	stepUserDeleted          = "user document deleted"
)

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
	persistence.DeleteStepDone(ctx, stepMessagesDeleted)
	if _, err := s.conversations.DeleteMany(ctx, ownerFilter(owner)); err != nil {
		return fmt.Errorf("delete conversations: %w", err)
	}
	persistence.DeleteStepDone(ctx, stepConversationsDeleted)
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
// trailing words the tail cache may hold, read on the primary: one a
// lagging secondary missed (an answer started a moment ago) would keep its
// entry in the cache for as long as the process lives.
func (s *Store) streamingMessages(ctx context.Context, owner bson.ObjectID) ([]bson.ObjectID, error) {
	ids, err := findIDs(ctx, s.messagesPrimary, streamingFilter(owner))
	if err != nil {
		return nil, fmt.Errorf("find streaming messages: %w", err)
	}
	return ids, nil
}

// findIDs returns the _id of every document of c matching filter; more
// find options (a limit) may follow.
func findIDs(ctx context.Context, c *mongo.Collection, filter bson.D, more ...options.Lister[options.FindOptions]) ([]bson.ObjectID, error) {
	opts := append([]options.Lister[options.FindOptions]{options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}})}, more...)
	cur, err := c.Find(ctx, filter, opts...)
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
