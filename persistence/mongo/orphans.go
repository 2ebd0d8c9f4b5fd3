package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// sweptID is the _id of the meta document recording that sweepOrphans
// has run to its end on this database.
const sweptID = "orphans_swept"

// cleanUpWork is what Open found left to clean up.
type cleanUpWork struct {
	deletions []deletionDoc // unfinished account deletions
	sweep     bool          // sweepOrphans has never run to its end here
}

// none reports whether there is nothing to do.
func (w cleanUpWork) none() bool { return len(w.deletions) == 0 && !w.sweep }

// cleanUpToDo reads, during Open, what cleanUp has to do: two small reads
// of the meta collection. A fresh database (no chatd schema before this
// Open) holds nothing a deleted user left: its sweep is recorded as done
// at once. So a new database never starts the background work, whose
// commands would mix with a test's.
func (s *Store) cleanUpToDo(ctx context.Context, fresh bool) (cleanUpWork, error) {
	var w cleanUpWork
	cur, err := s.meta.Find(ctx, bson.D{{Key: "kind", Value: deletionKind}})
	if err != nil {
		return w, fmt.Errorf("find unfinished account deletions: %w", err)
	}
	if err := cur.All(ctx, &w.deletions); err != nil {
		return w, fmt.Errorf("find unfinished account deletions: %w", err)
	}
	switch err := s.meta.FindOne(ctx, bson.D{{Key: "_id", Value: sweptID}}).Err(); {
	case errors.Is(err, mongo.ErrNoDocuments) && fresh:
		return w, s.recordSwept(ctx)
	case errors.Is(err, mongo.ErrNoDocuments):
		w.sweep = true
	case err != nil:
		return w, fmt.Errorf("read the clean-up's state: %w", err)
	}
	return w, nil
}

// recordSwept records that sweepOrphans has run to its end.
func (s *Store) recordSwept(ctx context.Context) error {
	_, err := s.meta.ReplaceOne(ctx, bson.D{{Key: "_id", Value: sweptID}},
		bson.D{{Key: "_id", Value: sweptID}, {Key: "at", Value: now()}}, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("record the sweep: %w", err)
	}
	return nil
}

// cleanUp does work in the background from Open until it is done or
// Close stops it: it finishes the account deletions a DeleteUser left
// unfinished (finishDeletions), then, once per database, deletes what
// deleted users left (sweepOrphans). Neither holds up the start, which
// must fit in the connect timeout: the sweep reads both collections whole.
// A failure is logged; the next start tries again.
func (s *Store) cleanUp(ctx context.Context, w cleanUpWork) {
	warn := func(what string, err error) {
		if ctx.Err() == nil {
			s.log.Warn("mongodb: "+what+" failed; the next start tries again", "err", err)
		}
	}
	if err := s.finishDeletions(ctx, w.deletions); err != nil {
		warn("finishing unfinished account deletions", err)
		return
	}
	if !w.sweep {
		return
	}
	start := time.Now()
	if err := s.sweepOrphans(ctx); err != nil {
		warn("deleting what deleted users left", err)
		return
	}
	if err := s.recordSwept(ctx); err != nil {
		warn("recording the clean-up", err)
		return
	}
	s.log.Info("mongodb: checked every conversation and message for a deleted owner", "took", time.Since(start).Round(time.Millisecond))
}

// deletionKind marks the meta documents that record an account deletion
// in progress (DeleteUser), one per user, _id "deletion:" and the user's
// id.
const deletionKind = "user_deletion"

// deletionDoc records that DeleteUser is deleting a user: written before
// the user document is deleted, removed after the last sweep. One left
// behind (the process died or the sweep failed in between) names an owner
// whose documents finishDeletions sweeps after the next Open.
type deletionDoc struct {
	ID    string        `bson:"_id"`
	Kind  string        `bson:"kind"`
	Owner bson.ObjectID `bson:"owner"`
}

// deletionID is the _id of owner's deletion record.
func deletionID(owner bson.ObjectID) string { return "deletion:" + owner.Hex() }

// recordDeletion writes owner's deletion record (again, if one is left).
func (s *Store) recordDeletion(ctx context.Context, owner bson.ObjectID) error {
	d := deletionDoc{ID: deletionID(owner), Kind: deletionKind, Owner: owner}
	_, err := s.meta.ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, d, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("record the deletion: %w", err)
	}
	return nil
}

// forgetDeletion removes owner's deletion record.
func (s *Store) forgetDeletion(ctx context.Context, owner bson.ObjectID) error {
	if _, err := s.meta.DeleteOne(ctx, bson.D{{Key: "_id", Value: deletionID(owner)}}); err != nil {
		return fmt.Errorf("remove the deletion record: %w", err)
	}
	return nil
}

// finishDeletions completes the account deletions a DeleteUser left
// unfinished (docs, their records): for each record whose user document
// is gone it sweeps the owner's conversations and messages (sweepOwned,
// the last sweep that did not run or failed) and removes the record. A
// record whose user is still there is left alone: that DeleteUser failed
// before the user went (the account stays, and deleting it again finishes
// the job) or is running now on another instance.
func (s *Store) finishDeletions(ctx context.Context, docs []deletionDoc) error {
	owners := make([]bson.ObjectID, len(docs))
	for i, d := range docs {
		owners[i] = d.Owner
	}
	swept, err := s.sweepUnknown(ctx, owners)
	for _, o := range swept {
		if err := s.forgetDeletion(ctx, o); err != nil {
			return fmt.Errorf("finish the deletion of user %s: %w", o.Hex(), err)
		}
	}
	if err != nil {
		return fmt.Errorf("finish unfinished account deletions: %w", err)
	}
	return nil
}

// orphanBatch is how many owners sweepOrphans looks up in one query.
const orphanBatch = 500

// sweepOrphans deletes every conversation and message whose owner has no
// user document: what a create that raced the account's deletion left
// before CreateConversation checked its owner (persistence.ErrUnknownOwner),
// and the messages the old last sweep of DeleteUser (messages before
// conversations) could miss. It reads each collection's owners once (an
// aggregation: a scan of the collection), and looks them up on the
// primary orphanBatch at a time: a user is created before anything of
// theirs, so an owner not found there is gone, and a user being deleted
// meanwhile is swept twice, harmlessly.
func (s *Store) sweepOrphans(ctx context.Context) error {
	for _, c := range []*mongo.Collection{s.conversations, s.messages} {
		cur, err := c.Aggregate(ctx, mongo.Pipeline{{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$owner_id"}}}}})
		if err != nil {
			return fmt.Errorf("owners of %s: %w", c.Name(), err)
		}
		var batch []bson.ObjectID
		for cur.Next(ctx) {
			var d struct {
				ID bson.ObjectID `bson:"_id"`
			}
			if err := cur.Decode(&d); err != nil {
				_ = cur.Close(ctx)
				return fmt.Errorf("owners of %s: %w", c.Name(), err)
			}
			if batch = append(batch, d.ID); len(batch) == orphanBatch {
				if _, err := s.sweepUnknown(ctx, batch); err != nil {
					_ = cur.Close(ctx)
					return err
				}
				batch = batch[:0]
			}
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return fmt.Errorf("owners of %s: %w", c.Name(), err)
		}
		if _, err := s.sweepUnknown(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

// sweepUnknown sweeps the documents of each of owners that has no user
// document, looked up in one query, and returns those it swept, up to a
// failure.
func (s *Store) sweepUnknown(ctx context.Context, owners []bson.ObjectID) ([]bson.ObjectID, error) {
	if len(owners) == 0 {
		return nil, nil
	}
	users, err := findIDs(ctx, s.usersPrimary, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: owners}}}})
	if err != nil {
		return nil, fmt.Errorf("look up owners: %w", err)
	}
	known := make(map[bson.ObjectID]bool, len(users))
	for _, u := range users {
		known[u] = true
	}
	var swept []bson.ObjectID
	for _, o := range owners {
		if known[o] {
			continue
		}
		if err := s.sweepOwned(ctx, o); err != nil {
			return swept, fmt.Errorf("sweep the documents of deleted user %s: %w", o.Hex(), err)
		}
		swept = append(swept, o)
		s.log.Info("mongodb: deleted the documents of a deleted user", "user_id", o.Hex())
	}
	return swept, nil
}
